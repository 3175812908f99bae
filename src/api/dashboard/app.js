// ops-worker dashboard: follows /api/events (fetch streaming, Bearer token in the header, never in
// a URL) and refreshes on each event; polls every 2 s while the stream is down, every 5 s while up.
"use strict";

const TOKEN_KEY = "ops-worker-token";
// sessionStorage: the token lives as long as this tab, never on disk for other pages to find.
let token = sessionStorage.getItem(TOKEN_KEY) || "";
// True while the message shown is a polling error, which the next successful poll clears; an
// action's outcome ("Failed: 403 …") stays until the operator does something else.
let pollError = false;

const $ = (sel) => document.querySelector(sel);
const say = (msg, isError, fromPoll) => {
  const el = $("#status-msg");
  el.textContent = msg;
  el.className = isError ? "error" : "";
  pollError = Boolean(isError && fromPoll);
};

// ---- roles: a viewer sees no buttons; an action the token may not do is never offered ----------
const RANK = { viewer: 1, agent: 2, admin: 3 };
// The role claim of the token (the server checks it again on every call; this only hides buttons).
function roleRank() {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return RANK[JSON.parse(atob(part)).role] || 0;
  } catch (_) {
    return 0;
  }
}
function applyRole() {
  const rank = roleRank();
  for (const el of document.querySelectorAll("[data-role]")) {
    el.hidden = rank < RANK[el.dataset.role] || el.dataset.off === "true";
  }
}

// ---- times: relative, the absolute time on hover -------------------------------------------------
function fmtWhen(iso) {
  if (!iso) return "";
  const secs = (Date.now() - Date.parse(iso)) / 1000;
  if (!isFinite(secs)) return iso;
  return secs >= 0 ? fmtAge(secs) + " ago" : "in " + fmtAge(-secs);
}
function timeCell(row, iso) {
  const td = cell(row, fmtWhen(iso));
  td.title = iso || "";
  return td;
}

// ---- the live stream: fetch streaming with the Authorization header ------------------------------
let liveUp = false;
let liveAbort = null;
let lastRefresh = 0;
let refreshTimer = null;

function parseFrame(block) {
  const f = { id: null, event: "message", data: null };
  for (const line of block.split("\n")) {
    if (line.startsWith("id: ")) f.id = line.slice(4);
    else if (line.startsWith("event: ")) f.event = line.slice(7);
    else if (line.startsWith("data: ")) {
      try { f.data = JSON.parse(line.slice(6)); } catch (_) { f.data = null; }
    }
  }
  return f.id ? f : null;
}

// Read `path` as Server-Sent Events until `signal` aborts, resuming with Last-Event-ID after a
// drop (2 s later); `onState(true|false)` tells whether the stream is up.
async function follow(path, signal, onFrame, onState) {
  let last = null;
  while (!signal.aborted && token) {
    try {
      const headers = { "Accept": "text/event-stream", "Authorization": "Bearer " + token };
      if (last) headers["Last-Event-ID"] = last;
      const resp = await fetch(path, { headers, signal, cache: "no-store" });
      if (!resp.ok) throw new Error(String(resp.status));
      onState(true);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const f = parseFrame(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (f) { last = f.id; onFrame(f); }
        }
      }
    } catch (_) {
      if (signal.aborted) return;
    }
    onState(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function startLive() {
  if (liveAbort) liveAbort.abort();
  liveAbort = new AbortController();
  if (!token) return;
  follow("/api/events", liveAbort.signal, (f) => {
    document.body.dataset.liveEvents = String(Number(document.body.dataset.liveEvents || 0) + 1);
    // Bursts of events cause one refresh.
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 150);
  }, (up) => {
    liveUp = up;
    $("#live-state").textContent = up ? "connected" : "reconnecting (polling meanwhile)";
  });
}

// ---- task detail: #/tasks/{id} -------------------------------------------------------------------
let detailId = null;
let detailAbort = null;
let detailSeen = new Set();

async function route() {
  if (detailAbort) { detailAbort.abort(); detailAbort = null; }
  const m = location.hash.match(/^#\/tasks\/([A-Za-z0-9_-]{1,128})$/);
  if (!m) {
    detailId = null;
    $("#detail").hidden = true;
    return;
  }
  detailId = m[1];
  detailSeen = new Set();
  $("#detail").hidden = false;
  $("#detail-id").textContent = detailId;
  $("#detail-events").replaceChildren();
  $("#detail-fields").replaceChildren(Object.assign(document.createElement("dd"), { textContent: "Loading…" }));
  $("#detail-title").focus();
  await loadDetail();
  if (!token) return;
  detailAbort = new AbortController();
  follow("/api/events?after=0&task=" + encodeURIComponent(detailId), detailAbort.signal, (f) => {
    if (detailSeen.has(f.id)) return;
    detailSeen.add(f.id);
    appendEvent(f);
    loadDetail();
  }, () => {});
}

function appendEvent(f) {
  const d = f.data || {};
  const li = document.createElement("li");
  li.dataset.event = f.event;
  const when = document.createElement("time");
  when.textContent = d.ts ? new Date(d.ts).toLocaleTimeString() : "";
  when.title = d.ts || "";
  li.append(when, " " + f.event + (d.status ? " (" + d.status + ")" : "") + (d.reason ? ": " + d.reason : ""));
  $("#detail-events").appendChild(li);
}

const pretty = (v) => (v === undefined || v === null ? "–" : JSON.stringify(v, null, 2));

async function loadDetail() {
  const id = detailId;
  if (!id || !token) return;
  try {
    const t = await api("GET", "/tasks/" + id);
    if (id !== detailId) return;
    renderDetail(t);
    const deploy = t.type === "deploy" || t.deployment_id;
    $("#detail-build").hidden = !deploy;
    if (deploy) renderBuild(t, await api("GET", "/tasks/" + id + "/build"));
    document.body.dataset.detailLoaded = id;
  } catch (e) {
    if (e.status === 404) {
      const dd = document.createElement("dd");
      dd.textContent = "No such task (unknown id, or its record has expired).";
      $("#detail-fields").replaceChildren(dd);
    }
    say("Task " + id + ": " + e.message, true);
  }
}

function renderDetail(t) {
  const dl = $("#detail-fields");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(t)) {
    if (k === "payload" || k === "result" || k === "error") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.dataset.field = k;
    const text = v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v);
    dd.textContent = k.endsWith("_at") && v ? fmtWhen(v) + " (" + v + ")" : text;
    if (k.endsWith("_at") && v) dd.title = v;
    dl.append(dt, dd);
  }
  $("#detail-payload").textContent = pretty(t.payload);
  $("#detail-result").textContent = pretty(t.result);
  $("#detail-error").textContent = t.error || "–";
  const open = !["completed", "failed", "cancelled"].includes(t.status);
  $("#detail-cancel").dataset.off = String(!open);
  $("#detail-retry").dataset.off = String(t.status !== "failed");
  applyRole();
}

function renderBuild(t, b) {
  const depId = b.deployment_id || t.deployment_id || (t.result && t.result.deployment_id) || "";
  $("#build-deployment").textContent = depId || "–";
  const url = t.result && t.result.url;
  const link = $("#build-url");
  link.hidden = !url;
  if (url) {
    link.href = url.startsWith("http") ? url : "https://" + url;
    link.textContent = url;
  }
  const states = $("#build-states");
  states.replaceChildren();
  for (const s of b.states) {
    const li = document.createElement("li");
    li.textContent = s.state + " ";
    const when = document.createElement("time");
    when.textContent = fmtWhen(s.at);
    when.title = s.at;
    li.appendChild(when);
    states.appendChild(li);
  }
  $("#build-log").textContent = b.log.length ? b.log.map((l) => l.text).join("\n") : "(no build log yet)";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { raw: text }; }
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : resp.statusText;
    const err = new Error(resp.status + ": " + msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fmtAge(secs) {
  if (!secs) return "0 s";
  if (secs < 120) return secs.toFixed(1) + " s";
  if (secs < 7200) return (secs / 60).toFixed(1) + " min";
  return (secs / 3600).toFixed(1) + " h";
}

function renderInstances(data) {
  const overall = $("#overall");
  overall.textContent = data.status;
  overall.className = "badge " + data.status;
  const body = $("#instances tbody");
  body.replaceChildren();
  for (const i of data.instances) {
    const tr = document.createElement("tr");
    tr.dataset.instance = i.instance;
    cell(tr, i.instance);
    cell(tr, i.status, "status " + i.status);
    cell(tr, i.consumers);
    cell(tr, i.in_flight);
    cell(tr, i.cpu_percent.toFixed(1));
    cell(tr, i.memory_percent.toFixed(1));
    cell(tr, fmtAge(i.uptime_secs));
    timeCell(tr, i.last_heartbeat);
    body.appendChild(tr);
  }
}

function renderQueue(q) {
  for (const p of ["P0", "P1", "P2", "P3"]) $("#depth-" + p).textContent = q.pending[p];
  $("#q-in-flight").textContent = q.in_flight;
  $("#q-retrying").textContent = q.retrying;
  $("#q-delayed").textContent = q.delayed;
  $("#q-failed").textContent = q.failed;
  $("#q-completed-5m").textContent = q.completed_last_5m;
  $("#q-oldest").textContent = fmtAge(q.oldest_pending_age_secs);
  $("#paused").textContent = q.paused.length ? q.paused.join(" ") : "none";
}

// A task id cell: a link to the task's detail view (keyboard reachable); the whole row opens it too.
function idCell(tr, id) {
  const td = cell(tr, "", "mono");
  const a = document.createElement("a");
  a.href = "#/tasks/" + id;
  a.textContent = id.slice(0, 8);
  a.title = id;
  a.className = "task-link";
  td.appendChild(a);
  tr.classList.add("clickable");
  tr.addEventListener("click", (ev) => {
    if (ev.target.closest("button, a")) return;
    location.hash = "#/tasks/" + id;
  });
}

function renderRecent(list) {
  const body = $("#recent tbody");
  body.replaceChildren();
  for (const t of list.tasks) {
    const tr = document.createElement("tr");
    tr.dataset.taskId = t.task_id;
    idCell(tr, t.task_id);
    cell(tr, t.type);
    cell(tr, t.priority);
    cell(tr, t.status, "status " + t.status);
    cell(tr, t.attempts);
    timeCell(tr, t.completed_at || t.started_at || t.created_at);
    cell(tr, t.error || "");
    body.appendChild(tr);
  }
}

function renderFailed(list) {
  const body = $("#failed tbody");
  body.replaceChildren();
  for (const t of list.tasks) {
    const tr = document.createElement("tr");
    tr.dataset.taskId = t.task_id;
    idCell(tr, t.task_id);
    cell(tr, t.type);
    cell(tr, t.priority);
    cell(tr, t.attempts);
    timeCell(tr, t.completed_at);
    cell(tr, t.error || "");
    const td = cell(tr, "");
    const btn = document.createElement("button");
    btn.textContent = "Retry";
    btn.className = "retry-btn";
    btn.dataset.role = "admin";
    btn.hidden = roleRank() < RANK.admin;
    btn.addEventListener("click", () => act(() => api("POST", "/tasks/" + t.task_id + "/retry"), "retried " + t.task_id));
    td.appendChild(btn);
    body.appendChild(tr);
  }
}

async function refresh() {
  if (!token) {
    say("Enter a token to see the worker (mint one with: ops-worker token --role admin).", false);
    return;
  }
  try {
    const [status, queue, recent, failed] = await Promise.all([
      api("GET", "/api/worker/status"),
      api("GET", "/api/queue/stats"),
      api("GET", "/api/tasks/recent?limit=20"),
      api("GET", "/api/tasks/failed?limit=20"),
    ]);
    renderInstances(status);
    renderQueue(queue);
    renderRecent(recent);
    renderFailed(failed);
    lastRefresh = Date.now();
    document.body.dataset.loaded = "true";
    if (pollError) say("", false);
  } catch (e) {
    say(e.status === 401 || e.status === 403 ? "Token rejected: " + e.message : "API error: " + e.message, true, true);
  }
}

async function act(fn, done) {
  try {
    await fn();
    say(done, false);
    await refresh();
    await loadDetail();
  } catch (e) {
    say("Failed: " + e.message, true);
  }
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token-input").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token-input").value = "";
  applyRole();
  refresh();
  startLive();
  route();
});

// Buttons with data-confirm ask first (stop, restart, pause, cancel): a misclick changes nothing.
const confirmed = (btn) => !btn.dataset.confirm || window.confirm(btn.dataset.confirm);

for (const btn of document.querySelectorAll("[data-cmd]")) {
  btn.addEventListener("click", () => confirmed(btn) &&
    act(() => api("POST", "/api/worker/" + btn.dataset.cmd, {}), btn.dataset.cmd + " sent to every instance"));
}
for (const btn of document.querySelectorAll("[data-pause]")) {
  btn.addEventListener("click", () => confirmed(btn) &&
    act(() => api("POST", "/api/queue/pause", { priorities: [btn.dataset.pause] }), btn.dataset.pause + " paused"));
}
for (const btn of document.querySelectorAll("[data-resume]")) {
  btn.addEventListener("click", () =>
    act(() => api("POST", "/api/queue/resume", { priorities: [btn.dataset.resume] }), btn.dataset.resume + " resumed"));
}
$("#detail-cancel").addEventListener("click", (ev) => confirmed(ev.currentTarget) &&
  act(() => api("POST", "/tasks/" + detailId + "/cancel"), "cancel requested for " + detailId));
$("#detail-retry").addEventListener("click", () =>
  act(() => api("POST", "/tasks/" + detailId + "/retry"), "retried " + detailId));
window.addEventListener("hashchange", route);

applyRole();
refresh();
startLive();
route();
// Polling is the fallback: every 2 s while the live stream is down; while it is up, task changes
// arrive as events and a refresh every 5 s keeps what has no event (heartbeats, CPU) current.
setInterval(() => {
  if (!liveUp || Date.now() - lastRefresh > 5000) refresh();
}, 2000);
