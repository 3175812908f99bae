//! What every request and response passes through, whatever the route: the connection timeouts,
//! the request-body rules ([`body_rules`]: JSON only, size limit, read deadline) and the security
//! headers ([`security_headers`]). `serve_api` wires them around the whole app, so a route can't
//! forget them.

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::web::{self, Bytes, BytesMut};
use futures::StreamExt;

use super::AppState;
use super::error::ApiError;

/// A connection must deliver a request's head (request line and headers) this soon after it
/// opens; a silent connection is answered 408 and closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A request's body must have arrived this soon after its head (408 otherwise).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection is closed after this long.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A connection being closed gets this long to acknowledge before it is dropped.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The body limit when no [`AppState`] is registered (the default of `API_BODY_LIMIT_BYTES`).
const FALLBACK_BODY_LIMIT: usize = 65_536;

/// The page may load its own script, style and data only; no frames, no `<base>`, forms post
/// back here only.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The headers every response carries (page, API, errors alike).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
}

/// Middleware: read the whole body before the handler runs, within [`BODY_TIMEOUT`] (408) and
/// the body limit (413); a `POST` with a body must say `Content-Type: application/json` (415).
/// The handler then reads the body from memory.
pub async fn body_rules<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match checked_body(&mut req).await {
        Ok(body) => {
            req.set_payload(Payload::from(body));
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// The request's body, read whole, or why it is refused.
async fn checked_body(req: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(FALLBACK_BODY_LIMIT, |s| s.body_limit);
    let declared = declared_length(req.headers());
    let must_be_json = req.method() == Method::POST && !is_json(req.headers());
    if must_be_json && declared.is_some_and(|n| n > 0) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, read_all(req.take_payload(), limit))
        .await
        .map_err(|_| ApiError::Timeout(BODY_TIMEOUT))??;
    if must_be_json && !body.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(body)
}

/// Every chunk of `payload`, at most `limit` bytes (413 beyond).
pub(super) async fn read_all(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::TooLarge(limit),
            other => ApiError::invalid("body", format!("could not read the body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `Content-Length`, when the request states one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `Content-Type: application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn json_means_application_json_with_any_parameters() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        for not in [
            "text/plain",
            "application/jsonp",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!with(not), "{not}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
