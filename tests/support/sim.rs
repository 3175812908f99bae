//! The Vercel simulator (`ops-worker vercel-sim`) as a child process on a port it picks itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{SIM_TOKEN, bin};

/// How long the simulator may take to print its URL.
const SIM_START_TIMEOUT: Duration = Duration::from_secs(20);
/// What the simulator prints once it listens, followed by its URL.
const LISTENING: &str = "Vercel simulator listening on ";

/// A running `ops-worker vercel-sim`, killed on drop.
pub struct SimProcess {
    child: Option<Child>,
    /// Base URL, as the simulator printed it (`http://127.0.0.1:<port>`).
    pub url: String,
    /// The bearer token it accepts.
    pub token: String,
}

impl SimProcess {
    /// Start it on port 0 with extra flags (e.g. `--build-secs 1`) and learn its URL from the line
    /// it prints once it listens, so no other process can take the port in between.
    pub fn spawn(flags: &[&str]) -> Self {
        let token = SIM_TOKEN.to_string();
        let mut child = Command::new(bin())
            .arg("vercel-sim")
            .args(["--port", "0", "--token", &token])
            .args(flags)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vercel-sim");
        let stdout = child.stdout.take().expect("vercel-sim stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps reading until the simulator exits, so its later prints never hit a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let url = loop {
            match rx.recv_timeout(SIM_START_TIMEOUT) {
                Ok(line) => match line.strip_prefix(LISTENING) {
                    Some(url) => break url.trim().to_string(),
                    None => seen.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "vercel-sim printed no `{LISTENING}<url>` line within {SIM_START_TIMEOUT:?}; \
                         output so far:\n{}",
                        seen.join("\n")
                    );
                }
            }
        };
        SimProcess {
            child: Some(child),
            url,
            token,
        }
    }

    /// Environment pointing a worker at this simulator (for [`super::WorkerBuilder::envs`]).
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VERCEL_API_URL", self.url.clone()),
            ("VERCEL_TOKEN", self.token.clone()),
            ("VERCEL_POLL_INTERVAL_SECS", "0.2".into()),
        ]
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.url))
            .await
            .expect("sim stats")
            .json()
            .await
            .expect("sim stats JSON")
    }

    /// Create a deployment straight at the simulator (outside any worker), answering its body.
    pub async fn create_deployment(&self, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/v13/deployments", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("create deployment")
            .json()
            .await
            .expect("deployment JSON")
    }

    /// `POST /_sim/faults`.
    pub async fn faults(&self, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.url))
            .json(&body)
            .send()
            .await
            .expect("sim faults");
        assert!(
            r.status().is_success(),
            "faults rejected: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

impl SimProcess {
    /// `POST /_sim/sites`: what the deployments' simulated sites answer.
    pub async fn site(&self, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sim/sites", self.url))
            .json(&body)
            .send()
            .await
            .expect("sim sites");
        assert!(
            r.status().is_success(),
            "site change rejected: {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A release `verify.url` checking the simulated site of the deployment (`{url}` is its host).
    pub fn site_url(&self) -> String {
        format!("{}/_sim/sites/{{url}}/health", self.url)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
