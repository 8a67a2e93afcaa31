//! Business errors of the verification flow, each with a stable upper-case sub-code.
use crate::domain::idcard::IdNumberError;

/// A business failure (`40004` on the Alipay-style gateway). The sub-code is stable; the message is for people.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    BizCodeNotSupported(String),
    #[error("identity_param.cert_type is not supported; use IDENTITY_CARD")]
    CertTypeNotSupported,
    #[error("identity_param.cert_no is not a valid ID number: {0}")]
    InvalidCertNo(IdNumberError),
    #[error("merchant_config.return_url does not start with a return URL registered for this app")]
    ReturnUrlNotAllowed,
    #[error("face_contrast_picture is larger than {0} bytes")]
    PictureTooLarge(usize),
    #[error("{0}")]
    InvalidPicture(&'static str),
    #[error("outer_order_no was already used for a different request")]
    OuterOrderNoConflict,
    #[error("certify_id does not exist")]
    CertifyIdNotExist,
    #[error("certify_id has expired; call initialize again")]
    CertifyIdExpired,
    #[error("the verification of this certify_id is already finished")]
    CertifyIdFinished,
    /// Refused by a limit per ID number or per app (`40005` on the Alipay-style gateway).
    #[error("{0}")]
    Limited(crate::domain::limit::Refusal),
    /// A failure of the service itself (database); the cause is logged, never shown.
    #[error("service temporarily unavailable")]
    Internal(#[source] anyhow::Error),
}

impl CertifyError {
    /// The stable sub-code merchants may branch on.
    pub fn sub_code(&self) -> &'static str {
        match self {
            CertifyError::InvalidParameter(_) => "INVALID_PARAMETER",
            CertifyError::BizCodeNotSupported(_) => "BIZ_CODE_NOT_SUPPORTED",
            CertifyError::CertTypeNotSupported => "CERT_TYPE_NOT_SUPPORTED",
            CertifyError::InvalidCertNo(_) => "INVALID_CERT_NO",
            CertifyError::ReturnUrlNotAllowed => "RETURN_URL_NOT_ALLOWED",
            CertifyError::PictureTooLarge(_) => "PICTURE_TOO_LARGE",
            CertifyError::InvalidPicture(_) => "INVALID_PICTURE",
            CertifyError::OuterOrderNoConflict => "OUTER_ORDER_NO_CONFLICT",
            CertifyError::CertifyIdNotExist => "CERTIFY_ID_NOT_EXIST",
            CertifyError::CertifyIdExpired => "CERTIFY_ID_EXPIRED",
            CertifyError::CertifyIdFinished => "CERTIFY_ID_FINISHED",
            CertifyError::Limited(r) if r.limit == crate::domain::limit::Limit::AppPerSecond => {
                "isv.app-call-limited"
            }
            CertifyError::Limited(_) => "isv.method-call-limited",
            CertifyError::Internal(_) => "SYSTEM_ERROR",
        }
    }
}

impl From<sea_orm::DbErr> for CertifyError {
    fn from(e: sea_orm::DbErr) -> Self {
        CertifyError::Internal(e.into())
    }
}
