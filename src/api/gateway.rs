//! `/gateway.do`: reads query and form body into parameters and turns the gateway's reply into HTTP.
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{handler, Body, Request, Response};

use crate::error::GatewayError;
use crate::gateway::Reply;
use crate::openplatform::params::{split_form, Params};
use crate::AppContext;

#[handler]
pub async fn gateway(req: &Request, body: Body, Data(ctx): Data<&Arc<AppContext>>) -> Response {
    let mut pairs = split_form(req.uri().query().unwrap_or("").as_bytes());
    let raw_method = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        pairs
            .iter()
            .find(|(k, _)| k == b"method")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let content_type = req
        .header(header::CONTENT_TYPE)
        .unwrap_or("")
        .to_ascii_lowercase();
    let limit = ctx.config.max_body_bytes;
    let reply = match body.into_bytes_limit(limit).await {
        Err(_) => ctx.gateway.reject(
            raw_method(&pairs),
            GatewayError::InvalidParameter(format!("request body is larger than {limit} bytes")),
        ),
        Ok(bytes) if bytes.is_empty() => {
            let method = raw_method(&pairs);
            ctx.gateway.handle(Params::decode(pairs), method).await
        }
        Ok(bytes)
            if content_type.is_empty()
                || content_type.starts_with("application/x-www-form-urlencoded") =>
        {
            pairs.extend(split_form(&bytes));
            let method = raw_method(&pairs);
            ctx.gateway.handle(Params::decode(pairs), method).await
        }
        Ok(_) => ctx.gateway.reject(
            raw_method(&pairs),
            GatewayError::InvalidParameter(
                "the body must be application/x-www-form-urlencoded".into(),
            ),
        ),
    };
    into_response(reply, ctx)
}

fn into_response(reply: Reply, ctx: &AppContext) -> Response {
    match reply {
        Reply::Json { body, charset } => Response::builder()
            .status(StatusCode::OK)
            .content_type(format!("application/json;charset={}", charset.http_name()))
            .header(header::CACHE_CONTROL, "no-store")
            .body(body),
        Reply::Redirect(url) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .header(header::CACHE_CONTROL, "no-store")
            .header("Referrer-Policy", "no-referrer")
            .finish(),
        Reply::Page { status, error } => {
            let node = error.node();
            crate::api::h5::error_page(
                ctx,
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "无法开始认证 / Cannot start verification",
                &node.sub_msg,
                node.sub_code,
            )
        }
    }
}
