//! The face engine: model provisioning and conversion, and (to come) detection, landmarks, alignment, embedding
//! and the liveness signals.
pub mod compare;
pub mod detect;
pub mod engine;
pub mod geometry;
pub mod image;
pub mod liveness;
pub mod models;
pub mod observe;
pub mod quality;
pub mod runtime;
pub mod work;
