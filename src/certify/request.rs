//! Parsing and validating the business content of `initialize`, free of I/O.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDate;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::CertifyError;
use super::idcard;
use crate::sensitive::Sensitive;

/// Whether the live face image is kept for `query` (`merchant_config.face_reserve_strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveStrategy {
    Reserve,
    Never,
}

impl ReserveStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            ReserveStrategy::Reserve => "reserve",
            ReserveStrategy::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<ReserveStrategy> {
        match s {
            "reserve" => Some(ReserveStrategy::Reserve),
            "never" => Some(ReserveStrategy::Never),
            _ => None,
        }
    }
}

/// A validated `initialize` request.
#[derive(Debug, Clone)]
pub struct InitializeRequest {
    pub outer_order_no: String,
    pub biz_code: String,
    pub cert_type: String,
    pub cert_name: Sensitive<String>,
    pub cert_no: Sensitive<String>,
    pub return_url: String,
    pub reserve: ReserveStrategy,
    pub contrast_picture: Option<Sensitive<Vec<u8>>>,
}

impl InitializeRequest {
    /// A digest of everything the request asks for, so a retry with the same content can be recognised
    /// whatever the key order or encoding of its JSON.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.outer_order_no.as_str(),
            self.biz_code.as_str(),
            self.cert_type.as_str(),
            self.cert_name.expose().as_str(),
            self.cert_no.expose().as_str(),
            self.return_url.as_str(),
            self.reserve.as_str(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        match &self.contrast_picture {
            Some(p) => h.update(Sha256::digest(p.expose())),
            None => h.update([0u8]),
        }
        hex::encode(h.finalize())
    }
}

/// Limits that apply while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_contrast_picture_bytes: usize,
    pub today: NaiveDate,
}

/// The biz codes this gateway knows, and whether it serves them yet.
const SERVED_BIZ_CODES: &[&str] = &["FACE"];
const KNOWN_BIZ_CODES: &[&str] = &["FACE", "CERT_PHOTO", "CERT_PHOTO_FACE", "SMART_FACE"];

fn invalid(msg: impl Into<String>) -> CertifyError {
    CertifyError::InvalidParameter(msg.into())
}

/// A field that SDKs send as a nested object, but old docs called a "JSON string": accept both.
fn object_field<'a>(
    root: &'a Value,
    name: &str,
    holder: &'a mut Option<Value>,
) -> Result<&'a Value, CertifyError> {
    match root.get(name) {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s)
                .map_err(|_| invalid(format!("{name} is not valid JSON")))?;
            if !parsed.is_object() {
                return Err(invalid(format!("{name} must be a JSON object")));
            }
            Ok(holder.insert(parsed))
        }
        Some(Value::Null) | None => Err(invalid(format!("{name} is required"))),
        Some(_) => Err(invalid(format!("{name} must be a JSON object"))),
    }
}

fn string_field<'a>(
    obj: &'a Value,
    name: &str,
    path: &str,
) -> Result<Option<&'a str>, CertifyError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(invalid(format!("{path}{name} must be a string"))),
    }
}

fn required<'a>(obj: &'a Value, name: &str, path: &str) -> Result<&'a str, CertifyError> {
    string_field(obj, name, path)?.ok_or_else(|| invalid(format!("{path}{name} is required")))
}

/// Parses `biz_content` of `initialize`. Every error names the offending field.
pub fn parse_initialize(
    biz_content: &str,
    limits: Limits,
) -> Result<InitializeRequest, CertifyError> {
    let root: Value =
        serde_json::from_str(biz_content).map_err(|_| invalid("biz_content is not valid JSON"))?;
    if !root.is_object() {
        return Err(invalid("biz_content must be a JSON object"));
    }
    let outer_order_no = required(&root, "outer_order_no", "")?;
    if outer_order_no.len() > 32 || !outer_order_no.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "outer_order_no must be at most 32 printable ASCII characters",
        ));
    }
    let biz_code = required(&root, "biz_code", "")?;
    if !SERVED_BIZ_CODES.contains(&biz_code) {
        return Err(CertifyError::BizCodeNotSupported(
            if KNOWN_BIZ_CODES.contains(&biz_code) {
                format!("biz_code {biz_code} is not served by this gateway yet; use FACE")
            } else {
                "unknown biz_code; use FACE".to_string()
            },
        ));
    }

    let mut holder = None;
    let identity = object_field(&root, "identity_param", &mut holder)?;
    let identity_type = required(identity, "identity_type", "identity_param.")?;
    if identity_type != "CERT_INFO" {
        return Err(invalid("identity_param.identity_type must be CERT_INFO"));
    }
    let cert_type = required(identity, "cert_type", "identity_param.")?;
    if cert_type != "IDENTITY_CARD" {
        return Err(CertifyError::CertTypeNotSupported);
    }
    let cert_name = required(identity, "cert_name", "identity_param.")?;
    if cert_name.chars().count() > 64 || cert_name.chars().any(char::is_control) {
        return Err(invalid(
            "identity_param.cert_name must be at most 64 characters",
        ));
    }
    let cert_no = required(identity, "cert_no", "identity_param.")?;
    let cert_no = idcard::validate(cert_no, limits.today).map_err(CertifyError::InvalidCertNo)?;
    let cert_name = cert_name.to_string();

    let mut holder = None;
    let merchant = object_field(&root, "merchant_config", &mut holder)?;
    let return_url = required(merchant, "return_url", "merchant_config.")?;
    if return_url.len() > 2048 || return_url.chars().any(char::is_control) {
        return Err(invalid(
            "merchant_config.return_url is too long or malformed",
        ));
    }
    let reserve = match string_field(merchant, "face_reserve_strategy", "merchant_config.")? {
        None => ReserveStrategy::Reserve,
        Some(s) => ReserveStrategy::parse(s).ok_or_else(|| {
            invalid("merchant_config.face_reserve_strategy must be reserve or never")
        })?,
    };

    let contrast_picture = match string_field(&root, "face_contrast_picture", "")? {
        None => None,
        Some(b64) => Some(Sensitive::new(decode_picture(
            b64,
            limits.max_contrast_picture_bytes,
        )?)),
    };

    Ok(InitializeRequest {
        outer_order_no: outer_order_no.to_string(),
        biz_code: biz_code.to_string(),
        cert_type: cert_type.to_string(),
        cert_name: Sensitive::new(cert_name),
        cert_no: Sensitive::new(cert_no),
        return_url: return_url.to_string(),
        reserve,
        contrast_picture,
    })
}

/// Decodes a base64 picture (a `data:` URL prefix and line breaks tolerated) and checks it is a JPEG, PNG or WebP
/// within `max_bytes`.
pub fn decode_picture(b64: &str, max_bytes: usize) -> Result<Vec<u8>, CertifyError> {
    let body = match b64.find(";base64,") {
        Some(i) if b64.starts_with("data:") => &b64[i + 8..],
        _ => b64,
    };
    // Base64 of max_bytes is about 4/3 as long; refuse far larger input before decoding it.
    if body.len() > max_bytes / 3 * 4 + 4096 {
        return Err(CertifyError::PictureTooLarge(max_bytes));
    }
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = B64
        .decode(compact)
        .map_err(|_| CertifyError::InvalidPicture("face_contrast_picture is not valid base64"))?;
    if bytes.len() > max_bytes {
        return Err(CertifyError::PictureTooLarge(max_bytes));
    }
    let is_jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
    let is_png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
    let is_webp = bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP";
    if !(is_jpeg || is_png || is_webp) {
        return Err(CertifyError::InvalidPicture(
            "face_contrast_picture must be a JPEG, PNG or WebP image",
        ));
    }
    // Its shape, from the header alone: nothing is decoded for a picture that could never be used.
    match crate::face::image::inspect(
        &bytes,
        crate::face::image::DecodeLimits::PICTURE.with_max_bytes(max_bytes),
    ) {
        Ok(_) => Ok(bytes),
        Err(e) if e.is_size() => Err(CertifyError::InvalidPicture(
            "face_contrast_picture must be an 8-bit image of 32 to 8192 pixels a side, at most 4:1",
        )),
        Err(_) => Err(CertifyError::InvalidPicture(
            "face_contrast_picture cannot be decoded",
        )),
    }
}

/// Whether `url` may be used as a return URL: it must start with one of the app's registered prefixes when it has
/// any (no open redirect), and be an absolute http(s) URL or an app scheme URL.
pub fn return_url_allowed(url: &str, prefixes: &[String]) -> bool {
    let has_scheme = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !rest.is_empty()
    });
    let scheme_ok = has_scheme && !url.to_ascii_lowercase().starts_with("javascript:");
    scheme_ok && (prefixes.is_empty() || prefixes.iter().any(|p| prefix_matches(url, p)))
}

/// `url` starts with `prefix` at a boundary: `https://m.example` admits `https://m.example/x` but not
/// `https://m.example.evil/`.
fn prefix_matches(url: &str, prefix: &str) -> bool {
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with(['/', '?', '#', '&', '='])
        || rest.is_empty()
        || rest.starts_with(['/', '?', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certify::idcard::with_check_char;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            max_contrast_picture_bytes: 1024,
            today: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        }
    }

    fn good() -> Value {
        json!({
            "outer_order_no": "ZGYD201809132323000001234",
            "biz_code": "FACE",
            "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD",
                                "cert_name": "张三", "cert_no": with_check_char("33010219900307123")},
            "merchant_config": {"return_url": "https://m.example/back"}
        })
    }

    #[test]
    fn parses_nested_objects_and_json_strings_alike() {
        let a = parse_initialize(&good().to_string(), limits()).unwrap();
        let mut v = good();
        v["identity_param"] = Value::String(v["identity_param"].to_string());
        v["merchant_config"] = Value::String(v["merchant_config"].to_string());
        let b = parse_initialize(&v.to_string(), limits()).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.reserve, ReserveStrategy::Reserve);
        assert_eq!(a.cert_name.expose(), "张三");
        assert!(!format!("{a:?}").contains("张三"));
    }

    #[test]
    fn digest_changes_with_content() {
        let a = parse_initialize(&good().to_string(), limits()).unwrap();
        let mut v = good();
        v["identity_param"]["cert_name"] = json!("李四");
        let b = parse_initialize(&v.to_string(), limits()).unwrap();
        assert_ne!(a.digest(), b.digest());
    }

    fn err_of(mutate: impl FnOnce(&mut Value)) -> CertifyError {
        let mut v = good();
        mutate(&mut v);
        parse_initialize(&v.to_string(), limits()).unwrap_err()
    }

    #[test]
    fn every_field_is_checked() {
        assert!(matches!(
            parse_initialize("{", limits()),
            Err(CertifyError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse_initialize("[1]", limits()),
            Err(CertifyError::InvalidParameter(_))
        ));
        assert!(
            matches!(err_of(|v| v["outer_order_no"] = json!("")), CertifyError::InvalidParameter(m) if m.contains("outer_order_no"))
        );
        assert!(matches!(
            err_of(|v| v["outer_order_no"] = json!("x".repeat(33))),
            CertifyError::InvalidParameter(_)
        ));
        assert!(matches!(
            err_of(|v| v["biz_code"] = json!("CERT_PHOTO")),
            CertifyError::BizCodeNotSupported(_)
        ));
        assert!(matches!(
            err_of(|v| v["biz_code"] = json!(5)),
            CertifyError::InvalidParameter(_)
        ));
        assert!(matches!(
            err_of(|v| v["identity_param"]["identity_type"] = json!("X")),
            CertifyError::InvalidParameter(_)
        ));
        assert!(matches!(
            err_of(|v| v["identity_param"]["cert_type"] = json!("PASSPORT")),
            CertifyError::CertTypeNotSupported
        ));
        assert!(
            matches!(err_of(|v| v["identity_param"]["cert_name"] = json!(" ")), CertifyError::InvalidParameter(m) if m.contains("cert_name"))
        );
        assert!(matches!(
            err_of(|v| {
                let good = with_check_char("33010219900307123");
                let wrong = if good.ends_with('0') { '1' } else { '0' };
                v["identity_param"]["cert_no"] = json!(format!("{}{wrong}", &good[..17]))
            }),
            CertifyError::InvalidCertNo(_)
        ));
        assert!(matches!(
            err_of(|v| v["identity_param"] = json!("{oops")),
            CertifyError::InvalidParameter(_)
        ));
        assert!(
            matches!(err_of(|v| { v.as_object_mut().unwrap().remove("merchant_config"); }), CertifyError::InvalidParameter(m) if m.contains("merchant_config"))
        );
        assert!(matches!(
            err_of(|v| v["merchant_config"]["face_reserve_strategy"] = json!("always")),
            CertifyError::InvalidParameter(_)
        ));
        assert!(matches!(
            err_of(|v| v["face_contrast_picture"] = json!("@@@")),
            CertifyError::InvalidPicture(_)
        ));
        assert!(matches!(
            err_of(|v| v["face_contrast_picture"] = json!(B64.encode(b"GIF89a....."))),
            CertifyError::InvalidPicture(_)
        ));
        // A header claiming 1 × 1,600,000 pixels: refused from the header, before anything is decoded.
        let thin = [
            &b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"[..],
            &1u32.to_be_bytes()[..],
            &1_600_000u32.to_be_bytes()[..],
            &[8, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ]
        .concat();
        assert!(matches!(
            err_of(|v| v["face_contrast_picture"] = json!(B64.encode(&thin))),
            CertifyError::InvalidPicture(_)
        ));
        let big = [&[0xFF, 0xD8, 0xFF][..], &[0u8; 2000][..]].concat();
        assert!(matches!(
            err_of(|v| v["face_contrast_picture"] = json!(B64.encode(&big))),
            CertifyError::PictureTooLarge(1024)
        ));
    }

    #[test]
    fn small_picture_is_accepted() {
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(40, 40))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let mut v = good();
        v["face_contrast_picture"] = json!(format!("data:image/jpeg;base64,{}", B64.encode(&jpeg)));
        let r = parse_initialize(&v.to_string(), limits()).unwrap();
        assert_eq!(r.contrast_picture.unwrap().expose(), &jpeg);
    }

    #[test]
    fn return_url_rules() {
        let prefixes = vec!["https://m.example/".to_string()];
        assert!(return_url_allowed("https://m.example/back?x=1", &prefixes));
        assert!(!return_url_allowed(
            "https://m.example.evil/back",
            &prefixes
        ));
        assert!(!return_url_allowed("https://evil/", &prefixes));
        assert!(return_url_allowed("https://anything/", &[]));
        assert!(return_url_allowed("alipays://platformapi/startapp", &[]));
        assert!(!return_url_allowed("javascript://alert(1)", &[]));
        assert!(!return_url_allowed("/relative", &[]));
        let origin = vec!["https://m.example".to_string()];
        assert!(return_url_allowed("https://m.example", &origin));
        assert!(return_url_allowed("https://m.example/x", &origin));
        assert!(!return_url_allowed("https://m.example.evil/x", &origin));
        assert!(!return_url_allowed("https://m.example@evil/x", &origin));
    }
}
