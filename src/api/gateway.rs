//! `/gateway.do`: reads query and form body into parameters and turns the gateway's reply into HTTP.
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{handler, Body, Request, Response};

use crate::protocol::alipay::error::GatewayError;
use crate::protocol::alipay::gateway::Reply;
use crate::protocol::alipay::params::{split_form, Params};
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
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let (message, code) = page_text(status, &error);
            crate::api::h5::error_page(
                ctx,
                status,
                "无法开始认证 / Cannot start verification",
                message,
                code,
            )
        }
    }
}

/// What the HTML page of a failed `certify` shows: a fixed message and the sub-code, never the error's text, which
/// can carry what the request said (the string-to-sign of a bad signature holds every parameter). Anyone can craft
/// such a link, and the page is on the verification domain users are told to trust. The detail goes to the log:
/// the error's own text, which for a bad signature is not the string-to-sign, escaped (`?`) so that it stays on one
/// line.
fn page_text(status: StatusCode, error: &GatewayError) -> (&'static str, &'static str) {
    let node = error.node();
    tracing::info!(
        code = node.code,
        sub_code = node.sub_code,
        detail = ?error.to_string().chars().take(200).collect::<String>(),
        "certify page refused"
    );
    let message = if status.is_server_error() {
        "服务暂时不可用，请稍后重试。The service is temporarily unavailable. Please try again shortly."
    } else {
        "认证无法开始，请回到商户应用重新发起。This verification could not be started. Please start again from the merchant's app."
    };
    (message, node.sub_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certify::CertifyError;

    #[test]
    fn certify_error_pages_show_a_fixed_message_and_the_sub_code_only() {
        let planted = "您的认证已失效，请立即拨打客服热线 400-000-0000";
        let errors = [
            GatewayError::InvalidSignature {
                string_to_sign: format!("app_id=1&biz_content={planted}"),
            },
            GatewayError::InvalidParameter(planted.into()),
            GatewayError::Business(CertifyError::InvalidParameter(planted.into())),
            GatewayError::InvalidMethod(planted.into()),
        ];
        for e in &errors {
            let (message, code) = page_text(StatusCode::BAD_REQUEST, e);
            assert!(!message.contains(planted) && !code.contains(planted));
            assert_eq!(code, e.node().sub_code);
        }
        let (message, code) = page_text(
            StatusCode::SERVICE_UNAVAILABLE,
            &GatewayError::Internal(anyhow::anyhow!("db down")),
        );
        assert!(message.contains("temporarily unavailable") && !message.contains("db down"));
        assert_eq!(code, "isp.unknow-error");
    }
}
