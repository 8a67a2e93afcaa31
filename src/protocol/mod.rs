//! The two wire protocols merchants' SDKs speak, free of HTTP: the Alipay open-platform gateway (`alipay`) and the
//! cloud ID-verification API (`aliyun`). Each turns a request's bytes into a call on the verification services and
//! the result back into the protocol's signed answer; the `api` module only carries bytes between them and poem.
pub mod alipay;
pub mod aliyun;
