//! Request parameters: form decoding in the request charset, merging query and body, and the string-to-sign.
use std::collections::BTreeMap;

/// The request charsets the gateway accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Gbk,
}

impl Charset {
    /// Parses a `charset` value as the SDKs send it (`utf-8`, `UTF-8`, `GBK`, `gb2312`…).
    pub fn parse(value: &str) -> Option<Charset> {
        match value.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "gbk" | "gb2312" | "gb18030" => Some(Charset::Gbk),
            _ => None,
        }
    }

    /// Name used in `Content-Type` headers.
    pub fn http_name(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Gbk => "GBK",
        }
    }

    /// Decodes bytes strictly: malformed input is an error, never silently replaced.
    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec()).ok(),
            Charset::Gbk => encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|s| s.into_owned()),
        }
    }

    /// Encodes text in this charset (the bytes that are signed and sent).
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Gbk => encoding_rs::GBK.encode(text).0.into_owned(),
        }
    }
}

/// Splits `application/x-www-form-urlencoded` bytes into raw (still charset-encoded) key/value byte strings.
/// `+` is a space, as every SDK encodes it.
pub fn split_form(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(bytes: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = bytes
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&plus_as_space).collect()
}

/// Why raw parameters could not be turned into [`Params`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// The `charset` value is not one the gateway accepts.
    InvalidCharset(String),
    /// A value is not valid in the request charset.
    Undecodable(String),
}

/// Request parameters merged from the query string and the form body, decoded in the request charset.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
    /// The charset the values were decoded with.
    pub charset: Option<Charset>,
}

impl Params {
    /// Merges raw pairs (query first, then body; the first occurrence of a key wins) and decodes them with the
    /// charset named by the `charset` parameter, defaulting to UTF-8.
    pub fn decode(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Params, ParamsError> {
        let charset_raw = pairs
            .iter()
            .find(|(k, _)| k == b"charset")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        let charset = match charset_raw.as_deref() {
            None | Some("") => None,
            Some(v) => {
                Some(Charset::parse(v).ok_or_else(|| ParamsError::InvalidCharset(v.into()))?)
            }
        };
        let cs = charset.unwrap_or(Charset::Utf8);
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            let key = cs.decode(&k).ok_or_else(|| {
                ParamsError::Undecodable(String::from_utf8_lossy(&k).into_owned())
            })?;
            let value = cs
                .decode(&v)
                .ok_or_else(|| ParamsError::Undecodable(key.clone()))?;
            map.entry(key).or_insert(value);
        }
        Ok(Params { map, charset })
    }

    /// Builds params from already-decoded pairs (tests, benchmarks, the merchant side).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Params {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k.into()).or_insert(v.into());
        }
        let charset = map.get("charset").and_then(|c: &String| Charset::parse(c));
        Params { map, charset }
    }

    /// The value of `key`, treating an empty value as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// All parameters, sorted by key.
    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Whether any parameter other than `sign` has an empty value (Node's SDK signs those too).
    pub fn has_empty_values(&self) -> bool {
        self.map.iter().any(|(k, v)| k != "sign" && v.is_empty())
    }
}

/// The string-to-sign: every parameter but `sign`, sorted by key, `key=value` joined with `&`, raw values.
/// Empty values are dropped (the documented rule) unless `keep_empty` (what the Node SDK signs).
pub fn sign_content(params: &BTreeMap<String, String>, keep_empty: bool) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if k == "sign" || (v.is_empty() && !keep_empty) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_split_decodes_plus_and_percent() {
        let pairs = split_form(b"a=1+2&b=%E5%AE%9E%E4%BA%BA&c&=x&d=");
        assert_eq!(pairs[0], (b"a".to_vec(), b"1 2".to_vec()));
        assert_eq!(pairs[1].1, "实人".as_bytes());
        assert_eq!(pairs[2], (b"c".to_vec(), vec![]));
        assert_eq!(pairs[3], (vec![], b"x".to_vec()));
        assert_eq!(pairs[4], (b"d".to_vec(), vec![]));
    }

    #[test]
    fn sign_content_sorts_drops_sign_and_empties() {
        let p = Params::from_pairs([
            ("timestamp", "2026-11-29 11:03:33"),
            ("sign", "xyz"),
            ("app_id", "2021"),
            ("notify_url", ""),
            ("biz_content", "{\"b\":1,\"a\":\"x y\"}"),
            ("sign_type", "RSA2"),
        ]);
        assert_eq!(
            sign_content(p.map(), false),
            "app_id=2021&biz_content={\"b\":1,\"a\":\"x y\"}&sign_type=RSA2&timestamp=2026-11-29 11:03:33"
        );
        assert_eq!(
            sign_content(p.map(), true),
            "app_id=2021&biz_content={\"b\":1,\"a\":\"x y\"}&notify_url=&sign_type=RSA2&timestamp=2026-11-29 11:03:33"
        );
        assert!(p.has_empty_values());
    }

    #[test]
    fn query_wins_over_body_and_gbk_decodes() {
        let name = encoding_rs::GBK.encode("张三").0.into_owned();
        let mut raw = b"charset=GBK&k=".to_vec();
        for b in &name {
            raw.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
        raw.extend_from_slice(b"&k=second");
        let p = Params::decode(split_form(&raw)).unwrap();
        assert_eq!(p.charset, Some(Charset::Gbk));
        assert_eq!(p.get("k"), Some("张三"));
        assert_eq!(Charset::Gbk.encode("张三"), name);
    }

    #[test]
    fn bad_charset_and_bad_bytes_are_errors() {
        assert_eq!(
            Params::decode(split_form(b"charset=latin9")).unwrap_err(),
            ParamsError::InvalidCharset("latin9".into())
        );
        assert!(matches!(
            Params::decode(split_form(b"charset=utf-8&k=%FF%FE")),
            Err(ParamsError::Undecodable(_))
        ));
    }
}
