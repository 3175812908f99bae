//! `ops-worker doctor`: the deployment guide's pre-deploy dependency checklist, automated.
//!
//! Checks the configuration, that Redis answers, accepts writes and will not evict queued tasks,
//! that the Vercel token authenticates (GET /v2/user) and the team is visible, that the Sentry DSN
//! parses and that the JWT secret is strong. Prints a table (or `--json`); exits 1 when anything
//! required fails. No secret is ever printed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::json;

use crate::config::{Config, MIN_JWT_SECRET, Mode, Secret};
use crate::vercel::client::{VercelClient, VercelError, decode, requests};

mod redis_rows;
use redis_rows::redis_checks;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Ok,
    /// Worth a look; does not fail the run.
    Warn,
    /// Must be fixed before deploying.
    Fail,
    /// Not applicable (e.g. an optional variable is unset).
    Skip,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (`redis writable`); several rows may share one (`configuration`).
    pub name: &'static str,
    /// Whether it passed.
    pub status: Status,
    /// What was found, or how to fix it; never a secret.
    pub detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// Policies under which Redis may delete keys: queued tasks would vanish silently.
fn evicting(policy: &str) -> bool {
    policy != "noeviction"
}

/// Why a Sentry DSN does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// No `://`.
    #[error("missing scheme (expected https://<key>@<host>/<project>)")]
    NoScheme,
    /// A scheme other than http(s).
    #[error("scheme `{0}` is not http(s)")]
    Scheme(String),
    /// No `@` separating the public key from the host.
    #[error("missing public key before `@`")]
    NoKey,
    /// Nothing before the `@`.
    #[error("empty public key")]
    EmptyKey,
    /// No `/` after the host.
    #[error("missing project id after the host")]
    NoProject,
    /// An empty host, or a project id that is not a number.
    #[error("expected https://<key>@<host>/<numeric project id>")]
    Malformed,
}

/// `https://<public key>@<host>/<project id>`; on success, the host and project for the report.
pub fn dsn_parses(dsn: &str) -> Result<String, DsnError> {
    let (scheme, rest) = dsn.split_once("://").ok_or(DsnError::NoScheme)?;
    if scheme != "https" && scheme != "http" {
        return Err(DsnError::Scheme(scheme.to_string()));
    }
    let (key, host_path) = rest.split_once('@').ok_or(DsnError::NoKey)?;
    if key.split(':').next().is_none_or(str::is_empty) {
        return Err(DsnError::EmptyKey);
    }
    let (host, path) = host_path.split_once('/').ok_or(DsnError::NoProject)?;
    let project = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if host.is_empty() || project.is_empty() || !project.chars().all(|c| c.is_ascii_digit()) {
        return Err(DsnError::Malformed);
    }
    Ok(format!("host {host}, project {project}"))
}

/// Why a JWT secret is too weak to deploy with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// Shorter than [`MIN_JWT_SECRET`]; holds its length.
    #[error("{0} characters; use at least {MIN_JWT_SECRET}")]
    Short(usize),
    /// Fewer than 10 distinct characters.
    #[error("too repetitive; generate one with `openssl rand -hex 32`")]
    Repetitive,
    /// Contains a word like `changeme` or `secret`.
    #[error("looks like a placeholder; generate one with `openssl rand -hex 32`")]
    Placeholder,
}

/// Long enough, varied enough, and not a placeholder.
pub fn jwt_secret_strength(secret: &Secret) -> Result<(), WeakSecret> {
    let s = secret.expose();
    if s.len() < MIN_JWT_SECRET {
        return Err(WeakSecret::Short(s.len()));
    }
    let distinct: HashSet<char> = s.chars().collect();
    if distinct.len() < 10 {
        return Err(WeakSecret::Repetitive);
    }
    let lower = s.to_ascii_lowercase();
    if ["changeme", "secret", "password", "example"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err(WeakSecret::Placeholder);
    }
    Ok(())
}

/// The token authenticates, and the team (when set) is visible to it.
async fn vercel_checks(config: &Config, out: &mut Vec<Check>) {
    let Some(token) = config.vercel.token.clone() else {
        out.push(check(
            "vercel token",
            Status::Fail,
            "VERCEL_TOKEN is not set",
        ));
        return;
    };
    let client = match VercelClient::new(&config.vercel, token) {
        Ok(c) => c,
        Err(e) => {
            out.push(check("vercel token", Status::Fail, e.to_string()));
            return;
        }
    };
    out.push(vercel_token(&client, &config.vercel.api_url).await);
    out.push(vercel_team(&client, config.vercel.team_id.as_deref()).await);
}

/// GET /v2/user: who the token belongs to.
async fn vercel_token(client: &VercelClient, api_url: &str) -> Check {
    match client.send(&requests::get_user()).await {
        Ok(v) => {
            let who = decode::<crate::vercel::client::UserResponse>(v)
                .ok()
                .and_then(|u| u.user.username.or(u.user.email))
                .unwrap_or_else(|| "a user".into());
            check(
                "vercel token",
                Status::Ok,
                format!("authenticated as {who} at {api_url}"),
            )
        }
        Err(VercelError::Unauthorized {
            status, message, ..
        }) => check(
            "vercel token",
            Status::Fail,
            format!("rejected ({status}): {message}; create a new token and update VERCEL_TOKEN"),
        ),
        Err(e) => check("vercel token", Status::Fail, e.to_string()),
    }
}

/// List one deployment with the team id: fails when the token cannot see the team.
async fn vercel_team(client: &VercelClient, team: Option<&str>) -> Check {
    let Some(team) = team else {
        return check(
            "vercel team",
            Status::Skip,
            "VERCEL_TEAM_ID not set (personal account)",
        );
    };
    match client.send(&requests::list_deployments(1)).await {
        Ok(_) => check("vercel team", Status::Ok, format!("team {team} visible")),
        Err(e) => check("vercel team", Status::Fail, format!("team {team}: {e}")),
    }
}

/// Run every check against `vars` (the environment).
pub async fn checks(vars: &HashMap<String, String>) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(config) = configuration(vars, &mut out) else {
        return out;
    };
    redis_checks(&config.redis, &config.queue, &mut out).await;
    vercel_checks(&config, &mut out).await;
    out.push(sentry_check(&config));
    if let Some(secret) = &config.jwt_secret {
        out.push(match jwt_secret_strength(secret) {
            Ok(()) => check("jwt secret", Status::Ok, "long and varied"),
            Err(e) => check("jwt secret", Status::Fail, format!("JWT_SECRET: {e}")),
        });
    }
    out
}

/// The strict (`run`) configuration, or one row per problem and the lenient (tool) one so the
/// other checks still run; `None` when even that does not validate.
fn configuration(vars: &HashMap<String, String>, out: &mut Vec<Check>) -> Option<Config> {
    match Config::from_vars(vars, Mode::Run) {
        Ok(c) => {
            out.push(check(
                "configuration",
                Status::Ok,
                "every variable is set and valid",
            ));
            Some(c)
        }
        Err(e) => {
            for (var, msg) in &e.problems {
                out.push(check(
                    "configuration",
                    Status::Fail,
                    format!("{var}: {msg}"),
                ));
            }
            Config::from_vars(vars, Mode::Tool).ok()
        }
    }
}

/// Unset is a warning (errors go nowhere); set but malformed fails.
fn sentry_check(config: &Config) -> Check {
    match &config.sentry_dsn {
        None => check(
            "sentry dsn",
            Status::Warn,
            "SENTRY_DSN not set: errors won't reach Sentry",
        ),
        Some(dsn) => match dsn_parses(dsn.expose()) {
            Ok(d) => check("sentry dsn", Status::Ok, d),
            Err(e) => check(
                "sentry dsn",
                Status::Fail,
                format!("SENTRY_DSN does not parse: {e}"),
            ),
        },
    }
}

/// Print the results; `true` when nothing failed.
pub fn report(checks: &[Check], as_json: bool) -> bool {
    let ok = !checks.iter().any(|c| c.status == Status::Fail);
    if as_json {
        println!("{}", json!({"ok": ok, "checks": checks}));
    } else {
        println!("{:<24} {:<6} DETAIL", "CHECK", "RESULT");
        for c in checks {
            let s = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            println!("{:<24} {:<6} {}", c.name, s, c.detail);
        }
        println!();
        println!(
            "{}",
            if ok {
                "ready to deploy"
            } else {
                "NOT ready: fix the FAIL lines above"
            }
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_and_secret_rules() {
        assert!(dsn_parses("https://abc123@o1.ingest.sentry.io/42").is_ok());
        assert!(dsn_parses("https://o1.ingest.sentry.io/42").is_err());
        assert!(dsn_parses("ftp://k@h/1").is_err());
        assert!(dsn_parses("https://k@h/notanumber").is_err());
        assert!(jwt_secret_strength(&Secret::new("a".repeat(40))).is_err());
        assert!(jwt_secret_strength(&Secret::new("short")).is_err());
        assert!(jwt_secret_strength(&Secret::new("changeme-changeme-changeme-changeme")).is_err());
        assert!(
            jwt_secret_strength(&Secret::new("9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a")).is_ok()
        );
        assert!(evicting("allkeys-lru") && evicting("volatile-ttl") && !evicting("noeviction"));
    }
}
