//! The response bodies we decode, tolerantly: unknown fields are ignored and every field we
//! don't strictly need is optional.

use serde::Deserialize;
use serde_json::Value;

use super::{ReadyState, VercelError};

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
    /// Vercel's page of the deployment; stored on the task record for the dashboard.
    #[serde(default, rename = "inspectorUrl")]
    pub inspector_url: Option<String>,
    /// String metadata; ours carries `ops_task_id`.
    #[serde(default)]
    pub meta: Option<Value>,
    /// `PROMOTED` when the deployment serves its project's production now (v13 objects): a
    /// resumed `release` checks it before promoting or rolling back a second time.
    #[serde(default, rename = "readySubstate")]
    pub ready_substate: Option<String>,
}

impl Deployment {
    /// Vercel says it serves its project's production now.
    pub fn is_promoted(&self) -> bool {
        self.ready_substate.as_deref() == Some("PROMOTED")
    }
}

impl Deployment {
    /// The id, whichever field carried it (`id` in v13 objects, `uid` in v6 list items).
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
    /// Newest first; absent is empty.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
}

/// `GET /v2/user`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserResponse {
    /// The token's user.
    pub user: User,
}

/// The user a token belongs to, as `doctor` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Vercel's user id.
    #[serde(default)]
    pub id: Option<String>,
    /// Login name, shown to the operator.
    #[serde(default)]
    pub username: Option<String>,
    /// Account email, shown when there is no username.
    #[serde(default)]
    pub email: Option<String>,
}

/// Decode a 2xx body into a typed response.
pub fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, VercelError> {
    serde_json::from_value(v).map_err(|e| VercelError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
