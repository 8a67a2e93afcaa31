//! Outbound requests to merchant-supplied URLs, and which addresses they may reach.
pub mod address;
pub mod fetch;

pub use fetch::{FetchError, FetchPolicy, PictureFetcher};
