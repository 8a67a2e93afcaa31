//! The leaf vocabulary of shiren: products, states, ID numbers, the calendar, the typed requests and their
//! validation, errors and masking. Free of I/O and of every other module of the crate (a test checks the arrows).
pub mod audit;
pub mod calendar;
pub mod consent;
pub mod error;
pub mod fail;
pub mod idcard;
pub mod limit;
pub mod product;
pub mod request;
pub mod rsa;
pub mod scene;
pub mod seal;
pub mod sensitive;
pub mod state;
pub mod yes_no;
