//! The Alipay open-platform wire rules, free of I/O: request parameters and their charset,
//! the string-to-sign, RSA2/RSA signatures, and the signed response envelope.
pub mod envelope;
pub mod error;
pub mod gateway;
pub mod key_file;
pub mod merchant;
pub mod params;

pub use crate::domain::rsa::{AppPublicKey, KeyError, SignType, SigningKey};
pub use envelope::{error_envelope, method_envelope, response_node_name};
pub use params::{sign_content, Charset, Params};
