//! The verification: request validation, the state machine, and the service that stores and moves it.
pub mod challenge;
pub mod cloud;
pub mod decision;
pub mod error;
pub mod hosted;
pub mod idcard;
pub mod product;
pub mod reference;
pub mod request;
pub mod service;
pub mod state;
pub mod video;

pub use error::CertifyError;
pub use service::{CertifyService, Clock, QueryResult, SystemClock};
