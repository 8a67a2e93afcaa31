//! The one gate every image passes before any work: JPEG, PNG and WebP only; limits on the compressed size, each
//! side, the aspect ratio, the bit depth and the decoder's buffer, all checked from the header before a pixel is
//! decoded; the EXIF orientation applied; large images shrunk to the size the engine uses.
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Limits on what a client may send, and the size the decoded image is shrunk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Compressed bytes.
    pub max_bytes: usize,
    /// Pixels (width × height).
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Shortest side, in pixels: nothing smaller shows a face.
    pub min_side: u32,
    /// The long side may be at most this many times the short side.
    pub max_aspect: u32,
    /// The decoder's own buffer (all channels at their bit depth).
    pub max_decoded_bytes: u64,
    /// Whether 16-bit channels are accepted (they double the decoder's buffer and add nothing to a face).
    pub allow_16bit: bool,
    /// After decoding, an image whose long side is larger is shrunk to this (the detector needs ≤ 640 px).
    pub fit_side: Option<u32>,
}

impl Default for DecodeLimits {
    /// Pictures: merchants' reference photos, pictures fetched by URL, the authority's and the registry's photos.
    fn default() -> Self {
        DecodeLimits::PICTURE
    }
}

impl DecodeLimits {
    /// Pictures of a face sent or named by a merchant, or held by an authority: up to 8192 px a side and 24 Mpx
    /// (a phone's full-size photo).
    pub const PICTURE: DecodeLimits = DecodeLimits {
        max_bytes: 10 * 1024 * 1024,
        max_pixels: 24_000_000,
        max_side: 8192,
        min_side: 32,
        max_aspect: 4,
        max_decoded_bytes: 24_000_000 * 4,
        allow_16bit: false,
        fit_side: None,
    };

    /// Frames of the hosted page (captured at ≤ 480 px): up to 1280 px a side.
    pub const FRAME: DecodeLimits = DecodeLimits {
        max_bytes: 512 * 1024,
        max_pixels: 1280 * 1280,
        max_side: 1280,
        min_side: 32,
        max_aspect: 4,
        max_decoded_bytes: 1280 * 1280 * 4,
        allow_16bit: false,
        fit_side: Some(640),
    };

    /// Files an operator names on the command line (registry imports, `shiren face …`): larger, still bounded.
    pub const LOCAL_FILE: DecodeLimits = DecodeLimits {
        max_bytes: 40 * 1024 * 1024,
        max_pixels: 40_000_000,
        max_side: 10_000,
        min_side: 16,
        max_aspect: 8,
        max_decoded_bytes: 40_000_000 * 8,
        allow_16bit: true,
        fit_side: None,
    };

    /// These limits with another compressed-size limit.
    pub const fn with_max_bytes(self, max_bytes: usize) -> DecodeLimits {
        DecodeLimits { max_bytes, ..self }
    }

    /// Checks a picture's shape (from its header, or a video's stream): each side, the pixel count, the aspect
    /// ratio, and the bytes of a buffer of `bytes_per_pixel`.
    pub fn check_shape(&self, w: u32, h: u32, bytes_per_pixel: u64) -> Result<(), ImageError> {
        let (long, short) = (w.max(h), w.min(h));
        if long > self.max_side || u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(ImageError::TooManyPixels(w, h, self.max_pixels));
        }
        if short < self.min_side {
            return Err(ImageError::TooSmall(w, h, self.min_side));
        }
        if u64::from(long) > u64::from(short) * u64::from(self.max_aspect) {
            return Err(ImageError::Aspect(w, h, self.max_aspect));
        }
        if u64::from(w) * u64::from(h) * bytes_per_pixel > self.max_decoded_bytes {
            return Err(ImageError::TooManyPixels(w, h, self.max_pixels));
        }
        Ok(())
    }
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the image is larger than {0} bytes")]
    TooManyBytes(usize),
    #[error("the image has {0}x{1} pixels, more than the {2} allowed (or a side too long)")]
    TooManyPixels(u32, u32, u64),
    #[error("the image has {0}x{1} pixels: a side is shorter than {2}")]
    TooSmall(u32, u32, u32),
    #[error("the image has {0}x{1} pixels: one side is more than {2} times the other")]
    Aspect(u32, u32, u32),
    #[error("the image has 16-bit channels; send 8-bit JPEG, PNG or WebP")]
    Depth,
    #[error("not a JPEG, PNG or WebP image")]
    Format,
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
}

impl ImageError {
    /// Whether the image was refused for its size or shape (rather than for being no image at all).
    pub fn is_size(&self) -> bool {
        matches!(
            self,
            ImageError::TooManyBytes(_)
                | ImageError::TooManyPixels(..)
                | ImageError::TooSmall(..)
                | ImageError::Aspect(..)
                | ImageError::Depth
        )
    }
}

/// What the header of an accepted image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub format: image::ImageFormat,
}

fn reader<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<ImageReader<Cursor<&'a [u8]>>, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes(limits.max_bytes));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png | image::ImageFormat::WebP)
    ) {
        return Err(ImageError::Format);
    }
    // The decoders' own allocations are capped too (metadata, intermediate buffers); the shape is checked below.
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_decoded_bytes.saturating_mul(2).max(1 << 20));
    reader.limits(l);
    Ok(reader)
}

fn checked_decoder<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<(impl ImageDecoder + 'a, Header), ImageError> {
    let reader = reader(bytes, limits)?;
    let format = reader.format().ok_or(ImageError::Format)?;
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels(0, 0, limits.max_pixels),
        e => ImageError::Corrupt(e.to_string()),
    })?;
    let (w, h) = decoder.dimensions();
    let colour = decoder.color_type();
    let channel_bytes = u64::from(colour.bytes_per_pixel()) / u64::from(colour.channel_count());
    limits.check_shape(w, h, u64::from(colour.bytes_per_pixel()))?;
    if channel_bytes > 1 && !limits.allow_16bit {
        return Err(ImageError::Depth);
    }
    if decoder.total_bytes() > limits.max_decoded_bytes {
        return Err(ImageError::TooManyPixels(w, h, limits.max_pixels));
    }
    Ok((
        decoder,
        Header {
            width: w,
            height: h,
            format,
        },
    ))
}

/// Reads only the header and checks it against the limits: no pixel is decoded.
pub fn inspect(bytes: &[u8], limits: DecodeLimits) -> Result<Header, ImageError> {
    checked_decoder(bytes, &limits).map(|(_, h)| h)
}

/// Decodes to RGB8 with the EXIF orientation applied, shrunk to `fit_side`. Everything is checked from the header,
/// before decoding.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, ImageError> {
    let (mut decoder, _) = checked_decoder(bytes, &limits)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels(0, 0, limits.max_pixels),
        e => ImageError::Corrupt(e.to_string()),
    })?;
    img.apply_orientation(orientation);
    // No copy when the decoder already produced 8-bit RGB (the usual JPEG case).
    let rgb = img.into_rgb8();
    Ok(match limits.fit_side {
        Some(side) => fit(&rgb, side).unwrap_or(rgb),
        None => rgb,
    })
}

/// The size of an image shrunk so that its longer side is at most `max_side` (never larger than it was, never
/// zero): every resize in the service is sized by this, so no shape can ask for a huge buffer.
pub fn fit_within(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h).max(1);
    if long <= max_side {
        return (w.max(1), h.max(1));
    }
    let scale = |s: u32| {
        ((u64::from(s) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long)) as u32
    };
    (scale(w).clamp(1, max_side), scale(h).clamp(1, max_side))
}

/// The image shrunk so its longer side is `max_side`; `None` when it is not larger than that.
pub fn fit(img: &RgbImage, max_side: u32) -> Option<RgbImage> {
    let (w, h) = img.dimensions();
    if w.max(h) <= max_side {
        return None;
    }
    let (nw, nh) = fit_within(w, h, max_side);
    // Box-average first when much larger (cheap), then filter to the exact size.
    let k = (w / (2 * nw)).min(h / (2 * nh));
    Some(if k >= 2 {
        let half = super::geometry::box_shrink(img, (0, 0), (w / k, h / k), k);
        image::imageops::resize(&half, nw, nh, image::imageops::FilterType::Triangle)
    } else {
        image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn png16(w: u32, h: u32) -> Vec<u8> {
        let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(w, h, image::Rgb([1, 2, 3]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb16(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// A PNG whose header claims `w`×`h` (grey, 8-bit) with a tiny, deflate-compressed body of zero rows: what an
    /// attacker sends to make a decoder or a resize allocate for the claimed size.
    fn claimed_png(w: u32, h: u32) -> Vec<u8> {
        use std::io::Write;
        let crc = |data: &[u8]| {
            let mut c = 0xffff_ffffu32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xedb8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        };
        let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc(&body).to_be_bytes());
        };
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let row = vec![0u8; w as usize + 1];
        for _ in 0..h.min(4096) {
            z.write_all(&row).unwrap();
        }
        chunk(&mut out, b"IDAT", &z.finish().unwrap());
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn decodes_and_refuses_bombs_and_junk() {
        let ok = decode(&png(48, 36), DecodeLimits::default()).unwrap();
        assert_eq!(ok.dimensions(), (48, 36));
        let small = DecodeLimits {
            max_pixels: 100,
            min_side: 1,
            ..DecodeLimits::default()
        };
        assert_eq!(
            decode(&png(20, 20), small),
            Err(ImageError::TooManyPixels(20, 20, 100))
        );
        assert_eq!(
            decode(&png(48, 36), DecodeLimits::default().with_max_bytes(10)),
            Err(ImageError::TooManyBytes(10))
        );
        assert_eq!(
            decode(b"GIF89a......", DecodeLimits::default()),
            Err(ImageError::Format)
        );
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        assert!(matches!(
            decode(&truncated, DecodeLimits::default()),
            Err(ImageError::Corrupt(_))
        ));
    }

    #[test]
    fn refuses_long_thin_images_before_decoding() {
        // The 3 KB frame that once aborted the process: 1 × 1,600,000 passes a pixel-count limit.
        let thin = claimed_png(1, 1_600_000);
        assert!(thin.len() < 64 * 1024, "{}", thin.len());
        for limits in [
            DecodeLimits::FRAME,
            DecodeLimits::PICTURE,
            DecodeLimits::LOCAL_FILE,
        ] {
            let e = decode(&thin, limits).unwrap_err();
            assert!(e.is_size(), "{e}");
            assert!(inspect(&thin, limits).is_err());
        }
        assert!(matches!(
            decode(&claimed_png(1, 16_000_000), DecodeLimits::PICTURE),
            Err(ImageError::TooManyPixels(..))
        ));
        assert!(matches!(
            decode(&claimed_png(200, 40), DecodeLimits::FRAME),
            Err(ImageError::Aspect(200, 40, 4))
        ));
        assert!(matches!(
            decode(&claimed_png(20, 20), DecodeLimits::FRAME),
            Err(ImageError::TooSmall(20, 20, 32))
        ));
        assert!(matches!(
            decode(&claimed_png(2000, 1000), DecodeLimits::FRAME),
            Err(ImageError::TooManyPixels(2000, 1000, _))
        ));
    }

    #[test]
    fn refuses_16_bit_unless_allowed() {
        let deep = png16(64, 64);
        assert_eq!(decode(&deep, DecodeLimits::PICTURE), Err(ImageError::Depth));
        assert_eq!(
            decode(&deep, DecodeLimits::LOCAL_FILE)
                .unwrap()
                .dimensions(),
            (64, 64)
        );
    }

    #[test]
    fn shrinks_to_fit_side() {
        let img = decode(&png(1000, 500), DecodeLimits::FRAME).unwrap();
        assert_eq!(img.dimensions(), (640, 320));
        let img = decode(&png(300, 1200), DecodeLimits::FRAME).unwrap();
        assert_eq!(img.dimensions(), (160, 640));
    }

    #[test]
    fn fit_within_is_bounded_by_the_long_side_for_every_shape() {
        for &(w, h) in &[
            (1, 1),
            (1, 1_600_000),
            (1_600_000, 1),
            (u32::MAX, 1),
            (1, u32::MAX),
            (u32::MAX, u32::MAX),
            (639, 641),
            (160, 160),
            (161, 3),
            (0, 0),
        ] {
            for side in [1, 160, 640] {
                let (nw, nh) = fit_within(w, h, side);
                assert!(nw >= 1 && nh >= 1, "{w}x{h} → {nw}x{nh}");
                assert!(
                    nw.max(nh) <= side.max(w.max(h).min(side)),
                    "{w}x{h} → {nw}x{nh}"
                );
                assert!(nw <= w.max(1) && nh <= h.max(1), "{w}x{h} → {nw}x{nh}");
            }
        }
        assert_eq!(fit_within(1000, 500, 640), (640, 320));
        assert_eq!(fit_within(1, 1_600_000, 160), (1, 160));
    }
}
