//! The face engine: model provisioning and conversion, and (to come) detection, landmarks, alignment, embedding
//! and the liveness signals.
pub mod compare;
pub mod detect;
pub mod dlib;
pub mod engine;
pub mod eval;
pub mod geometry;
pub mod image;
pub mod liveness;
pub mod observe;
pub mod onnx_proto;
pub mod provision;
pub mod quality;
pub mod runtime;
pub mod tfjs;
pub mod work;
