//! The model toolchain: provisioning the engine's models from registry packages (`provision`), converting them to
//! ONNX (`tfjs`, `dlib`, through the small ONNX writer `onnx_proto`), and measuring them on labelled photos
//! (`eval`). Nothing here runs while a verification is served.
pub mod dlib;
pub mod eval;
pub mod onnx_proto;
pub mod provision;
pub mod tfjs;
