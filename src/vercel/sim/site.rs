//! The simulated sites of deployments (not Vercel's API; no auth, not logged): what a release's
//! verification GETs. `GET /_sim/sites/{host}/{path}` answers for the deployment served at
//! `host` (its `url`): 404 while it is not READY, else its site's status and body.
//! `POST /_sim/sites` sets what the sites answer: `{"status", "body"}` for deployments created
//! from now on, or, with `"deployment": "<id or host>"`, for that deployment; `"fail_next": n`
//! makes the next n site requests answer 503.

use super::routes::find_deployment;
use super::state::Site;
use super::*;

/// `GET /_sim/sites/{host}/{tail}`.
pub(super) async fn site(state: State, path: web::Path<(String, String)>) -> HttpResponse {
    let (host, _) = path.into_inner();
    let mut g = lock(&state);
    if g.site_fail_next > 0 {
        g.site_fail_next -= 1;
        return HttpResponse::ServiceUnavailable().body("503: SERVICE_UNAVAILABLE\n");
    }
    let Some(i) = find_deployment(&g, &host) else {
        return HttpResponse::NotFound().body("404: DEPLOYMENT_NOT_FOUND\n");
    };
    let d = &g.deployments[i];
    if d.state(now_ms()) != ReadyState::Ready {
        return HttpResponse::NotFound().body("404: DEPLOYMENT_NOT_READY\n");
    }
    let status = StatusCode::from_u16(d.site.status).unwrap_or(StatusCode::OK);
    let word = if status.as_u16() >= 400 {
        "error"
    } else {
        "ok"
    };
    let body = d
        .site
        .body
        .clone()
        .unwrap_or_else(|| format!("{} {} {word}\n", d.name, d.id));
    HttpResponse::build(status)
        .content_type("text/plain")
        .body(body)
}

/// The body of `POST /_sim/sites`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteChange {
    /// The status to answer (100-599).
    status: Option<u16>,
    /// The body to answer; `null` or absent: the default.
    body: Option<String>,
    /// The deployment (id or host) to change; absent: deployments created from now on.
    deployment: Option<String>,
    /// The next n site requests answer 503.
    fail_next: Option<u64>,
}

/// `POST /_sim/sites`.
pub(super) async fn set_site(state: State, body: web::Bytes) -> HttpResponse {
    let change: SiteChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("Invalid site change: {e}")),
    };
    if change.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return bad_request("`status` should be between 100 and 599.");
    }
    let mut g = lock(&state);
    g.site_fail_next = change.fail_next.unwrap_or(g.site_fail_next);
    let site = Site {
        status: change.status.unwrap_or(200),
        body: change.body,
    };
    match change.deployment {
        Some(key) => {
            let Some(i) = find_deployment(&g, &key) else {
                return not_found("Deployment");
            };
            g.deployments[i].site = site.clone();
        }
        None if change.status.is_some() || site.body.is_some() => g.site = site.clone(),
        None => {}
    }
    HttpResponse::Ok().json(json!({"status": site.status, "body": site.body,
                                   "fail_next": g.site_fail_next}))
}
