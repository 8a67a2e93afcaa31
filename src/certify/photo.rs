//! The checks of a single photo (`LivenessFaceVerify`, product LR_FR_MIN): a pure function of one observation.
//! Every check is recorded with its score and threshold, in the style of [`super::decision`]; the first failed
//! one is the reason.
use crate::domain::fail::{Check, FailReason, Recorder};
use crate::face::liveness::Observation;

/// The verdict of `LivenessFaceVerify` on one photo.
#[derive(Debug, Clone)]
pub struct PhotoVerdict {
    pub checks: Vec<Check>,
    pub fail_reason: Option<FailReason>,
}

/// Largest head turn (yaw, in the measures' units) and smallest eye opening of a usable single photo.
const MAX_ABS_YAW: f32 = 0.35;
const MIN_EAR: f32 = 0.15;

/// What one photo can show: exactly one face, big enough, facing the camera, eyes open. A single photo cannot prove
/// liveness (a printed or replayed photo of a face passes these checks); the docs say so and point to LR_FR.
pub fn single_photo_liveness(o: &Observation, min_iod_px: f32) -> PhotoVerdict {
    let mut rec = Recorder::new();
    rec.record(
        Check::exact("one_face", o.faces == 1, Some(o.faces as f32), Some(1.0)),
        if o.faces > 1 {
            FailReason::MultipleFaces
        } else {
            FailReason::NoFace
        },
    );
    let m = o.measures;
    rec.record(
        Check::exact(
            "face_size",
            m.is_some_and(|m| m.iod >= min_iod_px),
            m.map(|m| m.iod),
            Some(min_iod_px),
        ),
        FailReason::PoorQuality,
    );
    rec.record(
        Check::exact(
            "frontal",
            m.is_some_and(|m| m.yaw.abs() <= MAX_ABS_YAW),
            m.map(|m| m.yaw.abs()),
            Some(MAX_ABS_YAW),
        ),
        FailReason::PoorQuality,
    );
    rec.record(
        Check::exact(
            "eyes_open",
            m.is_some_and(|m| m.ear >= MIN_EAR),
            m.map(|m| m.ear),
            Some(MIN_EAR),
        ),
        FailReason::PoorQuality,
    );
    let (checks, fail_reason) = rec.finish();
    PhotoVerdict {
        checks,
        fail_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_photo_needs_one_big_frontal_face_with_open_eyes() {
        use crate::face::quality::Measures;
        let m = Measures {
            iod: 60.0,
            face_length: 120.0,
            ear: 0.3,
            eye_open_norm: 0.2,
            mar: 0.05,
            yaw: 0.05,
            pitch: 0.5,
            roll: 0.0,
        };
        let o = Observation {
            faces: 1,
            measures: Some(m),
            ..Default::default()
        };
        assert_eq!(single_photo_liveness(&o, 28.0).fail_reason, None);
        let mut two = o.clone();
        two.faces = 2;
        assert_eq!(
            single_photo_liveness(&two, 28.0).fail_reason,
            Some(FailReason::MultipleFaces)
        );
        let mut small = o.clone();
        small.measures = Some(Measures { iod: 10.0, ..m });
        assert_eq!(
            single_photo_liveness(&small, 28.0).fail_reason,
            Some(FailReason::PoorQuality)
        );
        let mut turned = o.clone();
        turned.measures = Some(Measures { yaw: 0.6, ..m });
        assert_eq!(
            single_photo_liveness(&turned, 28.0).fail_reason,
            Some(FailReason::PoorQuality)
        );
        let mut closed = o;
        closed.measures = Some(Measures { ear: 0.05, ..m });
        assert_eq!(
            single_photo_liveness(&closed, 28.0).fail_reason,
            Some(FailReason::PoorQuality)
        );
    }
}
