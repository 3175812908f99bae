//! `release` arguments: a deploy (the same fields and checks as a `deploy` payload), then a
//! verification of the deployment's URL, an optional promotion and an optional watch window.
//! Every refusal names its field (`payload.verify.expectStatus`, ...).

use serde_json::Value;

use super::{Deploy, ValidationError};

/// Default `verify.expectStatus`.
pub const VERIFY_DEFAULT_STATUS: u16 = 200;
/// Default `verify.withinSecs`.
pub const VERIFY_DEFAULT_WITHIN_SECS: u64 = 120;
/// Longest `verify.withinSecs` and `watchSecs` (one hour): a release holds its project meanwhile.
pub const RELEASE_MAX_SECS: u64 = 3_600;
/// The placeholder of `verify.url` replaced by the deployment's hostname.
pub const URL_PLACEHOLDER: &str = "{url}";

/// `release` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The deployment to create: a `deploy` payload's fields, checked the same way.
    pub deploy: Deploy,
    /// How to tell that the new deployment works.
    pub verify: Verify,
    /// Whether to promote the verified deployment to production: the payload's `promote`, else
    /// `true` for a preview deployment (no `target`, or `preview`) and `false` for `production`.
    pub promote: bool,
    /// After the release went live, keep checking it this long (0: no watch window).
    pub watch_secs: u64,
}

/// `release.verify`: an HTTP GET that must answer as expected within a time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// The URL to GET; `{url}` in it is replaced by the deployment's hostname. `None`:
    /// `https://{url}/`.
    pub url: Option<String>,
    /// The status the URL must answer (`expectStatus`, default 200).
    pub expect_status: u16,
    /// Text the body must contain (`expectBody`), when given.
    pub expect_body: Option<String>,
    /// How long to keep trying before the verification fails (`withinSecs`, default 120).
    pub within_secs: u64,
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            url: None,
            expect_status: VERIFY_DEFAULT_STATUS,
            expect_body: None,
            within_secs: VERIFY_DEFAULT_WITHIN_SECS,
        }
    }
}

impl Verify {
    /// The URL to check for a deployment served at `host` (a hostname without scheme).
    pub fn url_for(&self, host: &str) -> String {
        self.url
            .as_deref()
            .unwrap_or("https://{url}/")
            .replace(URL_PLACEHOLDER, host)
    }

    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        let v = match payload.get("verify") {
            None | Some(Value::Null) => return Ok(Verify::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(ValidationError::new(
                    "payload.verify",
                    "must be a JSON object",
                ));
            }
        };
        let url = opt_text(v, "url")?;
        if let Some(u) = &url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ValidationError::new(
                "payload.verify.url",
                "must start with http:// or https://",
            ));
        }
        let expect_status = match opt_int(v, "verify.expectStatus", "expectStatus", 100, 599)? {
            Some(s) => s as u16,
            None => VERIFY_DEFAULT_STATUS,
        };
        let within_secs = opt_int(v, "verify.withinSecs", "withinSecs", 1, RELEASE_MAX_SECS)?
            .unwrap_or(VERIFY_DEFAULT_WITHIN_SECS);
        Ok(Verify {
            url,
            expect_status,
            expect_body: opt_text(v, "expectBody")?,
            within_secs,
        })
    }
}

impl Release {
    pub(super) fn parse(payload: &Value) -> Result<Self, ValidationError> {
        let deploy = Deploy::parse(payload)?;
        let verify = Verify::parse(payload)?;
        let promote = match payload.get("promote") {
            None | Some(Value::Null) => deploy.build.target.as_deref() != Some("production"),
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ValidationError::new(
                    "payload.promote",
                    "must be true or false",
                ));
            }
        };
        let watch_secs =
            opt_int(payload, "watchSecs", "watchSecs", 0, RELEASE_MAX_SECS)?.unwrap_or(0);
        Ok(Release {
            deploy,
            verify,
            promote,
            watch_secs,
        })
    }
}

/// An optional non-empty string of `obj` (under `payload.verify`).
fn opt_text(obj: &Value, name: &str) -> Result<Option<String>, ValidationError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::new(
            format!("payload.verify.{name}"),
            "must be a non-empty string",
        )),
    }
}

/// An optional integer of `obj` in `min..=max`; the error names `payload.<path>`.
fn opt_int(
    obj: &Value,
    path: &str,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ValidationError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ValidationError::new(
                    format!("payload.{path}"),
                    format!("must be an integer from {min} to {max}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Payload, TaskType};
    use serde_json::json;

    fn parse(payload: Value) -> Result<Release, ValidationError> {
        match Payload::parse(TaskType::Release, &payload)? {
            Payload::Release(r) => Ok(r),
            other => panic!("not a release: {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_target() {
        let r = parse(json!({"project": "web"})).unwrap();
        assert_eq!(r.verify, Verify::default());
        assert!(r.promote, "a preview release is promoted by default");
        assert_eq!(r.watch_secs, 0);
        assert_eq!(
            r.verify.url_for("web-1.vercel.app"),
            "https://web-1.vercel.app/"
        );
        let r = parse(json!({"project": "web", "target": "production"})).unwrap();
        assert!(!r.promote, "a production deployment is live once READY");
        let r = parse(json!({"project": "web", "target": "production", "promote": true})).unwrap();
        assert!(r.promote);
    }

    #[test]
    fn verify_fields_are_read() {
        let r = parse(json!({"service": "web", "watchSecs": 30, "verify": {
            "url": "http://127.0.0.1:4010/_sim/sites/{url}/health", "expectStatus": 204,
            "expectBody": "ok", "withinSecs": 5}}))
        .unwrap();
        assert_eq!(r.verify.expect_status, 204);
        assert_eq!(r.verify.expect_body.as_deref(), Some("ok"));
        assert_eq!((r.verify.within_secs, r.watch_secs), (5, 30));
        assert_eq!(
            r.verify.url_for("h.vercel.app"),
            "http://127.0.0.1:4010/_sim/sites/h.vercel.app/health"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |p: Value| parse(p).unwrap_err().field;
        assert_eq!(field(json!({})), "payload.project");
        assert_eq!(
            field(json!({"project": "w", "target": "x"})),
            "payload.target"
        );
        assert_eq!(
            field(json!({"project": "w", "gitSource": 1})),
            "payload.gitSource"
        );
        assert_eq!(
            field(json!({"project": "w", "verify": 1})),
            "payload.verify"
        );
        for (k, v) in [
            ("url", json!("ftp://x")),
            ("url", json!(3)),
            ("expectStatus", json!(99)),
            ("expectStatus", json!("200")),
            ("withinSecs", json!(0)),
            ("withinSecs", json!(3_601)),
            ("expectBody", json!("")),
        ] {
            let p = json!({"project": "w", "verify": {k: v}});
            assert_eq!(field(p), format!("payload.verify.{k}"));
        }
        assert_eq!(
            field(json!({"project": "w", "promote": "yes"})),
            "payload.promote"
        );
        assert_eq!(
            field(json!({"project": "w", "watchSecs": -1})),
            "payload.watchSecs"
        );
    }
}
