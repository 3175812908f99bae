//! The one secret scrubber, applied to everything the process writes: log lines (see
//! [`super::logging`]), Sentry events, failure reasons stored on task records and event bodies.
//!
//! A [`Scrubber`] knows the configured secrets (Vercel token, JWT secret, the Sentry DSN's public
//! key, the Redis URL's password; values shorter than [`MIN_SECRET_LEN`] are ignored) and also
//! redacts every `Bearer <token>` (scheme matched case-insensitively), whether or not anything is
//! configured. A process-wide instance is installed by the telemetry init functions; library code
//! calls [`text`] and gets the Bearer-only default until one is installed.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::config::Config;

/// What replaces every secret.
pub const REDACTED: &str = "[redacted]";
/// Secrets shorter than this are not scrubbed: replacing a 3-letter password everywhere would
/// mangle ordinary text while protecting nothing worth protecting.
pub const MIN_SECRET_LEN: usize = 6;

/// The scheme word whose following token is always redacted.
const BEARER: &str = "bearer";

/// Replaces configured secrets and `Bearer` tokens with [`REDACTED`]. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Literal secret values, longest first (so a secret containing another is replaced whole).
    secrets: Arc<[String]>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets themselves.
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// A scrubber for these literal values (plus `Bearer` tokens). Values shorter than
    /// [`MIN_SECRET_LEN`] are dropped; each value's JSON-escaped form is added when it differs, so
    /// the value is also found inside JSON log lines.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = Vec::new();
        for value in values.into_iter().map(Into::into) {
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            let escaped = serde_json::to_string(&value).unwrap_or_default();
            let escaped = escaped
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .unwrap_or_default();
            if !escaped.is_empty() && escaped != value {
                secrets.push(escaped.to_string());
            }
            secrets.push(value);
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets: secrets.into(),
        }
    }

    /// The scrubber for every secret of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self::new(secret_values(config))
    }

    /// `text` with every configured secret and every `Bearer` token replaced; borrowed when
    /// nothing had to change.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        match redact_bearer(&out) {
            Some(clean) => Cow::Owned(clean),
            None => out,
        }
    }

    /// Scrub every string inside a JSON value, in place (object keys are left alone).
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub(s) {
                    *s = clean;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| self.scrub_json(v)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|v| self.scrub_json(v)),
            _ => {}
        }
    }
}

/// Every secret value of the configuration (before the length filter of [`Scrubber::new`]).
fn secret_values(config: &Config) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(t) = &config.vercel.token {
        v.push(t.expose().to_string());
    }
    if let Some(s) = &config.jwt_secret {
        v.push(s.expose().to_string());
    }
    if let Some(dsn) = &config.sentry_dsn
        && let Some((_, rest)) = dsn.expose().split_once("://")
        && let Some((key, _)) = rest.split_once('@')
    {
        // `key` or `key:secret` (legacy DSNs): scrub both parts.
        v.extend(key.split(':').map(str::to_string));
    }
    if let Some((_, rest)) = config.redis.url.expose().split_once("://")
        && let Some((creds, _)) = rest.rsplit_once('@')
    {
        let password = creds.rsplit(':').next().unwrap_or(creds);
        v.push(password.to_string());
    }
    v
}

/// Characters of a bearer token (RFC 6750 `b64token`). Quotes, backslashes and separators end it,
/// so the JSON or text around the token survives.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

/// `text` with the token after every `bearer` + whitespace replaced (the scheme word is kept),
/// or `None` when there is none.
fn redact_bearer(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(BEARER) {
        let scheme_end = from + found + BEARER.len();
        let rest = &text[scheme_end..];
        let token_start = scheme_end + (rest.len() - rest.trim_start().len());
        let token_len = text[token_start..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(text.len() - token_start);
        if token_start > scheme_end && token_len > 0 {
            out.push_str(&text[copied..token_start]);
            out.push_str(REDACTED);
            copied = token_start + token_len;
        }
        from = scheme_end;
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The process-wide scrubber, set once by the telemetry init functions.
static GLOBAL: OnceLock<Scrubber> = OnceLock::new();

/// Make `scrubber` the process-wide one. Only the first call counts (one configuration per
/// process); answers whether this call installed it.
pub fn install(scrubber: Scrubber) -> bool {
    GLOBAL.set(scrubber).is_ok()
}

/// The process-wide scrubber: the installed one, else the default that only redacts `Bearer`
/// tokens.
pub fn global() -> &'static Scrubber {
    static DEFAULT: OnceLock<Scrubber> = OnceLock::new();
    GLOBAL
        .get()
        .unwrap_or_else(|| DEFAULT.get_or_init(Scrubber::default))
}

/// [`Scrubber::scrub`] with the process-wide scrubber, for library code that writes text out.
pub fn text(s: &str) -> Cow<'_, str> {
    global().scrub(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok_abcdef123";

    #[test]
    fn secrets_are_replaced_wherever_they_appear() {
        let s = Scrubber::new([TOKEN, "jwt-secret-value"]);
        let got = s.scrub("a tok_abcdef123 b tok_abcdef123c jwt-secret-value tok_abcdef123");
        assert_eq!(got, "a [redacted] b [redacted]c [redacted] [redacted]");
    }

    #[test]
    fn clean_text_is_borrowed() {
        let s = Scrubber::new([TOKEN]);
        assert!(matches!(s.scrub("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_are_ignored() {
        let s = Scrubber::new(["abc", "12345"]);
        assert_eq!(s.scrub("abc 12345"), "abc 12345");
    }

    #[test]
    fn bearer_tokens_are_replaced_in_any_case() {
        let s = Scrubber::default();
        for (input, want) in [
            (
                "Authorization: Bearer xyz",
                "Authorization: Bearer [redacted]",
            ),
            (
                "authorization: bearer a.b-c_d",
                "authorization: bearer [redacted]",
            ),
            ("BEARER\tQWE+/= tail", "BEARER\t[redacted] tail"),
            (
                r#"{"h":"Bearer abc","g":"bEaReR   def"}"#,
                r#"{"h":"Bearer [redacted]","g":"bEaReR   [redacted]"}"#,
            ),
            (r#"echo \"Bearer abc\""#, r#"echo \"Bearer [redacted]\""#),
        ] {
            assert_eq!(s.scrub(input), want, "{input}");
        }
    }

    #[test]
    fn bearer_without_a_token_is_left_alone() {
        let s = Scrubber::default();
        for input in [
            "Bearer",
            "Bearer ",
            "`Bearer <token>`",
            "\"Bearer\"",
            "bearer, x",
        ] {
            assert_eq!(s.scrub(input), input);
        }
        // Idempotent: the replacement is not a token.
        assert_eq!(s.scrub("Bearer [redacted]"), "Bearer [redacted]");
    }

    #[test]
    fn json_escaped_secrets_are_found_too() {
        let s = Scrubber::new([r#"pa"ss\word"#]);
        let line = serde_json::json!({ "m": r#"x pa"ss\word y"# }).to_string();
        assert_eq!(s.scrub(&line), r#"{"m":"x [redacted] y"}"#);
        assert_eq!(s.scrub(r#"x pa"ss\word y"#), "x [redacted] y");
    }

    #[test]
    fn json_values_are_scrubbed_in_place() {
        let s = Scrubber::new([TOKEN]);
        let mut v = serde_json::json!({"a": [TOKEN, {"b": "Bearer q"}], "n": 1});
        s.scrub_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["[redacted]", {"b": "Bearer [redacted]"}], "n": 1})
        );
    }

    #[test]
    fn config_secrets_are_collected() {
        let vars: std::collections::HashMap<String, String> = [
            ("REDIS_URL", "redis://user:redispass99@localhost:6379/0"),
            ("VERCEL_TOKEN", "vercel_token_value"),
            ("JWT_SECRET", "jwt_secret_value_0123456789_abcdefghij"),
            ("SENTRY_DSN", "https://publickey42@sentry.example/3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::from_vars(&vars, crate::config::Mode::Tool).unwrap();
        let s = Scrubber::from_config(&config);
        let text = "redispass99 vercel_token_value jwt_secret_value_0123456789_abcdefghij \
                    publickey42";
        assert_eq!(s.scrub(text), "[redacted] [redacted] [redacted] [redacted]");
    }

    #[test]
    fn nothing_configured_still_redacts_bearer() {
        // The global may or may not be installed by another test; both scrub Bearer tokens.
        assert_eq!(text("Bearer abc"), "Bearer [redacted]");
        assert_eq!(text("plain"), "plain");
    }
}
