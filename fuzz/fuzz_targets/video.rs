#![no_main]
//! Fuzz target `video`: its body is `shiren::fuzzing::video`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::video(data));
