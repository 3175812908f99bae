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

/// Who may do what. Ordered: a higher role can do everything a lower one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("`{s}` is not a role (viewer, agent, admin)")),
        }
    }
}

/// Token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was minted for (shown in logs as the actor of control actions).
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the epoch. Required.
    pub exp: u64,
    pub iat: u64,
}

/// Signing and verification keys derived from `JWT_SECRET`.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Requests from loopback addresses act as admin without a token (`AUTH_TRUST_LOOPBACK`).
    trust_loopback: bool,
}

impl JwtKeys {
    pub fn new(secret: &Secret, trust_loopback: bool) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            trust_loopback,
        }
    }

    /// Mint a token (`ops-worker token`).
    pub fn mint(&self, sub: &str, role: Role, ttl_secs: u64) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            sub: sub.to_string(),
            role,
            exp: now.saturating_add(ttl_secs),
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }

    /// Verify a token; `Err` explains why it is rejected (never echoing it).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".to_string(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "token signature is invalid".to_string()
                }
                _ => format!("invalid token: {e}"),
            })
    }
}

fn authenticate(req: &HttpRequest, min: Role) -> Result<Claims, ApiError> {
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .ok_or_else(|| ApiError::Unavailable("authentication is not configured".into()))?;
    let header = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok());
    let claims = match header {
        Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
            keys.verify(h[7..].trim()).map_err(ApiError::Unauthorized)?
        }
        Some(_) => {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
        None if keys.trust_loopback && req.peer_addr().is_some_and(|a| a.ip().is_loopback()) => {
            Claims {
                sub: "loopback".into(),
                role: Role::Admin,
                exp: u64::MAX,
                iat: 0,
            }
        }
        None => {
            return Err(ApiError::Unauthorized(
                "missing bearer token (Authorization: Bearer <token>)".into(),
            ));
        }
    };
    if claims.role < min {
        return Err(ApiError::Forbidden(format!(
            "this needs the {} role; the token has {}",
            min.as_str(),
            claims.role.as_str()
        )));
    }
    Ok(claims)
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
        assert_eq!(other.verify(&t).unwrap_err(), "token signature is invalid");
        assert!(Role::Admin > Role::Agent && Role::Agent > Role::Viewer);
    }
}
