#![no_main]
//! Fuzz target `image_gate`: its body is `shiren::fuzzing::image_gate`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::image_gate(data));
