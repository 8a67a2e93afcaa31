//! The merchant's reference picture (`face_contrast_picture`, the cloud API's `FaceContrastPicture…`): checked and
//! turned into an embedding once, when the verification is created, under the same bound as every other analysis.
//! Only the embedding is stored; every attempt reads that record instead of decoding the picture again.
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::error::CertifyError;
use crate::face::engine::FaceEngine;
use crate::face::image::{DecodeLimits, ImageError};
use crate::face::work::{WorkError, WorkPool};
use crate::storage::ObjectStore;

/// What is kept of a merchant's picture: the recogniser that made the embedding, and the embedding of its one
/// face (none when it shows no face or several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReference {
    pub model: String,
    pub embedding: Option<Vec<f32>>,
}

/// Why a picture could not be turned into a reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("the picture cannot be used: {0}")]
    Picture(#[from] ImageError),
    #[error(transparent)]
    Work(#[from] WorkError),
    #[error("the face engine failed: {0}")]
    Engine(String),
    #[error("the reference could not be stored: {0}")]
    Store(String),
}

/// Turns pictures into stored references.
#[derive(Clone)]
pub struct PictureEncoder {
    engine: Arc<dyn FaceEngine>,
    pool: WorkPool,
}

/// The object key of a verification's reference record.
pub fn key(certify_id: &str) -> String {
    format!("contrast/{certify_id}")
}

impl PictureEncoder {
    pub fn new(engine: Arc<dyn FaceEngine>, pool: WorkPool) -> PictureEncoder {
        PictureEncoder { engine, pool }
    }

    /// Decodes the picture through the gate (at most `max_bytes`) and embeds its face; also says how many faces
    /// it shows.
    pub async fn encode(
        &self,
        picture: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Encoded, ReferenceError> {
        let engine = self.engine.clone();
        self.pool
            .run(move || {
                let img = crate::face::image::decode(
                    &picture,
                    DecodeLimits::PICTURE.with_max_bytes(max_bytes),
                )?;
                let mut faces = engine
                    .analyze(&img)
                    .map_err(|e| ReferenceError::Engine(e.to_string()))?;
                Ok(Encoded {
                    faces: faces.len(),
                    record: StoredReference {
                        model: engine.recogniser_id(),
                        embedding: (faces.len() == 1).then(|| faces.remove(0).embedding),
                    },
                })
            })
            .await?
    }
}

/// A picture turned into a reference.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub record: StoredReference,
    /// Faces found in the picture.
    pub faces: usize,
}

/// Stores a record under [`key`]; returns the key.
pub async fn store_record(
    store: &ObjectStore,
    certify_id: &str,
    record: &StoredReference,
) -> Result<String, ReferenceError> {
    let bytes = serde_json::to_vec(record).map_err(|e| ReferenceError::Store(e.to_string()))?;
    let key = key(certify_id);
    store
        .put(&key, &bytes)
        .await
        .map_err(|e| ReferenceError::Store(e.to_string()))?;
    Ok(key)
}

/// Reads a stored record. Verifications created before records existed stored the picture itself: `None` then.
pub fn parse(bytes: &[u8]) -> Option<StoredReference> {
    serde_json::from_slice(bytes).ok()
}

/// What a merchant is told about a contrast picture the decode gate refused.
pub fn picture_error(e: &ImageError) -> CertifyError {
    if e.is_size() {
        CertifyError::InvalidPicture(
            "face_contrast_picture must be an 8-bit image of 32 to 8192 pixels a side, at most 4:1",
        )
    } else {
        CertifyError::InvalidPicture("face_contrast_picture cannot be decoded")
    }
}

/// Checks a contrast picture's shape from its header alone, so that nothing is decoded for a picture that could
/// never be used.
pub fn check_shape(picture: &[u8], max_bytes: usize) -> Result<(), CertifyError> {
    crate::face::image::inspect(picture, DecodeLimits::PICTURE.with_max_bytes(max_bytes))
        .map(|_| ())
        .map_err(|e| picture_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_pictures_are_not_records() {
        let r = StoredReference {
            model: "dlib".into(),
            embedding: Some(vec![0.5, -0.25]),
        };
        assert_eq!(parse(&serde_json::to_vec(&r).unwrap()), Some(r));
        let none = StoredReference {
            model: "dlib".into(),
            embedding: None,
        };
        assert_eq!(parse(&serde_json::to_vec(&none).unwrap()), Some(none));
        assert_eq!(parse(b"\xFF\xD8\xFF\xE0 jpeg"), None);
        assert_eq!(parse(b"\x89PNG\r\n\x1a\n"), None);
    }

    #[test]
    fn a_picture_whose_header_is_out_of_shape_is_refused_before_decoding() {
        // A header claiming 1 × 1,600,000 pixels: refused from the header alone (the hardening issue's fault 1).
        let thin = [
            &b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"[..],
            &1u32.to_be_bytes()[..],
            &1_600_000u32.to_be_bytes()[..],
            &[8, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ]
        .concat();
        assert!(matches!(
            check_shape(&thin, 1 << 20),
            Err(CertifyError::InvalidPicture(_))
        ));
    }
}
