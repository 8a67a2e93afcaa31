//! HTTP front doors. Handlers parse, call one service, and map the result; nothing else.
pub mod gateway;
pub mod h5;
pub mod health;

use std::sync::Arc;

use poem::{get, EndpointExt, Route};

use crate::AppContext;

/// All routes of the service.
pub fn routes(ctx: Arc<AppContext>) -> impl poem::Endpoint {
    Route::new()
        .at("/gateway.do", get(gateway::gateway).post(gateway::gateway))
        .at("/h5/certify/:token", get(h5::certify_page))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .data(ctx)
        .around(crate::telemetry::request_span)
}
