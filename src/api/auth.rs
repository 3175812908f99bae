//! JWT bearer authentication (HS256, `JWT_SECRET`, `exp` required) and roles
//! `viewer` < `agent` < `admin`.
//!
//! Handlers take [`Viewer`], [`Agent`] or [`Admin`] as an extractor; each rejects a missing or
//! invalid token with 401 and a too-low role with 403. Signature checks are done by
//! `jsonwebtoken` (HMAC verification compares in constant time); the secret lives in a
//! [`Secret`](crate::config::Secret) and never reaches a log line.

use std::future::{Ready, ready};
use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::config::Secret;

/// Why a token could not be minted or a request not authenticated, or a role name is unknown.
/// The messages are the 401 bodies the API answers (and the CLI prints); none echoes a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A role name (`--role`) that is not `viewer`, `agent` or `admin`; quotes it.
    #[error("`{0}` is not a role (viewer, agent, admin)")]
    UnknownRole(String),
    /// No `Authorization` header (and loopback is not trusted).
    #[error("missing bearer token (Authorization: Bearer <token>)")]
    MissingToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    /// A well-signed token past its `exp` (plus leeway).
    #[error("token expired")]
    Expired,
    /// A token signed with another secret.
    #[error("token signature is invalid")]
    BadSignature,
    /// Any other rejection by the verifier (not a JWT, no `exp`, wrong algorithm, bad claims).
    #[error("invalid token: {0}")]
    InvalidToken(#[source] jsonwebtoken::errors::Error),
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
    /// Also submits, cancels and retries tasks.
    Agent,
    /// Also controls the pool and the queue (pause, resume, restart).
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
    /// Issued at, seconds since the epoch; tells operators how old a token is.
    pub iat: u64,
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
}

impl JwtKeys {
    /// Keys from `JWT_SECRET`; `trust_loopback` is `AUTH_TRUST_LOOPBACK`.
    pub fn new(secret: &Secret, trust_loopback: bool) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            trust_loopback,
        }
    }

    /// Mint a token (`ops-worker token`).
    pub fn mint(&self, sub: &str, role: Role, ttl_secs: u64) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
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
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::InvalidToken(e),
            })
    }
}

/// The caller's claims, from the bearer token or (when trusted) a loopback peer; at least `min`.
fn authenticate(req: &HttpRequest, min: Role) -> Result<Claims, ApiError> {
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .ok_or_else(|| ApiError::Unavailable("authentication is not configured".into()))?;
    let claims = caller(req, keys)?;
    if claims.role < min {
        return Err(ApiError::Forbidden(format!(
            "this needs the {} role; the token has {}",
            min.as_str(),
            claims.role.as_str()
        )));
    }
    Ok(claims)
}

/// Who is calling: the verified bearer token, else admin for a trusted loopback peer.
fn caller(req: &HttpRequest, keys: &JwtKeys) -> Result<Claims, AuthError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok());
    match header {
        Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
            keys.verify(h[7..].trim())
        }
        Some(_) => Err(AuthError::MalformedHeader),
        None if keys.trust_loopback && req.peer_addr().is_some_and(|a| a.ip().is_loopback()) => {
            Ok(Claims {
                sub: "loopback".into(),
                role: Role::Admin,
                exp: u64::MAX,
                iat: 0,
            })
        }
        None => Err(AuthError::MissingToken),
    }
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

    #[test]
    fn mint_verify_and_reject() {
        let keys = JwtKeys::new(&Secret::new("s3cret-s3cret-s3cret-s3cret-s3cret"), false);
        let t = keys.mint("ops", Role::Agent, 60).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role), ("ops", Role::Agent));
        let other = JwtKeys::new(&Secret::new("another-secret-another-secret-xx"), false);
        let e = other.verify(&t).unwrap_err();
        assert!(matches!(e, AuthError::BadSignature), "{e:?}");
        assert_eq!(e.to_string(), "token signature is invalid");
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "`root` is not a role (viewer, agent, admin)"
        );
        assert!(Role::Admin > Role::Agent && Role::Agent > Role::Viewer);
    }
}
