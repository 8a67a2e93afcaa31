#![no_main]
//! Fuzz target `biz_params`: its body is `shiren::fuzzing::biz_params`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::biz_params(data));
