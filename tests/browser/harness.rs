//! The browser test's harness: the Chromium/Node preflight, the `node dashboard.mjs` process and
//! its line protocol ([`Browser`]), the background traffic that gives the charts a minute of work
//! ([`Feeder`]), and small lookups the steps share.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_worker::api::auth::Role;
use ops_worker::queue::QueueStore;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::support::*;

/// Longer than the script's own step timeout (30 s), so its FAIL line, which says what the page
/// showed, arrives before this side gives up.
pub(crate) const LINE_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const LONG: Duration = Duration::from_secs(60);

pub(crate) fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub(crate) fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Chromium, Node 20+ and playwright-core must be there; install playwright-core when missing.
pub(crate) fn preflight() {
    let chromium = chromium_path();
    assert!(
        chromium.is_file(),
        "the browser test needs Chromium at {}: install it with `apt-get install -y chromium` \
         (or point CHROMIUM at a Chromium binary)",
        chromium.display()
    );
    let node = std::process::Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => panic!(
            "`node --version` failed ({}): the browser test needs Node.js 20+ \
             (apt-get install -y nodejs npm)",
            out.status
        ),
        Err(e) => panic!(
            "node not found ({e}): the browser test needs Node.js 20+ and npm \
             (apt-get install -y nodejs npm)"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "the browser test needs Node.js 20 or newer (playwright-core requires it); found {version}"
    );
    let dir = browser_dir();
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        println!(
            "installing playwright-core into {} (npm install)",
            dir.display()
        );
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("npm not found ({e}): install it (apt-get install -y npm), then rerun")
            });
        assert!(
            status.success(),
            "`npm install --no-audit --no-fund` in {} failed ({status}); run it by hand to see why",
            dir.display()
        );
    }
}

/// The running `node dashboard.mjs` and both ends of the line protocol.
pub(crate) struct Browser {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) lines: Lines<BufReader<ChildStdout>>,
    pub(crate) stderr: Arc<Mutex<String>>,
    pub(crate) started: Instant,
    pub(crate) transcript: Vec<String>,
    /// The first task the page saw complete, and the P3 task held by the pause (the detail
    /// views open them again).
    pub(crate) first: String,
    pub(crate) p3: String,
}

impl Browser {
    pub(crate) fn spawn(base_url: &str, instance: &str, screenshot: &Path) -> Self {
        let mut child = Command::new("node")
            .arg(browser_dir().join("dashboard.mjs"))
            .current_dir(browser_dir())
            .env("BASE_URL", base_url)
            .env("TOKEN", token(Role::Admin))
            .env("VIEWER_TOKEN", token(Role::Viewer))
            .env("AGENT_TOKEN", token(Role::Agent))
            .env("INSTANCE", instance)
            .env("SCREENSHOT", screenshot)
            .env("CHROMIUM", chromium_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node tests/browser/dashboard.mjs");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = String::new();
            let _ = err.read_to_string(&mut buf).await;
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&buf);
        });
        Browser {
            child,
            stdin,
            lines,
            stderr,
            started: Instant::now(),
            transcript: Vec::new(),
            first: String::new(),
            p3: String::new(),
        }
    }

    pub(crate) fn note(&mut self, line: String) {
        let line = format!("[{:6.2} s] {line}", self.started.elapsed().as_secs_f64());
        println!("{line}");
        self.transcript.push(line);
    }

    pub(crate) fn fail(&self, why: &str) -> ! {
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        panic!(
            "browser test failed: {why}\n--- transcript ---\n{}\n--- script stderr ---\n{stderr}",
            self.transcript.join("\n"),
        );
    }

    /// Read lines (printing LOG and STEP ones) until the next protocol line; it must be `word`.
    pub(crate) async fn expect(&mut self, word: &str) -> String {
        loop {
            let next = match tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => {
                    let status = self.child.wait().await;
                    // Let the stderr reader finish draining the pipe (it drops its handle when done).
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    self.fail(&format!(
                        "the script ended ({status:?}) while the test waited for {word}"
                    ));
                }
                Ok(Err(e)) => self.fail(&format!("reading the script's output: {e}")),
                Err(_) => self.fail(&format!(
                    "no {word} line from the script in {LINE_TIMEOUT:?}"
                )),
            };
            let (got, rest) = next.split_once(' ').unwrap_or((next.as_str(), ""));
            let rest = rest.to_string();
            match got {
                "LOG" | "STEP" => self.note(next.clone()),
                "FAIL" => {
                    self.note(next.clone());
                    self.fail(&format!("the page check failed: {rest}"));
                }
                _ if got == word => {
                    self.note(next.clone());
                    return rest;
                }
                _ => {
                    self.note(next.clone());
                    self.fail(&format!("expected {word}, the script said `{next}`"));
                }
            }
        }
    }

    pub(crate) async fn send(&mut self, line: String) {
        self.note(format!("-> {line}"));
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = stdin.write_all(format!("{line}\n").as_bytes()).await {
            self.fail(&format!("writing `{line}` to the script: {e}"));
        }
        let _ = stdin.flush().await;
    }
}

impl Drop for Browser {
    /// Closing stdin tells the script to close Chromium and exit; kill it if it doesn't.
    fn drop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.start_kill();
    }
}

pub(crate) async fn events_for(store: &QueueStore, id: &str, event: &str) -> usize {
    store
        .events(10_000)
        .await
        .map(|all| {
            all.iter()
                .filter(|e| e.event == event && e.task_id == id)
                .count()
        })
        .unwrap_or(0)
}

/// Background traffic, so the charts and the screenshots show a minute of work: noops of P0, P1
/// and P2 at a steady pace with a burst now and then, and a few failing ones (retried once, then
/// dead letters); P3 only near the end, while P3 is paused (the page's P3 steps count P3's
/// depth). At most [`Feeder::FAILURES`] failures (the dead letters stay on one page).
pub(crate) struct Feeder {
    pub(crate) stop: Arc<std::sync::atomic::AtomicBool>,
    /// Set while the lists are paged: new and re-scored rows would move between pages.
    pub(crate) hold: Arc<std::sync::atomic::AtomicBool>,
    /// Set while P3 is paused near the end: P3 tasks are fed too, a backlog the depth chart shows.
    pub(crate) backlog: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) handle: tokio::task::JoinHandle<usize>,
    pub(crate) started: Instant,
}

impl Feeder {
    pub(crate) const FAILURES: usize = 6;

    pub(crate) fn start(store: QueueStore) -> Self {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hold = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let backlog = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, held, low) = (stop.clone(), hold.clone(), backlog.clone());
        let handle = tokio::spawn(async move {
            let (mut n, mut failures) = (0usize, 0usize);
            while !flag.load(Ordering::Relaxed) {
                if held.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let batch = if n % 40 == 0 { 8 } else { 1 };
                let mut tasks = Vec::with_capacity(batch);
                for _ in 0..batch {
                    n += 1;
                    let priority = ["P2", "P1", "P2", "P0", "P2", "P1"][n % 6];
                    let mut t = if n % 9 == 0 && failures < Self::FAILURES {
                        failures += 1;
                        task("noop", priority, json!({"fail": true}))
                    } else {
                        task("noop", priority, json!({"sleep_ms": 20 + (n * 37) % 230}))
                    };
                    t.max_retries = 1;
                    tasks.push(t);
                }
                if low.load(Ordering::Relaxed) {
                    tasks.push(task("noop", "P3", json!({"sleep_ms": 30})));
                }
                let _ = store.enqueue(&tasks).await;
                // Pacing, not synchronisation: about two tasks a second.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            n
        });
        Feeder {
            stop,
            hold,
            backlog,
            handle,
            started: Instant::now(),
        }
    }

    /// Hold (or resume) feeding; while held, wait until nothing is pending, running or retrying.
    pub(crate) async fn hold(&self, on: bool, store: &QueueStore) {
        self.hold.store(on, std::sync::atomic::Ordering::Relaxed);
        if on {
            eventually(LONG, "the background traffic drained", || async {
                let s = store.stats().await.ok()?;
                // P3 may be held back by now: its backlog stays where it is.
                let moving = s.pending_total - s.pending.p3;
                (moving == 0 && s.in_flight == 0 && s.retrying == 0).then_some(())
            })
            .await;
        }
    }

    /// Stop feeding; how many tasks were fed.
    pub(crate) async fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.await.expect("the feeder task")
    }
}

/// `GET path` as a viewer; the body.
pub(crate) async fn viewer_get(worker: &Worker, path: &str) -> serde_json::Value {
    let viewer = token(Role::Viewer);
    let (s, v) = worker
        .call(reqwest::Method::GET, path, Some(&viewer), None)
        .await;
    assert!(s.is_success(), "GET {path}: {s} {v}");
    v
}
