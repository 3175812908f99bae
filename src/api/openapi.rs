//! `GET /openapi.json`: the OpenAPI 3 description generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    InstanceStatus, TaskList, WorkerStatus, bulk, dashboard, history, releases, schedules, tasks,
    worker,
};
use crate::queue::QueueStats;
use crate::queue::releases::{Release, ReleaseSource, ReleaseStatus};
use crate::task::{
    Priority, StepEntry, StepName, StepState, TaskRecord, TaskStatus, TaskType, WaitingFor,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "HS256 JWT signed with JWT_SECRET; `role` claim viewer < agent < admin; `iat` and `exp` required, lifetime at most JWT_MAX_TTL",
                        ))
                        .build(),
                ),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ops-worker", description = "Control API of the ops-worker task queue"),
    paths(
        super::health::health, super::health::ready, super::metrics, serve,
        dashboard::index, dashboard::script, dashboard::style,
        dashboard::charts, dashboard::lists, dashboard::panels,
        tasks::submit, tasks::get, super::build::progress, tasks::cancel, tasks::retry, tasks::recent, tasks::failed,
        bulk::delete, bulk::bulk, history::history,
        worker::stats, worker::status, worker::start, worker::stop, worker::restart,
        worker::queue_stats, worker::pause, worker::resume, releases::list,
        schedules::list, schedules::add, schedules::remove, super::events::stream,
    ),
    components(schemas(TaskRecord, TaskType, TaskStatus, Priority, StepEntry, StepName, StepState,
                       WaitingFor, QueueStats, TaskList,
                       InstanceStatus, WorkerStatus, crate::queue::Heartbeat,
                       releases::ReleaseList, Release, ReleaseSource, ReleaseStatus,
                       crate::task::Schedule, crate::task::ScheduleSpec,
                       crate::queue::schedules::ScheduleEntry,
                       crate::queue::build::BuildProgress, crate::queue::build::StateSeen,
                       crate::queue::build::BuildLine,
                       bulk::BulkReport, bulk::BulkResult,
                       history::HistorySeries, history::LiveSeries,
                       crate::queue::history_read::HistoryPoint,
                       crate::queue::history_read::LivePoint,
                       crate::queue::history_read::WaitPercentiles, crate::queue::PerPriority)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
