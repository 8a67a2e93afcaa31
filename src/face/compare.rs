//! Match scores: cosine similarity mapped to 0–100 by the active recogniser's calibration, and thresholds stated as
//! target false-accept rates. Whatever the recogniser, score 60 ≈ FAR 1e-2, 70 ≈ 1e-3 and 80 ≈ 1e-4 (extrapolated).
//!
//! Calibration: `shiren face eval` on `shared/data/faces` (33 photos of 7 people, 77 genuine / 451 impostor pairs),
//! run with `SHIREN_RECOGNISER=fused`, which reports each recogniser alone and the fused cosine. The set cannot
//! resolve rates below 1/451 ≈ 2.2e-3, so each anchor is: FAR 1e-2 = the higher of a normal fit's quantile and the
//! lowest cosine that accepts at most 1 % of the impostors (they agree within 0.008), FAR 1e-3 = the normal fit's quantile, FAR 1e-4 = 3.96
//! impostor standard deviations above the impostor mean (a margin over the normal fit's 3.72, as MobileFace's first
//! calibration had). MobileFace's anchors were 0.238 / 0.311 / 0.40 before the detector's letterbox started
//! area-averaging large photos; re-measured then. Re-calibrate on a larger set before relying on 1e-4.
//!
//! | recogniser | impostor cosine mean / sd / max | genuine min | FAR 1e-2 | 1e-3 | 1e-4 |
//! |---|---|---|---|---|---|
//! | dlib ResNet | 0.817 / 0.031 / 0.888 | 0.951 | 0.888 | 0.911 | 0.940 |
//! | MobileFace | 0.016 / 0.098 / 0.294 | 0.264 | 0.243 | 0.317 | 0.404 |
//! | fused (0.7 dlib + 0.3 MobileFace) | 0.576 / 0.044 / 0.687 | 0.746 | 0.686 | 0.711 | 0.750 |
//!
//! dlib's descriptors all lie in a narrow cone (impostors at cosine ≈ 0.8), so its map starts at cosine 0.6 → 0.

/// A piecewise-linear map from cosine to score, anchored at the cosines where a recogniser reaches the target
/// false-accept rates: (cosine, score) with scores 0, 60 (FAR 1e-2), 70 (1e-3), 80 (1e-4), 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub anchors: [(f32, f32); 5],
}

impl Calibration {
    /// Cosine similarity → 0–100 (cosines at or below the first anchor give 0).
    pub fn score(&self, cosine: f32) -> f32 {
        let c = cosine.clamp(self.anchors[0].0, 1.0);
        for w in self.anchors.windows(2) {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            if c <= c1 {
                return s0 + (c - c0) / (c1 - c0) * (s1 - s0);
            }
        }
        100.0
    }

    /// The cosine that scores `score` (the inverse of [`Calibration::score`] inside the anchors).
    pub fn cosine_at(&self, score: f32) -> f32 {
        let s = score.clamp(0.0, 100.0);
        for w in self.anchors.windows(2) {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            if s <= s1 {
                return c0 + (s - s0) / (s1 - s0) * (c1 - c0);
            }
        }
        1.0
    }
}

/// MobileFace (see the module notes).
pub const MOBILEFACE: Calibration = Calibration {
    anchors: [
        (0.0, 0.0),
        (0.243, 60.0),
        (0.317, 70.0),
        (0.404, 80.0),
        (1.0, 100.0),
    ],
};

/// dlib's ResNet (see the module notes).
pub const DLIB: Calibration = Calibration {
    anchors: [
        (0.6, 0.0),
        (0.888, 60.0),
        (0.911, 70.0),
        (0.940, 80.0),
        (1.0, 100.0),
    ],
};

/// The fused cosine 0.7·dlib + 0.3·MobileFace (see the module notes).
pub const FUSED: Calibration = Calibration {
    anchors: [
        (0.3, 0.0),
        (0.686, 60.0),
        (0.711, 70.0),
        (0.750, 80.0),
        (1.0, 100.0),
    ],
};

/// Which recogniser produced an embedding; each has its own calibration, so that a score means the same
/// false-accept rate whichever is active. Config key `recogniser` (`dlib`, `mobileface`, `fused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recogniser {
    /// dlib's ResNet (CC0), 128-d, 150×150 dlib-aligned chip: the default.
    #[default]
    Dlib,
    /// MobileFace, 256-d, 112×112 ArcFace chip (no licence upstream: development only).
    MobileFace,
    /// Both: the embedding is the weighted concatenation, so its cosine is the weighted mean of the two cosines.
    Fused,
}

fn score_dlib(c: f32) -> f32 {
    DLIB.score(c)
}
fn score_mobileface(c: f32) -> f32 {
    MOBILEFACE.score(c)
}
fn score_fused(c: f32) -> f32 {
    FUSED.score(c)
}

impl Recogniser {
    /// A stable name (stored beside embeddings so that embeddings of another recogniser are never compared).
    pub fn name(self) -> &'static str {
        match self {
            Recogniser::Dlib => "dlib-resnet",
            Recogniser::MobileFace => "mobileface",
            Recogniser::Fused => "fused-dlib-mobileface",
        }
    }

    pub fn calibration(self) -> Calibration {
        match self {
            Recogniser::Dlib => DLIB,
            Recogniser::MobileFace => MOBILEFACE,
            Recogniser::Fused => FUSED,
        }
    }

    /// Cosine → 0–100 under this recogniser's calibration.
    pub fn score(self, cosine: f32) -> f32 {
        self.calibration().score(cosine)
    }

    /// The cosine at which this recogniser reaches `score`.
    pub fn cosine_at(self, score: f32) -> f32 {
        self.calibration().cosine_at(score)
    }

    /// The same as a plain function (for code that keeps a `fn(f32) -> f32`).
    pub fn score_fn(self) -> fn(f32) -> f32 {
        match self {
            Recogniser::Dlib => score_dlib,
            Recogniser::MobileFace => score_mobileface,
            Recogniser::Fused => score_fused,
        }
    }
}

/// Cosine similarity → 0–100 under the default recogniser's calibration ([`Recogniser::Dlib`]). Code that may run
/// another recogniser uses `engine.recogniser().score(cosine)`.
pub fn score(cosine: f32) -> f32 {
    Recogniser::default().score(cosine)
}

/// A match threshold named by its target false-accept rate (the scene settings' vocabulary).
pub use crate::domain::scene::TargetFar;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_map_to_their_scores_and_the_map_is_monotonic() {
        for r in [Recogniser::Dlib, Recogniser::MobileFace, Recogniser::Fused] {
            let cal = r.calibration();
            assert_eq!(r.score(-0.5), 0.0);
            for (c, s) in cal.anchors {
                assert!((r.score(c) - s).abs() < 1e-3, "{r:?} {c}");
                assert!(((r.score_fn())(c) - s).abs() < 1e-3, "{r:?} {c}");
            }
            let mut last = -1.0;
            for i in 0..=100 {
                let s = r.score(i as f32 / 100.0);
                assert!(s >= last);
                last = s;
            }
        }
        assert_eq!(score(0.911), Recogniser::Dlib.score(0.911));
        for r in [Recogniser::Dlib, Recogniser::MobileFace, Recogniser::Fused] {
            for s in [0.0, 35.0, 60.0, 65.5, 74.4, 80.0, 99.0] {
                assert!((r.score(r.cosine_at(s)) - s).abs() < 1e-3, "{r:?} {s}");
            }
        }
        assert!((MOBILEFACE.score(0.317) - 70.0).abs() < 1e-3);
        assert_eq!(TargetFar::parse("1e-3").unwrap().score_threshold(), 70.0);
        assert!(TargetFar::parse("0.5").is_none());
    }
}
