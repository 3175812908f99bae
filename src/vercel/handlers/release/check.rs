//! The HTTP checks of a release: one GET of the URL to verify, repeated until it answers as
//! expected or the time is up (`verify`), and the same check repeated through the watch window
//! (`watch`). Plain HTTP: no Vercel token or other credential is ever sent to the checked URL.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::task::Verify;

/// Pause between two tries of a failing check.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Longest one GET may take.
const GET_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two checks of the watch window.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How long one check of the watch window may keep failing before the watch fails.
const WATCH_GRACE: Duration = Duration::from_secs(3);

/// One GET of `url`: `Ok(status)` when it answers `verify.expect_status` with a body containing
/// `verify.expect_body`; else what was wrong.
async fn once(
    http: &reqwest::Client,
    url: &str,
    verify: &Verify,
    timeout: Duration,
) -> Result<u16, String> {
    let resp = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {}", e.without_url()))?;
    let status = resp.status().as_u16();
    if status != verify.expect_status {
        return Err(format!(
            "GET {url} answered {status}, expected {}",
            verify.expect_status
        ));
    }
    if let Some(want) = &verify.expect_body {
        let body = body_start(resp)
            .await
            .map_err(|e| format!("GET {url}: cannot read the body: {}", e.without_url()))?;
        if !String::from_utf8_lossy(&body).contains(want.as_str()) {
            return Err(format!(
                "the first {} KiB of {url}'s body do not contain `{want}`",
                BODY_READ_MAX / 1024
            ));
        }
    }
    Ok(status)
}

/// How much of a checked page's body is searched for the expected text: a check reads it every
/// try and every watch interval, so a huge page is never held whole.
const BODY_READ_MAX: usize = 64 * 1024;

/// The first [`BODY_READ_MAX`] bytes of the body.
async fn body_start(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < BODY_READ_MAX {
        let Some(chunk) = resp.chunk().await? else {
            break;
        };
        let room = BODY_READ_MAX - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(body)
}

/// GET `url` until it answers as `verify` expects, for at most `limit`: a summary of the passing
/// check, or the last failure.
pub(super) async fn verify(
    http: &reqwest::Client,
    url: &str,
    verify: &Verify,
    limit: Duration,
) -> Result<String, String> {
    let started = Instant::now();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let left = limit.saturating_sub(started.elapsed());
        let timeout = GET_TIMEOUT.min(left + RETRY_EVERY);
        match once(http, url, verify, timeout).await {
            Ok(status) => return Ok(format!("{url} answered {status} (try {tries})")),
            Err(e) if started.elapsed() + RETRY_EVERY >= limit => {
                return Err(format!(
                    "{e} (still failing after {tries} tries in {} s)",
                    limit.as_secs()
                ));
            }
            Err(_) => tokio::time::sleep(RETRY_EVERY).await,
        }
    }
}

/// Check `url` every [`WATCH_EVERY`] until `until_ms` (epoch ms); each check may fail for up to
/// [`WATCH_GRACE`]. The number of checks that passed, or the failure.
pub(super) async fn watch(
    http: &reqwest::Client,
    url: &str,
    spec: &Verify,
    until_ms: i64,
) -> Result<u32, String> {
    let mut checks = 0u32;
    loop {
        let left = until_ms - Utc::now().timestamp_millis();
        if left <= 0 {
            return Ok(checks);
        }
        verify(http, url, spec, WATCH_GRACE)
            .await
            .map_err(|e| format!("while watching: {e}"))?;
        checks += 1;
        let left = (until_ms - Utc::now().timestamp_millis()).max(0) as u64;
        tokio::time::sleep(WATCH_EVERY.min(Duration::from_millis(left))).await;
    }
}
