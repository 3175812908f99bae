// ops-worker dashboard, the core: token and roles, API calls, the live stream, the refresh loop,
// the task detail view and the page's wiring. Loaded last: charts.js, lists.js and panels.js only
// define functions, which this file calls. Follows /api/events (fetch streaming, Bearer token in
// the header, never in a URL) and refreshes on each event; polls every 2 s while the stream is
// down, every 5 s while up.
"use strict";

const TOKEN_KEY = "ops-worker-token";
// sessionStorage: the token lives as long as this tab, never on disk for other pages to find.
let token = sessionStorage.getItem(TOKEN_KEY) || "";
// True while the message shown is a polling error, which the next successful poll clears; an
// action's outcome ("Failed: 403 …") stays until the operator does something else.
let pollError = false;
// The task types the API knows (filters and the schedule form): read from /openapi.json, this
// list until it answers.
const TASK_TYPES = ["deploy", "redeploy", "promote", "rollback", "cancel", "check", "noop"];

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
const may = (role) => roleRank() >= RANK[role];
function applyRole() {
  const rank = roleRank();
  for (const el of document.querySelectorAll("[data-role]")) {
    el.hidden = rank < RANK[el.dataset.role] || el.dataset.off === "true";
  }
}

// ---- small DOM helpers -----------------------------------------------------------------------------
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
// A button for a table row, shown only to tokens with `role`.
function rowButton(label, cls, role, onClick, ariaLabel) {
  const btn = document.createElement("button");
  btn.type = "button";
  btn.textContent = label;
  btn.className = cls;
  btn.dataset.role = role;
  btn.hidden = !may(role);
  if (ariaLabel) btn.setAttribute("aria-label", ariaLabel);
  btn.addEventListener("click", onClick);
  return btn;
}
// One row across the table saying it is loading, empty, or could not be read.
function placeholder(tbody, text, isError) {
  const tr = document.createElement("tr");
  tr.className = "placeholder" + (isError ? " error" : "");
  const td = cell(tr, text);
  td.colSpan = tbody.closest("table").tHead.rows[0].cells.length;
  tbody.replaceChildren(tr);
}

// ---- times: relative, the absolute time on hover -------------------------------------------------
function fmtAge(secs) {
  if (!secs) return "0 s";
  if (secs < 120) return secs.toFixed(1) + " s";
  if (secs < 7200) return (secs / 60).toFixed(1) + " min";
  return (secs / 3600).toFixed(1) + " h";
}
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

// ---- API ------------------------------------------------------------------------------------------
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
    err.field = data && data.error ? data.error.field : undefined;
    throw err;
  }
  return data;
}

// A 401 means the token is missing, expired or wrong: say so and put the focus on the token field.
function askForToken(e) {
  const first = !pollError;
  say("Token rejected: " + e.message + " Paste a new token above.", true, true);
  if (first) $("#token-input").focus(); // once, not on every poll
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
  follow("/api/events", liveAbort.signal, () => {
    document.body.dataset.liveEvents = String(Number(document.body.dataset.liveEvents || 0) + 1);
    // Bursts of events cause one refresh, at most about one a second.
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 1000);
  }, (up) => {
    liveUp = up;
    $("#live-state").textContent = up ? "connected" : "reconnecting (polling meanwhile)";
  });
}

// ---- task detail: #/tasks/{id} -------------------------------------------------------------------
let detailId = null;
let detailAbort = null;
let detailSeen = new Set();
let detailTimer = null;

async function route() {
  if (detailAbort) { detailAbort.abort(); detailAbort = null; }
  const m = location.hash.match(/^#\/tasks\/([A-Za-z0-9_.-]{1,128})$/);
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
  const t = await loadDetail();
  if (!token) return;
  detailAbort = new AbortController();
  // Stream ids start with their time in ms (Redis's clock): replay from five minutes before the
  // task was created (room for a skewed instance clock), not the whole retained stream.
  const created = t ? Date.parse(t.created_at) : NaN;
  const after = Number.isFinite(created) ? Math.max(created - 300000, 0) + "-0" : "0";
  const path = "/api/events?after=" + after + "&task=" + encodeURIComponent(detailId);
  follow(path, detailAbort.signal, (f) => {
    if (detailSeen.has(f.id)) return;
    detailSeen.add(f.id);
    appendEvent(f);
    // A burst of the task's events reloads the detail once.
    if (!detailTimer) detailTimer = setTimeout(() => { detailTimer = null; loadDetail(); }, 250);
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
    renderExtras(t);
    // A deploy, or any Vercel task that created or names a deployment.
    const deploy = t.type === "deploy" || t.deployment_id || (t.result && t.result.deployment_id);
    $("#detail-build").hidden = !deploy;
    if (deploy) renderBuild(t, await api("GET", "/tasks/" + id + "/build"));
    document.body.dataset.detailLoaded = id;
    return t;
  } catch (e) {
    if (e.status === 404) {
      const dd = document.createElement("dd");
      dd.textContent = "No such task (unknown id, or its record has expired or was deleted).";
      $("#detail-fields").replaceChildren(dd);
    }
    if (e.status === 401) askForToken(e);
    else say("Task " + id + ": " + e.message, true);
  }
}

// Fields shown elsewhere in the detail view, not in the field list.
const DETAIL_OWN = new Set(["payload", "result", "error", "steps", "waiting_for"]);

function renderDetail(t) {
  const dl = $("#detail-fields");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(t)) {
    if (DETAIL_OWN.has(k)) continue;
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

// ---- refresh ----------------------------------------------------------------------------------------
let refreshing = false;
async function refresh() {
  // One refresh at a time: an event burst and the polling timer never stack them up.
  if (refreshing) return;
  refreshing = true;
  try {
    await refreshOnce();
  } finally {
    refreshing = false;
  }
}

async function refreshOnce() {
  if (!token) {
    say("Enter a token to see the worker (mint one with: ops-worker token --role admin).", false);
    return;
  }
  try {
    const [status, queue] = await Promise.all([
      api("GET", "/api/worker/status"),
      api("GET", "/api/queue/stats"),
      loadList("recent"),
      loadList("failed"),
      loadSchedules(),
      loadCharts(),
    ]);
    renderInstances(status);
    renderQueue(queue);
    lastRefresh = Date.now();
    document.body.dataset.loaded = "true";
    if (pollError) say("", false);
  } catch (e) {
    if (e.status === 401) askForToken(e);
    else if (e.status === 403) say("Token rejected: " + e.message, true, true);
    else say("API error: " + e.message, true, true);
  }
}

// Run an action, say how it went, and refresh what it changed.
async function act(fn, done) {
  try {
    const out = await fn();
    say(typeof done === "function" ? done(out) : done, false);
    await refresh();
    await loadDetail();
  } catch (e) {
    if (e.status === 401) askForToken(e);
    else say("Failed: " + e.message, true);
  }
}

// Buttons with data-confirm ask first (stop, restart, pause, cancel, delete): a misclick changes nothing.
const confirmed = (btn) => !btn.dataset.confirm || window.confirm(btn.dataset.confirm);

function wireHeader() {
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
}

// Fill the type pickers, keeping each one's choice.
function fillTypes(types) {
  for (const sel of document.querySelectorAll(".type-select")) {
    const chosen = sel.value;
    for (const o of [...sel.options]) if (o.value && o.textContent === o.value) o.remove();
    // `unknown` (dead-lettered ids without a record) can be listed, not scheduled.
    const offered = sel.id === "sch-type" ? types.filter((t) => t !== "unknown") : types;
    for (const t of offered) sel.appendChild(Object.assign(document.createElement("option"), { textContent: t }));
    if (chosen) sel.value = chosen;
  }
}
fillTypes(TASK_TYPES);
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  const types = doc.components.schemas.TaskType.enum;
  if (Array.isArray(types) && types.length) fillTypes(types);
}).catch(() => {});
wireHeader();
wirePool();
wireLists();
wireSchedules();
wireCharts();
applyRole();
refresh();
startLive();
route();
// Polling is the fallback: every 2 s while the live stream is down; while it is up, task changes
// arrive as events and a refresh every 5 s keeps what has no event (heartbeats, CPU) current.
setInterval(() => {
  if (!liveUp || Date.now() - lastRefresh > 5000) refresh();
}, 2000);
