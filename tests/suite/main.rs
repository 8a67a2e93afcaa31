//! The integration suite: one test binary (one link step of the whole crate instead of one per file), one module per
//! area. Tests of every module run in one process, in parallel: what must not overlap (Chromium, whole-machine
//! timings) takes a lock in `common`, and what is expensive to make (merchant keys, the face engine, the SDK
//! clients) is made once in `common` and shared.
mod common;

mod alipay_sdk;
mod authority_http;
mod browser_page;
mod callback;
mod cloud_actions;
mod cloud_hosted;
mod cloud_sdk;
mod console;
mod face_dlib;
mod face_engine;
mod fault;
mod hardening;
mod hosted_flow;
mod instances;
mod liveness_photo_attacks;
mod liveness_videos;
mod metering;
mod openapi;
mod picture_fetch;
mod privacy;
mod retention;
mod video;
