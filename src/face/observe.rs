//! Turns frames into liveness observations: the main face's measures, embedding, skin colour and centre, and how
//! far its surroundings moved since the previous frame (block matching on a ring around the face).
use image::{GrayImage, RgbImage};

use super::engine::{Face, FaceEngine};
use super::geometry::{sample, Point};
use super::liveness::Observation;
use super::quality;
use super::runtime::RuntimeError;

/// Mean skin colour: small patches at the cheeks (mesh 50, 280) and the forehead (151).
pub fn skin_rgb(img: &RgbImage, face: &Face) -> [f32; 3] {
    let iod = face.points[0].dist(face.points[1]).max(4.0);
    let r = (iod * 0.12).max(1.0);
    let mut sum = [0.0f32; 3];
    let mut n = 0.0f32;
    for &i in &[50usize, 280, 151] {
        let Some(c) = face.mesh.get(i) else { continue };
        for dy in -2..=2 {
            for dx in -2..=2 {
                let p = sample(img, c[0] + dx as f32 * r / 2.0, c[1] + dy as f32 * r / 2.0);
                for k in 0..3 {
                    sum[k] += p[k];
                }
                n += 1.0;
            }
        }
    }
    sum.map(|s| s / n.max(1.0))
}

/// A small grey copy of a frame for block matching, and the scale from it to the frame.
pub struct Thumb {
    gray: GrayImage,
    scale: f32,
}

const THUMB_WIDTH: u32 = 160;

/// The thumb is sized by the frame's longer side, so no shape of frame can ask for a large buffer.
pub fn thumb(img: &RgbImage) -> Thumb {
    let (w, h) = super::image::fit_within(img.width(), img.height(), THUMB_WIDTH);
    let scale = img.width().max(1) as f32 / w as f32;
    let small = image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle);
    Thumb {
        gray: image::DynamicImage::ImageRgb8(small).to_luma8(),
        scale,
    }
}

/// Shift of the ring between 1.3× and 2.4× the face box from `prev` to `cur`, in frame pixels (best mean absolute
/// difference over shifts up to ±8 thumb pixels). `None` when the ring has too little texture to tell, or when the
/// two frames differ in size (a client may upload frames of any sizes: nothing to compare, and no pixel of `prev`
/// may be read outside it).
pub fn surround_shift(prev: &Thumb, cur: &Thumb, bbox: [f32; 4]) -> Option<Point> {
    if prev.gray.dimensions() != cur.gray.dimensions() {
        return None;
    }
    let s = cur.scale;
    let (cx, cy) = ((bbox[0] + bbox[2]) / 2.0 / s, (bbox[1] + bbox[3]) / 2.0 / s);
    let (w, h) = ((bbox[2] - bbox[0]) / s, (bbox[3] - bbox[1]) / s);
    let (gw, gh) = (cur.gray.width() as i32, cur.gray.height() as i32);
    let inside =
        |x: f32, y: f32, k: f32| (x - cx).abs() <= w * k / 2.0 && (y - cy).abs() <= h * k / 2.0;
    let mut pts = Vec::new();
    for y in 8..gh - 8 {
        for x in 8..gw - 8 {
            let (fx, fy) = (x as f32, y as f32);
            if inside(fx, fy, 2.4) && !inside(fx, fy, 1.3) {
                pts.push((x, y));
            }
        }
    }
    if pts.len() < 50 {
        return None;
    }
    let texture = {
        let v: Vec<f32> = pts
            .iter()
            .map(|&(x, y)| f32::from(cur.gray.get_pixel(x as u32, y as u32).0[0]))
            .collect();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
    };
    if texture < 4.0 {
        return None;
    }
    let mut best = (f32::MAX, 0i32, 0i32);
    for dy in -8..=8 {
        for dx in -8..=8 {
            let mut sad = 0.0;
            for &(x, y) in pts.iter().step_by(2) {
                let a = f32::from(cur.gray.get_pixel(x as u32, y as u32).0[0]);
                let b = f32::from(prev.gray.get_pixel((x - dx) as u32, (y - dy) as u32).0[0]);
                sad += (a - b).abs();
            }
            if sad < best.0 {
                best = (sad, dx, dy);
            }
        }
    }
    Some(Point::new(best.1 as f32 * s, best.2 as f32 * s))
}

/// Observes one frame: the engine's faces, the main (largest) face's measures, embedding, skin colour, centre, and
/// the surroundings' shift since `prev`.
pub fn observe(
    engine: &dyn FaceEngine,
    img: &RgbImage,
    t_ms: u32,
    prev: Option<&Thumb>,
) -> Result<(Observation, Thumb), RuntimeError> {
    let faces = engine.analyze(img)?;
    let th = thumb(img);
    let mut o = Observation {
        t_ms,
        faces: faces.len(),
        ..Default::default()
    };
    if let Some(f) = faces.first() {
        o.measures = quality::measure(&f.mesh);
        o.embedding = Some(f.embedding.clone());
        o.face_rgb = Some(skin_rgb(img, f));
        let b = f.detection.bbox;
        o.face_center = Some(Point::new((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0));
        o.surround_shift = prev.and_then(|p| surround_shift(p, &th, b));
    }
    Ok((o, th))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 37 + y * 91) % 251) as u8;
            image::Rgb([v, v.wrapping_mul(3), 255 - v])
        })
    }

    #[test]
    fn frames_of_different_sizes_have_no_shift_and_no_panic() {
        let (a, b) = (thumb(&textured(96, 72)), thumb(&textured(72, 96)));
        let bbox = [24.0, 24.0, 48.0, 48.0];
        assert!(surround_shift(&a, &b, bbox).is_none());
        assert!(surround_shift(&b, &a, bbox).is_none());
        assert!(surround_shift(&a, &a, bbox).is_some());
    }
}
