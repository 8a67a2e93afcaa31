//! The face engine: model provisioning and conversion, and (to come) detection, landmarks, alignment, embedding
//! and the liveness signals.
pub mod onnx_proto;
pub mod provision;
pub mod tfjs;
