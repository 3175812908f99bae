//! Errors at the HTTP boundary, mapped to a status code in one place. Every error body is
//! `{"error":{"code","message"}}`; messages never contain secrets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::auth::AuthError;
use crate::queue::QueueError;
use crate::task::ValidationError;

/// Every way an API request fails; each variant is one status code and `code` string.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400, naming the field.
    #[error("{0}")]
    Invalid(ValidationError),
    /// 401: missing, malformed, badly signed or expired token.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// 403: valid token, role too low.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    /// 404: no such task or route; names what was asked for.
    NotFound(String),
    /// 409: the request conflicts with the task's state (e.g. retrying a completed task).
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the limit.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
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

    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "payload_too_large",
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
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
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
        resp.json(body)
    }
}
