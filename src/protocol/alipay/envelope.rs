//! The response envelope every SDK parses: compact JSON, the method node first, `sign` right after it,
//! the signature over exactly the node's bytes as sent.
use super::params::Charset;
use crate::domain::rsa::{SignType, SigningKey};

/// `alipay.user.certify.open.query` → `alipay_user_certify_open_query_response`.
pub fn response_node_name(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// Builds `{"<method>_response":<node>,"sign":"…"}` encoded in `charset`, signing the node's encoded bytes.
/// `node_json` must be compact JSON text.
pub fn method_envelope(
    method: &str,
    node_json: &str,
    key: &SigningKey,
    sign_type: SignType,
    charset: Charset,
) -> Vec<u8> {
    envelope(
        &response_node_name(method),
        node_json,
        key,
        sign_type,
        charset,
    )
}

/// The `error_response` envelope, for requests without a `method`.
pub fn error_envelope(node_json: &str, key: &SigningKey, charset: Charset) -> Vec<u8> {
    envelope("error_response", node_json, key, SignType::Rsa2, charset)
}

fn envelope(
    name: &str,
    node_json: &str,
    key: &SigningKey,
    sign_type: SignType,
    charset: Charset,
) -> Vec<u8> {
    let node_bytes = charset.encode(node_json);
    let sign = key.sign(sign_type, &node_bytes);
    let mut out = Vec::with_capacity(node_bytes.len() + name.len() + sign.len() + 20);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&node_bytes);
    out.extend_from_slice(b",\"sign\":\"");
    out.extend_from_slice(sign.as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_signs_exact_node_bytes() {
        let key = SigningKey::generate().unwrap();
        let node = r#"{"code":"10000","msg":"Success","identity_info":"{\"a\":\"实\"}"}"#;
        let body = method_envelope(
            "alipay.user.certify.open.query",
            node,
            &key,
            SignType::Rsa2,
            Charset::Utf8,
        );
        let text = String::from_utf8(body).unwrap();
        let prefix = "{\"alipay_user_certify_open_query_response\":";
        assert!(text.starts_with(prefix));
        let rest = &text[prefix.len()..];
        let (signed, tail) = rest.split_at(node.len());
        assert_eq!(signed, node);
        assert!(tail.starts_with(",\"sign\":\""));
        let sig = tail
            .trim_start_matches(",\"sign\":\"")
            .trim_end_matches("\"}");
        assert!(key
            .public_key()
            .verify(SignType::Rsa2, signed.as_bytes(), sig));
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed["alipay_user_certify_open_query_response"]["code"],
            "10000"
        );
    }

    #[test]
    fn gbk_envelope_is_gbk_bytes() {
        let key = SigningKey::generate().unwrap();
        let body = error_envelope(r#"{"msg":"实人"}"#, &key, Charset::Gbk);
        assert!(std::str::from_utf8(&body).is_err());
        let (text, _, bad) = encoding_rs::GBK.decode(&body);
        assert!(!bad);
        assert!(text.starts_with("{\"error_response\":{\"msg\":\"实人\"},\"sign\":\""));
    }
}
