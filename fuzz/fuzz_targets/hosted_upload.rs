#![no_main]
//! Fuzz target `hosted_upload`: its body is `shiren::fuzzing::hosted_upload`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::hosted_upload(data));
