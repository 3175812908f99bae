//! The real Vercel REST client: reqwest with rustls, Bearer token, `teamId` when set,
//! `VERCEL_API_URL` override, a timeout per request.
//!
//! One call = one [`ApiRequest`] sent once by [`VercelClient::send`]; rate limiting and retries are
//! the VercelActor's job. The parts: `requests` (the calls as data and their builders),
//! `responses` (the bodies we decode, tolerantly), `errors` ([`VercelError`] and reading error
//! bodies and rate-limit waits), `ready_state` ([`ReadyState`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::config::{Secret, VercelSettings};

mod errors;
mod ready_state;
pub mod requests;
mod responses;

pub use errors::{MAX_RETRY_AFTER, VercelError, parse_error_body, rate_limit_wait};
pub use ready_state::ReadyState;
pub use requests::{ApiRequest, CreateDeployment, Method, Operation};
pub use responses::{Deployment, DeploymentList, User, UserResponse, decode};

/// The HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct VercelClient {
    /// The connection pool, with the timeouts and user agent set once.
    http: reqwest::Client,
    /// `https://api.vercel.com` or `VERCEL_API_URL`.
    base: String,
    /// The Bearer token; [`Secret`] keeps it out of `Debug` and logs.
    token: Secret,
    /// Added as `teamId` to every call when set.
    team_id: Option<String>,
}

impl fmt::Debug for VercelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelClient")
            .field("base", &self.base)
            .field("team_id", &self.team_id)
            .field("token", &self.token)
            .finish()
    }
}

impl VercelClient {
    /// A client for the configured API URL and team; fails only if TLS cannot be set up.
    pub fn new(settings: &VercelSettings, token: Secret) -> Result<Self, VercelError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("ops-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VercelError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: settings.api_url.clone(),
            token,
            team_id: settings.team_id.clone(),
        })
    }

    /// Send one request once. `Ok` carries the 2xx body as JSON (`null` when empty).
    pub async fn send(&self, req: &ApiRequest) -> Result<Value, VercelError> {
        let resp = self
            .request(req)
            .send()
            .await
            .map_err(|e| VercelError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| VercelError::Transport(e.without_url().to_string()))?;
        answer(status, &headers, &text)
    }

    /// The HTTP request for `req`: method, URL, query plus `teamId`, Bearer token, JSON body.
    fn request(&self, req: &ApiRequest) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = match req.method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url),
            Method::Patch => self.http.patch(&url),
        };
        let mut query = req.query.clone();
        if let Some(team) = &self.team_id {
            query.push(("teamId".into(), team.clone()));
        }
        if !query.is_empty() {
            builder = builder.query(&query);
        }
        builder = builder.bearer_auth(self.token.expose());
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        builder
    }
}

/// What an HTTP answer means: the 2xx body as JSON (`null` when empty), else the error its
/// status and body describe.
fn answer(status: u16, headers: &HeaderMap, text: &str) -> Result<Value, VercelError> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(text).map_err(|e| VercelError::Decode(e.to_string()));
    }
    if status == 429 {
        return Err(VercelError::RateLimited {
            retry_after: rate_limit_wait(headers, text, SystemTime::now()),
        });
    }
    let (code, message) = parse_error_body(text);
    Err(match status {
        401 | 403 => VercelError::Unauthorized {
            status,
            code,
            message,
        },
        400..=499 => VercelError::Client {
            status,
            code,
            message,
        },
        _ => VercelError::Server {
            status,
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
    })
}
