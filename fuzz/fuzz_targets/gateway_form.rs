#![no_main]
//! Fuzz target `gateway_form`: its body is `shiren::fuzzing::gateway_form`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| shiren::fuzzing::gateway_form(data));
