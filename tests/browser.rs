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
//! deadline. The screenshots land in `target/dashboard*.png` (docs/ holds copies).
//! `cargo test --test browser -- --nocapture` prints the transcript.
//!
//! This file holds the scenario and its list, control and schedule steps; `browser/harness.rs`
//! the process, the protocol and the background traffic, `browser/detail.rs` the task-detail
//! and release steps.

#[path = "browser/detail.rs"]
mod detail;
#[path = "browser/harness.rs"]
mod harness;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use detail::{detail_views, release_views};
use harness::*;
use ops_worker::queue::QueueStore;
use ops_worker::task::TaskStatus;
use serde_json::json;
use support::*;

const QUEUE: &str = "browser";
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
    let store = store(&redis.url(), QUEUE).await;
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
