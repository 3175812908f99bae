//! The test-only control endpoints under `/_sim/` (stats, faults, reset); not Vercel's, no auth,
//! not logged.

use super::*;

/// `GET /_sim/stats`: the request log, deployments created per project, 429s served.
pub(super) async fn sim_stats(state: State) -> HttpResponse {
    let g = lock(&state);
    let entry = |e: &LogEntry| json!({"method": e.method, "path": e.path, "status": e.status, "at_ms": e.at_ms});
    let requests: Vec<Value> = g.log.iter().map(entry).collect();
    let body = json!({"requests": requests, "deployments_created": g.created, "rate_limited": g.rate_limited});
    HttpResponse::Ok().json(body)
}

/// The body of `POST /_sim/faults`; every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    /// The next n API calls answer 500.
    fail_next: Option<u64>,
    /// The next n API calls answer 429.
    rate_limit_next: Option<u64>,
    /// `Retry-After` (seconds) of those 429s.
    retry_after_secs: Option<u64>,
    /// Delay added to every API response.
    latency_ms: Option<u64>,
    /// Build duration of deployments created from now on.
    build_secs: Option<f64>,
    /// Probability of a random 500.
    fail_rate: Option<f64>,
    /// New per-minute limit; `null` removes it (hence the raw `Value`).
    rate_limit_per_min: Option<Value>,
    /// Hold every running build (`true`) or let them go on (`false`).
    hold_builds: Option<bool>,
}

/// `POST /_sim/faults`: change the pending faults and settings; answers the current ones.
pub(super) async fn sim_faults(state: State, body: web::Bytes) -> HttpResponse {
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("Invalid faults: {e}")),
    };
    if f.build_secs.is_some_and(|x| !(0.0..=86_400.0).contains(&x)) {
        return bad_request("`build_secs` should be between 0 and 86400.");
    }
    if f.fail_rate.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
        return bad_request("`fail_rate` should be between 0 and 1.");
    }
    let limit = match &f.rate_limit_per_min {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(Some(n)),
            None => {
                return bad_request(
                    "`rate_limit_per_min` should be a non-negative integer or null.",
                );
            }
        },
    };
    let mut g = lock(&state);
    g.fail_next = f.fail_next.unwrap_or(g.fail_next);
    g.rate_limit_next = f.rate_limit_next.unwrap_or(g.rate_limit_next);
    g.retry_after_secs = f
        .retry_after_secs
        .map_or(g.retry_after_secs, |s| s.min(86_400));
    g.config.latency_ms = f
        .latency_ms
        .map_or(g.config.latency_ms, |ms| ms.min(600_000));
    g.config.build_secs = f.build_secs.unwrap_or(g.config.build_secs);
    g.config.fail_rate = f.fail_rate.unwrap_or(g.config.fail_rate);
    g.config.rate_limit_per_min = limit.unwrap_or(g.config.rate_limit_per_min);
    if let Some(hold) = f.hold_builds {
        g.hold_builds(hold, now_ms());
    }
    HttpResponse::Ok().json(json!({
        "fail_next": g.fail_next, "rate_limit_next": g.rate_limit_next,
        "retry_after_secs": g.retry_after_secs, "latency_ms": g.config.latency_ms,
        "build_secs": g.config.build_secs, "fail_rate": g.config.fail_rate,
        "rate_limit_per_min": g.config.rate_limit_per_min, "hold_builds": g.holding,
    }))
}

/// `POST /_sim/reset`: clear the log, counters, pending faults and the rate-limit window.
pub(super) async fn sim_reset(state: State) -> HttpResponse {
    let mut g = lock(&state);
    g.log.clear();
    g.created.clear();
    g.rate_limited = 0;
    (g.window_start_ms, g.window_count, g.blocked_until_ms) = (0, 0, 0);
    (g.fail_next, g.rate_limit_next, g.site_fail_next) = (0, 0, 0);
    HttpResponse::Ok().json(json!({"reset": true}))
}
