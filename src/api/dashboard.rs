//! The web dashboard: one page, its script and stylesheet, compiled into the binary (no build step
//! at runtime). The page asks for a token, keeps it in the browser tab's sessionStorage, and calls the
//! API with it as a Bearer token. It follows `GET /api/events` with fetch streaming (the token in
//! the `Authorization` header, never in a URL) and refreshes on each event, polling every 2 s while
//! the stream is down; `#/tasks/{id}` shows one task (record, payload, result, build, events).

use actix_web::HttpResponse;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

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
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

/// The dashboard's stylesheet.
#[utoipa::path(get, path = "/dashboard/style.css", tag = "dashboard",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}
