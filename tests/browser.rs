//! The dashboard in a real browser (headless Chromium driven by Playwright): a private Redis, a real
//! `ops-worker run`, and `tests/browser/dashboard.mjs` clicking through the page while this test
//! feeds it tasks and checks, through the library, that what the page did really happened.
//!
//! Needs `/usr/bin/chromium` (`apt-get install -y chromium`) and Node.js 20+ with npm; the
//! `playwright-core` package is installed into `tests/browser/node_modules` on first run
//! (`npm install` from the committed lock file). Missing tools fail the test, never skip it.
//!
//! The script and the test talk in lines (`WORD rest`, see the top of `dashboard.mjs`); neither
//! side sleeps to synchronise: the script polls the page, this test polls Redis, each with a
//! deadline. A full-page screenshot lands in `target/dashboard.png`.
//! `cargo test --test browser -- --nocapture` prints the transcript.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_worker::api::auth::Role;
use ops_worker::queue::QueueStore;
use ops_worker::task::{TaskRecord, TaskStatus};
use serde_json::json;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const QUEUE: &str = "browser";
/// Longer than the script's own step timeout (30 s), so its FAIL line, which says what the page
/// showed, arrives before this side gives up.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
const LONG: Duration = Duration::from_secs(60);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Chromium, Node 20+ and playwright-core must be there; install playwright-core when missing.
fn preflight() {
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
struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
    transcript: Vec<String>,
    /// The first task the page saw complete, and the P3 task held by the pause (the detail
    /// views open them again).
    first: String,
    p3: String,
}

impl Browser {
    fn spawn(base_url: &str, instance: &str, screenshot: &Path) -> Self {
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

    fn note(&mut self, line: String) {
        let line = format!("[{:6.2} s] {line}", self.started.elapsed().as_secs_f64());
        println!("{line}");
        self.transcript.push(line);
    }

    fn fail(&self, why: &str) -> ! {
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
    async fn expect(&mut self, word: &str) -> String {
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

    async fn send(&mut self, line: String) {
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

async fn events_for(store: &QueueStore, id: &str, event: &str) -> usize {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_drives_the_worker_in_a_real_browser() {
    let t0 = Instant::now();
    preflight();

    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let worker = Worker::builder(&redis.url(), QUEUE)
        .env("WORKER_CONCURRENCY", "1")
        .envs(sim.worker_env())
        .spawn()
        .await;
    let store = store(&redis.url(), QUEUE);
    let feeder = Feeder::start(store.clone());

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).expect("create target/");
    let screenshot = target.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);

    println!("worker {} at {}", worker.instance, worker.base_url());
    let mut browser = Browser::spawn(&worker.base_url(), &worker.instance, &screenshot);

    // Bogus token rejected, real token accepted, this instance shown running.
    browser.expect("READY").await;
    tasks_and_pauses(&mut browser, &store).await;
    retry_from_the_page(&mut browser, &store).await;
    detail_views(&mut browser, &worker, &store).await;
    hold_back_p3(&store, &feeder).await;
    charts_and_lists(&mut browser, &worker, &store, &feeder).await;
    controls(&mut browser, &worker, &store).await;
    // After `controls`: the instance runs three consumers, one for the release, one to defer the deploy.
    let release = release_views(&mut browser, &sim, &store).await;
    schedules(&mut browser, &worker).await;
    browser.expect("A11Y_OK").await;
    screenshots(&mut browser, &worker, &store, feeder, &release).await;
    roles(&mut browser, &worker, &store).await;
    polling_fallback(&mut browser, &store).await;
    browser.expect("DONE").await;
    let status = browser.child.wait().await.expect("wait for node");
    assert!(status.success(), "the script exited with {status}");
    check_screenshots(&target, &screenshot);
    println!(
        "dashboard browser test passed in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Background traffic, so the charts and the screenshots show a minute of work: noops of P0, P1
/// and P2 at a steady pace with a burst now and then, and a few failing ones (retried once, then
/// dead letters); P3 only near the end, while P3 is paused (the page's P3 steps count P3's
/// depth). At most [`Feeder::FAILURES`] failures (the dead letters stay on one page).
struct Feeder {
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Set while the lists are paged: new and re-scored rows would move between pages.
    hold: Arc<std::sync::atomic::AtomicBool>,
    /// Set while P3 is paused near the end: P3 tasks are fed too, a backlog the depth chart shows.
    backlog: Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<usize>,
    started: Instant,
}

impl Feeder {
    const FAILURES: usize = 6;

    fn start(store: QueueStore) -> Self {
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
    async fn hold(&self, on: bool, store: &QueueStore) {
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
    async fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.await.expect("the feeder task")
    }
}

/// A task enqueued behind the page's back reaches completed; Pause P3 / Resume P3 on the page
/// hold and release a P3 task (each effect checked in Redis).
async fn tasks_and_pauses(browser: &mut Browser, store: &QueueStore) {
    let first = noop(json!({"sleep_ms": 300}));
    let id = first.task_id.to_string();
    store.enqueue(&[first]).await.expect("enqueue");
    browser.send(format!("TASK {id}")).await;
    assert_eq!(browser.expect("TASK_COMPLETED").await, id);
    let rec = store.get(&id).await.expect("get").expect("record");
    assert_eq!(
        rec.status,
        TaskStatus::Completed,
        "the page said completed; the store must agree"
    );

    // "Pause P3" on the page really pauses P3 in Redis.
    assert_eq!(browser.expect("PAUSED").await, "P3");
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        stats.paused,
        vec![ops_worker::task::Priority::P3],
        "the store must show P3 paused"
    );

    // While paused, a P3 task waits; the page shows it pending.
    let p3 = task("noop", "P3", json!({"sleep_ms": 100}));
    let p3_id = p3.task_id.to_string();
    store.enqueue(&[p3]).await.expect("enqueue P3");
    browser.send(format!("TASK_P3 {p3_id}")).await;
    assert_eq!(browser.expect("P3_PENDING").await, p3_id);
    let rec = store.get(&p3_id).await.expect("get").expect("record");
    assert_eq!(
        rec.status,
        TaskStatus::Pending,
        "P3 is paused: the task must wait"
    );

    // "Resume P3" clears the pause; the waiting task then runs.
    assert_eq!(browser.expect("RESUMED").await, "P3");
    let stats = store.stats().await.expect("stats");
    assert!(
        stats.paused.is_empty(),
        "the store must show nothing paused after Resume P3, got {:?}",
        stats.paused
    );
    assert_eq!(browser.expect("P3_COMPLETED").await, p3_id);
    browser.first = id;
    browser.p3 = p3_id;
}

/// A dead-lettered task: the page's Retry button replays it (it then fails again).
async fn retry_from_the_page(browser: &mut Browser, store: &QueueStore) {
    let mut bad = noop(json!({"fail": true}));
    bad.max_retries = 0;
    let bad_id = bad.task_id.to_string();
    store.enqueue(&[bad]).await.expect("enqueue failing task");
    eventually(LONG, "the failing task dead-lettered", || async {
        let r = store.get(&bad_id).await.ok()??;
        (r.status == TaskStatus::Failed).then_some(())
    })
    .await;
    browser.send(format!("FAILED_TASK {bad_id}")).await;
    assert_eq!(browser.expect("RETRIED").await, bad_id);
    assert_eq!(
        events_for(store, &bad_id, "task.requeued").await,
        1,
        "Retry on the page must replay the task"
    );
    eventually(LONG, "the replayed task to run and fail again", || async {
        (events_for(store, &bad_id, "task.failed").await >= 2).then_some(())
    })
    .await;
}

/// As an operator holding back low-priority work would: P3 paused while P3 tasks keep coming,
/// a backlog the depth chart shows (the page's own P3 steps are over by now).
async fn hold_back_p3(store: &QueueStore, feeder: &Feeder) {
    use ops_worker::task::Priority;
    store.pause(&[Priority::P3]).await.expect("pause P3");
    feeder
        .backlog
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Once the traffic has run a minute and a depth sample shows the P3 backlog, P3 is resumed and
/// drains; then the screenshots, with the release's detail open (the admin was offered every
/// control on the way).
async fn screenshots(
    browser: &mut Browser,
    worker: &Worker,
    store: &QueueStore,
    feeder: Feeder,
    release: &str,
) {
    use ops_worker::task::Priority;
    let started = feeder.started;
    eventually(
        Duration::from_secs(150),
        "a minute of traffic and a depth sample with the P3 backlog",
        || async {
            let hour = viewer_get(worker, "/api/stats/history?range=1h").await;
            let backlog = hour["points"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["pending"]["P3"].as_u64() > Some(5)));
            (started.elapsed() >= Duration::from_secs(60) && backlog).then_some(())
        },
    )
    .await;
    feeder
        .backlog
        .store(false, std::sync::atomic::Ordering::Relaxed);
    store.resume(&[Priority::P3]).await.expect("resume P3");
    eventually(LONG, "the P3 backlog drained", || async {
        (store.stats().await.ok()?.pending.p3 == 0).then_some(())
    })
    .await;
    browser.send(format!("SHOT {release}")).await;
    let offered: usize = browser
        .expect("ADMIN_CONTROLS")
        .await
        .parse()
        .expect("a count");
    assert!(offered >= 30, "the admin sees every control: {offered}");
    browser.expect("SCREENSHOT").await;
    let fed = feeder.stop().await;
    assert!(fed >= 100, "the background traffic fed {fed} tasks");
}

/// With a waiting task open, a viewer is offered nothing; an agent exactly the cancel controls,
/// and its Cancel works.
async fn roles(browser: &mut Browser, worker: &Worker, store: &QueueStore) {
    let waiting = worker.waiting_task().await;
    browser.send(format!("ROLES {waiting}")).await;
    browser.expect("VIEWER_NO_BUTTONS").await;
    assert_eq!(
        browser.expect("AGENT_CONTROLS").await,
        "detail-cancel,recent-cancel,select-all@recent,select-task@recent",
        "an agent may cancel, not retry, delete, pause, schedule or command the pool"
    );
    assert_eq!(browser.expect("AGENT_CANCELLED").await, waiting);
    let rec = store.get(&waiting).await.expect("get").expect("record");
    assert_eq!(rec.status, TaskStatus::Cancelled, "the agent's Cancel");
}

/// With the live stream refused, the page falls back to polling: a task enqueued then still
/// reaches completed on it.
async fn polling_fallback(browser: &mut Browser, store: &QueueStore) {
    browser.expect("POLLING").await;
    let t = noop(json!({"sleep_ms": 50}));
    let id = t.task_id.to_string();
    store.enqueue(&[t]).await.expect("enqueue");
    browser.send(format!("TASK_POLLED {id}")).await;
    assert_eq!(browser.expect("POLLED").await, id);
    let rec = store.get(&id).await.expect("get").expect("record");
    assert_eq!(rec.status, TaskStatus::Completed, "the page said completed");
}

/// The four PNGs the script saved: present, PNG, not tiny.
fn check_screenshots(target: &Path, screenshot: &Path) {
    for part in ["charts", "lists", "schedules"] {
        let path = target.join(format!("dashboard-{part}.png"));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(
            len > 2_000,
            "{} missing or tiny ({len} bytes)",
            path.display()
        );
    }
    let meta = std::fs::metadata(screenshot).expect("screenshot written");
    let mut magic = [0u8; 8];
    use std::io::Read;
    std::fs::File::open(screenshot)
        .and_then(|mut f| f.read_exact(&mut magic))
        .expect("read screenshot");
    assert_eq!(&magic, b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG");
    assert!(
        meta.len() > 10_000,
        "the screenshot is suspiciously small ({} bytes)",
        meta.len()
    );
    println!("screenshot {} ({} bytes)", screenshot.display(), meta.len());
}

/// Task detail: a deploy's build against the simulator, a deep link, a row click, Cancel, a live
/// update, and Pause/Resume P1 (each effect checked here, through Redis or the API).
async fn detail_views(browser: &mut Browser, worker: &Worker, store: &QueueStore) {
    deploy_detail(browser, store).await;
    let (first, p3) = (browser.first.clone(), browser.p3.clone());
    browser.send(format!("DETAIL {first}")).await;
    assert_eq!(browser.expect("DETAIL_SHOWN").await, first);
    assert_eq!(browser.expect("ROW_OPENED").await, p3);

    let waiting = worker.waiting_task().await;
    browser.send(format!("WAITING {waiting}")).await;
    assert_eq!(browser.expect("CANCELLED").await, waiting);
    let rec = store.get(&waiting).await.expect("get").expect("record");
    assert_eq!(
        rec.status,
        TaskStatus::Cancelled,
        "Cancel on the page must cancel"
    );

    let watched = worker.waiting_task().await;
    browser.send(format!("WATCH {watched}")).await;
    assert_eq!(browser.expect("WATCHING").await, watched);
    store
        .cancel(&watched)
        .await
        .expect("cancel behind the page's back");
    assert_eq!(browser.expect("LIVE").await, watched);
    pause_p1(browser, worker).await;
}

/// A deploy's detail: its deployment id, build log and the link to Vercel's inspector.
async fn deploy_detail(browser: &mut Browser, store: &QueueStore) {
    let deploy = task("deploy", "P1", json!({"project": "dashboard-web"}));
    let deploy_id = deploy.task_id.to_string();
    store.enqueue(&[deploy]).await.expect("enqueue deploy");
    let rec = eventually(LONG, "the deploy completed with a build log", || async {
        let r = store.get(&deploy_id).await.ok()??;
        let b = store.build_progress(&deploy_id).await.ok()?;
        (r.status == TaskStatus::Completed && !b.log.is_empty()).then_some(r)
    })
    .await;
    browser.send(format!("DEPLOY {deploy_id}")).await;
    let shown = browser.expect("DEPLOY_SHOWN").await;
    let dep = rec
        .result
        .as_ref()
        .and_then(|r| r["deployment_id"].as_str());
    let dep = dep.expect("the deploy's result names its deployment");
    assert!(
        shown.starts_with(&format!("{deploy_id} {dep} ")),
        "the page must show deployment {dep}: {shown}"
    );
    let inspector = browser.expect("INSPECTOR").await;
    assert_eq!(
        Some(inspector.as_str()),
        rec.inspector_url.as_deref(),
        "the page links to the inspector URL stored with the deployment"
    );
}

/// Pause and Resume P1, then P0 and P2, on the page, checked through the API.
async fn pause_p1(browser: &mut Browser, worker: &Worker) {
    let paused = |v: serde_json::Value| v["paused"].clone();
    assert_eq!(browser.expect("PAUSED").await, "P1");
    let stats = viewer_get(worker, "/api/queue/stats").await;
    assert_eq!(
        paused(stats),
        json!(["P1"]),
        "Pause P1 on the page must pause P1"
    );
    browser.send("P1_CHECKED".into()).await;
    assert_eq!(browser.expect("RESUMED").await, "P1");
    let stats = viewer_get(worker, "/api/queue/stats").await;
    assert_eq!(
        paused(stats),
        json!([]),
        "Resume P1 on the page must resume P1"
    );
    for p in ["P0", "P2"] {
        assert_eq!(browser.expect("PAUSED_EACH").await, p);
        let stats = viewer_get(worker, "/api/queue/stats").await;
        assert_eq!(paused(stats), json!([p]), "Pause {p} on the page");
        browser.send("OK".into()).await;
        assert_eq!(browser.expect("RESUMED_EACH").await, p);
        let stats = viewer_get(worker, "/api/queue/stats").await;
        assert_eq!(paused(stats), json!([]), "Resume {p} on the page");
        browser.send("OK".into()).await;
    }
}

/// A record's step history as `step:state` words, as the API spells them.
fn step_words(rec: &TaskRecord) -> Vec<String> {
    rec.steps
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).expect("a step serialises");
            format!(
                "{}:{}",
                v["step"].as_str().unwrap_or("?"),
                v["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A real `release` held at its verification (the simulated site answers 503) and a deploy of
/// the same project deferred behind it: the page shows the deploy's `waiting_for` and the
/// release's steps as the record has them, then both complete once the site passes. Answers the
/// release's id.
async fn release_views(browser: &mut Browser, sim: &SimProcess, store: &QueueStore) -> String {
    sim.site(json!({"status": 503})).await;
    let verify = json!({"url": sim.site_url(), "withinSecs": 60});
    let rel = task(
        "release",
        "P1",
        json!({"project": "dashboard-rel", "verify": verify}),
    );
    let rel_id = rel.task_id.to_string();
    store.enqueue(&[rel]).await.expect("enqueue release");
    let verifying = eventually(LONG, "the release verifying", || async {
        let r = store.get(&rel_id).await.ok()??;
        step_words(&r)
            .contains(&"verify:started".to_string())
            .then_some(r)
    })
    .await;
    let dep = task("deploy", "P1", json!({"project": "dashboard-rel"}));
    let dep_id = dep.task_id.to_string();
    store.enqueue(&[dep]).await.expect("enqueue deploy");
    let deferred = eventually(LONG, "the deploy waiting for the project", || async {
        store
            .get(&dep_id)
            .await
            .ok()?
            .filter(|r| r.waiting_for.is_some())
    })
    .await;

    browser.send(format!("RELEASE {rel_id} {dep_id}")).await;
    assert_eq!(
        browser.expect("WAITING_SHOWN").await,
        format!(
            "{} project=dashboard-rel holder={rel_id}",
            deferred.status.as_str()
        ),
        "the deploy's detail says which project it waits for and which task holds it"
    );
    let shown = browser.expect("STEPS_SHOWN").await;
    let now = store.get(&rel_id).await.expect("get").expect("record");
    let (status, words) = shown.split_once(' ').unwrap_or((&shown, ""));
    assert_eq!(
        status,
        TaskStatus::InProgress.as_str(),
        "the release runs while it verifies"
    );
    assert!(
        step_words(&now).join(",").starts_with(words),
        "the page shows the release's steps so far ({words}); the record has {:?}",
        step_words(&now)
    );

    let deployment = verifying.deployment_id.expect("the release's deployment");
    sim.site(json!({"status": 200, "deployment": deployment}))
        .await;
    browser.send("VERIFY_PASSES".into()).await;
    let done = eventually(LONG, "the release completed", || async {
        store
            .get(&rel_id)
            .await
            .ok()?
            .filter(|r| r.status == TaskStatus::Completed)
    })
    .await;
    assert_eq!(
        browser.expect("RELEASE_DONE").await,
        step_words(&done).join(","),
        "the page shows every step of the completed release"
    );
    assert_eq!(browser.expect("WAITED_DONE").await, dep_id);
    let rec = store.get(&dep_id).await.expect("get").expect("record");
    assert_eq!(rec.status, TaskStatus::Completed, "the deferred deploy ran");
    assert!(rec.waiting_for.is_none(), "it no longer waits");
    rel_id
}

/// `GET path` as a viewer; the body.
async fn viewer_get(worker: &Worker, path: &str) -> serde_json::Value {
    let viewer = token(Role::Viewer);
    let (s, v) = worker
        .call(reqwest::Method::GET, path, Some(&viewer), None)
        .await;
    assert!(s.is_success(), "GET {path}: {s} {v}");
    v
}

/// Charts from the history route (the page's numbers against the API's) and the lists' paging
/// and filters.
async fn charts_and_lists(
    browser: &mut Browser,
    worker: &Worker,
    store: &QueueStore,
    feeder: &Feeder,
) {
    let charts = browser.expect("CHARTS").await;
    let (shown, capacity) = charts.split_once(' ').unwrap_or((&charts, ""));
    let shown: u64 = shown.parse().expect("a count");
    let hour = viewer_get(worker, "/api/stats/history?range=1h").await;
    let completed: u64 = hour["points"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["completed"].as_u64()).sum())
        .unwrap_or(0);
    assert!(
        shown > 0 && shown <= completed,
        "the chart shows {shown} completed in the hour; the API says {completed}"
    );
    assert_eq!(capacity, "1", "one instance with one consumer");
    let live: f64 = browser.expect("LIVE_CHART").await.parse().expect("a sum");
    assert!(live >= 1.0, "the live chart counts completed tasks: {live}");
    let day: usize = browser.expect("DAY_CHART").await.parse().expect("points");
    assert!((288..=289).contains(&day), "a day in 5-minute steps: {day}");

    feeder.hold(true, store).await;
    let many: Vec<_> = (0..12).map(|_| noop(json!({}))).collect();
    let ids: Vec<String> = many.iter().map(|t| t.task_id.to_string()).collect();
    store.enqueue(&many).await.expect("enqueue");
    eventually(LONG, "the 12 tasks completed", || async {
        for id in &ids {
            if store.get(id).await.ok()??.status != TaskStatus::Completed {
                return None;
            }
        }
        Some(())
    })
    .await;
    browser.send("MANY".into()).await;
    let filtered = browser.expect("FILTERED").await;
    let parts: Vec<&str> = filtered.split(' ').collect();
    let (id, prefix, rows) = (parts[0], parts[1], parts[2]);
    let listed = viewer_get(
        worker,
        &format!("/api/tasks/recent?limit=100&id_prefix={prefix}"),
    )
    .await;
    assert_eq!(
        listed["count"].to_string(),
        rows,
        "the page shows as many rows for id prefix {prefix} as the API"
    );
    assert!(id.starts_with(prefix));
    feeder.hold(false, store).await;
}

/// Per-instance stop and start, bulk retry, delete and cancel: each effect checked in Redis.
async fn controls(browser: &mut Browser, worker: &Worker, store: &QueueStore) {
    let mut dead = Vec::new();
    for _ in 0..3 {
        let mut t = noop(json!({"fail": true}));
        t.max_retries = 0;
        dead.push(t.task_id.to_string());
        store.enqueue(&[t]).await.expect("enqueue");
    }
    eventually(LONG, "three dead letters", || async {
        for id in &dead {
            if store.get(id).await.ok()??.status != TaskStatus::Failed {
                return None;
            }
        }
        Some(())
    })
    .await;
    browser.send(format!("DEAD {}", dead.join(" "))).await;
    assert_eq!(browser.expect("INSTANCE_STOPPED").await, worker.instance);
    let status = viewer_get(worker, "/api/worker/status").await;
    assert_eq!(status["instances"][0]["status"], "stopped", "{status}");
    browser.send("OK".into()).await;

    browser.expect("BULK_RETRIED").await;
    for id in &dead[..2] {
        let r = store.get(id).await.expect("get").expect("record");
        assert_eq!(
            r.status,
            TaskStatus::Pending,
            "bulk retry: {id} pending again"
        );
    }
    browser.send("OK".into()).await;
    assert_eq!(browser.expect("BULK_DELETED").await, dead[2]);
    assert!(store.get(&dead[2]).await.expect("get").is_none(), "deleted");
    browser.send("OK".into()).await;
    browser.expect("BULK_CANCELLED").await;
    for id in &dead[..2] {
        let r = store.get(id).await.expect("get").expect("record");
        assert_eq!(r.status, TaskStatus::Cancelled, "bulk cancel: {id}");
    }
    browser.send("OK".into()).await;
    assert_eq!(browser.expect("INSTANCE_STARTED").await, worker.instance);
    let status = viewer_get(worker, "/api/worker/status").await;
    let me = &status["instances"][0];
    assert_eq!(
        (me["status"].as_str(), me["consumers"].as_u64()),
        (Some("running"), Some(2)),
        "{status}"
    );
    browser.send("OK".into()).await;
    cluster_controls(browser, worker, store).await;
}

/// Stop all / Start all / Restart all with 3 consumers; then Retry task on a dead letter's detail
/// and Delete on another's row.
async fn cluster_controls(browser: &mut Browser, worker: &Worker, store: &QueueStore) {
    assert_eq!(browser.expect("CLUSTER_RESTARTED").await, worker.instance);
    let status = viewer_get(worker, "/api/worker/status").await;
    let me = &status["instances"][0];
    assert_eq!(
        (status["status"].as_str(), me["consumers"].as_u64()),
        (Some("running"), Some(3)),
        "Restart all with 3 consumers: {status}"
    );
    browser.send("OK".into()).await;

    let (retried, deleted) = (worker.failed_task().await, worker.failed_task().await);
    browser.send(format!("DEAD2 {retried} {deleted}")).await;
    assert_eq!(browser.expect("DETAIL_RETRIED").await, retried);
    assert_eq!(
        events_for(store, &retried, "task.requeued").await,
        1,
        "Retry task in the detail replays it"
    );
    browser.send("OK".into()).await;
    assert_eq!(browser.expect("ROW_DELETED").await, deleted);
    assert!(
        store.get(&deleted).await.expect("get").is_none(),
        "Delete on the row removes the record"
    );
    browser.send("OK".into()).await;
}

/// A schedule added and removed from the page, checked through the API.
async fn schedules(browser: &mut Browser, worker: &Worker) {
    let types = browser.expect("TYPES").await;
    let known: Vec<&str> = ops_worker::task::TaskType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(
        types,
        known.join(","),
        "the schedule form offers every task type"
    );
    let refused = browser.expect("SCHEDULE_REFUSED").await;
    let (cron, tz) = refused.split_once('|').unwrap_or((&refused, ""));
    assert!(
        cron.starts_with("cron=Failed: 400: cron: "),
        "a bad cron is refused naming the field: {cron}"
    );
    assert!(
        tz.starts_with("tz=Failed: 400: tz: "),
        "a bad zone is refused naming the field: {tz}"
    );
    let list = viewer_get(worker, "/api/schedules").await;
    assert_eq!(list, json!([]), "nothing stored from the refused forms");
    assert_eq!(browser.expect("SCHEDULE_ADDED").await, "nightly-check");
    let list = viewer_get(worker, "/api/schedules").await;
    let s = list
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "nightly-check"))
        .unwrap_or_else(|| panic!("the schedule is stored: {list}"));
    assert_eq!(
        (
            &s["cron"],
            &s["tz"],
            &s["type"],
            &s["priority"],
            &s["payload"]["project"]
        ),
        (
            &json!("0 9 * * *"),
            &json!("Europe/Paris"),
            &json!("check"),
            &json!("P1"),
            &json!("dashboard-web")
        ),
        "{s}"
    );
    browser.send("OK".into()).await;
    assert_eq!(browser.expect("SCHEDULE_REMOVED").await, "nightly-check");
    let list = viewer_get(worker, "/api/schedules").await;
    assert!(
        !list.to_string().contains("nightly-check"),
        "the schedule is gone: {list}"
    );
    browser.send("OK".into()).await;
}
