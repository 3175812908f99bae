//! [`ReadyState`]: a deployment's `readyState` as a type, so no handler or simulator compares
//! state strings.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A deployment's `readyState`, spelled as Vercel spells it. A spelling this build does not know
/// decodes to [`ReadyState::Unknown`] (keeping the text), so a state Vercel adds later never makes
/// a deployment undecodable; it is simply not final.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Waiting for a build slot.
    Queued,
    /// The build environment is being prepared.
    Initializing,
    /// Building.
    Building,
    /// Built and serving: the deploy succeeded.
    Ready,
    /// The build failed.
    Error,
    /// Canceled before it finished.
    Canceled,
    /// Refused by Vercel before building (e.g. a plan or permission limit).
    Blocked,
    /// Any other spelling, as received (`UNKNOWN` when the deployment had no state at all).
    Unknown(String),
}

impl ReadyState {
    /// How a deployment without any state is shown.
    pub const ABSENT: &'static str = "UNKNOWN";

    /// The Vercel spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ReadyState::Queued => "QUEUED",
            ReadyState::Initializing => "INITIALIZING",
            ReadyState::Building => "BUILDING",
            ReadyState::Ready => "READY",
            ReadyState::Error => "ERROR",
            ReadyState::Canceled => "CANCELED",
            ReadyState::Blocked => "BLOCKED",
            ReadyState::Unknown(s) => s,
        }
    }

    /// READY, ERROR, CANCELED or BLOCKED: the deployment will not change state again.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ReadyState::Ready | ReadyState::Error | ReadyState::Canceled | ReadyState::Blocked
        )
    }
}

impl FromStr for ReadyState {
    type Err = Infallible;
    /// Exact (upper-case) Vercel spellings; anything else is [`ReadyState::Unknown`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "QUEUED" => ReadyState::Queued,
            "INITIALIZING" => ReadyState::Initializing,
            "BUILDING" => ReadyState::Building,
            "READY" => ReadyState::Ready,
            "ERROR" => ReadyState::Error,
            "CANCELED" => ReadyState::Canceled,
            "BLOCKED" => ReadyState::Blocked,
            other => ReadyState::Unknown(other.to_string()),
        })
    }
}

impl fmt::Display for ReadyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReadyState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReadyState {
    /// Never fails on a well-formed value: a string that is not a known state, or a value that is
    /// not a string at all, becomes [`ReadyState::Unknown`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Ok(state) = match Value::deserialize(deserializer)? {
            Value::String(s) => s.parse(),
            other => Ok(ReadyState::Unknown(other.to_string())),
        };
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vercel::client::{Deployment, decode};
    use serde_json::json;

    #[test]
    fn ready_states_round_trip_and_unknown_ones_never_fail() {
        let known = [
            (ReadyState::Queued, "QUEUED"),
            (ReadyState::Initializing, "INITIALIZING"),
            (ReadyState::Building, "BUILDING"),
            (ReadyState::Ready, "READY"),
            (ReadyState::Error, "ERROR"),
            (ReadyState::Canceled, "CANCELED"),
            (ReadyState::Blocked, "BLOCKED"),
        ];
        for (state, text) in known.clone() {
            assert_eq!(state.to_string(), text);
            assert_eq!(text.parse::<ReadyState>(), Ok(state.clone()));
            assert_eq!(serde_json::to_value(&state).unwrap(), json!(text));
            assert_eq!(decode::<ReadyState>(json!(text)).unwrap(), state);
        }
        let finals: Vec<&str> = known
            .iter()
            .filter(|(s, _)| s.is_final())
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(finals, ["READY", "ERROR", "CANCELED", "BLOCKED"]);
        let new = decode::<ReadyState>(json!("DELETED")).unwrap();
        assert_eq!(new, ReadyState::Unknown("DELETED".into()));
        assert_eq!(
            (new.to_string().as_str(), new.is_final()),
            ("DELETED", false)
        );
        assert_eq!(serde_json::to_value(&new).unwrap(), json!("DELETED"));
        assert_eq!(
            "ready".parse::<ReadyState>(),
            Ok(ReadyState::Unknown("ready".into()))
        );
        let d: Deployment = decode(json!({"id": "d", "readyState": 7})).unwrap();
        assert_eq!(d.ready_state(), ReadyState::Unknown("7".into()));
    }
}
