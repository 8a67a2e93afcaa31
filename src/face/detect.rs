//! BlazeFace decoding (anchors, boxes, six keypoints) and non-maximum suppression. Pure: model outputs in, boxes out.
use super::geometry::Point;

/// A face found by the detector, in the coordinates of the image given to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// x0, y0, x1, y1.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Eye (subject's right), eye (left), nose tip, mouth centre, ear (right), ear (left).
    pub keypoints: [Point; 6],
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    pub fn iou(&self, o: &Detection) -> f32 {
        let ix = (self.bbox[2].min(o.bbox[2]) - self.bbox[0].max(o.bbox[0])).max(0.0);
        let iy = (self.bbox[3].min(o.bbox[3]) - self.bbox[1].max(o.bbox[1])).max(0.0);
        let inter = ix * iy;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
    /// Maps from the detector's input square back to the image: `image = (input - pad) / scale`.
    pub fn unletterbox(&self, scale: f32, pad_x: f32, pad_y: f32) -> Detection {
        let map = |p: Point| Point::new((p.x - pad_x) / scale, (p.y - pad_y) / scale);
        let a = map(Point::new(self.bbox[0], self.bbox[1]));
        let b = map(Point::new(self.bbox[2], self.bbox[3]));
        Detection {
            bbox: [a.x, a.y, b.x, b.y],
            score: self.score,
            keypoints: self.keypoints.map(map),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes the two BlazeFace heads of an input `size`×`size`: per head, its stride, anchors per cell, the score
/// logits `[rows]` and the regressors `[rows × 16]`.
pub fn decode(
    size: usize,
    heads: [(usize, usize, &[f32], &[f32]); 2],
    min_score: f32,
) -> Vec<Detection> {
    let mut out = Vec::new();
    for (stride, per_cell, scores, regs) in heads {
        let grid = size / stride;
        let rows = grid * grid * per_cell;
        if scores.len() < rows || regs.len() < rows * 16 {
            continue;
        }
        for row in 0..rows {
            let score = sigmoid(scores[row].clamp(-80.0, 80.0));
            if score < min_score {
                continue;
            }
            let cell = row / per_cell;
            let (cx, cy) = ((cell % grid) as f32 + 0.5, (cell / grid) as f32 + 0.5);
            let anchor = Point::new(cx * stride as f32, cy * stride as f32);
            let r = &regs[row * 16..row * 16 + 16];
            let (x, y, w, h) = (r[0] + anchor.x, r[1] + anchor.y, r[2], r[3]);
            let mut keypoints = [Point::new(0.0, 0.0); 6];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = Point::new(r[4 + 2 * k] + anchor.x, r[5 + 2 * k] + anchor.y);
            }
            out.push(Detection {
                bbox: [x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0],
                score,
                keypoints,
            });
        }
    }
    out
}

/// Greedy non-maximum suppression, highest score first.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::new();
    for d in dets {
        if keep.iter().all(|k| k.iou(&d) < iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_anchor_and_suppresses_duplicates() {
        // 128 input, head 0: stride 8, 2 per cell → 16×16×2 rows; put a face at cell (3, 2), anchor 1.
        let rows0 = 16 * 16 * 2;
        let mut s0 = vec![-10.0; rows0];
        let mut r0 = vec![0.0; rows0 * 16];
        let row = (2 * 16 + 3) * 2 + 1;
        s0[row] = 3.0;
        r0[row * 16..row * 16 + 4].copy_from_slice(&[1.0, -1.0, 20.0, 30.0]);
        let s1 = vec![-10.0; 8 * 8 * 6];
        let r1 = vec![0.0; 8 * 8 * 6 * 16];
        let dets = decode(128, [(8, 2, &s0, &r0), (16, 6, &s1, &r1)], 0.5);
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert!((d.score - sigmoid(3.0)).abs() < 1e-6);
        // anchor centre (3.5·8, 2.5·8) = (28, 20), shifted by (1, -1)
        assert_eq!(d.bbox, [29.0 - 10.0, 19.0 - 15.0, 29.0 + 10.0, 19.0 + 15.0]);
        let mut twin = d.clone();
        twin.score = 0.6;
        twin.bbox[0] += 1.0;
        let far = Detection {
            bbox: [100.0, 100.0, 110.0, 110.0],
            ..twin.clone()
        };
        let kept = nms(vec![twin, d.clone(), far], 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, d.score);
        let back = d.unletterbox(0.5, 4.0, 0.0);
        assert_eq!(back.bbox[0], (19.0 - 4.0) / 0.5);
    }
}
