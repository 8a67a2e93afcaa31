//! Hostile input against a real `shiren serve`: every fault of the hardening issue reproduced, now refused, with the
//! server still up and its memory within budget. One test binary; each area of attack is a module.
#[path = "../common/mod.rs"]
mod common;

mod fuzz;
mod fuzz_corpus;
mod images;
mod limits;
mod protocol;
mod schema;
mod session;
mod small;
