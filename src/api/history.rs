//! `GET /api/stats/history`: the series behind the dashboard's charts. `range=10m` is the live
//! part, per second, from the `tp:` counters; `1h`, `6h` and `24h` come from the per-minute
//! history kept in Redis (`queue/history.rs`), summed into steps of `step`.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Viewer;
use super::error::ApiError;
use crate::queue::history::WAIT_BOUNDS_MS;
use crate::queue::history_read::{HistoryPoint, LivePoint};

/// The window asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// The last 10 minutes, per second.
    Live,
    /// The last N minutes of the per-minute history.
    Minutes(u64),
}

/// `GET /api/stats/history` with `range=10m`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveSeries {
    /// `10m`.
    pub range: String,
    /// 1: one point per second.
    pub step_secs: u64,
    /// Completed and failed per second, oldest first (Redis clock).
    pub points: Vec<LivePoint>,
}

/// `GET /api/stats/history` with `range=1h|6h|24h`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistorySeries {
    /// `1h`, `6h` or `24h`.
    pub range: String,
    /// Seconds per point.
    pub step_secs: u64,
    /// Upper bounds (ms) of the wait-time buckets the percentiles come from.
    pub wait_bounds_ms: Vec<u64>,
    /// Oldest first; the last one is the current, still filling, step.
    pub points: Vec<HistoryPoint>,
}

fn parse_range(q: &HashMap<String, String>) -> Result<(Range, &'static str), ApiError> {
    match q.get("range").map(String::as_str) {
        None | Some("") | Some("1h") => Ok((Range::Minutes(60), "1h")),
        Some("10m") => Ok((Range::Live, "10m")),
        Some("6h") => Ok((Range::Minutes(360), "6h")),
        Some("24h") => Ok((Range::Minutes(1440), "24h")),
        Some(_) => Err(ApiError::invalid(
            "range",
            "must be one of 10m, 1h, 6h, 24h",
        )),
    }
}

/// The step in minutes: `1m`, `5m`, `15m` or `1h`, at most the range; the default is 1 minute
/// for 1 h and 5 minutes for 6 h and 24 h.
fn parse_step(q: &HashMap<String, String>, range_min: u64) -> Result<u64, ApiError> {
    let step = match q.get("step").map(String::as_str) {
        None | Some("") => return Ok(if range_min <= 60 { 1 } else { 5 }),
        Some("1m") => 1,
        Some("5m") => 5,
        Some("15m") => 15,
        Some("1h") => 60,
        Some(_) => return Err(ApiError::invalid("step", "must be one of 1m, 5m, 15m, 1h")),
    };
    if step > range_min {
        return Err(ApiError::invalid(
            "step",
            "must not be longer than the range",
        ));
    }
    Ok(step)
}

/// The charts' series: live per second, or the per-minute history in steps.
#[utoipa::path(get, path = "/api/stats/history", tag = "queue",
    params(
        ("range" = Option<String>, Query, description = "10m (live, per second), 1h (default), 6h or 24h"),
        ("step" = Option<String>, Query, description = "1m, 5m, 15m or 1h (not with 10m); default 1m for 1h, else 5m")),
    responses((status = 200, description = "range=10m answers a LiveSeries, the others a HistorySeries", body = HistorySeries),
              (status = 400, description = "invalid parameter, named in error.field")),
    security(("bearer" = [])))]
pub async fn history(
    state: web::Data<AppState>,
    _auth: Viewer,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (range, name) = parse_range(&q)?;
    match range {
        Range::Live => {
            if q.get("step").is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::invalid(
                    "step",
                    "the 10m range is per second; leave step out",
                ));
            }
            let points = state.store.live_throughput().await?;
            Ok(HttpResponse::Ok().json(LiveSeries {
                range: name.into(),
                step_secs: 1,
                points,
            }))
        }
        Range::Minutes(minutes) => {
            let step = parse_step(&q, minutes)?;
            let points = state.store.history(minutes, step).await?;
            Ok(HttpResponse::Ok().json(HistorySeries {
                range: name.into(),
                step_secs: step * 60,
                wait_bounds_ms: WAIT_BOUNDS_MS.to_vec(),
                points,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ranges_and_steps_are_checked() {
        assert_eq!(parse_range(&q(&[])).unwrap().0, Range::Minutes(60));
        assert_eq!(parse_range(&q(&[("range", "10m")])).unwrap().0, Range::Live);
        assert!(parse_range(&q(&[("range", "2d")])).is_err());
        assert_eq!(parse_step(&q(&[]), 1440).unwrap(), 5);
        assert_eq!(parse_step(&q(&[]), 60).unwrap(), 1);
        assert_eq!(parse_step(&q(&[("step", "1h")]), 1440).unwrap(), 60);
        assert!(parse_step(&q(&[("step", "1h")]), 60).is_ok());
        assert!(parse_step(&q(&[("step", "7m")]), 60).is_err());
    }
}
