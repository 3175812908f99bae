//! [`VercelError`], and reading Vercel's error answers: the body in every shape Vercel uses
//! (`{"error":{"code","message"}}`, `{"err": ...}`, flat `{code,message}`, empty), and how long a
//! 429 asks us to wait (`Retry-After` as seconds or HTTP date, or the body's `limit.reset`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// What went wrong with one call. Messages come from Vercel's body, never from our request, so
/// they cannot contain the token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VercelError {
    /// 429: wait before the next call (any instance).
    #[error("rate limited by Vercel (retry after {:?})", retry_after)]
    RateLimited {
        /// How long Vercel asked us to wait (capped at [`MAX_RETRY_AFTER`]), when it said.
        retry_after: Option<Duration>,
    },
    /// 401/403: the token is missing, wrong, expired or lacks access.
    #[error("Vercel rejected the token ({status} {code}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Vercel's error code (`forbidden`, `invalid_token`), empty when the body had none.
        code: String,
        /// Vercel's error message.
        message: String,
    },
    /// Other 4xx: the request itself is wrong; retrying won't help.
    #[error("Vercel refused the request ({status} {code}): {message}")]
    Client {
        /// The 4xx status.
        status: u16,
        /// Vercel's error code (`bad_request`, `not_found`), empty when the body had none.
        code: String,
        /// Vercel's error message.
        message: String,
    },
    /// 5xx: Vercel's side; worth retrying.
    #[error("Vercel server error ({status}): {message}")]
    Server {
        /// The 5xx status.
        status: u16,
        /// `code: message` from the body (or the body's text).
        message: String,
    },
    /// No HTTP answer: timeout, connection refused, TLS.
    #[error("cannot reach Vercel: {0}")]
    Transport(String),
    /// A 2xx answer we could not decode.
    #[error("unexpected Vercel response: {0}")]
    Decode(String),
}

impl VercelError {
    /// Worth another try later (5xx, transport, rate limit).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            VercelError::Server { .. }
                | VercelError::Transport(_)
                | VercelError::RateLimited { .. }
        )
    }
    /// The status-class label for metrics.
    pub fn status_class(&self) -> &'static str {
        match self {
            VercelError::RateLimited { .. } => "429",
            VercelError::Unauthorized { .. } | VercelError::Client { .. } => "4xx",
            VercelError::Server { .. } => "5xx",
            VercelError::Transport(_) => "error",
            VercelError::Decode(_) => "2xx",
        }
    }
}

/// Pull `(code, message)` out of any error body shape Vercel uses.
pub fn parse_error_body(body: &str) -> (String, String) {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            let text = body.trim();
            return (
                String::new(),
                if text.is_empty() {
                    "(empty body)".into()
                } else {
                    text.chars().take(300).collect()
                },
            );
        }
    };
    let pick = |o: &Value| -> Option<(String, String)> {
        let code = o.get("code").and_then(Value::as_str).unwrap_or("");
        let message = o.get("message").and_then(Value::as_str).unwrap_or("");
        (!code.is_empty() || !message.is_empty()).then(|| (code.to_string(), message.to_string()))
    };
    if let Some(e) = v.get("error") {
        if let Some(p) = pick(e) {
            return p;
        }
        if let Some(s) = e.as_str() {
            return (String::new(), s.to_string());
        }
    }
    if let Some(e) = v.get("err") {
        if let Some(p) = pick(e) {
            return p;
        }
        if let Some(s) = e.as_str() {
            return (String::new(), s.to_string());
        }
    }
    pick(&v).unwrap_or_else(|| (String::new(), "(no error message)".into()))
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date), else the body's
/// `limit.reset` / `error.limit.reset` (epoch seconds), else `X-RateLimit-Reset`.
pub fn rate_limit_wait(headers: &HeaderMap, body: &str, now: SystemTime) -> Option<Duration> {
    rate_limit_wait_unclamped(headers, body, now).map(|d| d.min(MAX_RETRY_AFTER))
}

/// The longest a 429 may hold the cluster: a bogus or hostile `Retry-After` can't stop every
/// instance for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

fn rate_limit_wait_unclamped(headers: &HeaderMap, body: &str, now: SystemTime) -> Option<Duration> {
    let until = |epoch_secs: f64| -> Option<Duration> {
        let offset = Duration::try_from_secs_f64(epoch_secs.max(0.0)).ok()?;
        let at = UNIX_EPOCH.checked_add(offset)?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    };
    if let Some(v) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>() {
            return Duration::try_from_secs_f64(secs.max(0.0))
                .ok()
                .or(Some(MAX_RETRY_AFTER));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let limit = v.get("limit").or_else(|| v.pointer("/error/limit"));
        if let Some(reset) = limit.and_then(|l| l.get("reset")).and_then(Value::as_f64) {
            return until(reset);
        }
    }
    headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn error_bodies_in_every_shape() {
        assert_eq!(
            parse_error_body(r#"{"error":{"code":"forbidden","message":"Not authorized"}}"#),
            ("forbidden".into(), "Not authorized".into())
        );
        assert_eq!(
            parse_error_body(r#"{"err":{"code":"x","message":"y"}}"#),
            ("x".into(), "y".into())
        );
        assert_eq!(
            parse_error_body(r#"{"err":"boom"}"#),
            ("".into(), "boom".into())
        );
        assert_eq!(
            parse_error_body(r#"{"code":"c","message":"m"}"#),
            ("c".into(), "m".into())
        );
        assert_eq!(parse_error_body(""), ("".into(), "(empty body)".into()));
        assert_eq!(
            parse_error_body("<html>bad gateway</html>").1,
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn retry_after_as_seconds_date_or_body_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h, "", now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        assert_eq!(rate_limit_wait(&h, "", now), Some(Duration::from_secs(30)));
        let body = r#"{"error":{"code":"rate_limited","limit":{"remaining":0,"reset":1700000012,"total":100}}}"#;
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), body, now),
            Some(Duration::from_secs(12))
        );
        let flat = r#"{"limit":{"reset":1700000005}}"#;
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), flat, now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(rate_limit_wait(&HeaderMap::new(), "", now), None);
        // Absurd values are capped, never a panic.
        for bogus in ["inf", "1e20", "NaN"] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(bogus));
            assert!(
                rate_limit_wait(&h, "", now).is_some_and(|d| d <= MAX_RETRY_AFTER),
                "{bogus}"
            );
        }
        let far = r#"{"limit":{"reset":1e30}}"#;
        assert!(rate_limit_wait(&HeaderMap::new(), far, now).is_none_or(|d| d <= MAX_RETRY_AFTER));
    }
}
