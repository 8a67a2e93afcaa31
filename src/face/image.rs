//! Image decoding with limits: JPEG, PNG and WebP, EXIF orientation applied, decompression bombs refused.
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Limits on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the image is larger than {0} bytes")]
    TooManyBytes(usize),
    #[error("the image has {0}x{1} pixels, more than the {2} allowed")]
    TooManyPixels(u32, u32, u64),
    #[error("not a JPEG, PNG or WebP image")]
    Format,
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
}

/// Decodes to RGB8 with the EXIF orientation applied. The pixel count is checked from the header, before decoding.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes(limits.max_bytes));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png | image::ImageFormat::WebP)
    ) {
        return Err(ImageError::Format);
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(ImageError::TooManyPixels(w, h, limits.max_pixels));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    img.apply_orientation(orientation);
    // No copy when the decoder already produced 8-bit RGB (the usual JPEG case).
    Ok(img.into_rgb8())
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

    #[test]
    fn decodes_and_refuses_bombs_and_junk() {
        let ok = decode(&png(4, 3), DecodeLimits::default()).unwrap();
        assert_eq!(ok.dimensions(), (4, 3));
        let small = DecodeLimits {
            max_bytes: 1 << 20,
            max_pixels: 100,
        };
        assert_eq!(
            decode(&png(20, 20), small),
            Err(ImageError::TooManyPixels(20, 20, 100))
        );
        assert_eq!(
            decode(
                &png(4, 3),
                DecodeLimits {
                    max_bytes: 10,
                    max_pixels: 100
                }
            ),
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
}
