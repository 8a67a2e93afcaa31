//! Reading and checking the cloud API's request parameters, free of I/O. Every refusal names the parameter.
use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::actions::Params;
use super::codes::CloudError;
use crate::domain::idcard;

/// A parameter that is present and not blank (trimmed).
pub fn optional<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A parameter that must be present (400 otherwise).
pub fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, CloudError> {
    optional(params, name).ok_or_else(|| CloudError::missing(name))
}

/// `OuterOrderNo`: the merchant's unique id of the request, up to 64 visible ASCII characters.
pub fn outer_order_no(params: &Params) -> Result<&str, CloudError> {
    let o = required(params, "OuterOrderNo")?;
    if o.len() > 64 || !o.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CloudError::invalid(
            "OuterOrderNo must be 1 to 64 visible ASCII characters",
        ));
    }
    Ok(o)
}

/// `Model`, when given, must be one of the documented liveness types (the hosted page always runs its own
/// challenge of actions and colour flashes, which covers them all).
pub fn check_model(params: &Params) -> Result<(), CloudError> {
    match optional(params, "Model") {
        None
        | Some(
            "LIVENESS" | "PHOTINUS_LIVENESS" | "MULTI_ACTION" | "MOVE_ACTION" | "MOVE_PHOTINUS",
        ) => Ok(()),
        Some(m) => Err(CloudError::invalid(format!("Model {m} is not known"))),
    }
}

/// `MetaInfo`, when given, must be a JSON object (the client SDKs produce it).
pub fn check_meta_info(params: &Params) -> Result<(), CloudError> {
    match optional(params, "MetaInfo") {
        None => Ok(()),
        Some(m) => match serde_json::from_str::<Value>(m) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err(CloudError::invalid("MetaInfo must be a JSON object")),
        },
    }
}

/// `CallbackUrl`: an absolute http(s) URL without credentials (where it may point is checked again on delivery).
pub fn check_callback_url(url: &str) -> Result<(), CloudError> {
    let ok = url.len() <= 1024
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
        && url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .is_some_and(|host| !host.is_empty() && !host.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(CloudError::invalid(
            "CallbackUrl must be an absolute http(s) URL of at most 1024 characters",
        ))
    }
}

/// The named person of ID_PRO and ID_MIN.
#[derive(Clone)]
pub struct CertSubject {
    pub cert_type: String,
    pub name: String,
    pub number: String,
}

impl std::fmt::Debug for CertSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSubject")
            .field("cert_type", &self.cert_type)
            .finish_non_exhaustive()
    }
}

impl CertSubject {
    /// `CertType` (only `IDENTITY_CARD`), `CertName`, `CertNo` (GB 11643, at least 14 years old on `today`).
    pub fn parse(params: &Params, today: NaiveDate) -> Result<CertSubject, CloudError> {
        if optional(params, "EncryptType").is_some() {
            return Err(CloudError::invalid(
                "EncryptType is not supported: send CertName and CertNo as they are (over TLS)",
            ));
        }
        let cert_type = optional(params, "CertType").unwrap_or("IDENTITY_CARD");
        if cert_type != "IDENTITY_CARD" {
            return Err(CloudError::invalid(format!(
                "CertType {cert_type} is not supported; use IDENTITY_CARD"
            )));
        }
        let name = required(params, "CertName")?;
        if name.chars().count() > 64 {
            return Err(CloudError::invalid("CertName is longer than 64 characters"));
        }
        let number = idcard::validate(required(params, "CertNo")?, today)
            .map_err(|e| CloudError::invalid(format!("CertNo is not a valid ID number: {e}")))?;
        if age_on(&number, today).is_some_and(|a| a < 14) {
            return Err(CloudError::too_young());
        }
        Ok(CertSubject {
            cert_type: cert_type.to_string(),
            name: name.to_string(),
            number,
        })
    }
}

/// Whole years between the birth date in a validated ID number and `today`.
fn age_on(number: &str, today: NaiveDate) -> Option<i32> {
    let birth = NaiveDate::parse_from_str(number.get(6..14)?, "%Y%m%d").ok()?;
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    Some(age)
}

/// Where a picture comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureSource {
    /// `…FaceContrastPicture`: base64 in the request.
    Base64 { name: String, value: String },
    /// `…FaceContrastPictureUrl`: fetched under the server's URL policy.
    Url { name: String, value: String },
    /// `…CertifyId`: the kept face image of an earlier passed verification of the same app.
    CertifyId { name: String, value: String },
}

/// Base64 material from parameter `name`: 419 when it is not base64, 421 when it decodes to more than `limit` bytes
/// (`what` names the limit in the message).
pub fn decode_base64(
    name: &str,
    value: &str,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, CloudError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim().as_bytes())
        .map_err(|_| CloudError::unusable(format!("{name} is not valid base64")))?;
    if bytes.len() > limit {
        return Err(CloudError::too_large(format!(
            "{name} is {} bytes; {what} is {limit}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The picture source parameters, by suffix.
pub const SOURCE_NAMES: &[&str] = &["FaceContrastPicture", "FaceContrastPictureUrl", "CertifyId"];
/// The video source parameters of ID_MIN_VIDEO: a URL (`FaceContrastFile`, as the SDKs' upload helpers fill it, or
/// `FaceContrastPictureUrl`) or the video itself in base64 (`FaceContrastPicture`).
pub const VIDEO_SOURCE_NAMES: &[&str] = &[
    "FaceContrastPicture",
    "FaceContrastPictureUrl",
    "FaceContrastFile",
];
/// Object-storage sources, which this server cannot read.
const OSS_NAMES: &[&str] = &["OssBucketName", "OssObjectName"];

/// The one picture source under `prefix` (`""`, `Source`, `Target`), if any; 420 when there are several, 401 for
/// object-storage sources.
pub fn picture_source(
    params: &Params,
    prefix: &str,
    names: &[&str],
) -> Result<Option<PictureSource>, CloudError> {
    let given: Vec<(String, &str)> = names
        .iter()
        .map(|n| format!("{prefix}{n}"))
        .filter_map(|n| optional(params, &n).map(|v| (n, v)))
        .collect();
    if OSS_NAMES
        .iter()
        .any(|n| optional(params, &format!("{prefix}{n}")).is_some())
    {
        return Err(CloudError::invalid(format!(
            "{prefix}OssBucketName/{prefix}OssObjectName are not supported by this server: send \
             {prefix}FaceContrastPicture (base64) or {prefix}FaceContrastPictureUrl"
        )));
    }
    if given.len() > 1 {
        let all: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        return Err(CloudError::many_sources(
            if prefix.is_empty() {
                "face picture"
            } else {
                prefix
            },
            &all,
        ));
    }
    Ok(given.into_iter().next().map(|(name, value)| {
        let value = value.to_string();
        if name.ends_with("FaceContrastPicture") {
            PictureSource::Base64 { name, value }
        } else if name.ends_with("CertifyId") {
            PictureSource::CertifyId { name, value }
        } else {
            PictureSource::Url { name, value }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    #[test]
    fn required_and_optional_treat_blank_as_absent() {
        let p = params(&[("A", " x "), ("B", "  ")]);
        assert_eq!(optional(&p, "A"), Some("x"));
        assert_eq!(optional(&p, "B"), None);
        assert_eq!(required(&p, "B").unwrap_err().code, "400");
        assert!(required(&p, "B").unwrap_err().message.contains('B'));
    }

    #[test]
    fn order_numbers_are_short_visible_ascii() {
        assert!(outer_order_no(&params(&[("OuterOrderNo", "abc-123")])).is_ok());
        assert_eq!(
            outer_order_no(&params(&[("OuterOrderNo", "a b")]))
                .unwrap_err()
                .code,
            "401"
        );
        assert_eq!(
            outer_order_no(&params(&[("OuterOrderNo", &"x".repeat(65))]))
                .unwrap_err()
                .code,
            "401"
        );
        assert_eq!(outer_order_no(&params(&[])).unwrap_err().code, "400");
    }

    #[test]
    fn subjects_need_a_valid_number_of_an_adult_enough_person() {
        let ok = idcard::with_check_char("11010519900307123");
        let s = CertSubject::parse(
            &params(&[("CertName", "张三"), ("CertNo", &ok.to_lowercase())]),
            today(),
        )
        .unwrap();
        assert_eq!(s.number, ok);
        assert_eq!(s.cert_type, "IDENTITY_CARD");
        let bad = format!("{}0", &ok[..17]);
        let bad = if bad == ok {
            format!("{}1", &ok[..17])
        } else {
            bad
        };
        let e = CertSubject::parse(&params(&[("CertName", "张三"), ("CertNo", &bad)]), today())
            .unwrap_err();
        assert_eq!(e.code, "401");
        assert!(!e.message.contains(&bad), "the number is not echoed");
        let child = idcard::with_check_char("11010520150307123");
        assert_eq!(
            CertSubject::parse(
                &params(&[("CertName", "张三"), ("CertNo", &child)]),
                today()
            )
            .unwrap_err()
            .code,
            "405"
        );
        assert_eq!(
            CertSubject::parse(&params(&[("CertNo", &ok)]), today())
                .unwrap_err()
                .code,
            "400"
        );
        assert_eq!(
            CertSubject::parse(
                &params(&[("CertName", "x"), ("CertNo", &ok), ("CertType", "PASSPORT")]),
                today()
            )
            .unwrap_err()
            .code,
            "401"
        );
        assert_eq!(
            CertSubject::parse(
                &params(&[("CertName", "x"), ("CertNo", &ok), ("EncryptType", "SM2")]),
                today()
            )
            .unwrap_err()
            .code,
            "401"
        );
        assert_eq!(age_on(&ok, today()), Some(36));
        assert_eq!(
            age_on(&idcard::with_check_char("11010520121203123"), today()),
            Some(14)
        );
        assert_eq!(
            age_on(&idcard::with_check_char("11010520121204123"), today()),
            Some(13)
        );
    }

    #[test]
    fn base64_material_is_decoded_within_its_limit() {
        assert_eq!(decode_base64("P", " aGk= ", 2, "the limit").unwrap(), b"hi");
        assert_eq!(
            decode_base64("P", "aGk=", 1, "the limit").unwrap_err().code,
            "421"
        );
        assert_eq!(
            decode_base64("P", "not base64!", 9, "the limit")
                .unwrap_err()
                .code,
            "419"
        );
    }

    #[test]
    fn exactly_one_picture_source_per_prefix() {
        let p = params(&[("FaceContrastPicture", "aGk=")]);
        assert!(matches!(
            picture_source(&p, "", SOURCE_NAMES).unwrap(),
            Some(PictureSource::Base64 { .. })
        ));
        let p = params(&[("SourceFaceContrastPictureUrl", "https://x/y.jpg")]);
        assert!(matches!(
            picture_source(&p, "Source", SOURCE_NAMES).unwrap(),
            Some(PictureSource::Url { .. })
        ));
        assert_eq!(picture_source(&p, "Target", SOURCE_NAMES).unwrap(), None);
        let p = params(&[("FaceContrastPicture", "aGk="), ("CertifyId", "abc")]);
        assert_eq!(
            picture_source(&p, "", SOURCE_NAMES).unwrap_err().code,
            "420"
        );
        let p = params(&[("OssBucketName", "b"), ("OssObjectName", "o")]);
        assert_eq!(
            picture_source(&p, "", SOURCE_NAMES).unwrap_err().code,
            "401"
        );
    }

    #[test]
    fn callback_urls_are_absolute_http() {
        assert!(check_callback_url("https://merchant.example/cb?x=1").is_ok());
        assert!(check_callback_url("http://127.0.0.1:9/cb").is_ok());
        for bad in [
            "ftp://x/y",
            "https://",
            "https://user@host/",
            "merchant.example/cb",
            "https://a b/",
        ] {
            assert_eq!(check_callback_url(bad).unwrap_err().code, "401", "{bad}");
        }
    }

    #[test]
    fn model_and_meta_info_are_checked_when_given() {
        assert!(check_model(&params(&[])).is_ok());
        assert!(check_model(&params(&[("Model", "MULTI_ACTION")])).is_ok());
        assert_eq!(
            check_model(&params(&[("Model", "SMILE")]))
                .unwrap_err()
                .code,
            "401"
        );
        assert!(check_meta_info(&params(&[("MetaInfo", r#"{"deviceType":"h5"}"#)])).is_ok());
        assert_eq!(
            check_meta_info(&params(&[("MetaInfo", "[1]")]))
                .unwrap_err()
                .code,
            "401"
        );
    }
}
