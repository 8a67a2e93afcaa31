//! Per-face measurements from landmarks and the aligned crop: size, pose, eye and mouth openness, brightness,
//! sharpness. Pure functions; the liveness signals and the decision build on them.
use super::geometry::Point;

/// What one face in one frame looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    /// Inter-ocular distance in image pixels.
    pub iod: f32,
    /// Eye midpoint to mouth midpoint, in pixels (foreshortens with pitch like the eye opening does).
    pub face_length: f32,
    /// Eye aspect ratio, mean of both eyes (FaceMesh points 33,160,158,133,153,144 / 362,385,387,263,373,380).
    pub ear: f32,
    /// Mean vertical eye opening divided by `face_length` (robust to nodding a photo).
    pub eye_open_norm: f32,
    /// Mouth aspect ratio |p13 − p14| / |p61 − p291|.
    pub mar: f32,
    /// Nose tip offset from the eye midpoint along the eye axis ÷ IOD (0.1 ≈ 12° of yaw; sign = direction).
    pub yaw: f32,
    /// Nose tip offset across the eye axis ÷ face length (changes when the head nods).
    pub pitch: f32,
    /// Eye-line angle in degrees.
    pub roll: f32,
}

fn p(mesh: &[[f32; 3]], i: usize) -> Point {
    Point::new(mesh[i][0], mesh[i][1])
}

fn eye_ratio(mesh: &[[f32; 3]], idx: [usize; 6]) -> (f32, f32) {
    let [a, b, c, d, e, f] = idx.map(|i| p(mesh, i));
    let vertical = (b.dist(f) + c.dist(e)) / 2.0;
    (vertical / a.dist(d).max(1e-3), vertical)
}

/// Measures from 468 FaceMesh landmarks (image pixels). `None` for a mesh of the wrong size.
pub fn measure(mesh: &[[f32; 3]]) -> Option<Measures> {
    if mesh.len() < 468 {
        return None;
    }
    let left_eye = p(mesh, 33).mid(p(mesh, 133));
    let right_eye = p(mesh, 362).mid(p(mesh, 263));
    let iod = left_eye.dist(right_eye).max(1e-3);
    let eyes = left_eye.mid(right_eye);
    let mouth = p(mesh, 61).mid(p(mesh, 291));
    let face_length = eyes.dist(mouth).max(1e-3);
    let (ear_l, open_l) = eye_ratio(mesh, [33, 160, 158, 133, 153, 144]);
    let (ear_r, open_r) = eye_ratio(mesh, [362, 385, 387, 263, 373, 380]);
    let mar = p(mesh, 13).dist(p(mesh, 14)) / p(mesh, 61).dist(p(mesh, 291)).max(1e-3);
    let axis = Point::new(
        (right_eye.x - left_eye.x) / iod,
        (right_eye.y - left_eye.y) / iod,
    );
    let nose = p(mesh, 1);
    let (dx, dy) = (nose.x - eyes.x, nose.y - eyes.y);
    Some(Measures {
        iod,
        face_length,
        ear: (ear_l + ear_r) / 2.0,
        eye_open_norm: (open_l + open_r) / 2.0 / face_length,
        mar,
        yaw: (dx * axis.x + dy * axis.y) / iod,
        pitch: (-dx * axis.y + dy * axis.x) / face_length,
        roll: axis.y.atan2(axis.x).to_degrees(),
    })
}

/// Mean luma (0..255) of an RGB HWC float buffer.
pub fn brightness(rgb: &[f32]) -> f32 {
    let n = (rgb.len() / 3).max(1) as f32;
    rgb.chunks_exact(3)
        .map(|c| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
        .sum::<f32>()
        / n
}

/// Variance of the 4-neighbour Laplacian of the luma of a `w`×`h` RGB HWC buffer: low means blurred.
pub fn sharpness(rgb: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 || rgb.len() < w * h * 3 {
        return 0.0;
    }
    let luma: Vec<f32> = rgb
        .chunks_exact(3)
        .map(|c| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
        .collect();
    let mut vals = Vec::with_capacity((w - 2) * (h - 2));
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            vals.push(luma[i - 1] + luma[i + 1] + luma[i - w] + luma[i + w] - 4.0 * luma[i]);
        }
    }
    let mean = vals.iter().sum::<f32>() / vals.len() as f32;
    vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brightness_and_sharpness() {
        let flat = vec![100.0; 10 * 10 * 3];
        assert!((brightness(&flat) - 100.0).abs() < 1e-3);
        assert_eq!(sharpness(&flat, 10, 10), 0.0);
        let checker: Vec<f32> = (0..100)
            .flat_map(|i| {
                let v = if (i % 10 + i / 10) % 2 == 0 {
                    0.0
                } else {
                    255.0
                };
                [v, v, v]
            })
            .collect();
        assert!(sharpness(&checker, 10, 10) > 1e5);
        assert_eq!(sharpness(&checker, 2, 2), 0.0);
    }

    #[test]
    fn measures_need_a_full_mesh() {
        assert!(measure(&[[0.0; 3]; 10]).is_none());
    }
}
