//! Response headers set around whole groups of routes: HSTS on every response of an https deployment, and
//! `Cache-Control: no-store` on every admin API answer (errors included).
use poem::http::header::{HeaderValue, CACHE_CONTROL, STRICT_TRANSPORT_SECURITY};
use poem::{Endpoint, IntoResponse, Request, Response};

/// HSTS value: a year, as browsers' preload rules ask for; subdomains are the operator's business.
pub const HSTS: &str = "max-age=31536000";

/// Sets `name: value` on the response of `ep`, replacing what the handler set, also on error responses.
async fn with_header<E: Endpoint>(
    ep: &E,
    req: Request,
    name: poem::http::HeaderName,
    value: &'static str,
) -> poem::Result<Response> {
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
    Ok(resp)
}

/// `Strict-Transport-Security` on every response when `on` (the public URL is https).
pub async fn hsts<E: Endpoint>(ep: &E, req: Request, on: bool) -> poem::Result<Response> {
    if on {
        with_header(ep, req, STRICT_TRANSPORT_SECURITY, HSTS).await
    } else {
        Ok(ep.call(req).await?.into_response())
    }
}

/// `Cache-Control: no-store`: answers with operators' data stay out of every cache.
pub async fn no_store<E: Endpoint>(ep: &E, req: Request) -> poem::Result<Response> {
    with_header(ep, req, CACHE_CONTROL, "no-store").await
}
