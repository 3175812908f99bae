//! Helpers of the Vercel pipeline tests: submit a task, wait for its status, read what the
//! simulator saw, which events a task emitted and a release's step history.

use std::time::Duration;

use ops_worker::queue::QueueStore;
use ops_worker::task::{TaskRecord, TaskStatus};
use serde_json::{Value, json};

use super::{eventually, task};

/// How long a Vercel task may take to reach a status (builds, retries, a loaded machine).
pub const TASK_WAIT: Duration = Duration::from_secs(90);

pub async fn wait_status(q: &QueueStore, id: &str, want: TaskStatus) -> TaskRecord {
    eventually(TASK_WAIT, &format!("task {id} {want}"), || async {
        q.get(id).await.ok()?.filter(|r| r.status == want)
    })
    .await
}

pub async fn submit(q: &QueueStore, ty: &str, payload: Value, max_retries: u32) -> String {
    let mut t = task(ty, "P1", payload);
    t.max_retries = max_retries;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    id
}

pub fn requests(stats: &Value) -> Vec<(String, String, u64, u64)> {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["at_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Run a deploy of `project` to READY and answer its deployment id.
pub async fn deployed(q: &QueueStore, project: &str) -> String {
    deployed_with(q, json!({"project": project})).await
}

/// Run a deploy with `payload` to READY and answer its deployment id.
pub async fn deployed_with(q: &QueueStore, payload: Value) -> String {
    let dep = submit(q, "deploy", payload, 1).await;
    wait_status(q, &dep, TaskStatus::Completed)
        .await
        .result
        .unwrap()["deployment_id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn event_kinds(q: &QueueStore, id: &str) -> Vec<String> {
    q.events(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.task_id == id)
        .map(|e| e.event)
        .collect()
}

/// The history as `step:state` words.
pub fn history(rec: &TaskRecord) -> Vec<String> {
    rec.steps
        .iter()
        .map(|e| {
            let state = serde_json::to_value(e.state).unwrap();
            format!("{}:{}", e.step, state.as_str().unwrap())
        })
        .collect()
}
