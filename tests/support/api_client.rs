//! Typed requests to a running [`Worker`]'s HTTP API: tokens, an authenticated call, task
//! submission and the fixtures API tests keep needing (a pending task, a dead-lettered task, the
//! instance list). Every test file that starts a worker can use them.

use std::time::Duration;

use ops_worker::api::auth::{JwtKeys, Role};
use ops_worker::config::Secret;
use ops_worker::task::TaskStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TEST_JWT_SECRET, Worker, eventually};

/// How long the fixtures below wait for the worker to process a task.
const FIXTURE_TIMEOUT: Duration = Duration::from_secs(60);

/// An RFC 3339 time a week from now: far enough that a task waits, within `TASK_MAX_DELAY`.
pub fn week_ahead() -> String {
    (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339()
}

/// A token for `role`, signed with [`TEST_JWT_SECRET`] (the secret every test worker gets).
pub fn token(role: Role) -> String {
    JwtKeys::new(&Secret::new(TEST_JWT_SECRET), false)
        .mint("test", role, 3600)
        .expect("mint test token")
}

impl Worker {
    /// `method path` with an optional bearer token and JSON body; answers the status and the body
    /// as JSON (a non-JSON body comes back as a JSON string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request to the worker");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path` with a viewer token.
    pub async fn view(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&token(Role::Viewer)), None)
            .await
    }

    /// `POST /tasks` with an agent token.
    pub async fn submit(&self, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/tasks",
            Some(&token(Role::Agent)),
            Some(body),
        )
        .await
    }

    /// The id of a task submitted over HTTP that stays pending (run_at a week ahead), e.g. to
    /// cancel.
    pub async fn waiting_task(&self) -> String {
        let (s, v) = self
            .submit(json!({"type": "noop", "run_at": week_ahead()}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["task_id"].as_str().expect("task_id").to_string()
    }

    /// The id of a task submitted over HTTP and dead-lettered by the pool, e.g. to retry.
    pub async fn failed_task(&self) -> String {
        let (s, v) = self
            .submit(json!({"type": "noop", "payload": {"fail": true}, "max_retries": 0}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["task_id"].as_str().expect("task_id").to_string();
        let q = self.store().await;
        eventually(FIXTURE_TIMEOUT, &format!("task {id} failed"), || async {
            let r = q.get(&id).await.ok()??;
            (r.status == TaskStatus::Failed).then_some(())
        })
        .await;
        id
    }

    /// `(instance, status)` of every instance `GET /api/worker/status` lists.
    pub async fn instance_statuses(&self) -> Vec<(String, String)> {
        let (s, v) = self
            .call(
                Method::GET,
                "/api/worker/status",
                Some(&token(Role::Viewer)),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["instances"]
            .as_array()
            .expect("instances array")
            .iter()
            .map(|i| {
                (
                    i["instance"].as_str().unwrap_or_default().to_string(),
                    i["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}
