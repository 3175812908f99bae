//! Vercel API calls described as data: [`Operation`] (the metrics label), [`Method`],
//! [`ApiRequest`] (one call), [`CreateDeployment`] (the create arguments), and one builder per
//! operation the worker uses: create, get, list and cancel deployments, promote, rollback, the
//! token's user and a project.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Which API operation a request is (a bounded metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v13/deployments`.
    CreateDeployment,
    /// `GET /v13/deployments/{idOrUrl}`.
    GetDeployment,
    /// `GET /v6/deployments`.
    ListDeployments,
    /// `PATCH /v12/deployments/{id}/cancel`.
    CancelDeployment,
    /// `POST /v10/projects/{project}/promote/{deployment}`.
    Promote,
    /// `POST /v1/projects/{project}/rollback/{deployment}`.
    Rollback,
    /// `GET /v2/user`.
    GetUser,
    /// `GET /v9/projects/{idOrName}`.
    GetProject,
    /// `GET /v3/deployments/{idOrUrl}/events`.
    DeploymentEvents,
}

impl Operation {
    /// Every operation, so metrics can be registered up front.
    pub const ALL: [Operation; 9] = [
        Operation::CreateDeployment,
        Operation::GetDeployment,
        Operation::ListDeployments,
        Operation::CancelDeployment,
        Operation::Promote,
        Operation::Rollback,
        Operation::GetUser,
        Operation::GetProject,
        Operation::DeploymentEvents,
    ];

    /// The metrics label.
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
            Operation::DeploymentEvents => "deployment_events",
        }
    }
}

/// HTTP method of an [`ApiRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Reads.
    Get,
    /// Creates, promotes and rolls back.
    Post,
    /// Cancels.
    Patch,
}

/// One Vercel API call, described as data so the actor can rate-limit and retry it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// Which operation, for metrics and logs.
    pub op: Operation,
    /// The HTTP method.
    pub method: Method,
    /// Path below the API base, e.g. `/v13/deployments/dpl_x` (already percent-safe).
    pub path: String,
    /// Extra query parameters (`teamId` is added by the client).
    pub query: Vec<(String, String)>,
    /// The JSON body, for calls that send one.
    pub body: Option<Value>,
    /// Safe to send again after a timeout or 5xx. False for creating a deployment: Vercel may
    /// have created it before the answer was lost, so the retry belongs to the deploy handler,
    /// which first looks for a deployment it already created.
    pub idempotent: bool,
    /// A lookup whose 404 is an expected answer ("none yet"), not a failure: counted as
    /// `absent` in the metrics, so it never counts as a Vercel error.
    pub absent_ok: bool,
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
            absent_ok: false,
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

/// Create a deployment; not idempotent (see [`ApiRequest::idempotent`]).
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

/// The deployments of a project created since `since_ms` (epoch ms), newest first, at most 100:
/// to find one a task already created. Vercel answers 404 while the project does not exist yet.
pub fn project_deployments_since(project: &str, since_ms: i64) -> ApiRequest {
    let mut r = ApiRequest::new(
        Operation::ListDeployments,
        Method::Get,
        "/v6/deployments".into(),
    );
    r.query.push(("projectId".into(), project.into()));
    r.query.push(("since".into(), since_ms.to_string()));
    r.query.push(("limit".into(), "100".into()));
    r.absent_ok = true;
    r
}

/// One deployment by id or hostname.
pub fn get_deployment(id_or_url: &str) -> ApiRequest {
    ApiRequest::new(
        Operation::GetDeployment,
        Method::Get,
        format!("/v13/deployments/{}", seg(id_or_url)),
    )
}

/// A deployment's build log lines after `since_ms` (exclusive), oldest first, at most 100.
pub fn deployment_events(id: &str, since_ms: Option<i64>) -> ApiRequest {
    let mut r = ApiRequest::new(
        Operation::DeploymentEvents,
        Method::Get,
        format!("/v3/deployments/{}/events", seg(id)),
    );
    r.query.push(("builds".into(), "1".into()));
    r.query.push(("direction".into(), "forward".into()));
    r.query.push(("limit".into(), "100".into()));
    if let Some(since) = since_ms {
        r.query.push(("since".into(), since.to_string()));
    }
    r
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

/// Cancel a deployment that is still queued or building.
pub fn cancel_deployment(id: &str) -> ApiRequest {
    ApiRequest::new(
        Operation::CancelDeployment,
        Method::Patch,
        format!("/v12/deployments/{}/cancel", seg(id)),
    )
}

/// Make `deployment` the production deployment of `project`.
pub fn promote(project: &str, deployment: &str) -> ApiRequest {
    ApiRequest::new(
        Operation::Promote,
        Method::Post,
        format!("/v10/projects/{}/promote/{}", seg(project), seg(deployment)),
    )
}

/// Roll `project`'s production back to `deployment`.
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

/// The token's user (checks the token).
pub fn get_user() -> ApiRequest {
    ApiRequest::new(Operation::GetUser, Method::Get, "/v2/user".into())
}

/// A project by id or name.
/// A project by id or name; 404 (it does not exist yet) is an expected answer.
pub fn get_project(id_or_name: &str) -> ApiRequest {
    let mut r = ApiRequest::new(
        Operation::GetProject,
        Method::Get,
        format!("/v9/projects/{}", seg(id_or_name)),
    );
    r.absent_ok = true;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

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
