//! `GET /api/events`: the Redis event stream as Server-Sent Events.
//!
//! One reader per process ([`EventStreams`]) waits on the stream with `XREAD BLOCK` on its own
//! connection and fans each entry out to every connected client over a broadcast channel, so a
//! client costs no Redis connection. A client first replays what it missed (`XRANGE` after its
//! `Last-Event-ID` on the shared connection), then follows the broadcast, skipping ids it has
//! already sent; when it falls behind the channel it replays from Redis again. Clients are capped
//! ([`MAX_CLIENTS`]); every stream ends when the client goes away or the server shuts down.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, watch};
use tracing::warn;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Viewer;
use super::error::ApiError;
use super::tasks::check_id;
use crate::queue::{QueueError, QueueStore, StreamEntry, StreamEvent};

/// Concurrent SSE clients per instance; one more is answered 503.
pub const MAX_CLIENTS: usize = 32;
/// A comment line is sent this often so proxies keep the connection and dead peers are noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Longest single `XREAD BLOCK` of the reader (it re-checks for shutdown and clients after each).
const BLOCK: Duration = Duration::from_secs(5);
/// Stream entries read per Redis call (a batch entry holds up to 64 events).
const PAGE: usize = 200;
/// Stream entries buffered per client in the broadcast before it counts as lagging (and replays).
const CHANNEL: usize = 1024;
/// Longest `timeout` a client may ask for (seconds).
const TIMEOUT_MAX: u64 = 86_400;

/// One stream entry as broadcast: its events, each with its SSE id.
type Entry = Arc<Vec<StreamEntry>>;

/// The SSE clients of one instance: their slots, the shared reader, and the shutdown switch.
#[derive(Clone)]
pub struct EventStreams {
    /// Shared by the handler clones and the reader task.
    inner: Arc<Inner>,
}

struct Inner {
    /// One permit per connected client; none left means 503.
    slots: Arc<Semaphore>,
    /// Set once by [`EventStreams::close`]: every stream and the reader end.
    closing: watch::Sender<bool>,
    /// The reader's broadcast while it runs (started by the first client, ended after the last).
    hub: Mutex<Option<broadcast::Sender<Entry>>>,
}

impl Default for EventStreams {
    fn default() -> Self {
        Self::new(MAX_CLIENTS)
    }
}

impl EventStreams {
    /// Room for `max_clients` concurrent streams.
    pub fn new(max_clients: usize) -> Self {
        EventStreams {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(max_clients)),
                closing: watch::channel(false).0,
                hub: Mutex::new(None),
            }),
        }
    }

    /// End every stream (server shutdown); new ones are refused with 503.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    fn closed(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// Follow the reader, starting it when none runs; a new reader broadcasts the entries after
    /// `seed`, an id read before this call, so with a replay after it nothing falls in between.
    fn subscribe(&self, store: &QueueStore, seed: &str) -> broadcast::Receiver<Entry> {
        let mut hub = self.inner.hub.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = hub.as_ref() {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(CHANNEL);
        *hub = Some(tx.clone());
        let seed = entry_of(seed).to_string();
        actix_web::rt::spawn(read_loop(store.clone(), self.clone(), tx, seed));
        rx
    }

    /// Whether the reader of `tx` should stop: shutdown, or no client left (then it unregisters
    /// under the same lock [`Self::subscribe`] takes, so no client is left without a reader).
    fn retire(&self, tx: &broadcast::Sender<Entry>) -> bool {
        let mut hub = self.inner.hub.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed() || tx.receiver_count() == 0 {
            *hub = None;
            return true;
        }
        false
    }
}

/// The one reader: `XREAD BLOCK` from `seed` on, each entry broadcast.
async fn read_loop(
    store: QueueStore,
    streams: EventStreams,
    tx: broadcast::Sender<Entry>,
    seed: String,
) {
    let mut closing = streams.inner.closing.subscribe();
    let mut conn = None;
    let mut last = seed;
    while !streams.retire(&tx) {
        let step = tokio::select! {
            r = read_step(&store, &mut conn, &mut last, &tx) => r,
            _ = closing.changed() => continue,
        };
        if let Err(e) = step {
            warn!(error = %e, "reading the event stream failed; retrying in 1 s");
            conn = None;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = closing.changed() => {}
            }
        }
    }
}

async fn read_step(
    store: &QueueStore,
    conn: &mut Option<crate::queue::Conn>,
    last: &mut String,
    tx: &broadcast::Sender<Entry>,
) -> Result<(), QueueError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(store.blocking_connection(BLOCK).await?),
    };
    let page = store.read_events_blocking(c, last, BLOCK, PAGE).await?;
    if let Some(id) = page.last_entry {
        *last = id;
    }
    // One message per stream entry: the channel's capacity counts entries, not events.
    let mut entry: Vec<StreamEntry> = Vec::new();
    for (sse_id, event) in page.events {
        if entry
            .first()
            .is_some_and(|(id, _)| entry_of(id) != entry_of(&sse_id))
        {
            let _ = tx.send(Arc::new(std::mem::take(&mut entry)));
        }
        entry.push((sse_id, event));
    }
    if !entry.is_empty() {
        let _ = tx.send(Arc::new(entry));
    }
    Ok(())
}

/// Query of `GET /api/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Continue after this event id (what `id:` said: `<ms>-<seq>` or `<ms>-<seq>:<index>`; `0`
    /// replays everything retained).
    /// `Last-Event-ID` wins when both are given. Without either, the stream starts at new entries.
    pub after: Option<String>,
    /// Only events whose name starts with one of these comma-separated prefixes (`task.`,
    /// `deploy.`, `worker.stopped`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only events of this task id.
    pub task: Option<String>,
    /// End the stream after this many seconds (1 to 86400; default 86400). A stream also ends
    /// when the token expires.
    pub timeout: Option<u64>,
}

/// Which events a client wants.
#[derive(Debug, Clone, Default)]
struct Filter {
    /// Event name prefixes; empty means all.
    prefixes: Vec<String>,
    /// Only this task's events, when set.
    task: Option<String>,
}

impl Filter {
    fn matches(&self, e: &StreamEvent) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| e.event.starts_with(p)))
            && self.task.as_ref().is_none_or(|t| *t == e.task_id)
    }
}

/// An event id as a comparable triple: `<ms>`, `<ms>-<seq>` (a whole stream entry: every event
/// in it, so its index sorts last) or `<ms>-<seq>:<index>` (one event of a batch entry).
fn parse_id(id: &str) -> Option<(u64, u64, u64)> {
    let (entry, index) = match id.split_once(':') {
        Some((e, i)) => (e, i.parse().ok()?),
        None => (id, u64::MAX),
    };
    let (ms, seq) = entry.split_once('-').unwrap_or((entry, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?, index))
}

/// The stream entry an event id belongs to.
fn entry_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(entry, _)| entry)
}

fn is_newer(id: &str, than: &str) -> bool {
    parse_id(id) > parse_id(than)
}

fn parse_filter(q: &EventsQuery) -> Result<Filter, ApiError> {
    let mut prefixes = Vec::new();
    if let Some(kinds) = &q.kind {
        for p in kinds.split(',') {
            let ok = !p.is_empty()
                && p.len() <= 64
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
            if !ok {
                return Err(ApiError::invalid(
                    "type",
                    "comma-separated event name prefixes of a-z, 0-9, '.', '_', '-' (e.g. task. or deploy.)",
                ));
            }
            prefixes.push(p.to_string());
        }
    }
    if let Some(t) = &q.task {
        check_id(t).map_err(|_| ApiError::invalid("task", "not a task id"))?;
    }
    Ok(Filter {
        prefixes,
        task: q.task.clone(),
    })
}

/// Where to start: `Last-Event-ID`, else `after`, else None (new entries only).
fn start_after(req: &HttpRequest, q: &EventsQuery) -> Result<Option<String>, ApiError> {
    let header = req.headers().get("last-event-id");
    let (field, value) = match header {
        Some(v) => (
            "Last-Event-ID",
            Some(v.to_str().unwrap_or("\u{0}").trim().to_string()),
        ),
        None => ("after", q.after.clone()),
    };
    match value {
        Some(v) if parse_id(&v).is_some() && v.len() <= 62 => Ok(Some(v)),
        Some(_) => Err(ApiError::invalid(
            field,
            "an event id as sent in `id:` (<ms>-<seq> or <ms>-<seq>:<index>), or 0",
        )),
        None => Ok(None),
    }
}

/// How long a stream may last: `timeout` when given, never past the token's expiry (the token is
/// checked once, at the start), and at most [`TIMEOUT_MAX`].
fn lifetime(timeout: Option<u64>, token_exp: u64) -> Result<Duration, ApiError> {
    if let Some(t) = timeout
        && !(1..=TIMEOUT_MAX).contains(&t)
    {
        return Err(ApiError::invalid("timeout", "seconds, 1 to 86400"));
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let secs = timeout
        .unwrap_or(TIMEOUT_MAX)
        .min(token_exp.saturating_sub(now));
    Ok(Duration::from_secs(secs))
}

/// Task and worker events as Server-Sent Events: `id:` the event id, `event:` its name,
/// `data:` its JSON body; a `: keep-alive` comment every 15 s.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this entry id (what the last `id:` said)")),
    responses(
        (status = 200, description = "an endless `text/event-stream` (until `timeout`, the client leaving, or shutdown)", content_type = "text/event-stream"),
        (status = 400, description = "a bad filter or id; the error names the field"),
        (status = 401), (status = 503, description = "too many streams, shutting down, or Redis unreachable")),
    security(("bearer" = [])))]
pub async fn stream(
    state: web::Data<AppState>,
    auth: Viewer,
    req: HttpRequest,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = parse_filter(&q)?;
    let timeout = lifetime(q.timeout, auth.0.exp)?;
    let after = start_after(&req, &q)?;
    let streams = state.events.clone();
    if streams.closed() {
        return Err(ApiError::Unavailable("the server is shutting down".into()));
    }
    let permit = streams.inner.slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(format!(
            "too many event streams open ({MAX_CLIENTS} at most); close one or poll the listings"
        ))
    })?;
    let newest = state.store.last_event_id().await?;
    let after = after.unwrap_or_else(|| newest.clone());
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let client = Client {
        store: state.store.clone(),
        streams,
        filter,
        last: after,
        seed: newest,
        tx,
        _permit: permit,
    };
    actix_web::rt::spawn(client.run(timeout));
    let body =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>)));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// One connected client, run as its own task; the body ends when this ends.
struct Client {
    /// For replays (shared connection).
    store: QueueStore,
    /// The reader to follow and the shutdown switch.
    streams: EventStreams,
    /// What this client asked for.
    filter: Filter,
    /// The newest entry id handled (sent or filtered out).
    last: String,
    /// The stream's newest id when the request came in, where a reader started for it begins.
    seed: String,
    /// To the response body; closed when the client goes away.
    tx: mpsc::Sender<Bytes>,
    /// Holds this client's slot until the task ends.
    _permit: OwnedSemaphorePermit,
}

impl Client {
    async fn run(mut self, lifetime: Duration) {
        let mut closing = self.streams.inner.closing.subscribe();
        let deadline = tokio::time::sleep(lifetime);
        tokio::pin!(deadline);
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        if self.streams.closed() {
            return;
        }
        let mut rx = self.streams.subscribe(&self.store, &self.seed);
        if !self
            .send(Bytes::from_static(b"retry: 2000\n: connected\n\n"))
            .await
        {
            return;
        }
        let mut replay = true;
        loop {
            if replay {
                if let Err(e) = self.replay().await {
                    warn!(error = %e, "replaying the event stream failed; ending this stream");
                    return;
                }
                replay = false;
            }
            let alive = tokio::select! {
                _ = closing.changed() => return,
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = ticks.tick() => self.send(Bytes::from_static(b": keep-alive\n\n")).await,
                r = rx.recv() => match r {
                    Ok(entry) => self.forward_all(&entry).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => { replay = true; true }
                    Err(broadcast::error::RecvError::Closed) => {
                        rx = self.streams.subscribe(&self.store, &self.last);
                        replay = true;
                        true
                    }
                },
            };
            if !alive || self.streams.closed() {
                return;
            }
        }
    }

    /// Send what Redis holds after `last`, page by page, until caught up.
    async fn replay(&mut self) -> Result<(), QueueError> {
        loop {
            let page = self.store.events_after(&self.last, PAGE).await?;
            if !self.forward_all(&page.events).await || page.entries < PAGE {
                return Ok(());
            }
        }
    }

    /// Send the events that are new and wanted; false when the client is gone.
    async fn forward_all(&mut self, events: &[StreamEntry]) -> bool {
        for (id, event) in events {
            if !self.forward(id, event).await {
                return false;
            }
        }
        true
    }

    /// Send one event if it is new and wanted; false when the client is gone.
    async fn forward(&mut self, id: &str, event: &StreamEvent) -> bool {
        if !is_newer(id, &self.last) {
            return true;
        }
        self.last = id.to_string();
        if !self.filter.matches(event) {
            return true;
        }
        self.send(Bytes::from(frame(id, event))).await
    }

    async fn send(&self, bytes: Bytes) -> bool {
        self.tx.send(bytes).await.is_ok()
    }
}

/// One SSE frame; the JSON is compact, so it never holds a newline.
fn frame(id: &str, e: &StreamEvent) -> String {
    let data = match &e.data {
        serde_json::Value::Null => serde_json::json!({"event": e.event, "task_id": e.task_id}),
        v => v.clone(),
    };
    let name: String = e.event.chars().filter(|c| !c.is_control()).collect();
    format!("id: {id}\nevent: {name}\ndata: {data}\n\n")
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
