//! The merchant side of a request, as the official SDKs build it: sign the parameters, then form-encode them.
//! Used by the integration tests and the benchmark to produce requests the SDKs cannot (GBK, bad timestamps).
use super::params::{sign_content, Charset, Params};
use crate::domain::rsa::{SignType, SigningKey};

/// The form body of a signed request: `pairs` plus `sign`, each value percent-encoded in `charset`.
/// The signature uses the `sign_type` given here, whatever the pairs say.
pub fn signed_form(
    key: &SigningKey,
    sign_type: SignType,
    pairs: &[(&str, &str)],
    charset: Charset,
) -> Vec<u8> {
    let params = Params::from_pairs(pairs.iter().copied());
    let sign = key.sign(
        sign_type,
        &charset.encode(&sign_content(params.map(), false)),
    );
    let encode = |s: &str| -> String {
        charset
            .encode(s)
            .iter()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (*b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .copied()
        .chain(std::iter::once(("sign", sign.as_str())))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::alipay::params::split_form;

    #[test]
    fn body_decodes_back_and_verifies() {
        let key = SigningKey::generate().unwrap();
        for (charset, name) in [(Charset::Utf8, "utf-8"), (Charset::Gbk, "GBK")] {
            let pairs = [
                ("charset", name),
                ("biz_content", "{\"n\":\"张 三+&=\"}"),
                ("app_id", "1"),
            ];
            let body = signed_form(&key, SignType::Rsa2, &pairs, charset);
            let p = Params::decode(split_form(&body)).unwrap();
            assert_eq!(p.get("biz_content"), Some("{\"n\":\"张 三+&=\"}"));
            let content = sign_content(p.map(), false);
            assert!(key.public_key().verify(
                SignType::Rsa2,
                &charset.encode(&content),
                p.get("sign").unwrap()
            ));
        }
    }
}
