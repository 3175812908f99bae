//! The path of every request: the request log, then forced faults, Bearer auth, query syntax and
//! the rate limit (see the parent module's docs for the order), then the latency and the
//! `X-RateLimit-*` headers on the way out.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use futures::future::LocalBoxFuture;

use super::*;

/// What the gate decided for one request: log seq, latency, early response, extra headers.
type Arrival = (
    Option<u64>,
    u64,
    Option<HttpResponse>,
    Vec<(HeaderName, HeaderValue)>,
);

/// The response future of one request, with a boxed body.
type Tracked = LocalBoxFuture<'static, Result<ServiceResponse, actix_web::Error>>;

/// Every request: log it and run it through the gate ([`arrive`]), answer it (early, or by the
/// routes) after the configured latency, then record its status and add the rate-limit headers.
pub(super) fn track<S, B>(st: &State, req: ServiceRequest, srv: &S) -> Tracked
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let (seq, latency, early, headers) = arrive(st, &req);
    let fut: Tracked = match early {
        Some(resp) => Box::pin(futures::future::ready(Ok(req.into_response(resp)))),
        None => {
            let call = srv.call(req);
            Box::pin(async move { call.await.map(|r| r.map_into_boxed_body()) })
        }
    };
    let st = st.clone();
    Box::pin(async move {
        if latency > 0 {
            actix_rt::time::sleep(Duration::from_millis(latency)).await;
        }
        let mut res = fut.await;
        let status = match &res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        if let Some(e) = lock(&st).log.iter_mut().rev().find(|e| Some(e.seq) == seq) {
            e.status = status.as_u16();
        }
        if let Ok(r) = &mut res {
            for (name, value) in headers {
                r.headers_mut().insert(name, value);
            }
        }
        res
    })
}

/// Log an arriving API call and run it through faults, auth and the rate limit.
fn arrive(st: &Mutex<Inner>, req: &ServiceRequest) -> Arrival {
    if req.path().starts_with("/_sim/") {
        return (None, 0, None, Vec::new());
    }
    let now = now_ms();
    let mut g = lock(st);
    let seq = g.next_seq;
    g.next_seq += 1;
    let (method, path) = (req.method().to_string(), req.path().to_owned());
    if g.log.len() >= MAX_LOG {
        // A long-running simulator keeps the newest entries only.
        g.log.drain(..MAX_LOG / 5);
    }
    g.log.push(LogEntry {
        seq,
        method,
        path,
        status: 0,
        at_ms: now,
    });
    let mut headers = Vec::new();
    let early = gate(&mut g, req, now, &mut headers);
    (Some(seq), g.config.latency_ms, early, headers)
}

/// Faults, auth and rate limit; `Some` answers the call at once. Fills `X-RateLimit-*` headers.
fn gate(
    g: &mut Inner,
    req: &ServiceRequest,
    now: i64,
    headers: &mut Vec<(HeaderName, HeaderValue)>,
) -> Option<HttpResponse> {
    let limit = g.config.rate_limit_per_min;
    if let Some(resp) = forced_fault(g, now, limit) {
        return Some(resp);
    }
    if let Some(resp) = unauthorized(g, req) {
        return Some(resp);
    }
    if let Err(msg) = parse_query(req.query_string()) {
        return Some(bad_request(msg));
    }
    if now < g.blocked_until_ms {
        let until = g.blocked_until_ms;
        return Some(too_many(g, limit.unwrap_or(DEFAULT_LIMIT), until, now));
    }
    if let Some(limit) = limit
        && let Some(resp) = count_in_window(g, limit, now, headers)
    {
        return Some(resp);
    }
    if g.config.fail_rate > 0.0 && rand::random::<f64>() < g.config.fail_rate {
        return Some(internal_error());
    }
    None
}

/// The faults `POST /_sim/faults` queued: a forced 429 (which also blocks until its reset), else a
/// forced 500.
fn forced_fault(g: &mut Inner, now: i64, limit: Option<u32>) -> Option<HttpResponse> {
    if g.rate_limit_next > 0 {
        g.rate_limit_next -= 1;
        let until = now.saturating_add((g.retry_after_secs as i64).saturating_mul(1000));
        g.blocked_until_ms = g.blocked_until_ms.max(until);
        return Some(too_many(g, limit.unwrap_or(DEFAULT_LIMIT), until, now));
    }
    if g.fail_next > 0 {
        g.fail_next -= 1;
        return Some(internal_error());
    }
    None
}

/// Vercel's 401 unless the request carries `Bearer <the configured token>`.
fn unauthorized(g: &Inner, req: &ServiceRequest) -> Option<HttpResponse> {
    let auth = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let ok = auth
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim() == g.config.token
        });
    if ok {
        return None;
    }
    // Like Vercel: say whether the token was missing or invalid, never echo it.
    let flag = if auth.is_some() {
        "invalidToken"
    } else {
        "missingToken"
    };
    let body = json!({"error": {"code": "forbidden", "message": "Not authorized", flag: true}});
    Some(HttpResponse::Unauthorized().json(body))
}

/// The fixed 60 s window of `limit` calls: a 429 (blocking until the window's end) once it is
/// used up, else count the call and report the window in `X-RateLimit-*`.
fn count_in_window(
    g: &mut Inner,
    limit: u32,
    now: i64,
    headers: &mut Vec<(HeaderName, HeaderValue)>,
) -> Option<HttpResponse> {
    if now >= g.window_start_ms + WINDOW_MS {
        g.window_start_ms = now;
        g.window_count = 0;
    }
    let reset = g.window_start_ms + WINDOW_MS;
    if g.window_count >= limit {
        g.blocked_until_ms = reset;
        return Some(too_many(g, limit, reset, now));
    }
    g.window_count += 1;
    let remaining = i64::from(limit - g.window_count);
    let values = [i64::from(limit), remaining, (reset + 999) / 1000];
    let names = [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ];
    for (name, v) in names.into_iter().zip(values) {
        headers.push((HeaderName::from_static(name), HeaderValue::from(v)));
    }
    None
}

/// Vercel's 429: `Retry-After`, `X-RateLimit-*` and `error.limit`; `reset` is whole epoch seconds.
fn too_many(g: &mut Inner, limit: u32, until_ms: i64, now: i64) -> HttpResponse {
    g.rate_limited += 1;
    let reset = (until_ms + 999) / 1000;
    let retry_after = ((until_ms - now + 999) / 1000).max(0);
    let body = json!({"error": {"code": "rate_limited", "message": "Rate limit exceeded",
        "limit": {"remaining": 0, "reset": reset, "resetMs": reset * 1000, "total": limit}}});
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", retry_after.to_string()))
        .insert_header(("X-RateLimit-Limit", limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", "0"))
        .insert_header(("X-RateLimit-Reset", reset.to_string()))
        .json(body)
}
