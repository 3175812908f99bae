//! JWT bearer authentication (HS256, `JWT_SECRET`) and roles `viewer` < `agent` < `admin`.
//!
//! Handlers take [`Viewer`], [`Agent`] or [`Admin`] as an extractor; each rejects a missing or
//! invalid token with 401 and a too-low role with 403. Signature checks are done by
//! `jsonwebtoken` (HMAC verification compares in constant time); the secret lives in a
//! [`Secret`](crate::config::Secret) and never reaches a log line.
//!
//! A token must carry `sub`, `role`, `iat` and `exp`; it is refused when it expired, when `iat` or
//! `nbf` lie in the future (beyond [`LEEWAY_SECS`]), or when it lives longer than `JWT_MAX_TTL`
//! (`exp - iat`, or `exp` further ahead than that from now). A present `Authorization` header is
//! always checked, whatever `AUTH_TRUST_LOOPBACK` says; the loopback trust applies only to
//! requests without one, and only when they do not come from a browser page of another origin
//! (see [`super::origin`]). Every rejection is one of a few fixed sentences: no parser text.

use std::future::{Ready, ready};
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::config::{DEFAULT_JWT_MAX_TTL, Secret};

/// How far a token's clock may be off: `exp` may be this much in the past, `iat`/`nbf` this much
/// in the future.
pub const LEEWAY_SECS: u64 = 30;
/// Appended to every 401: how to get a token.
pub const TOKEN_HINT: &str = "mint one with `ops-worker token --role viewer|agent|admin`";

/// Why a token could not be minted or a request not authenticated, or a role name is unknown.
/// The messages are the 401 bodies the API answers (and the CLI prints); none echoes a token or
/// a parser's words.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A role name (`--role`) that is not `viewer`, `agent` or `admin`; quotes it.
    #[error("`{0}` is not a role (viewer, agent, admin)")]
    UnknownRole(String),
    /// No `Authorization` header (and loopback is not trusted).
    #[error("missing bearer token (send `Authorization: Bearer <token>`)")]
    MissingToken,
    /// An `Authorization` header that is not one `Bearer <token>` in visible ASCII.
    #[error("the Authorization header must be `Bearer <token>` in plain ASCII")]
    MalformedHeader,
    /// A well-signed token past its `exp` (plus leeway).
    #[error("token expired")]
    Expired,
    /// A token signed with another secret.
    #[error("token signature is invalid (signed with another JWT_SECRET?)")]
    BadSignature,
    /// `iat` or `nbf` in the future beyond the leeway.
    #[error("token is not valid yet (its iat or nbf lies in the future)")]
    NotYetValid,
    /// `exp - iat` above `JWT_MAX_TTL`, or `exp` further ahead than that; says the limit.
    #[error("token lives longer than this server accepts (JWT_MAX_TTL is {0})")]
    TooLong(String),
    /// Any other rejection; the reason is one of a fixed set of phrases.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The signer failed while minting.
    #[error("cannot sign the token: {0}")]
    CannotSign(#[source] jsonwebtoken::errors::Error),
}

/// Who may do what. Ordered: a higher role can do everything a lower one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads tasks, stats and the dashboard.
    Viewer,
    /// Also submits and cancels tasks (one or many); retrying and deleting dead letters is admin.
    Agent,
    /// Also retries and deletes tasks, controls the pool and the queue (start, stop, restart,
    /// pause, resume) and the schedules.
    Admin,
}

impl Role {
    /// The lowercase name used in tokens, flags and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(AuthError::UnknownRole(s.to_string())),
        }
    }
}

/// Token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was minted for (shown in logs as the actor of control actions).
    pub sub: String,
    /// What the bearer may do.
    pub role: Role,
    /// Expiry, seconds since the epoch. Required.
    pub exp: u64,
    /// Issued at, seconds since the epoch. Required: the lifetime limit is measured from it.
    pub iat: u64,
}

/// The claims as they arrive, before the checks that turn them into [`Claims`]: optional fields
/// and a free-form role, so a bad value gets a fixed sentence instead of a parser's message.
#[derive(Deserialize)]
struct RawClaims {
    /// `sub`, required.
    sub: String,
    /// `role`, checked against the three names.
    role: String,
    /// `exp`, required (`jsonwebtoken` refuses a token without one).
    exp: Option<u64>,
    /// `iat`, required here.
    iat: Option<u64>,
    /// `nbf`, optional; must be a number when present.
    nbf: Option<u64>,
}

/// Signing and verification keys derived from `JWT_SECRET`.
#[derive(Clone)]
pub struct JwtKeys {
    /// Signs tokens minted by `ops-worker token` and the demo.
    encoding: EncodingKey,
    /// Verifies the bearer token of every API request.
    decoding: DecodingKey,
    /// Requests from loopback addresses act as admin without a token (`AUTH_TRUST_LOOPBACK`).
    trust_loopback: bool,
    /// Longest accepted token lifetime (`JWT_MAX_TTL`).
    max_ttl: Duration,
}

impl JwtKeys {
    /// Keys from `JWT_SECRET`; `trust_loopback` is `AUTH_TRUST_LOOPBACK`. Tokens may live up to
    /// [`DEFAULT_JWT_MAX_TTL`] unless [`Self::with_max_ttl`] says otherwise.
    pub fn new(secret: &Secret, trust_loopback: bool) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            trust_loopback,
            max_ttl: DEFAULT_JWT_MAX_TTL,
        }
    }

    /// The same keys accepting tokens that live at most `max_ttl` (`JWT_MAX_TTL`).
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// Mint a token (`ops-worker token`).
    pub fn mint(&self, sub: &str, role: Role, ttl_secs: u64) -> Result<String, AuthError> {
        let now = now_secs();
        let claims = Claims {
            sub: sub.to_string(),
            role,
            exp: now.saturating_add(ttl_secs),
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::CannotSign)
    }

    /// Verify a token; `Err` explains why it is rejected (never echoing it).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        let raw = jsonwebtoken::decode::<RawClaims>(token, &self.decoding, &v)
            .map_err(|e| rejection(e.kind()))?
            .claims;
        let (exp, iat) = self.check_times(&raw, now_secs())?;
        let role = match raw.role.as_str() {
            "viewer" => Role::Viewer,
            "agent" => Role::Agent,
            "admin" => Role::Admin,
            _ => {
                return Err(AuthError::InvalidToken(
                    "its role is not viewer, agent or admin",
                ));
            }
        };
        Ok(Claims {
            sub: raw.sub,
            role,
            exp,
            iat,
        })
    }

    /// `exp` and `iat` present (answered), `iat` and `nbf` not in the future, the lifetime within
    /// the limit.
    fn check_times(&self, raw: &RawClaims, now: u64) -> Result<(u64, u64), AuthError> {
        let Some(exp) = raw.exp else {
            return Err(AuthError::InvalidToken(
                "it has no numeric exp (expiry) claim",
            ));
        };
        let Some(iat) = raw.iat else {
            return Err(AuthError::InvalidToken("it has no iat (issued-at) claim"));
        };
        let soonest = now.saturating_add(LEEWAY_SECS);
        if iat > soonest || raw.nbf.is_some_and(|nbf| nbf > soonest) {
            return Err(AuthError::NotYetValid);
        }
        let max = self.max_ttl.as_secs();
        if exp.saturating_sub(iat) > max || exp > soonest.saturating_add(max) {
            return Err(AuthError::TooLong(human_duration(max)));
        }
        Ok((exp, iat))
    }
}

/// The fixed sentence for each way `jsonwebtoken` refuses a token.
fn rejection(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAlgorithm => AuthError::InvalidToken("it is not signed with HS256"),
        ErrorKind::MissingRequiredClaim(_) => {
            AuthError::InvalidToken("it has no numeric exp (expiry) claim")
        }
        ErrorKind::Json(_) => AuthError::InvalidToken(
            "its claims must be sub and role (strings) and iat and exp (seconds since the epoch)",
        ),
        _ => AuthError::InvalidToken("it is not a JWT"),
    }
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// `30d`, `12h`, `90m` or `45s`: the largest unit that divides `secs`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The caller's claims, from the bearer token or (when trusted) a loopback peer; at least `min`.
fn authenticate(req: &HttpRequest, min: Role) -> Result<Claims, ApiError> {
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .ok_or_else(|| ApiError::Unavailable("authentication is not configured".into()))?;
    let claims = match bearer(req)? {
        Some(token) => keys.verify(token)?,
        None => loopback_admin(req, keys)?,
    };
    require(&claims, min)?;
    Ok(claims)
}

/// 403 unless `claims` carry at least `min` (for a route whose role depends on its body).
pub fn require(claims: &Claims, min: Role) -> Result<(), ApiError> {
    if claims.role < min {
        return Err(ApiError::Forbidden(format!(
            "this needs the {} role and the token has {}; mint one with \
             `ops-worker token --role {}`",
            min.as_str(),
            claims.role.as_str(),
            min.as_str()
        )));
    }
    Ok(())
}

/// The bearer token of the one `Authorization` header; `None` without one. Any header that is
/// present but not `Bearer <token>` in visible ASCII (several headers, other bytes, another
/// scheme, no token) is a 401, never "no header".
fn bearer(req: &HttpRequest) -> Result<Option<&str>, AuthError> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader);
    }
    let text = value.to_str().map_err(|_| AuthError::MalformedHeader)?;
    match text.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::MalformedHeader),
    }
}

/// Admin for a tokenless request from a loopback peer when `AUTH_TRUST_LOOPBACK` is on and the
/// request is not a browser page of another origin (403 then); otherwise 401.
fn loopback_admin(req: &HttpRequest, keys: &JwtKeys) -> Result<Claims, ApiError> {
    let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    if !(keys.trust_loopback && loopback) {
        return Err(AuthError::MissingToken.into());
    }
    if let Some(reason) = super::origin::foreign(req.headers()) {
        return Err(ApiError::Forbidden(format!(
            "refused: a request without a token is trusted only from this machine's own tools \
             and pages, and {reason}; send a bearer token ({TOKEN_HINT})"
        )));
    }
    Ok(Claims {
        sub: "loopback".into(),
        role: Role::Admin,
        exp: u64::MAX,
        iat: 0,
    })
}

macro_rules! role_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(pub Claims);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(authenticate(req, $role).map($name))
            }
        }
    };
}

role_extractor!(
    Viewer,
    Role::Viewer,
    "A caller with at least the viewer role."
);
role_extractor!(Agent, Role::Agent, "A caller with at least the agent role.");
role_extractor!(Admin, Role::Admin, "A caller with the admin role.");

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;
    use serde_json::{Value, json};

    const SECRET: &str = "s3cret-s3cret-s3cret-s3cret-s3cret";

    fn keys(trust_loopback: bool) -> JwtKeys {
        JwtKeys::new(&Secret::new(SECRET), trust_loopback)
    }

    /// Any claims, signed with [`SECRET`] and `alg`.
    fn signed(claims: Value, alg: Algorithm) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
    }

    fn claims_at(iat: Option<u64>, exp: u64) -> Value {
        let mut c = json!({"sub": "t", "role": "admin", "exp": exp});
        if let Some(iat) = iat {
            c["iat"] = json!(iat);
        }
        c
    }

    #[test]
    fn mint_verify_and_reject() {
        let t = keys(false).mint("ops", Role::Agent, 60).unwrap();
        let c = keys(false).verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role), ("ops", Role::Agent));
        let other = JwtKeys::new(&Secret::new("another-secret-another-secret-xx"), false);
        let e = other.verify(&t).unwrap_err();
        assert!(matches!(e, AuthError::BadSignature), "{e:?}");
        assert_eq!(
            e.to_string(),
            "token signature is invalid (signed with another JWT_SECRET?)"
        );
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "`root` is not a role (viewer, agent, admin)"
        );
        assert!(Role::Admin > Role::Agent && Role::Agent > Role::Viewer);
    }

    #[test]
    fn lifetimes_beyond_the_maximum_and_future_times_are_refused() {
        let now = now_secs();
        let k = keys(false);
        let too_long = [
            claims_at(Some(now), u64::MAX),
            claims_at(Some(now), now + 31 * 86_400),
            claims_at(Some(now - 86_400), now + 30 * 86_400),
        ];
        for c in too_long {
            let e = k.verify(&signed(c.clone(), Algorithm::HS256)).unwrap_err();
            assert!(matches!(e, AuthError::TooLong(_)), "{c}: {e:?}");
            assert_eq!(
                e.to_string(),
                "token lives longer than this server accepts (JWT_MAX_TTL is 30d)"
            );
        }
        let e = k.verify(&signed(claims_at(None, now + 60), Algorithm::HS256));
        assert_eq!(
            e.unwrap_err().to_string(),
            "invalid token: it has no iat (issued-at) claim"
        );
        let future_iat = claims_at(Some(now + 3_600), now + 7_200);
        let mut future_nbf = claims_at(Some(now), now + 7_200);
        future_nbf["nbf"] = json!(now + 3_600);
        for c in [future_iat, future_nbf] {
            let e = k.verify(&signed(c.clone(), Algorithm::HS256)).unwrap_err();
            assert!(matches!(e, AuthError::NotYetValid), "{c}: {e:?}");
        }
        // Within the leeway, a clock slightly ahead is fine.
        let skewed = claims_at(Some(now + LEEWAY_SECS / 2), now + 60);
        assert!(k.verify(&signed(skewed, Algorithm::HS256)).is_ok());
        let short = keys(false).with_max_ttl(Duration::from_secs(3_600));
        let day = signed(claims_at(Some(now), now + 86_400), Algorithm::HS256);
        assert!(k.verify(&day).is_ok());
        let e = short.verify(&day).unwrap_err().to_string();
        assert_eq!(
            e,
            "token lives longer than this server accepts (JWT_MAX_TTL is 1h)"
        );
    }

    #[test]
    fn rejections_are_fixed_sentences_without_parser_words() {
        let now = now_secs();
        let mut root = claims_at(Some(now), now + 60);
        root["role"] = json!("root");
        let mut text_exp = claims_at(Some(now), now + 60);
        text_exp["exp"] = json!("tomorrow");
        let no_exp = json!({"sub": "t", "role": "admin", "iat": now});
        let cases = [
            (
                signed(root, Algorithm::HS256),
                "its role is not viewer, agent or admin",
            ),
            (signed(text_exp, Algorithm::HS256), "its claims must be"),
            (signed(no_exp, Algorithm::HS256), "it has no numeric exp"),
            (
                signed(
                    json!({"role": "admin", "exp": now + 60, "iat": now}),
                    Algorithm::HS256,
                ),
                "its claims must be",
            ),
            (
                signed(claims_at(Some(now), now + 60), Algorithm::HS512),
                "it is not signed with HS256",
            ),
            ("not.a.jwt".to_string(), "it is not a JWT"),
        ];
        for (token, want) in cases {
            let text = keys(false).verify(&token).unwrap_err().to_string();
            assert!(text.starts_with("invalid token: "), "{text}");
            assert!(text.contains(want), "{text} should say {want}");
            assert!(
                !text.contains("variant") && !text.contains("expected"),
                "{text}"
            );
        }
    }

    /// The status and message `authenticate` answers for a request built by `build`.
    fn answer(trust: bool, build: impl FnOnce(TestRequest) -> TestRequest) -> (StatusCode, String) {
        let req = build(TestRequest::default().peer_addr("127.0.0.1:40000".parse().unwrap()))
            .app_data(web::Data::new(keys(trust)))
            .to_http_request();
        match authenticate(&req, Role::Admin) {
            Ok(c) => (StatusCode::OK, c.sub),
            Err(e) => (e.status_code(), e.to_string()),
        }
    }

    #[test]
    fn a_present_authorization_header_is_always_checked() {
        let local = |r: TestRequest| r.insert_header(("host", "127.0.0.1:8080"));
        assert_eq!(answer(true, local), (StatusCode::OK, "loopback".into()));
        let bad: [&[u8]; 6] = [
            b"Bearer \xc3\xa9t\xc3\xa9",
            b"Bearer \xff\xfe",
            b"Basic YWRtaW46YWRtaW4=",
            b"Bearer",
            b"Bearer   ",
            b"",
        ];
        for value in bad {
            let value = actix_web::http::header::HeaderValue::from_bytes(value).unwrap();
            let (status, text) = answer(true, |r| local(r).insert_header((AUTHORIZATION, value)));
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
            assert!(text.ends_with(TOKEN_HINT), "{text}");
        }
        let admin = keys(false).mint("ops", Role::Admin, 60).unwrap();
        let (status, _) = answer(false, |r| {
            r.append_header((AUTHORIZATION, format!("Bearer {admin}")))
                .append_header((AUTHORIZATION, "Bearer x"))
        });
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let viewer = keys(false).mint("ops", Role::Viewer, 60).unwrap();
        let (status, text) = answer(false, |r| {
            r.insert_header((AUTHORIZATION, format!("bearer {viewer}")))
        });
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert!(text.contains("--role admin"), "{text}");
    }

    #[test]
    fn loopback_trust_refuses_pages_of_other_origins() {
        let (status, text) = answer(true, |r| {
            r.insert_header(("host", "127.0.0.1:8080"))
                .insert_header(("origin", "https://evil.example"))
        });
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert!(
            text.starts_with("refused: a request without a token"),
            "{text}"
        );
        assert!(text.contains(TOKEN_HINT), "{text}");
        let (status, _) = answer(true, |r| {
            r.insert_header(("host", "rebound.evil.example:8080"))
        });
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, text) = answer(false, |r| r.insert_header(("host", "127.0.0.1:8080")));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(text.starts_with("missing bearer token"), "{text}");
        let remote = TestRequest::default()
            .peer_addr("192.0.2.7:40000".parse().unwrap())
            .insert_header(("host", "127.0.0.1:8080"))
            .app_data(web::Data::new(keys(true)))
            .to_http_request();
        assert!(matches!(
            authenticate(&remote, Role::Viewer),
            Err(ApiError::Unauthorized(AuthError::MissingToken))
        ));
    }
}
