//! The cloud API's business codes and result vocabulary, free of I/O: the `Code` of a refused request, the
//! `SubCode` of a verdict, and the `MaterialInfo` document.
use serde_json::{json, Value};

use crate::domain::fail;
use crate::net::fetch::FetchError;

/// A refused request: `Code` (HTTP 200) and a message for the merchant's developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError {
    pub code: &'static str,
    pub message: String,
}

impl CloudError {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> CloudError {
        CloudError {
            code,
            message: message.into(),
        }
    }
    /// 400: a required parameter is empty.
    pub fn missing(name: &str) -> CloudError {
        CloudError::new("400", format!("{name} is required"))
    }
    /// 401: a parameter is invalid.
    pub fn invalid(message: impl Into<String>) -> CloudError {
        CloudError::new("401", message)
    }
    /// 404: the scene is not one of the app's.
    pub fn scene(scene_id: &str) -> CloudError {
        CloudError::new(
            "404",
            format!("SceneId {scene_id} is not a scene of this app (create it with `shiren scene create`)"),
        )
    }
    /// 405: the person is younger than 14.
    pub fn too_young() -> CloudError {
        CloudError::new("405", "the person must be at least 14 years old")
    }
    /// 406: no such verification for this app.
    pub fn no_certify_id() -> CloudError {
        CloudError::new("406", "CertifyId names no verification of this app")
    }
    /// 418: the ID number was named, or failed, too often today (a limit per ID number).
    pub fn too_many_today(refusal: &crate::domain::limit::Refusal) -> CloudError {
        CloudError::new(
            "418",
            format!("too many verifications of this identity today: {refusal}"),
        )
    }
    /// 419: a picture (or video) that cannot be used.
    pub fn unusable(message: impl Into<String>) -> CloudError {
        CloudError::new("419", message)
    }
    /// 420: more than one picture source.
    pub fn many_sources(which: &str, names: &[&str]) -> CloudError {
        CloudError::new(
            "420",
            format!("{which}: give exactly one of {}", names.join(", ")),
        )
    }
    /// 421: a picture over the size limit.
    pub fn too_large(message: impl Into<String>) -> CloudError {
        CloudError::new("421", message)
    }
    /// 422: a picture download that took too long.
    pub fn too_slow(message: impl Into<String>) -> CloudError {
        CloudError::new("422", message)
    }
    /// 423: the referenced verification did not pass.
    pub fn not_passed() -> CloudError {
        CloudError::new(
            "423",
            "the CertifyId given as a picture source has not passed",
        )
    }
    /// 424: no verdict yet.
    pub fn not_finished(message: impl Into<String>) -> CloudError {
        CloudError::new("424", message)
    }
    /// 500: too much material is being analysed at once (the bound on concurrent work); retry shortly.
    pub fn busy() -> CloudError {
        CloudError::new(
            "500",
            "the server is busy analysing other requests; retry in a few seconds",
        )
    }
    /// 500: the server failed; the cause is logged, not shown.
    pub fn internal() -> CloudError {
        CloudError::new("500", "internal error; retry later")
    }
}

/// The `SubCode` of a stored verdict (with `Passed`): see [`fail::FailReason::cloud_sub_code`]; a verdict without a
/// stored reason (a legacy failure) is 205.
pub fn sub_code(passed: bool, fail_reason: Option<&str>) -> &'static str {
    fail::stored_cloud_sub_code(passed, fail_reason)
}

/// `"T"` / `"F"`.
pub fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

/// The `MaterialInfo` document (sent as a JSON string): whether an attack was suspected, the match score when one
/// was computed, and shiren's own reason code.
pub fn material_info(
    fail_reason: Option<&str>,
    verify_score: Option<f64>,
    picture_url: Option<&str>,
) -> String {
    let mut front = serde_json::Map::new();
    if let Some(s) = verify_score {
        front.insert("verifyScore".into(), json!(round2(s)));
    }
    if let Some(u) = picture_url {
        front.insert("pictureUrl".into(), json!(u));
    }
    let mut m = serde_json::Map::new();
    m.insert(
        "faceAttack".into(),
        json!(tf(fail::stored_face_attack(fail_reason))),
    );
    m.insert("facialPictureFront".into(), Value::Object(front));
    if let Some(r) = fail_reason {
        m.insert("failReason".into(), json!(r));
    }
    Value::Object(m).to_string()
}

/// Scores are reported with two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The cloud API's `Code` for a picture or video URL that could not be used (the one mapping; the actions answer
/// with it). A URL refused before any connection (malformed, a scheme or host not allowed, a private address) is
/// the request's fault: `401`, invalid parameter, as a bad `CallbackUrl` is. A download that was tried: `421` too
/// large, `422` too slow, `419` (supplied picture unusable) for the rest.
pub fn fetch_code(e: &FetchError) -> &'static str {
    match e {
        FetchError::BadUrl(_) | FetchError::NotAllowed(_) | FetchError::PrivateAddress { .. } => {
            "401"
        }
        FetchError::TooLarge(_) => "421",
        FetchError::Timeout(_) => "422",
        FetchError::Unreachable { .. }
        | FetchError::HttpStatus { .. }
        | FetchError::TooManyRedirects(_)
        | FetchError::Empty => "419",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_codes() {
        assert_eq!(fetch_code(&FetchError::TooLarge(1)), "421");
        assert_eq!(fetch_code(&FetchError::Timeout(1)), "422");
        assert_eq!(
            fetch_code(&FetchError::PrivateAddress { host: "x".into() }),
            "401"
        );
        assert_eq!(fetch_code(&FetchError::Empty), "419");
    }
    use crate::domain::fail::FailReason::Surroundings;

    #[test]
    fn material_info_is_a_json_document_with_the_score() {
        let m: Value =
            serde_json::from_str(&material_info(None, Some(87.123), Some("https://x/p"))).unwrap();
        assert_eq!(m["faceAttack"], "F");
        assert_eq!(m["facialPictureFront"]["verifyScore"], 87.12);
        assert_eq!(m["facialPictureFront"]["pictureUrl"], "https://x/p");
        let m: Value =
            serde_json::from_str(&material_info(Some(Surroundings.code()), None, None)).unwrap();
        assert_eq!(m["faceAttack"], "T");
        assert_eq!(m["failReason"], Surroundings.code());
        assert!(m["facialPictureFront"].get("verifyScore").is_none());
    }
}
