#![no_main]
//! Fuzz target `cloud_signature`: its body is `shiren::fuzzing::cloud_signature`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::cloud_signature(data));
