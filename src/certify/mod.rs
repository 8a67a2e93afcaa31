//! The verification: request validation, the state machine, and the service that stores and moves it.
pub mod challenge;
pub mod decision;
pub mod hosted;
pub mod photo;
pub mod reference;
pub mod service;
pub mod video;

pub use crate::domain::error::CertifyError;
pub use service::{CertifyService, Clock, QueryResult, SystemClock};
