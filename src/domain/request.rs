//! Parsing and validating the business content of `initialize`, free of I/O.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDate;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::CertifyError;
use crate::domain::idcard;
use crate::domain::seal::KeyRing;
use crate::domain::sensitive::Sensitive;

/// The blind-index purpose of request digests.
const DIGEST_PURPOSE: &str = "request digest";

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
    /// A hash of everything the request asks for, whatever the key order or encoding of its JSON. Not stored as
    /// such: it covers a name and an ID number, which could be guessed and checked against it.
    fn content_hash(&self) -> String {
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

    /// The stored digest of the request: a blind index of its content hash under the data key, so that a retry
    /// with the same content can be recognised while the stored value tells nothing about the person.
    pub fn digest(&self, keys: &KeyRing) -> String {
        keys.index(DIGEST_PURPOSE, &self.content_hash())
    }

    /// Whether `stored` is this request's digest under any key of the ring.
    pub fn has_digest(&self, keys: &KeyRing, stored: &str) -> bool {
        keys.indexes(DIGEST_PURPOSE, &self.content_hash())
            .iter()
            .any(|d| d == stored)
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
/// within `max_bytes` (its shape is checked by `certify::reference::check_shape`, which reads the image header).
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
    Ok(bytes)
}

/// Why a return URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnUrlRefusal {
    /// Not a URL a browser may be sent to from the verification domain: not an absolute `http(s)://host…` URL nor
    /// one of an app scheme the app registered (`alipays://…`), or it holds control characters, whitespace,
    /// invisible characters, a backslash, user info or an empty host.
    NotAllowedUrl,
    /// A well-formed URL outside every return URL prefix registered for the app.
    NotRegistered,
}

/// What a return URL must be, as said to merchants.
pub const RETURN_URL_RULE: &str = "merchant_config.return_url must be an absolute http(s) URL with a host (or use an \
     app scheme registered for this app, e.g. alipays://), without whitespace, control characters, backslashes or \
     user info";

/// Longest return URL (and prefix).
pub const MAX_RETURN_URL_LEN: usize = 2048;

/// Schemes never admitted, even registered: they run script, show attacker-supplied content or read local data in
/// the browser that opened the verification page.
const NEVER_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "livescript",
    "data",
    "file",
    "blob",
    "filesystem",
    "about",
    "view-source",
    "jar",
    "mhtml",
    "chrome",
    "chrome-extension",
    "moz-extension",
    "resource",
    "ms-appx",
    "ms-appx-web",
];

/// Checks `url` as a return URL of an app with these registered `prefixes`. Without prefixes any absolute
/// `http(s)://host…` URL is allowed; with prefixes the URL must start with one of them at a boundary, and app
/// schemes (`alipays:`) are allowed only through a registered prefix of that scheme.
pub fn check_return_url(url: &str, prefixes: &[String]) -> Result<(), ReturnUrlRefusal> {
    let scheme = url_scheme(url).ok_or(ReturnUrlRefusal::NotAllowedUrl)?;
    let web = is_web_scheme(&scheme);
    if web {
        if !web_authority_ok(url, &scheme) {
            return Err(ReturnUrlRefusal::NotAllowedUrl);
        }
    } else if NEVER_SCHEMES.contains(&scheme.as_str()) || url.len() <= scheme.len() + 1 {
        return Err(ReturnUrlRefusal::NotAllowedUrl);
    }
    let usable: Vec<&String> = prefixes
        .iter()
        .filter(|p| return_url_prefix_ok(p))
        .collect();
    if prefixes.is_empty() {
        return if web {
            Ok(())
        } else {
            Err(ReturnUrlRefusal::NotAllowedUrl)
        };
    }
    if !web
        && !usable
            .iter()
            .any(|p| url_scheme(p).as_deref() == Some(scheme.as_str()))
    {
        return Err(ReturnUrlRefusal::NotAllowedUrl);
    }
    if usable.iter().any(|p| prefix_matches(url, p)) {
        Ok(())
    } else {
        Err(ReturnUrlRefusal::NotRegistered)
    }
}

/// Whether `url` may be used as a return URL (see `check_return_url`).
pub fn return_url_allowed(url: &str, prefixes: &[String]) -> bool {
    check_return_url(url, prefixes).is_ok()
}

/// Whether `prefix` may be registered as a return URL prefix: `https://m.example/…` (an http(s) URL with a host),
/// a whole scheme (`alipays://` or `alipays:`; `https://` admits every https URL), or the start of an app-scheme URL
/// (`alipays://platformapi/startapp`). Never a scheme of `NEVER_SCHEMES`.
pub fn return_url_prefix_ok(prefix: &str) -> bool {
    let Some(scheme) = url_scheme(prefix) else {
        return false;
    };
    if NEVER_SCHEMES.contains(&scheme.as_str()) {
        return false;
    }
    let rest = &prefix[scheme.len() + 1..];
    if rest.is_empty() || rest == "//" {
        return true;
    }
    if is_web_scheme(&scheme) {
        web_authority_ok(prefix, &scheme)
    } else {
        true
    }
}

fn is_web_scheme(scheme: &str) -> bool {
    scheme == "https" || scheme == "http"
}

/// Characters no return URL may hold: controls (browsers drop tabs and newlines anywhere and strip leading
/// controls and spaces, so `java\tscript:` would become `javascript:`), any whitespace, backslashes (read as `/` in
/// http(s) URLs: `https:\\evil`), and invisible format characters (zero-width, bidirectional overrides).
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || c == '\\'
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
        )
}

/// The scheme of an absolute URL, lowercased: a letter, then letters, digits, `+`, `-` or `.`, before the first
/// `:`. `None` for relative URLs, oversized ones, and any URL with a forbidden character.
fn url_scheme(url: &str) -> Option<String> {
    if url.is_empty() || url.len() > MAX_RETURN_URL_LEN || url.chars().any(forbidden_char) {
        return None;
    }
    let (scheme, _) = url.split_once(':')?;
    let ok = scheme.len() <= 32
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    ok.then(|| scheme.to_ascii_lowercase())
}

/// An http(s) URL is `scheme://host[:port]` followed by nothing, `/`, `?` or `#`. The host is a name of letters,
/// digits, `-` and `.` (non-ASCII letters of international names allowed) or a bracketed IPv6 address; no user info
/// (`https://m.example@evil/`), no empty host (`https:///evil`, which browsers read as `https://evil`), and the two
/// slashes are required (`https:evil` is read as `https://evil`).
fn web_authority_ok(url: &str, scheme: &str) -> bool {
    let Some(rest) = url[scheme.len() + 1..].strip_prefix("//") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => (addr, None),
            p => match p.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return false,
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.'))
        && !host.starts_with('.');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `url` starts with `prefix` at a boundary: `https://m.example` admits `https://m.example/x` but not
/// `https://m.example.evil/`; `alipays:` and `alipays://` admit every URL of that scheme.
fn prefix_matches(url: &str, prefix: &str) -> bool {
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with([':', '/', '?', '#', '&', '='])
        || rest.is_empty()
        || rest.starts_with(['/', '?', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::idcard::with_check_char;
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
        assert_eq!(a.content_hash(), b.content_hash());
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
        let keys = KeyRing::new(crate::domain::seal::DataKey::from_bytes(&[1; 32]), vec![]);
        assert_ne!(a.digest(&keys), b.digest(&keys));
        assert!(a.has_digest(&keys, &a.digest(&keys)));
        assert!(!b.has_digest(&keys, &a.digest(&keys)));
        // The digest is keyed: the content hash alone does not match it, and a rotation still recognises it.
        assert!(!a.has_digest(&keys, &a.content_hash()));
        let rotated = KeyRing::new(
            crate::domain::seal::DataKey::from_bytes(&[2; 32]),
            vec![crate::domain::seal::DataKey::from_bytes(&[1; 32])],
        );
        assert!(a.has_digest(&rotated, &a.digest(&keys)));
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
        assert!(!return_url_allowed("javascript://alert(1)", &[]));
        assert!(!return_url_allowed("/relative", &[]));
        let origin = vec!["https://m.example".to_string()];
        assert!(return_url_allowed("https://m.example", &origin));
        assert!(return_url_allowed("https://m.example/x", &origin));
        assert!(!return_url_allowed("https://m.example.evil/x", &origin));
        assert!(!return_url_allowed("https://m.example@evil/x", &origin));
    }

    /// Every scheme a browser acts on, in several cases: without registered prefixes only http(s) passes.
    #[test]
    fn without_prefixes_only_web_urls_pass() {
        let web = ["http", "https"];
        let others = [
            "javascript",
            "vbscript",
            "livescript",
            "data",
            "file",
            "blob",
            "filesystem",
            "about",
            "view-source",
            "intent",
            "alipays",
            "alipay",
            "weixin",
            "ftp",
            "ws",
            "wss",
            "mailto",
            "tel",
            "sms",
            "jar",
            "mhtml",
            "chrome",
            "ms-appx",
            "x-custom+app.v1",
        ];
        let cases = |scheme: &str| {
            vec![scheme.to_string(), scheme.to_ascii_uppercase(), {
                let mut c = scheme.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }]
        };
        for scheme in web {
            for s in cases(scheme) {
                for url in [
                    format!("{s}://m.example/back"),
                    format!("{s}://m.example"),
                    format!("{s}://m.example:8443/b?x=1#y"),
                    format!("{s}://[2001:db8::1]:8443/b"),
                    format!("{s}://银行.example/回调"),
                ] {
                    assert_eq!(check_return_url(&url, &[]), Ok(()), "{url}");
                }
            }
        }
        for scheme in others {
            for s in cases(scheme) {
                for url in [
                    format!("{s}://m.example/back"),
                    format!("{s}:alert(document.domain)"),
                    format!("{s}:text/html;base64,PHNjcmlwdD4="),
                    format!("{s}://platformapi/startapp?appId=20000067"),
                ] {
                    assert_eq!(
                        check_return_url(&url, &[]),
                        Err(ReturnUrlRefusal::NotAllowedUrl),
                        "{url}"
                    );
                }
            }
        }
    }

    #[test]
    fn control_whitespace_and_invisible_characters_are_refused_anywhere() {
        let bad_chars = [
            '\0', '\t', '\n', '\r', '\x0b', '\x0c', '\x1b', '\x7f', '\u{85}', '\u{a0}', ' ',
            '\u{2028}', '\u{3000}', '\u{200b}', '\u{200d}', '\u{202e}', '\u{2066}', '\u{feff}',
            '\u{ad}',
        ];
        let base = "https://m.example/back";
        for c in bad_chars {
            for i in [0, 5, 8, 10, base.len()] {
                let mut url = base.to_string();
                url.insert(i, c);
                assert_eq!(
                    check_return_url(&url, &[]),
                    Err(ReturnUrlRefusal::NotAllowedUrl),
                    "{url:?}"
                );
                let prefixes = vec!["https://m.example/".to_string()];
                assert!(!return_url_allowed(&url, &prefixes), "{url:?}");
            }
            // Split schemes that browsers would join back (`java\tscript:`).
            let split = format!("java{c}script:alert(1)");
            assert!(!return_url_allowed(&split, &[]), "{split:?}");
        }
        assert!(!return_url_allowed("", &[]));
        let long = format!("https://m.example/{}", "a".repeat(MAX_RETURN_URL_LEN));
        assert!(!return_url_allowed(&long, &[]));
    }

    #[test]
    fn host_tricks_are_refused() {
        for url in [
            "//evil.example/x",
            "///evil.example/x",
            "\\\\evil.example/x",
            "/\\evil.example/x",
            "https:evil.example/x",
            "https:/evil.example/x",
            "https:///evil.example/x",
            "https:\\\\evil.example/x",
            "https:/\\evil.example/x",
            "https://\\evil.example/x",
            "https://m.example\\@evil.example/x",
            "https://m.example\\.evil.example/",
            "https://user@evil.example/",
            "https://user:pw@evil.example/",
            "https://m.example%2f@evil.example/",
            "https://m.example:443@evil.example/",
            "https://m.example:/x",
            "https://m.example:99999999/x",
            "https://.evil.example/",
            "https://evil。example/",
            "https://[::1/",
            "https://[::1]x/",
            "https://[evil.example]/",
            "https://",
            "https:",
            "1https://m.example/",
            "+https://m.example/",
            "m.example/back",
            "evil.example",
            "?https://m.example/",
        ] {
            assert_eq!(
                check_return_url(url, &[]),
                Err(ReturnUrlRefusal::NotAllowedUrl),
                "{url}"
            );
            let prefixes = vec!["https://m.example".to_string(), "alipays://".to_string()];
            assert!(!return_url_allowed(url, &prefixes), "{url}");
        }
    }

    #[test]
    fn registered_prefixes_admit_their_scheme_and_nothing_else() {
        for prefix in ["alipays://", "alipays:", "alipays://platformapi/startapp"] {
            let prefixes = vec![prefix.to_string(), "https://m.example/".to_string()];
            assert!(return_url_prefix_ok(prefix), "{prefix}");
            assert_eq!(
                check_return_url("alipays://platformapi/startapp?appId=1", &prefixes),
                Ok(()),
                "{prefix}"
            );
            assert_eq!(
                check_return_url("https://m.example/back", &prefixes),
                Ok(())
            );
            // Another app scheme, or a web URL outside the prefixes.
            assert_eq!(
                check_return_url("weixin://dl/business", &prefixes),
                Err(ReturnUrlRefusal::NotAllowedUrl)
            );
            assert_eq!(
                check_return_url("intent://scan#Intent;scheme=x;end", &prefixes),
                Err(ReturnUrlRefusal::NotAllowedUrl)
            );
            assert_eq!(
                check_return_url("https://evil.example/", &prefixes),
                Err(ReturnUrlRefusal::NotRegistered)
            );
            assert_eq!(
                check_return_url("javascript:alert(1)", &prefixes),
                Err(ReturnUrlRefusal::NotAllowedUrl)
            );
        }
        // A path prefix of an app scheme holds at its boundary.
        let prefixes = vec!["alipays://platformapi/startapp".to_string()];
        assert_eq!(
            check_return_url("alipays://platformapi/startappx", &prefixes),
            Err(ReturnUrlRefusal::NotRegistered)
        );
        // `https://` registers every https URL, and still refuses user info and empty hosts.
        let any_https = vec!["https://".to_string()];
        assert!(return_url_allowed("https://anything.example/x", &any_https));
        assert!(!return_url_allowed("http://anything.example/x", &any_https));
        assert!(!return_url_allowed("https://u@evil.example/", &any_https));
        assert!(!return_url_allowed("https:///evil.example/", &any_https));
        // Intent URLs only when registered.
        let intents = vec!["intent://".to_string()];
        assert!(return_url_allowed(
            "intent://scan#Intent;scheme=zxing;end",
            &intents
        ));
    }

    #[test]
    fn prefixes_that_can_never_be_registered() {
        for prefix in [
            "javascript:",
            "JavaScript://",
            "data:",
            "data:text/html",
            "vbscript:",
            "file://",
            "blob:",
            "about:",
            "view-source:",
            "https://m.example@evil/",
            "https:///x",
            "https:m.example",
            "https://m.example\\x",
            "https://m.example/ x",
            "//m.example/",
            "m.example",
            "",
            "\u{200b}https://m.example/",
        ] {
            assert!(!return_url_prefix_ok(prefix), "{prefix:?}");
            // Stored before these rules, such a prefix admits nothing.
            let prefixes = vec![prefix.to_string()];
            assert!(!return_url_allowed("javascript:alert(1)", &prefixes));
            assert!(!return_url_allowed("data:text/html,x", &prefixes));
        }
        for prefix in [
            "https://m.example/",
            "https://m.example",
            "http://m.example:8080/cb?",
            "https://",
            "alipays://",
            "alipays:",
            "intent://",
            "weixin://dl/",
        ] {
            assert!(return_url_prefix_ok(prefix), "{prefix}");
        }
    }
}
