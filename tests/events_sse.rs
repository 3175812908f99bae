//! `GET /api/events` against a running worker and a real Redis, read raw like `curl -N`: task
//! events of a submitted task, resume with `Last-Event-ID`, filters, auth, validation, the client
//! cap and the end of every stream at shutdown.

mod support;

use std::time::{Duration, Instant};

use ops_worker::api::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const LONG: Duration = Duration::from_secs(60);

/// One parsed SSE frame.
#[derive(Debug, Clone)]
struct Frame {
    /// `id:`, the stream entry id.
    id: String,
    /// `event:`, the event name.
    event: String,
    /// `data:`, parsed.
    data: Value,
}

/// An open `text/event-stream` response, read chunk by chunk.
struct Sse {
    /// The streaming response.
    resp: reqwest::Response,
    /// Bytes received but not yet split into frames.
    buf: String,
    /// Comment lines seen (`: keep-alive`, `: connected`).
    comments: Vec<String>,
    /// The body ended (cleanly: a broken stream panics).
    ended: bool,
}

impl Sse {
    async fn open(app: &Worker, query: &str, last_id: Option<&str>) -> Sse {
        let resp = sse_request(app, query, last_id, Some(&token(Role::Viewer))).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            resp,
            buf: String::new(),
            comments: vec![],
            ended: false,
        }
    }

    /// The next frame with an `id:`, or None when the stream ends or `within` passes.
    async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(f) = self.parse(&block) {
                    return Some(f);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => {
                    self.ended = true;
                    return None;
                }
                Ok(Err(e)) => panic!("the event stream broke: {e}"),
                Err(_) => return None,
            }
        }
    }

    fn parse(&mut self, block: &str) -> Option<Frame> {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(c) = line.strip_prefix(':') {
                self.comments.push(c.trim().to_string());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).expect("data is JSON"));
            }
        }
        Some(Frame {
            id: id?,
            event: event.expect("every frame names its event"),
            data: data.expect("every frame has data"),
        })
    }

    /// Frames until one satisfies `done` (included); panics after [`LONG`].
    async fn until(&mut self, what: &str, done: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let deadline = Instant::now() + LONG;
        let mut seen = vec![];
        while let Some(f) = self
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            let stop = done(&f);
            seen.push(f);
            if stop {
                return seen;
            }
        }
        panic!("no {what} on the stream; saw {seen:?}");
    }
}

async fn sse_request(
    app: &Worker,
    query: &str,
    last_id: Option<&str>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(app.url(&format!("/api/events{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    req.send().await.expect("request /api/events")
}

async fn submit_noop(app: &Worker) -> String {
    let (s, v) = app.submit(json!({"type": "noop"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["task_id"].as_str().unwrap().to_string()
}

fn is_done(id: &str) -> impl Fn(&Frame) -> bool + '_ {
    move |f| f.data["task_id"] == id && f.event == "task.completed"
}

#[tokio::test]
async fn streams_task_events_and_resumes_after_last_event_id() {
    let app = spawn_app("sse", &[("WORKER_CONCURRENCY", "1")]).await;
    let mut sse = Sse::open(&app, "", None).await;
    let first = submit_noop(&app).await;
    let frames = sse
        .until("task.completed of the first task", is_done(&first))
        .await;
    let mine: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.data["task_id"] == first)
        .collect();
    let names: Vec<&str> = mine.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"task.created"), "{names:?}");
    assert!(names.contains(&"task.started"), "{names:?}");
    for f in &mine {
        assert_eq!(f.data["type"], "noop", "{f:?}");
        assert_eq!(f.data["event"], f.event.as_str(), "{f:?}");
    }
    assert!(
        sse.comments.iter().any(|c| c == "connected"),
        "{:?}",
        sse.comments
    );
    let resume_from = frames.last().unwrap().id.clone();
    drop(sse);

    // Two more tasks run while nobody listens; a resumed stream gets exactly what was missed.
    let second = submit_noop(&app).await;
    let third = submit_noop(&app).await;
    eventually(LONG, "both tasks completed", || async {
        let all = app.store().await.events(10_000).await.ok()?;
        (all.iter().filter(|e| e.event == "task.completed").count() == 3).then_some(())
    })
    .await;
    let mut resumed = Sse::open(&app, "", Some(&resume_from)).await;
    let got = resumed
        .until("task.completed of the third task", is_done(&third))
        .await;
    let ids: Vec<&str> = got
        .iter()
        .map(|f| f.data["task_id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == second || *i == third), "{ids:?}");
    assert_eq!(
        got.iter().filter(|f| f.event == "task.created").count(),
        2,
        "{got:?}"
    );
    let mut order: Vec<&str> = got.iter().map(|f| f.id.as_str()).collect();
    order.dedup();
    assert_eq!(order.len(), got.len(), "no entry twice: {got:?}");
    // `?after=` is the same as the header, and nothing follows until something happens.
    let mut after = Sse::open(&app, &format!("?after={resume_from}"), None).await;
    let again = after.until("the third task again", is_done(&third)).await;
    assert_eq!(
        again.iter().map(|f| &f.id).collect::<Vec<_>>(),
        got.iter().map(|f| &f.id).collect::<Vec<_>>()
    );
    assert!(after.next(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn filters_by_type_prefix_and_task() {
    let app = spawn_app("sse-filter", &[("WORKER_CONCURRENCY", "1")]).await;
    let mut only_completed = Sse::open(&app, "?type=task.completed", None).await;
    let a = submit_noop(&app).await;
    let b = submit_noop(&app).await;
    let mut only_b = Sse::open(&app, &format!("?task={b}&after=0"), None).await;
    let done = only_completed.until("b completed", is_done(&b)).await;
    assert!(done.iter().all(|f| f.event == "task.completed"), "{done:?}");
    assert!(done.iter().any(|f| f.data["task_id"] == a), "{done:?}");
    let of_b = only_b.until("b completed", is_done(&b)).await;
    assert!(of_b.iter().all(|f| f.data["task_id"] == b), "{of_b:?}");
    assert_eq!(of_b.first().map(|f| f.event.as_str()), Some("task.created"));
    // Several prefixes, none matching task events: only worker events (none come here).
    let mut none = Sse::open(&app, "?type=deploy.,schedule.&after=0", None).await;
    assert!(none.next(Duration::from_secs(1)).await.is_none());
}

#[tokio::test]
async fn refuses_bad_requests_naming_the_field() {
    let app = spawn_app("sse-bad", &[("WORKER_CONCURRENCY", "1")]).await;
    let resp = sse_request(&app, "", None, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let viewer = token(Role::Viewer);
    for (query, last, field) in [
        ("?type=Task%20Created", None, "type"),
        ("?type=task.,", None, "type"),
        ("?task=no%20such%20id", None, "task"),
        ("?after=yesterday", None, "after"),
        ("", Some("12-x"), "Last-Event-ID"),
        ("?timeout=0", None, "timeout"),
    ] {
        let resp = sse_request(&app, query, last, Some(&viewer)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query} {last:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    // `timeout` ends a stream by itself (what scripts and the fuzzer use).
    let started = Instant::now();
    let mut short = Sse::open(&app, "?timeout=1", None).await;
    assert!(short.next(Duration::from_secs(10)).await.is_none());
    assert!(short.ended);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn caps_clients_and_ends_every_stream_at_shutdown() {
    let mut app = spawn_app("sse-cap", &[("WORKER_CONCURRENCY", "1")]).await;
    let mut open = vec![];
    for _ in 0..ops_worker::api::events::MAX_CLIENTS {
        open.push(Sse::open(&app, "", None).await);
    }
    let viewer = token(Role::Viewer);
    let extra = sse_request(&app, "", None, Some(&viewer)).await;
    assert_eq!(extra.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = extra.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("too many event streams"), "{body}");
    // The rest of the API is unaffected.
    let (s, _) = app
        .call(Method::GET, "/api/queue/stats", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A client that goes away frees its slot (its stream ends when the server notices).
    drop(open.pop());
    let t = Instant::now();
    let again = eventually(LONG, "a slot freed by a closed client", || async {
        let r = sse_request(&app, "", None, Some(&viewer)).await;
        (r.status() == StatusCode::OK).then_some(r)
    })
    .await;
    eprintln!("slot freed after {:?}", t.elapsed());
    drop(again);

    let started = Instant::now();
    app.worker.signal("TERM");
    let mut names = vec![];
    for sse in &mut open {
        // Each stream shows the drain, then ends (cleanly: a broken connection panics).
        while let Some(f) = sse.next(Duration::from_secs(20)).await {
            names.push(f.event);
        }
        assert!(sse.ended, "a stream did not end at shutdown");
    }
    assert!(names.iter().any(|n| n == "worker.stopped"), "{names:?}");
    let status = app.worker.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
}
