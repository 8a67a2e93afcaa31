//! Hostile input against a real `shiren serve`: every fault of the hardening issue reproduced, now refused, with the
//! server still up and its memory within budget. Each area of attack is a module.
mod fuzz;
mod fuzz_corpus;
mod images;
mod limits;
mod protocol;
mod schema;
mod session;
mod small;
