//! Errors at the HTTP boundary, mapped to a status code in one place. Every error body is
//! `{"error":{"code","message"}}`; messages never contain secrets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::auth::{AuthError, TOKEN_HINT};
use crate::queue::QueueError;
use crate::task::ValidationError;

/// Every way an API request fails; each variant is one status code and `code` string.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400, naming the field.
    #[error("{0}")]
    Invalid(ValidationError),
    /// 401: missing, malformed, badly signed, expired or too long-lived token; says how to get
    /// one.
    #[error("{0}; {TOKEN_HINT}")]
    Unauthorized(#[from] AuthError),
    /// 403: valid token but role too low, or a tokenless request the loopback trust refuses.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    /// 404: no such task or route; names what was asked for.
    NotFound(String),
    /// 409: the request conflicts with the task's state (e.g. retrying a completed task).
    #[error("{0}")]
    Conflict(String),
    /// 408: the request body did not arrive in time.
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    Timeout(std::time::Duration),
    /// 413: body over the limit.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 415: a request body that is not declared as JSON.
    #[error("a request body must be JSON: send it with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 503: Redis (or another dependency) is down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: something this service stored or computed is wrong (e.g. an unreadable reply).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(ValidationError::new(field, message))
    }

    /// The `error.code` of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Redis(_) => ApiError::Unavailable(format!("queue unavailable: {e}")),
            QueueError::Protocol(_) => ApiError::Internal(e.to_string()),
            QueueError::NotReplicated { .. } => ApiError::Unavailable(format!(
                "{e}; submit again with the same idempotency_key to get this task, not a copy"
            )),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let ApiError::Invalid(v) = self {
            body["error"]["field"] = json!(v.field);
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Timeout(_)) {
            // The rest of a late body may still arrive; the connection can't carry another request.
            resp.force_close();
        }
        resp.json(body)
    }
}
