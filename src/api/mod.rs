//! HTTP front doors. Handlers parse, call one service, and map the result; nothing else.
pub mod admin;
pub mod cloud;
pub mod console;
pub mod gateway;
pub mod h5;
pub mod headers;
pub mod health;

use std::sync::Arc;

use poem::middleware::CookieJarManager;
use poem::{get, post, EndpointExt, Route};

use crate::AppContext;

/// All routes of the service.
pub fn routes(ctx: Arc<AppContext>) -> impl poem::Endpoint {
    let metrics = ctx.metrics.clone();
    let hsts = ctx.public_url.starts_with("https://");
    Route::new()
        .at("/", get(cloud::cloud_api).post(cloud::cloud_api))
        .at("/cloud/picture", get(cloud::picture))
        .at("/gateway.do", get(gateway::gateway).post(gateway::gateway))
        .at("/h5/certify/:token", get(h5::certify_page))
        .at("/h5/certify/:token/challenge", post(h5::challenge))
        .at("/h5/certify/:token/attempt", post(h5::attempt))
        .at("/h5/certify/:token/cancel", post(h5::cancel))
        .at("/h5/assets/:name", get(h5::asset))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(health::metrics))
        .nest(
            admin::PREFIX,
            admin::service().around(|ep, req| async move { headers::no_store(&*ep, req).await }),
        )
        .nest(console::PREFIX, console::routes())
        .data(ctx)
        .with(CookieJarManager::new())
        .around(move |ep, req| async move { headers::hsts(&*ep, req, hsts).await })
        .around(move |ep, req| crate::telemetry::request_span(ep, req, metrics.clone()))
}
