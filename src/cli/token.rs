//! `token`: mint an API bearer token (JWT, HS256) from `JWT_SECRET`.

use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::api::auth::{AuthError, JwtKeys, Role, human_duration};
use crate::config::{Config, ConfigError};

/// Flags of `token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// viewer (read), agent (submit and cancel tasks) or admin (everything).
    #[arg(long)]
    role: String,
    /// Lifetime: seconds, or with a unit: 30m, 24h, 7d.
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Who the token is for (shown in the worker's logs for control actions).
    #[arg(long, default_value = "operator")]
    sub: String,
}

/// The role and lifetime, checked before the configuration is read.
pub struct TokenRequest<'a> {
    /// What the token may do.
    role: Role,
    /// Lifetime in seconds.
    ttl: u64,
    /// The `sub` claim.
    sub: &'a str,
}

/// Check `--role` and `--ttl`.
pub fn parse(args: &TokenArgs) -> Result<TokenRequest<'_>, CliError> {
    let role: Role = args
        .role
        .parse()
        .map_err(|e: AuthError| CliError::invalid("role", e.to_string()))?;
    Ok(TokenRequest {
        role,
        ttl: parse_ttl(&args.ttl)?,
        sub: &args.sub,
    })
}

/// Sign the token with `JWT_SECRET` and print it. A `--ttl` above `JWT_MAX_TTL` is refused: the
/// worker would reject the token.
pub fn mint(config: &Config, request: &TokenRequest<'_>) -> Result<(), CliError> {
    let secret = config.jwt_secret.as_ref().ok_or_else(|| {
        CliError::Config(ConfigError {
            problems: vec![("JWT_SECRET".into(), "is required to mint tokens".into())],
        })
    })?;
    check_ttl(request.ttl, config.jwt_max_ttl)?;
    let token = JwtKeys::new(secret, false)
        .mint(request.sub, request.role, request.ttl)
        .map_err(CliError::Mint)?;
    println!("{token}");
    Ok(())
}

/// A lifetime of at most `max` (`JWT_MAX_TTL`), or an error naming both.
fn check_ttl(ttl: u64, max: Duration) -> Result<(), CliError> {
    if ttl > max.as_secs() {
        return Err(CliError::invalid(
            "ttl",
            format!(
                "{} is longer than JWT_MAX_TTL ({}); the worker would reject the token \
                 (use a shorter --ttl or raise JWT_MAX_TTL)",
                human_duration(ttl),
                human_duration(max.as_secs())
            ),
        ));
    }
    Ok(())
}

/// `90`, `30s`, `15m`, `24h`, `7d` → seconds (1 second to 10 years).
pub fn parse_ttl(s: &str) -> Result<u64, CliError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        CliError::invalid(
            "ttl",
            format!("`{s}` is not a duration like 3600, 30m, 24h, 7d"),
        )
    })?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(CliError::invalid(
                "ttl",
                format!("unknown unit `{unit}` (use s, m, h or d)"),
            ));
        }
    };
    match n.checked_mul(mult) {
        Some(secs) if secs > 0 && secs <= 10 * 365 * 86_400 => Ok(secs),
        _ => Err(CliError::invalid(
            "ttl",
            "must be from 1 second to 10 years",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units_and_bounds() {
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("30m").unwrap(), 1_800);
        assert_eq!(parse_ttl("7d").unwrap(), 604_800);
        assert_eq!(
            parse_ttl("3w").unwrap_err().to_string(),
            "ttl: unknown unit `w` (use s, m, h or d)"
        );
        assert_eq!(
            parse_ttl("0").unwrap_err().to_string(),
            "ttl: must be from 1 second to 10 years"
        );
        assert_eq!(parse_ttl("x").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn ttl_above_the_servers_maximum_is_refused() {
        let max = Duration::from_secs(30 * 86_400);
        assert!(check_ttl(30 * 86_400, max).is_ok());
        let e = check_ttl(31 * 86_400, max).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "ttl: 31d is longer than JWT_MAX_TTL (30d); the worker would reject the token \
             (use a shorter --ttl or raise JWT_MAX_TTL)"
        );
    }
}
