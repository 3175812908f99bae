//! `ops-worker doctor`: the deployment guide's pre-deploy dependency checklist, automated.
//!
//! Checks the configuration, that Redis answers, accepts writes and will not evict queued tasks,
//! that the Vercel token authenticates (GET /v2/user) and the team is visible, that the Sentry DSN
//! parses and that the JWT secret is strong. Prints a table (or `--json`); exits 1 when anything
//! required fails. No secret is ever printed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::config::{Config, MIN_JWT_SECRET, Mode, Secret};
use crate::vercel::client::{VercelClient, VercelError, decode, requests};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth a look; does not fail the run.
    Warn,
    /// Must be fixed before deploying.
    Fail,
    /// Not applicable (e.g. an optional variable is unset).
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
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

/// `https://<public key>@<host>/<project id>`.
pub fn dsn_parses(dsn: &str) -> Result<String, String> {
    let (scheme, rest) = dsn
        .split_once("://")
        .ok_or("missing scheme (expected https://<key>@<host>/<project>)")?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("scheme `{scheme}` is not http(s)"));
    }
    let (key, host_path) = rest
        .split_once('@')
        .ok_or("missing public key before `@`")?;
    if key.split(':').next().is_none_or(str::is_empty) {
        return Err("empty public key".into());
    }
    let (host, path) = host_path
        .split_once('/')
        .ok_or("missing project id after the host")?;
    let project = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if host.is_empty() || project.is_empty() || !project.chars().all(|c| c.is_ascii_digit()) {
        return Err("expected https://<key>@<host>/<numeric project id>".into());
    }
    Ok(format!("host {host}, project {project}"))
}

/// Long enough, varied enough, and not a placeholder.
pub fn jwt_secret_strength(secret: &Secret) -> Result<(), String> {
    let s = secret.expose();
    if s.len() < MIN_JWT_SECRET {
        return Err(format!(
            "{} characters; use at least {MIN_JWT_SECRET}",
            s.len()
        ));
    }
    let distinct: HashSet<char> = s.chars().collect();
    if distinct.len() < 10 {
        return Err("too repetitive; generate one with `openssl rand -hex 32`".into());
    }
    let lower = s.to_ascii_lowercase();
    if ["changeme", "secret", "password", "example"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err("looks like a placeholder; generate one with `openssl rand -hex 32`".into());
    }
    Ok(())
}

async fn redis_checks(url: &str, out: &mut Vec<Check>) {
    let conn = async {
        let client = redis::Client::open(url)?;
        client.get_multiplexed_async_connection().await
    };
    let mut conn = match tokio::time::timeout(Duration::from_secs(3), conn).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            out.push(check(
                "redis reachable",
                Status::Fail,
                format!("cannot connect: {e}"),
            ));
            return;
        }
        Err(_) => {
            out.push(check(
                "redis reachable",
                Status::Fail,
                "no answer within 3 s",
            ));
            return;
        }
    };
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(_) => out.push(check("redis reachable", Status::Ok, "PING answered")),
        Err(e) => {
            out.push(check(
                "redis reachable",
                Status::Fail,
                format!("PING failed: {e}"),
            ));
            return;
        }
    }
    let key = format!("ops-worker:doctor:{}", uuid::Uuid::new_v4().simple());
    let write = async {
        redis::cmd("SET")
            .arg(&key)
            .arg("1")
            .arg("EX")
            .arg(30)
            .query_async::<()>(&mut conn)
            .await?;
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<i64>(&mut conn)
            .await
    };
    match write.await {
        Ok(_) => out.push(check("redis writable", Status::Ok, "SET/DEL succeeded")),
        Err(e) => out.push(check(
            "redis writable",
            Status::Fail,
            format!("write refused: {e}"),
        )),
    }
    match redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async::<Vec<String>>(&mut conn)
        .await
    {
        Ok(v) => match v.get(1) {
            Some(p) if evicting(p) => out.push(check(
                "redis eviction policy",
                Status::Fail,
                format!(
                    "maxmemory-policy is {p}: Redis may delete queued tasks under memory pressure \
                     (the deployment guide's allkeys-lru suggestion would too); set noeviction"
                ),
            )),
            Some(p) => out.push(check("redis eviction policy", Status::Ok, p.clone())),
            None => out.push(check(
                "redis eviction policy",
                Status::Warn,
                "CONFIG GET returned nothing",
            )),
        },
        Err(e) => out.push(check(
            "redis eviction policy",
            Status::Warn,
            format!("cannot read it ({e}); make sure the service uses noeviction"),
        )),
    }
}

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
    match client.send(&requests::get_user()).await {
        Ok(v) => {
            let who = decode::<crate::vercel::client::UserResponse>(v)
                .ok()
                .and_then(|u| u.user.username.or(u.user.email))
                .unwrap_or_else(|| "a user".into());
            out.push(check(
                "vercel token",
                Status::Ok,
                format!("authenticated as {who} at {}", config.vercel.api_url),
            ));
        }
        Err(VercelError::Unauthorized {
            status, message, ..
        }) => out.push(check(
            "vercel token",
            Status::Fail,
            format!("rejected ({status}): {message}; create a new token and update VERCEL_TOKEN"),
        )),
        Err(e) => out.push(check("vercel token", Status::Fail, e.to_string())),
    }
    match &config.vercel.team_id {
        None => out.push(check(
            "vercel team",
            Status::Skip,
            "VERCEL_TEAM_ID not set (personal account)",
        )),
        Some(team) => match client.send(&requests::list_deployments(1)).await {
            Ok(_) => out.push(check(
                "vercel team",
                Status::Ok,
                format!("team {team} visible"),
            )),
            Err(e) => out.push(check(
                "vercel team",
                Status::Fail,
                format!("team {team}: {e}"),
            )),
        },
    }
}

/// Run every check against `vars` (the environment).
pub async fn checks(vars: &HashMap<String, String>) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match Config::from_vars(vars, Mode::Run) {
        Ok(c) => {
            out.push(check(
                "configuration",
                Status::Ok,
                "every variable is set and valid",
            ));
            c
        }
        Err(e) => {
            for (var, msg) in &e.problems {
                out.push(check(
                    "configuration",
                    Status::Fail,
                    format!("{var}: {msg}"),
                ));
            }
            match Config::from_vars(vars, Mode::Tool) {
                Ok(c) => c,
                Err(_) => return out,
            }
        }
    };
    redis_checks(config.redis_url.expose(), &mut out).await;
    vercel_checks(&config, &mut out).await;
    match &config.sentry_dsn {
        None => out.push(check(
            "sentry dsn",
            Status::Warn,
            "SENTRY_DSN not set: errors won't reach Sentry",
        )),
        Some(dsn) => match dsn_parses(dsn.expose()) {
            Ok(d) => out.push(check("sentry dsn", Status::Ok, d)),
            Err(e) => out.push(check(
                "sentry dsn",
                Status::Fail,
                format!("SENTRY_DSN does not parse: {e}"),
            )),
        },
    }
    if let Some(secret) = &config.jwt_secret {
        match jwt_secret_strength(secret) {
            Ok(()) => out.push(check("jwt secret", Status::Ok, "long and varied")),
            Err(e) => out.push(check(
                "jwt secret",
                Status::Fail,
                format!("JWT_SECRET: {e}"),
            )),
        }
    }
    out
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
