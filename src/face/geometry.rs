//! Pure geometry: points, the 4-DoF similarity fit (least squares, no reflection), bilinear sampling, and warps.
use image::RgbImage;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }
    pub fn dist(self, o: Point) -> f32 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
    pub fn mid(self, o: Point) -> Point {
        Point::new((self.x + o.x) / 2.0, (self.y + o.y) / 2.0)
    }
}

/// `q = [a -b; b a] p + t`: rotation, uniform scale and translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        let t = Similarity {
            a,
            b,
            tx: 0.0,
            ty: 0.0,
        }
        .apply(Point::new(-self.tx, -self.ty));
        Similarity {
            a,
            b,
            tx: t.x,
            ty: t.y,
        }
    }

    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// The least-squares similarity taking `src` onto `dst` (Umeyama without reflection).
    pub fn fit(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let mean = |ps: &[Point]| {
            let (sx, sy) = ps[..n]
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
            Point::new(sx / n as f32, sy / n as f32)
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut dot, mut cross, mut norm) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let (sx, sy) = (src[i].x - ms.x, src[i].y - ms.y);
            let (dx, dy) = (dst[i].x - md.x, dst[i].y - md.y);
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if norm <= f32::EPSILON {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        let tx = md.x - (a * ms.x - b * ms.y);
        let ty = md.y - (b * ms.x + a * ms.y);
        Some(Similarity { a, b, tx, ty })
    }
}

/// Bilinear sample of an RGB image at (x, y) in pixel coordinates (pixel centres at integers); outside is black.
pub fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let raw = img.as_raw();
    if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
        // Inside: read the four neighbours straight from the buffer.
        let i = ((y0 * w + x0) * 3) as usize;
        let j = i + (w * 3) as usize;
        let mut out = [0.0; 3];
        for c in 0..3 {
            let (p00, p10) = (f32::from(raw[i + c]), f32::from(raw[i + 3 + c]));
            let (p01, p11) = (f32::from(raw[j + c]), f32::from(raw[j + 3 + c]));
            let top = p00 + (p10 - p00) * fx;
            let bottom = p01 + (p11 - p01) * fx;
            out[c] = top + (bottom - top) * fy;
        }
        return out;
    }
    let px = |xx: i64, yy: i64| -> [f32; 3] {
        if xx < 0 || yy < 0 || xx >= w || yy >= h {
            [0.0; 3]
        } else {
            let i = ((yy * w + xx) * 3) as usize;
            [
                f32::from(raw[i]),
                f32::from(raw[i + 1]),
                f32::from(raw[i + 2]),
            ]
        }
    };
    let (p00, p10, p01, p11) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut out = [0.0; 3];
    for c in 0..3 {
        let top = p00[c] + (p10[c] - p00[c]) * fx;
        let bottom = p01[c] + (p11[c] - p01[c]) * fx;
        out[c] = top + (bottom - top) * fy;
    }
    out
}

/// Warps `img` into a `w`×`h` RGB float buffer (HWC, 0..255) where output pixel q comes from `to_src(q)`.
pub fn warp(img: &RgbImage, to_src: &Similarity, w: usize, h: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w * h * 3);
    for v in 0..h {
        for u in 0..w {
            let p = to_src.apply(Point::new(u as f32, v as f32));
            out.extend_from_slice(&sample(img, p.x, p.y));
        }
    }
    out
}

/// The `size`-block region of `img` starting at `origin`, shrunk by averaging k×k blocks (each source pixel read
/// once): block (i, j) is centred at source `origin + (i, j)·k + (k − 1)/2`. The region must lie inside the image.
pub fn box_shrink(img: &RgbImage, origin: (u32, u32), size: (u32, u32), k: u32) -> RgbImage {
    let (x0, y0) = (origin.0 as usize, origin.1 as usize);
    let (sw, sh, k) = (size.0 as usize, size.1 as usize, k.max(1) as usize);
    let (iw, raw) = (img.width() as usize, img.as_raw());
    let mut acc = vec![0u32; sw * sh * 3];
    for y in y0..y0 + sh * k {
        let row = &mut acc[((y - y0) / k) * sw * 3..][..sw * 3];
        let line = &raw[(y * iw + x0) * 3..(y * iw + x0 + sw * k) * 3];
        for (out, block) in row.chunks_exact_mut(3).zip(line.chunks_exact(3 * k)) {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            for px in block.chunks_exact(3) {
                r += u32::from(px[0]);
                g += u32::from(px[1]);
                b += u32::from(px[2]);
            }
            out[0] += r;
            out[1] += g;
            out[2] += b;
        }
    }
    let n = (k * k) as u32;
    RgbImage::from_raw(
        sw as u32,
        sh as u32,
        acc.iter().map(|v| ((v + n / 2) / n) as u8).collect(),
    )
    .expect("buffer size matches")
}

/// Like [`warp`], but when one output pixel spans k ≥ 2 source pixels the source region is first averaged over
/// k×k blocks (each source pixel read once), then sampled bilinearly: a box filter against aliasing when a large
/// face is shrunk (dlib shrinks through an image pyramid for the same reason).
pub fn warp_area(img: &RgbImage, to_src: &Similarity, w: usize, h: usize) -> Vec<f32> {
    let k = to_src.scale().floor() as i64;
    if k < 2 {
        return warp(img, to_src, w, h);
    }
    let corners = [
        (0.0, 0.0),
        (w as f32, 0.0),
        (0.0, h as f32),
        (w as f32, h as f32),
    ]
    .map(|(u, v)| to_src.apply(Point::new(u, v)));
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let lo =
        |f: fn(&Point) -> f32| corners.iter().map(f).fold(f32::MAX, f32::min).floor() as i64 - k;
    let hi =
        |f: fn(&Point) -> f32| corners.iter().map(f).fold(f32::MIN, f32::max).ceil() as i64 + k;
    let (x0, y0) = (lo(|p| p.x).clamp(0, iw), lo(|p| p.y).clamp(0, ih));
    let (x1, y1) = (hi(|p| p.x).clamp(0, iw), hi(|p| p.y).clamp(0, ih));
    let (sw, sh) = ((x1 - x0) / k, (y1 - y0) / k);
    if sw < 2 || sh < 2 {
        return warp(img, to_src, w, h);
    }
    let small = box_shrink(
        img,
        (x0 as u32, y0 as u32),
        (sw as u32, sh as u32),
        k as u32,
    );
    // Block (i, j) is centred at source x0 + i·k + (k − 1)/2.
    let kf = k as f32;
    let half = (kf - 1.0) / 2.0;
    let to_small = Similarity {
        a: to_src.a / kf,
        b: to_src.b / kf,
        tx: (to_src.tx - x0 as f32 - half) / kf,
        ty: (to_src.ty - y0 as f32 - half) / kf,
    };
    warp(&small, &to_small, w, h)
}

/// The ArcFace 112×112 five-point template: eye (image left), eye (image right), nose tip, mouth corners.
pub const ARCFACE_112: [Point; 5] = [
    Point {
        x: 38.2946,
        y: 51.6963,
    },
    Point {
        x: 73.5318,
        y: 51.5014,
    },
    Point {
        x: 56.0252,
        y: 71.7366,
    },
    Point {
        x: 41.5493,
        y: 92.3655,
    },
    Point {
        x: 70.7299,
        y: 92.2041,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 12.0,
            ty: -4.0,
        };
        let src: Vec<Point> = ARCFACE_112.to_vec();
        let dst: Vec<Point> = src.iter().map(|p| truth.apply(*p)).collect();
        let fit = Similarity::fit(&src, &dst).unwrap();
        for (x, y) in [
            (fit.a, truth.a),
            (fit.b, truth.b),
            (fit.tx, truth.tx),
            (fit.ty, truth.ty),
        ] {
            assert!((x - y).abs() < 1e-3, "{fit:?}");
        }
        let back = fit.inverse();
        let p = Point::new(3.0, 7.0);
        let q = back.apply(fit.apply(p));
        assert!(p.dist(q) < 1e-3);
        assert!(Similarity::fit(&[p, p], &[p, q]).is_none());
    }

    #[test]
    fn area_warp_averages_a_shrunk_checkerboard() {
        let mut img = RgbImage::new(40, 40);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([if (x + y) % 2 == 0 { 255 } else { 0 }; 3]);
        }
        // 4 source pixels per output pixel: the box filter gives mid-grey; plain bilinear at integer points does not.
        let shrink = Similarity {
            a: 4.0,
            b: 0.0,
            tx: 1.5,
            ty: 1.5,
        };
        let s = warp_area(&img, &shrink, 8, 8);
        assert!(s.iter().all(|v| (v - 127.5).abs() < 1.0), "{:?}", &s[..6]);
        let on_pixels = Similarity {
            tx: 4.0,
            ty: 4.0,
            ..shrink
        };
        assert!(warp(&img, &on_pixels, 8, 8)
            .iter()
            .all(|v| (v - 127.5).abs() > 100.0));
        // A smooth ramp keeps its values (the block centres are placed right).
        let ramp = RgbImage::from_fn(64, 64, |x, _| image::Rgb([(x * 4) as u8, 0, 0]));
        let a = warp_area(&ramp, &shrink, 8, 8);
        let b = warp(&ramp, &shrink, 8, 8);
        for (p, q) in a.iter().zip(&b).step_by(3).take(7) {
            assert!((p - q).abs() <= 1.0, "{p} {q}");
        }
        let identity = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(
            warp_area(&img, &identity, 5, 5),
            warp(&img, &identity, 5, 5)
        );
    }

    #[test]
    fn bilinear_sampling() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([0, 0, 0]));
        img.put_pixel(1, 0, image::Rgb([100, 200, 50]));
        assert_eq!(sample(&img, 0.5, 0.0), [50.0, 100.0, 25.0]);
        assert_eq!(sample(&img, -5.0, 0.0), [0.0; 3]);
        // Inside (the fast path) and on the border (the checked path) agree with the formula.
        let img = RgbImage::from_fn(3, 3, |x, y| {
            image::Rgb([(x * 10 + y * 50) as u8, 7, (x * y) as u8])
        });
        let [r, g, b] = sample(&img, 0.25, 0.75);
        assert!((r - (2.5 + 37.5)).abs() < 1e-4 && g == 7.0 && (b - 0.1875).abs() < 1e-4);
        let [r, _, _] = sample(&img, 2.0, 1.5);
        assert!((r - 95.0).abs() < 1e-4, "{r}");
    }
}
