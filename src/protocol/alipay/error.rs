//! The error catalogue of the Alipay-style gateway: gateway codes and sub-codes, and the one mapping of business
//! errors onto them.
use crate::certify::CertifyError;

/// A gateway outcome other than success. `code`/`sub_code` are what SDKs and merchants branch on.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("missing method")]
    MissingMethod,
    #[error("missing app_id")]
    MissingAppId,
    #[error("missing sign")]
    MissingSignature,
    #[error("missing sign_type")]
    MissingSignType,
    #[error("missing timestamp")]
    MissingTimestamp,
    #[error("missing version")]
    MissingVersion,
    #[error("method {0} does not exist")]
    InvalidMethod(String),
    #[error("app_id does not exist or is not online")]
    InvalidAppId,
    #[error("sign_type must be RSA2 or RSA")]
    InvalidSignType,
    /// Carries the string the gateway verified, as the real gateway does, so merchants can debug.
    #[error("signature check failed")]
    InvalidSignature { string_to_sign: String },
    #[error("timestamp must be yyyy-MM-dd HH:mm:ss and close to the current time")]
    InvalidTimestamp,
    #[error("charset must be utf-8 or GBK")]
    InvalidCharset,
    #[error("format must be json")]
    InvalidFormat,
    #[error("encrypt_type is not supported by this gateway")]
    InvalidEncryptType,
    #[error("{0}")]
    InvalidParameter(String),
    #[error(transparent)]
    Business(#[from] CertifyError),
    /// The service failed; the cause is logged, the caller sees a generic message.
    #[error("service temporarily unavailable")]
    Internal(#[source] anyhow::Error),
}

/// The fields of an error node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNode {
    pub code: &'static str,
    pub msg: &'static str,
    pub sub_code: &'static str,
    pub sub_msg: String,
}

impl GatewayError {
    /// The wire form of this error.
    pub fn node(&self) -> ErrorNode {
        use GatewayError::*;
        let (code, msg, sub_code) = match self {
            MissingMethod => ("40001", "Missing Required Arguments", "isv.missing-method"),
            MissingAppId => ("40001", "Missing Required Arguments", "isv.missing-app-id"),
            MissingSignature => (
                "40001",
                "Missing Required Arguments",
                "isv.missing-signature",
            ),
            MissingSignType => (
                "40001",
                "Missing Required Arguments",
                "isv.missing-signature-type",
            ),
            MissingTimestamp => (
                "40001",
                "Missing Required Arguments",
                "isv.missing-timestamp",
            ),
            MissingVersion => ("40001", "Missing Required Arguments", "isv.missing-version"),
            InvalidMethod(_) => ("40002", "Invalid Arguments", "isv.invalid-method"),
            InvalidAppId => ("40002", "Invalid Arguments", "isv.invalid-app-id"),
            InvalidSignType => ("40002", "Invalid Arguments", "isv.invalid-signature-type"),
            InvalidSignature { .. } => ("40002", "Invalid Arguments", "isv.invalid-signature"),
            InvalidTimestamp => ("40002", "Invalid Arguments", "isv.invalid-timestamp"),
            InvalidCharset => ("40002", "Invalid Arguments", "isv.invalid-charset"),
            InvalidFormat => ("40002", "Invalid Arguments", "isv.invalid-format"),
            InvalidEncryptType => ("40002", "Invalid Arguments", "isv.invalid-encrypt-type"),
            InvalidParameter(_) => ("40002", "Invalid Arguments", "isv.invalid-parameter"),
            Business(CertifyError::Internal(_)) | Internal(_) => {
                ("20000", "Service Currently Unavailable", "isp.unknow-error")
            }
            Business(e @ CertifyError::Limited(_)) => ("40005", "Call Limited", e.sub_code()),
            Business(e) => ("40004", "Business Failed", e.sub_code()),
        };
        let sub_msg = match self {
            InvalidSignature { string_to_sign } => {
                format!("验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{string_to_sign}")
            }
            other => other.to_string(),
        };
        ErrorNode {
            code,
            msg,
            sub_code,
            sub_msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_reference() {
        assert_eq!(
            GatewayError::MissingMethod.node().sub_code,
            "isv.missing-method"
        );
        let n = GatewayError::InvalidSignature {
            string_to_sign: "app_id=1&method=m".into(),
        }
        .node();
        assert_eq!((n.code, n.sub_code), ("40002", "isv.invalid-signature"));
        assert!(n.sub_msg.ends_with("app_id=1&method=m"));
        let n = GatewayError::Business(CertifyError::CertifyIdNotExist).node();
        assert_eq!((n.code, n.sub_code), ("40004", "CERTIFY_ID_NOT_EXIST"));
        let limited = |limit| {
            GatewayError::Business(CertifyError::Limited(crate::domain::limit::Refusal {
                limit,
                retry_after: 7,
            }))
            .node()
        };
        let n = limited(crate::domain::limit::Limit::IdentityPerMinute);
        assert_eq!((n.code, n.sub_code), ("40005", "isv.method-call-limited"));
        assert!(n.sub_msg.ends_with("try again in 7 s"), "{}", n.sub_msg);
        let n = limited(crate::domain::limit::Limit::AppPerSecond);
        assert_eq!((n.code, n.sub_code), ("40005", "isv.app-call-limited"));
        let n = GatewayError::Internal(anyhow::anyhow!("db down: secret detail")).node();
        assert_eq!(n.code, "20000");
        assert!(!n.sub_msg.contains("secret"));
    }
}
