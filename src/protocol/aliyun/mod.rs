//! The cloud ID-verification API (version 2019-03-07): ACS request signing (`acs`), the front door that
//! authenticates a call (`gateway`), the parameters (`params`), the actions over the verification services
//! (`actions`) and the result codes (`codes`).
pub mod acs;
pub mod actions;
pub mod codes;
pub mod gateway;
pub mod params;
