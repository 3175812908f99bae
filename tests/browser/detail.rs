//! The browser test's task-detail steps: a deploy's build and inspector link, a deep link, a row
//! click, Cancel, a live update, the priorities' Pause/Resume, and a real `release` with a deploy
//! deferred behind it.

use ops_worker::queue::QueueStore;
use ops_worker::task::{TaskRecord, TaskStatus};
use serde_json::json;

use crate::harness::*;
use crate::support::*;

/// Task detail: a deploy's build against the simulator, a deep link, a row click, Cancel, a live
/// update, and Pause/Resume P1 (each effect checked here, through Redis or the API).
pub(crate) async fn detail_views(browser: &mut Browser, worker: &Worker, store: &QueueStore) {
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
pub(crate) async fn deploy_detail(browser: &mut Browser, store: &QueueStore) {
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
pub(crate) async fn pause_p1(browser: &mut Browser, worker: &Worker) {
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
pub(crate) fn step_words(rec: &TaskRecord) -> Vec<String> {
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
pub(crate) async fn release_views(
    browser: &mut Browser,
    sim: &SimProcess,
    store: &QueueStore,
) -> String {
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
