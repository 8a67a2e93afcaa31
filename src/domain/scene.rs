//! Scenes (认证场景): a merchant-defined id grouping verifications, with its product and thresholds. The values,
//! and the checks every surface (CLI, console, admin API, the default scene) applies before a scene is stored.
use std::str::FromStr;

use super::product::Product;

/// The name of the scene created for an app on first use.
pub const DEFAULT_SCENE_NAME: &str = "default";

/// Liveness strictness of a scene. `standard`: the challenge is an open mouth plus one or two of blink and head
/// turns, each held for the server's frame count. `strict`: always an open mouth plus two of them (three actions,
/// so a replayed or puppeted video must match a longer random sequence), and mouth and turns must hold one frame
/// longer.
pub const LIVENESS_LEVELS: &[&str] = &["standard", "strict"];

/// The word a setting takes to return to the server's value (an empty form field means the same).
pub const SERVER_DEFAULT: &str = "default";

/// A match threshold named by its target false-accept rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFar {
    /// 1 in 100: score 60.
    E2,
    /// 1 in 1,000: score 70 (the default).
    E3,
    /// 1 in 10,000: score 80 (extrapolated; see `face::compare`).
    E4,
}

impl TargetFar {
    /// The match score (0–100) a face must reach at this false-accept rate.
    pub fn score_threshold(self) -> f32 {
        match self {
            TargetFar::E2 => 60.0,
            TargetFar::E3 => 70.0,
            TargetFar::E4 => 80.0,
        }
    }

    /// `1e-2`, `1e-3` or `1e-4`.
    pub fn parse(s: &str) -> Option<TargetFar> {
        match s {
            "1e-2" => Some(TargetFar::E2),
            "1e-3" => Some(TargetFar::E3),
            "1e-4" => Some(TargetFar::E4),
            _ => None,
        }
    }
}

/// A stored scene. Unset thresholds fall back to the server's `[decision]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    pub scene_id: i64,
    pub app_id: String,
    pub name: String,
    /// Product code of its verifications (`FACE`, …).
    pub product: String,
    /// Target false-accept rate of the face match (`1e-2`, `1e-3`, `1e-4`).
    pub match_far: Option<String>,
    pub max_attempts: Option<u32>,
    /// Days a kept face image stays.
    pub retention_days: Option<u32>,
    /// Whether face images may be kept at all (the merchant's `face_reserve_strategy` decides within that).
    pub keep_photos: bool,
    /// Liveness strictness: `standard` or `strict` (see [`LIVENESS_LEVELS`]); unset is standard.
    pub liveness: Option<String>,
    /// The app's scene for requests that name none (the Alipay-style gateway).
    pub is_default: bool,
    pub created_at: i64,
}

impl Scene {
    /// Its thresholds.
    pub fn settings(&self) -> SceneSettings {
        SceneSettings {
            match_far: self.match_far.clone(),
            max_attempts: self.max_attempts,
            retention_days: self.retention_days,
            liveness: self.liveness.clone(),
        }
    }
}

/// Thresholds of a scene, checked before they are stored; unset is the server's setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneSettings {
    pub match_far: Option<String>,
    pub max_attempts: Option<u32>,
    pub retention_days: Option<u32>,
    pub liveness: Option<String>,
}

impl SceneSettings {
    /// Names the first invalid value.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(f) = &self.match_far {
            if TargetFar::parse(f).is_none() {
                return Err(format!("match FAR must be 1e-2, 1e-3 or 1e-4, not {f:?}"));
            }
        }
        if let Some(n) = self.max_attempts {
            if !(1..=5).contains(&n) {
                return Err(format!("max attempts must be 1 to 5, not {n}"));
            }
        }
        if let Some(d) = self.retention_days {
            if d > 3650 {
                return Err(format!("retention must be at most 3650 days, not {d}"));
            }
        }
        if let Some(l) = &self.liveness {
            if !LIVENESS_LEVELS.contains(&l.as_str()) {
                return Err(format!("liveness must be standard or strict, not {l:?}"));
            }
        }
        Ok(())
    }

    /// The target false-accept rate of the match, when the scene sets a valid one.
    pub fn target_far(&self) -> Option<TargetFar> {
        self.match_far.as_deref().and_then(TargetFar::parse)
    }
}

/// A scene to create.
#[derive(Clone, Debug)]
pub struct NewScene {
    /// The id to use; the next free one when unset.
    pub scene_id: Option<i64>,
    pub app_id: String,
    pub name: String,
    pub product: String,
    pub settings: SceneSettings,
    pub keep_photos: bool,
    pub is_default: bool,
}

impl NewScene {
    /// Names the first invalid field: the name, a threshold, the product, the id.
    pub fn validate(&self) -> Result<(), String> {
        check_name(&self.name)?;
        self.settings.validate()?;
        if Product::parse(&self.product).is_none() {
            return Err(format!(
                "unknown product {:?}; one of {}",
                self.product,
                Product::codes().join(", ")
            ));
        }
        if matches!(self.scene_id, Some(id) if id <= 0) {
            return Err("the scene id must be a positive number".into());
        }
        Ok(())
    }
}

/// Changes to a scene; `None` leaves a field as it is (`Some(None)` returns a threshold to the server's setting).
#[derive(Clone, Debug, Default)]
pub struct SceneChanges {
    pub name: Option<String>,
    pub match_far: Option<Option<String>>,
    pub max_attempts: Option<Option<u32>>,
    pub retention_days: Option<Option<u32>>,
    pub liveness: Option<Option<String>>,
    pub keep_photos: Option<bool>,
}

impl SceneChanges {
    /// The thresholds of `current` after these changes, checked (and the new name, when there is one).
    pub fn settings_after(&self, current: &SceneSettings) -> Result<SceneSettings, String> {
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        let settings = SceneSettings {
            match_far: self
                .match_far
                .clone()
                .unwrap_or_else(|| current.match_far.clone()),
            max_attempts: self.max_attempts.unwrap_or(current.max_attempts),
            retention_days: self.retention_days.unwrap_or(current.retention_days),
            liveness: self
                .liveness
                .clone()
                .unwrap_or_else(|| current.liveness.clone()),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// A scene's name: 1-128 characters, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err("the name must be 1-128 characters".into());
    }
    Ok(())
}

/// A product code as operators type it: blanks trimmed, upper case.
pub fn normalize_product(product: &str) -> String {
    product.trim().to_ascii_uppercase()
}

/// A setting as an operator typed it: empty or [`SERVER_DEFAULT`] is the server's setting (`None`), anything else
/// must parse as `T`; the error names the setting as `what`.
pub fn parse_setting<T: FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
    match text.trim() {
        "" | SERVER_DEFAULT => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{what}: {v:?} is not a valid value")),
    }
}

/// The settings as an operator typed them (each `None` when not given at all).
#[derive(Clone, Debug, Default)]
pub struct SettingsText<'a> {
    pub match_far: Option<&'a str>,
    pub max_attempts: Option<&'a str>,
    pub retention_days: Option<&'a str>,
    pub liveness: Option<&'a str>,
    pub keep_photos: Option<&'a str>,
}

/// What the names of the settings are in the messages of one surface (`--match-far` on the command line, `match
/// FAR` in the console).
pub struct SettingNames {
    pub match_far: &'static str,
    pub max_attempts: &'static str,
    pub retention_days: &'static str,
    pub liveness: &'static str,
    pub keep_photos: &'static str,
}

impl SettingsText<'_> {
    /// The changes these texts ask for: a setting not given is left alone, an empty one or `default` returns to
    /// the server's setting; `keep_photos` takes the answers of [`super::yes_no`].
    pub fn changes(&self, names: &SettingNames) -> Result<SceneChanges, String> {
        fn given<T: FromStr>(t: Option<&str>, what: &str) -> Result<Option<Option<T>>, String> {
            t.map(|t| parse_setting(t, what)).transpose()
        }
        let keep_photos = match self.keep_photos.map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(super::yes_no::parse(v).ok_or_else(|| {
                format!(
                    "{} must be {}, not {v:?}",
                    names.keep_photos,
                    super::yes_no::ACCEPTED
                )
            })?),
        };
        Ok(SceneChanges {
            name: None,
            match_far: given(self.match_far, names.match_far)?,
            max_attempts: given(self.max_attempts, names.max_attempts)?,
            retention_days: given(self.retention_days, names.retention_days)?,
            liveness: given(self.liveness, names.liveness)?,
            keep_photos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: SettingNames = SettingNames {
        match_far: "--match-far",
        max_attempts: "--max-attempts",
        retention_days: "--retention-days",
        liveness: "--liveness",
        keep_photos: "--keep-photos",
    };

    fn new_scene() -> NewScene {
        NewScene {
            scene_id: None,
            app_id: "a".into(),
            name: "shop".into(),
            product: "FACE".into(),
            settings: SceneSettings::default(),
            keep_photos: true,
            is_default: false,
        }
    }

    #[test]
    fn far_parses_the_three_rates() {
        assert_eq!(TargetFar::parse("1e-3").unwrap().score_threshold(), 70.0);
        assert_eq!(TargetFar::parse("1e-2"), Some(TargetFar::E2));
        assert_eq!(TargetFar::parse("1e-4"), Some(TargetFar::E4));
        assert!(TargetFar::parse("0.5").is_none());
    }

    #[test]
    fn settings_name_the_first_bad_value() {
        assert!(SceneSettings::default().validate().is_ok());
        let bad = |s: SceneSettings| s.validate().unwrap_err();
        assert!(bad(SceneSettings {
            match_far: Some("0.5".into()),
            ..Default::default()
        })
        .contains("1e-2, 1e-3 or 1e-4"));
        assert!(bad(SceneSettings {
            max_attempts: Some(9),
            ..Default::default()
        })
        .contains("1 to 5"));
        assert!(bad(SceneSettings {
            retention_days: Some(4000),
            ..Default::default()
        })
        .contains("3650"));
        assert!(bad(SceneSettings {
            liveness: Some("lax".into()),
            ..Default::default()
        })
        .contains("standard or strict"));
    }

    #[test]
    fn new_scenes_check_name_product_and_id() {
        assert!(new_scene().validate().is_ok());
        let mut s = new_scene();
        s.name = " ".into();
        assert!(s.validate().unwrap_err().contains("1-128"));
        let mut s = new_scene();
        s.product = "NOPE".into();
        assert!(s.validate().unwrap_err().contains("unknown product"));
        let mut s = new_scene();
        s.scene_id = Some(0);
        assert!(s.validate().unwrap_err().contains("positive"));
        assert_eq!(normalize_product(" face "), "FACE");
    }

    #[test]
    fn changes_merge_over_the_current_settings() {
        let current = SceneSettings {
            match_far: Some("1e-4".into()),
            max_attempts: Some(3),
            retention_days: None,
            liveness: None,
        };
        let c = SceneChanges {
            match_far: Some(None),
            retention_days: Some(Some(7)),
            ..Default::default()
        };
        assert_eq!(
            c.settings_after(&current).unwrap(),
            SceneSettings {
                match_far: None,
                max_attempts: Some(3),
                retention_days: Some(7),
                liveness: None
            }
        );
        let c = SceneChanges {
            max_attempts: Some(Some(0)),
            ..Default::default()
        };
        assert!(c.settings_after(&current).is_err());
        let c = SceneChanges {
            name: Some(String::new()),
            ..Default::default()
        };
        assert!(c.settings_after(&current).is_err());
    }

    #[test]
    fn typed_settings_leave_clear_or_set() {
        let text = SettingsText {
            match_far: Some("default"),
            max_attempts: Some("2"),
            retention_days: Some(""),
            liveness: None,
            keep_photos: Some("No"),
        };
        let c = text.changes(&NAMES).unwrap();
        assert_eq!(c.match_far, Some(None));
        assert_eq!(c.max_attempts, Some(Some(2)));
        assert_eq!(c.retention_days, Some(None));
        assert_eq!(c.liveness, None);
        assert_eq!(c.keep_photos, Some(false));
        let e = SettingsText {
            max_attempts: Some("many"),
            ..Default::default()
        }
        .changes(&NAMES)
        .unwrap_err();
        assert_eq!(e, "--max-attempts: \"many\" is not a valid value");
        let e = SettingsText {
            keep_photos: Some("maybe"),
            ..Default::default()
        }
        .changes(&NAMES)
        .unwrap_err();
        assert_eq!(e, "--keep-photos must be yes or no, not \"maybe\"");
    }
}
