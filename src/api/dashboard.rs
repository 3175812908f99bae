//! The web dashboard: one page, its script and stylesheet, compiled into the binary (no build step
//! at runtime). The page asks for a token, keeps it in the browser tab's sessionStorage, and calls the
//! API with it as a Bearer token. It follows `GET /api/events` with fetch streaming (the token in
//! the `Authorization` header, never in a URL) and refreshes on each event, polling every 2 s while
//! the stream is down; `#/tasks/{id}` shows one task (record, payload, result, build, events).
//!
//! The script is split by view, each file served on its own path with a strict CSP (no inline
//! script): `charts.js` (the SVG charts), `lists.js` (the task lists, filters, paging, bulk
//! actions), `panels.js` (instances with their controls, schedules, the detail view's extra parts)
//! and `app.js` (token, roles, API calls, the live stream, refresh; loaded last, it starts the page).

use actix_web::HttpResponse;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");
const CHARTS: &str = include_str!("dashboard/charts.js");
const LISTS: &str = include_str!("dashboard/lists.js");
const PANELS: &str = include_str!("dashboard/panels.js");

fn javascript(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(body)
}

/// The dashboard page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "the dashboard page", content_type = "text/html")))]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX)
}

/// The dashboard's script.
#[utoipa::path(get, path = "/dashboard/app.js", tag = "dashboard",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn script() -> HttpResponse {
    javascript(SCRIPT)
}

/// The dashboard's charts.
#[utoipa::path(get, path = "/dashboard/charts.js", tag = "dashboard",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn charts() -> HttpResponse {
    javascript(CHARTS)
}

/// The dashboard's task lists.
#[utoipa::path(get, path = "/dashboard/lists.js", tag = "dashboard",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn lists() -> HttpResponse {
    javascript(LISTS)
}

/// The dashboard's instance, schedule and detail panels.
#[utoipa::path(get, path = "/dashboard/panels.js", tag = "dashboard",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn panels() -> HttpResponse {
    javascript(PANELS)
}

/// The dashboard's stylesheet.
#[utoipa::path(get, path = "/dashboard/style.css", tag = "dashboard",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}
