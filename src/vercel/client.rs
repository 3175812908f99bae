//! The real Vercel REST client: reqwest with rustls, Bearer token, `teamId` when set,
//! `VERCEL_API_URL` override, a timeout per request.
//!
//! One call = one [`ApiRequest`] sent once by [`VercelClient::send`]; rate limiting and retries are
//! the VercelActor's job. Responses are decoded tolerantly: unknown fields are ignored and every
//! field we don't strictly need is optional. Error bodies are parsed in every shape Vercel uses
//! (`{"error":{"code","message"}}`, `{"err": ...}`, flat `{code,message}`, empty), and rate limits
//! are read from `Retry-After` (seconds or HTTP date) or the body's `limit.reset`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{Secret, VercelSettings};

mod ready_state;

pub use ready_state::ReadyState;

/// Which API operation a request is (a bounded metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateDeployment,
    GetDeployment,
    ListDeployments,
    CancelDeployment,
    Promote,
    Rollback,
    GetUser,
    GetProject,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Operation::CreateDeployment,
        Operation::GetDeployment,
        Operation::ListDeployments,
        Operation::CancelDeployment,
        Operation::Promote,
        Operation::Rollback,
        Operation::GetUser,
        Operation::GetProject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateDeployment => "create_deployment",
            Operation::GetDeployment => "get_deployment",
            Operation::ListDeployments => "list_deployments",
            Operation::CancelDeployment => "cancel_deployment",
            Operation::Promote => "promote",
            Operation::Rollback => "rollback",
            Operation::GetUser => "get_user",
            Operation::GetProject => "get_project",
        }
    }
}

/// HTTP method of an [`ApiRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
}

/// One Vercel API call, described as data so the actor can rate-limit and retry it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub op: Operation,
    pub method: Method,
    /// Path below the API base, e.g. `/v13/deployments/dpl_x` (already percent-safe).
    pub path: String,
    /// Extra query parameters (`teamId` is added by the client).
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Safe to send again after a timeout or 5xx. False for creating a deployment: Vercel may
    /// have created it before the answer was lost, so the retry belongs to the deploy handler,
    /// which first looks for a deployment it already created.
    pub idempotent: bool,
}

impl ApiRequest {
    fn new(op: Operation, method: Method, path: String) -> Self {
        Self {
            op,
            method,
            path,
            query: Vec::new(),
            body: None,
            idempotent: true,
        }
    }
}

fn seg(s: &str) -> String {
    // Path segments we build come from task payloads: percent-encode every byte outside the
    // unreserved set (UTF-8 bytes for non-ASCII characters).
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `POST /v13/deployments` arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateDeployment {
    /// Deployment name; Vercel requires it.
    pub name: String,
    /// Target project (overrides `name` for project selection).
    pub project: Option<String>,
    /// `production`, `preview` (omitted), or a custom environment.
    pub target: Option<String>,
    /// Git source object (`{"type":"github","org","repo","ref","sha"}` etc.).
    pub git_source: Option<Value>,
    /// Redeploy this existing deployment.
    pub deployment_id: Option<String>,
    /// Free-form string metadata (PR number, branch, commit, task id).
    pub meta: BTreeMap<String, String>,
}

impl CreateDeployment {
    /// The JSON body Vercel expects.
    pub fn body(&self) -> Value {
        let mut b = Map::new();
        b.insert("name".into(), json!(self.name));
        if let Some(p) = &self.project {
            b.insert("project".into(), json!(p));
        }
        if let Some(t) = self.target.as_deref().filter(|t| *t != "preview") {
            b.insert("target".into(), json!(t));
        }
        if let Some(g) = &self.git_source {
            b.insert("gitSource".into(), g.clone());
        }
        if let Some(d) = &self.deployment_id {
            b.insert("deploymentId".into(), json!(d));
        }
        if !self.meta.is_empty() {
            b.insert("meta".into(), json!(self.meta));
        }
        Value::Object(b)
    }
}

/// The request builders for every Vercel operation the worker uses: create, get, list and cancel
/// deployments, promote, rollback, the token's user and a project.
pub mod requests {
    use super::*;

    pub fn create_deployment(args: &CreateDeployment) -> ApiRequest {
        let mut r = ApiRequest::new(
            Operation::CreateDeployment,
            Method::Post,
            "/v13/deployments".into(),
        );
        r.body = Some(args.body());
        r.idempotent = false;
        r
    }
    /// The newest deployments of a project (to find one this task already created).
    pub fn project_deployments(project: &str, limit: u32) -> ApiRequest {
        let mut r = ApiRequest::new(
            Operation::ListDeployments,
            Method::Get,
            "/v6/deployments".into(),
        );
        r.query.push(("projectId".into(), project.into()));
        r.query.push(("limit".into(), limit.to_string()));
        r
    }
    pub fn get_deployment(id_or_url: &str) -> ApiRequest {
        ApiRequest::new(
            Operation::GetDeployment,
            Method::Get,
            format!("/v13/deployments/{}", seg(id_or_url)),
        )
    }
    /// The latest deployment of a project (optionally of one target).
    pub fn latest_deployment(project: &str, target: Option<&str>) -> ApiRequest {
        let mut r = ApiRequest::new(
            Operation::ListDeployments,
            Method::Get,
            "/v6/deployments".into(),
        );
        r.query.push(("projectId".into(), project.into()));
        r.query.push(("limit".into(), "1".into()));
        if let Some(t) = target {
            r.query.push(("target".into(), t.into()));
        }
        r
    }
    pub fn cancel_deployment(id: &str) -> ApiRequest {
        ApiRequest::new(
            Operation::CancelDeployment,
            Method::Patch,
            format!("/v12/deployments/{}/cancel", seg(id)),
        )
    }
    pub fn promote(project: &str, deployment: &str) -> ApiRequest {
        ApiRequest::new(
            Operation::Promote,
            Method::Post,
            format!("/v10/projects/{}/promote/{}", seg(project), seg(deployment)),
        )
    }
    pub fn rollback(project: &str, deployment: &str) -> ApiRequest {
        ApiRequest::new(
            Operation::Rollback,
            Method::Post,
            format!("/v1/projects/{}/rollback/{}", seg(project), seg(deployment)),
        )
    }
    /// The newest deployments visible to the token (and team).
    pub fn list_deployments(limit: u32) -> ApiRequest {
        let mut r = ApiRequest::new(
            Operation::ListDeployments,
            Method::Get,
            "/v6/deployments".into(),
        );
        r.query.push(("limit".into(), limit.to_string()));
        r
    }
    pub fn get_user() -> ApiRequest {
        ApiRequest::new(Operation::GetUser, Method::Get, "/v2/user".into())
    }
    pub fn get_project(id_or_name: &str) -> ApiRequest {
        ApiRequest::new(
            Operation::GetProject,
            Method::Get,
            format!("/v9/projects/{}", seg(id_or_name)),
        )
    }
}

/// A deployment as Vercel returns it (v13 object or v6 list item); only what we use.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Deployment {
    /// `id` in v13 objects.
    #[serde(default)]
    pub id: Option<String>,
    /// `uid` in v6 list items.
    #[serde(default)]
    pub uid: Option<String>,
    /// Hostname without scheme; reported in task results and events.
    #[serde(default)]
    pub url: Option<String>,
    /// The deployment name; a redeploy naming only the deployment takes its name from here.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the build is (v13 objects and v6 list items).
    #[serde(default, rename = "readyState")]
    pub ready_state: Option<ReadyState>,
    /// v6 list items carry `state` too.
    #[serde(default)]
    pub state: Option<ReadyState>,
    /// Owning project.
    #[serde(default, rename = "projectId")]
    pub project_id: Option<String>,
    /// Why a build failed; appended to the task's failure reason.
    #[serde(default, rename = "errorMessage")]
    pub error_message: Option<String>,
    /// `production`, or null for a preview; reported in task results.
    #[serde(default)]
    pub target: Option<String>,
    /// String metadata; ours carries `ops_task_id`.
    #[serde(default)]
    pub meta: Option<Value>,
}

impl Deployment {
    pub fn deployment_id(&self) -> Option<&str> {
        self.id.as_deref().or(self.uid.as_deref())
    }
    /// `readyState`, else `state`, else `UNKNOWN` (as [`ReadyState::Unknown`]).
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
            .as_ref()
            .or(self.state.as_ref())
            .cloned()
            .unwrap_or_else(|| ReadyState::Unknown(ReadyState::ABSENT.into()))
    }
    /// The build is over: no later poll will see another state.
    pub fn is_final(&self) -> bool {
        self.ready_state().is_final()
    }
}

/// `GET /v6/deployments`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentList {
    #[serde(default)]
    pub deployments: Vec<Deployment>,
}

/// `GET /v2/user`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserResponse {
    pub user: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// What went wrong with one call. Messages come from Vercel's body, never from our request, so
/// they cannot contain the token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VercelError {
    /// 429: wait before the next call (any instance).
    #[error("rate limited by Vercel (retry after {:?})", retry_after)]
    RateLimited { retry_after: Option<Duration> },
    /// 401/403: the token is missing, wrong, expired or lacks access.
    #[error("Vercel rejected the token ({status} {code}): {message}")]
    Unauthorized {
        status: u16,
        code: String,
        message: String,
    },
    /// Other 4xx: the request itself is wrong; retrying won't help.
    #[error("Vercel refused the request ({status} {code}): {message}")]
    Client {
        status: u16,
        code: String,
        message: String,
    },
    /// 5xx: Vercel's side; worth retrying.
    #[error("Vercel server error ({status}): {message}")]
    Server { status: u16, message: String },
    /// No HTTP answer: timeout, connection refused, TLS.
    #[error("cannot reach Vercel: {0}")]
    Transport(String),
    /// A 2xx answer we could not decode.
    #[error("unexpected Vercel response: {0}")]
    Decode(String),
}

impl VercelError {
    /// Worth another try later (5xx, transport, rate limit).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            VercelError::Server { .. }
                | VercelError::Transport(_)
                | VercelError::RateLimited { .. }
        )
    }
    /// The status-class label for metrics.
    pub fn status_class(&self) -> &'static str {
        match self {
            VercelError::RateLimited { .. } => "429",
            VercelError::Unauthorized { .. } | VercelError::Client { .. } => "4xx",
            VercelError::Server { .. } => "5xx",
            VercelError::Transport(_) => "error",
            VercelError::Decode(_) => "2xx",
        }
    }
}

/// Pull `(code, message)` out of any error body shape Vercel uses.
pub fn parse_error_body(body: &str) -> (String, String) {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            let text = body.trim();
            return (
                String::new(),
                if text.is_empty() {
                    "(empty body)".into()
                } else {
                    text.chars().take(300).collect()
                },
            );
        }
    };
    let pick = |o: &Value| -> Option<(String, String)> {
        let code = o.get("code").and_then(Value::as_str).unwrap_or("");
        let message = o.get("message").and_then(Value::as_str).unwrap_or("");
        (!code.is_empty() || !message.is_empty()).then(|| (code.to_string(), message.to_string()))
    };
    if let Some(e) = v.get("error") {
        if let Some(p) = pick(e) {
            return p;
        }
        if let Some(s) = e.as_str() {
            return (String::new(), s.to_string());
        }
    }
    if let Some(e) = v.get("err") {
        if let Some(p) = pick(e) {
            return p;
        }
        if let Some(s) = e.as_str() {
            return (String::new(), s.to_string());
        }
    }
    pick(&v).unwrap_or_else(|| (String::new(), "(no error message)".into()))
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date), else the body's
/// `limit.reset` / `error.limit.reset` (epoch seconds), else `X-RateLimit-Reset`.
pub fn rate_limit_wait(headers: &HeaderMap, body: &str, now: SystemTime) -> Option<Duration> {
    rate_limit_wait_unclamped(headers, body, now).map(|d| d.min(MAX_RETRY_AFTER))
}

/// The longest a 429 may hold the cluster: a bogus or hostile `Retry-After` can't stop every
/// instance for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

fn rate_limit_wait_unclamped(headers: &HeaderMap, body: &str, now: SystemTime) -> Option<Duration> {
    let until = |epoch_secs: f64| -> Option<Duration> {
        let offset = Duration::try_from_secs_f64(epoch_secs.max(0.0)).ok()?;
        let at = UNIX_EPOCH.checked_add(offset)?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    };
    if let Some(v) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>() {
            return Duration::try_from_secs_f64(secs.max(0.0))
                .ok()
                .or(Some(MAX_RETRY_AFTER));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let limit = v.get("limit").or_else(|| v.pointer("/error/limit"));
        if let Some(reset) = limit.and_then(|l| l.get("reset")).and_then(Value::as_f64) {
            return until(reset);
        }
    }
    headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(until)
}

/// The HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct VercelClient {
    http: reqwest::Client,
    /// `https://api.vercel.com` or `VERCEL_API_URL`.
    base: String,
    token: Secret,
    /// Added as `teamId` to every call when set.
    team_id: Option<String>,
}

impl fmt::Debug for VercelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelClient")
            .field("base", &self.base)
            .field("team_id", &self.team_id)
            .field("token", &self.token)
            .finish()
    }
}

impl VercelClient {
    pub fn new(settings: &VercelSettings, token: Secret) -> Result<Self, VercelError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("ops-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VercelError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: settings.api_url.clone(),
            token,
            team_id: settings.team_id.clone(),
        })
    }

    /// Send one request once. `Ok` carries the 2xx body as JSON (`null` when empty).
    pub async fn send(&self, req: &ApiRequest) -> Result<Value, VercelError> {
        let resp = self
            .request(req)
            .send()
            .await
            .map_err(|e| VercelError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| VercelError::Transport(e.without_url().to_string()))?;
        answer(status, &headers, &text)
    }

    /// The HTTP request for `req`: method, URL, query plus `teamId`, Bearer token, JSON body.
    fn request(&self, req: &ApiRequest) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = match req.method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url),
            Method::Patch => self.http.patch(&url),
        };
        let mut query = req.query.clone();
        if let Some(team) = &self.team_id {
            query.push(("teamId".into(), team.clone()));
        }
        if !query.is_empty() {
            builder = builder.query(&query);
        }
        builder = builder.bearer_auth(self.token.expose());
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        builder
    }
}

/// What an HTTP answer means: the 2xx body as JSON (`null` when empty), else the error its
/// status and body describe.
fn answer(status: u16, headers: &HeaderMap, text: &str) -> Result<Value, VercelError> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(text).map_err(|e| VercelError::Decode(e.to_string()));
    }
    if status == 429 {
        return Err(VercelError::RateLimited {
            retry_after: rate_limit_wait(headers, text, SystemTime::now()),
        });
    }
    let (code, message) = parse_error_body(text);
    Err(match status {
        401 | 403 => VercelError::Unauthorized {
            status,
            code,
            message,
        },
        400..=499 => VercelError::Client {
            status,
            code,
            message,
        },
        _ => VercelError::Server {
            status,
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
    })
}

/// Decode a 2xx body into a typed response.
pub fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, VercelError> {
    serde_json::from_value(v).map_err(|e| VercelError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn error_bodies_in_every_shape() {
        assert_eq!(
            parse_error_body(r#"{"error":{"code":"forbidden","message":"Not authorized"}}"#),
            ("forbidden".into(), "Not authorized".into())
        );
        assert_eq!(
            parse_error_body(r#"{"err":{"code":"x","message":"y"}}"#),
            ("x".into(), "y".into())
        );
        assert_eq!(
            parse_error_body(r#"{"err":"boom"}"#),
            ("".into(), "boom".into())
        );
        assert_eq!(
            parse_error_body(r#"{"code":"c","message":"m"}"#),
            ("c".into(), "m".into())
        );
        assert_eq!(parse_error_body(""), ("".into(), "(empty body)".into()));
        assert_eq!(
            parse_error_body("<html>bad gateway</html>").1,
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn retry_after_as_seconds_date_or_body_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h, "", now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        assert_eq!(rate_limit_wait(&h, "", now), Some(Duration::from_secs(30)));
        let body = r#"{"error":{"code":"rate_limited","limit":{"remaining":0,"reset":1700000012,"total":100}}}"#;
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), body, now),
            Some(Duration::from_secs(12))
        );
        let flat = r#"{"limit":{"reset":1700000005}}"#;
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), flat, now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(rate_limit_wait(&HeaderMap::new(), "", now), None);
        // Absurd values are capped, never a panic.
        for bogus in ["inf", "1e20", "NaN"] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(bogus));
            assert!(
                rate_limit_wait(&h, "", now).is_some_and(|d| d <= MAX_RETRY_AFTER),
                "{bogus}"
            );
        }
        let far = r#"{"limit":{"reset":1e30}}"#;
        assert!(rate_limit_wait(&HeaderMap::new(), far, now).is_none_or(|d| d <= MAX_RETRY_AFTER));
    }

    #[test]
    fn deployments_decode_tolerantly() {
        let d: Deployment =
            decode(json!({"id":"dpl_1","readyState":"READY","url":"x.vercel.app","extra":{"a":1}}))
                .unwrap();
        assert_eq!(
            (d.deployment_id(), d.ready_state()),
            (Some("dpl_1"), ReadyState::Ready)
        );
        assert!(d.is_final());
        let d: Deployment = decode(json!({"uid":"dpl_2","state":"BUILDING"})).unwrap();
        assert_eq!(
            (d.deployment_id(), d.ready_state()),
            (Some("dpl_2"), ReadyState::Building)
        );
        assert!(!d.is_final());
        let d: Deployment = decode(json!({"id":"dpl_3"})).unwrap();
        assert_eq!(d.ready_state().to_string(), "UNKNOWN");
        let d: Deployment =
            decode(json!({"id":"dpl_4","readyState":null,"state":"READY"})).unwrap();
        assert_eq!(d.ready_state(), ReadyState::Ready);
    }

    #[test]
    fn path_segments_are_percent_encoded_as_utf8() {
        assert_eq!(seg("web-app_1.x~"), "web-app_1.x~");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn create_body_omits_preview_target_and_empty_meta() {
        let b = CreateDeployment {
            name: "web".into(),
            target: Some("preview".into()),
            ..Default::default()
        }
        .body();
        assert_eq!(b, json!({"name": "web"}));
    }
}
