//! Operators' pool commands, kept in the `control` hash so every instance converges on them.
//!
//! Fields: `state`, `concurrency`, `restart_gen` for the whole cluster, and the same with a
//! `:<instance id>` suffix for one instance (an instance's own fields win over the cluster's),
//! plus `updated_at`. The hash is parsed into [`Control`] with the API's limits: a value out of
//! range or unreadable (a hand edit) is ignored with a warning, never acted upon.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{QueueError, QueueStore, pairs_to_map};

/// The most consumers one instance may run (the API, the control hash and the configuration all
/// enforce it).
pub const MAX_CONCURRENCY: usize = 1024;

/// A pool command from an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolCommand {
    Start,
    Stop,
    Restart,
}

impl PoolCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolCommand::Start => "start",
            PoolCommand::Stop => "stop",
            PoolCommand::Restart => "restart",
        }
    }
}

/// Whether operators want a pool to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

/// What operators asked of one scope (the cluster, or one instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScopeControl {
    /// `None`: no command recorded for this scope.
    pub state: Option<DesiredState>,
    /// `None`: the instances' own `WORKER_CONCURRENCY`.
    pub concurrency: Option<usize>,
    /// Bumped by every `restart`; an instance restarts when it sees it change.
    pub restart_gen: u64,
}

/// The pool commands in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Control {
    pub cluster: ScopeControl,
    /// Per-instance overrides, by instance id.
    pub instances: BTreeMap<String, ScopeControl>,
    pub updated_at: Option<String>,
}

/// What the control hash asks of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceControl {
    pub running: bool,
    /// `None`: the instance's own `WORKER_CONCURRENCY`.
    pub concurrency: Option<usize>,
    /// The cluster's and the instance's restart generations.
    pub restart_gens: (u64, u64),
}

impl Control {
    /// Parse the hash; invalid fields are ignored with a warning.
    pub fn from_fields(map: &HashMap<String, String>) -> Self {
        let mut c = Control::default();
        for (field, value) in map {
            if field == "updated_at" {
                c.updated_at = Some(value.clone());
                continue;
            }
            let (name, scope) = match field.split_once(':') {
                Some((name, id)) => (name, c.instances.entry(id.to_string()).or_default()),
                None => (field.as_str(), &mut c.cluster),
            };
            if !apply_field(scope, name, value) {
                warn!(
                    field,
                    value, "ignoring an invalid field of the control hash"
                );
            }
        }
        c
    }

    /// What applies to `instance`: its own fields, else the cluster's.
    pub fn for_instance(&self, instance: &str) -> InstanceControl {
        let own = self.instances.get(instance);
        let state = own.and_then(|s| s.state).or(self.cluster.state);
        InstanceControl {
            running: state != Some(DesiredState::Stopped),
            concurrency: own.and_then(|s| s.concurrency).or(self.cluster.concurrency),
            restart_gens: (
                self.cluster.restart_gen,
                own.map(|s| s.restart_gen).unwrap_or(0),
            ),
        }
    }
}

/// Store one field in its scope; `false` when the field or its value is invalid.
fn apply_field(scope: &mut ScopeControl, name: &str, value: &str) -> bool {
    match name {
        "state" => match value {
            "running" => scope.state = Some(DesiredState::Running),
            "stopped" => scope.state = Some(DesiredState::Stopped),
            _ => return false,
        },
        "concurrency" => match value.parse::<usize>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => scope.concurrency = Some(n),
            _ => return false,
        },
        "restart_gen" => match value.parse::<u64>() {
            Ok(n) => scope.restart_gen = n,
            Err(_) => return false,
        },
        _ => return false,
    }
    true
}

impl QueueStore {
    /// Record a pool command for the whole cluster (`instance` None) or one instance; every
    /// instance converges on it within a second. Answers the commands now in force.
    pub async fn set_control(
        &self,
        instance: Option<&str>,
        command: PoolCommand,
        concurrency: Option<usize>,
    ) -> Result<Control, QueueError> {
        let mut inv = self.invocation(&self.scripts.control);
        inv.arg(instance.unwrap_or(""))
            .arg(command.as_str())
            .arg(concurrency.map(|n| n.to_string()).unwrap_or_default());
        let flat: Vec<String> = self.run(&inv).await?;
        Ok(Control::from_fields(&pairs_to_map(flat)))
    }

    /// The pool commands in force (see [`QueueStore::set_control`]).
    pub async fn control(&self) -> Result<Control, QueueError> {
        let map: HashMap<String, String> = self
            .query(redis::cmd("HGETALL").arg(self.key("control")))
            .await?;
        Ok(Control::from_fields(&map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn instance_fields_win_over_the_clusters() {
        let c = Control::from_fields(&hash(&[
            ("state", "stopped"),
            ("concurrency", "8"),
            ("restart_gen", "3"),
            ("state:a", "running"),
            ("restart_gen:a", "2"),
        ]));
        let a = c.for_instance("a");
        assert_eq!(
            (a.running, a.concurrency, a.restart_gens),
            (true, Some(8), (3, 2))
        );
        let b = c.for_instance("b");
        assert_eq!(
            (b.running, b.concurrency, b.restart_gens),
            (false, Some(8), (3, 0))
        );
        let empty = Control::default().for_instance("a");
        assert!(empty.running && empty.concurrency.is_none());
    }

    #[test]
    fn values_beyond_the_api_limits_are_ignored() {
        let c = Control::from_fields(&hash(&[
            ("concurrency", "1100"),
            ("concurrency:a", "0"),
            ("state", "sleeping"),
            ("restart_gen", "-1"),
            ("bogus", "1"),
        ]));
        assert_eq!(c.for_instance("a").concurrency, None);
        assert!(c.for_instance("a").running);
        assert_eq!(c.cluster, ScopeControl::default());
    }
}
