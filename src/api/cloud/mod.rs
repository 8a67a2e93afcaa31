//! `POST /` and `GET /`: the cloud ID-verification API (RPC style, version 2019-03-07). Reads the request (chunked
//! bodies included, up to `cloud.max_body_bytes`) and turns the front door's reply into HTTP.
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{handler, Body, Request, Response};

use crate::protocol::aliyun::gateway::{CloudReply, CloudRequest, GateError};
use crate::AppContext;

#[handler]
pub async fn cloud_api(req: &Request, body: Body, Data(ctx): Data<&Arc<AppContext>>) -> Response {
    let limit = ctx.config.cloud.max_body_bytes;
    let reply = match body.into_bytes_limit(limit).await {
        Err(_) => ctx.cloud_gate.reject(GateError::BodyTooLarge(limit)),
        Ok(bytes) => {
            let request = CloudRequest {
                method: req.method().as_str().to_string(),
                query: req.uri().query().unwrap_or("").to_string(),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_ascii_lowercase(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: bytes.to_vec(),
            };
            ctx.cloud_gate.handle(&request).await
        }
    };
    into_response(reply)
}

fn into_response(reply: CloudReply) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json;charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store");
    if let Ok(v) = header::HeaderValue::from_str(&reply.request_id) {
        builder = builder.header("x-acs-request-id", v);
    }
    if let Some(ms) = reply.retry_after_ms {
        builder = builder
            .header("x-acs-retry-after", ms.to_string())
            .header(header::RETRY_AFTER, ((ms + 999) / 1000).to_string());
    }
    builder.body(reply.body)
}

/// The query of a picture link.
#[derive(serde::Deserialize)]
pub struct PictureLink {
    token: String,
}

/// `GET /cloud/picture?token=…`: the kept face image a `MaterialInfo.facialPictureFront.pictureUrl` names, while
/// the link is valid (15 minutes); 404 for anything else (the same answer whatever was wrong with it).
#[handler]
pub async fn picture(
    poem::web::Query(link): poem::web::Query<PictureLink>,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    match ctx.cloud.linked_picture(&link.token).await {
        Ok(Some(jpeg)) => Response::builder()
            .content_type("image/jpeg")
            .header(header::CACHE_CONTROL, "private, no-store")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(jpeg),
        Ok(None) => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("this picture link is unknown or has expired"),
        Err(e) => {
            tracing::error!(error = %e, "picture link failed");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body("internal error")
        }
    }
}
