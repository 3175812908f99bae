// ops-worker dashboard: polls the API every 2 s with the operator's Bearer token.
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
    cell(tr, i.last_heartbeat);
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

function renderRecent(list) {
  const body = $("#recent tbody");
  body.replaceChildren();
  for (const t of list.tasks) {
    const tr = document.createElement("tr");
    tr.dataset.taskId = t.task_id;
    cell(tr, t.task_id.slice(0, 8), "mono").title = t.task_id;
    cell(tr, t.type);
    cell(tr, t.priority);
    cell(tr, t.status, "status " + t.status);
    cell(tr, t.attempts);
    cell(tr, t.completed_at || t.started_at || t.created_at);
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
    cell(tr, t.task_id.slice(0, 8), "mono").title = t.task_id;
    cell(tr, t.type);
    cell(tr, t.priority);
    cell(tr, t.attempts);
    cell(tr, t.completed_at);
    cell(tr, t.error || "");
    const td = cell(tr, "");
    const btn = document.createElement("button");
    btn.textContent = "Retry";
    btn.className = "retry-btn";
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
  } catch (e) {
    say("Failed: " + e.message, true);
  }
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token-input").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token-input").value = "";
  refresh();
});

for (const btn of document.querySelectorAll("[data-cmd]")) {
  btn.addEventListener("click", () =>
    act(() => api("POST", "/api/worker/" + btn.dataset.cmd, {}), btn.dataset.cmd + " sent to every instance"));
}
for (const btn of document.querySelectorAll("[data-pause]")) {
  btn.addEventListener("click", () =>
    act(() => api("POST", "/api/queue/pause", { priorities: [btn.dataset.pause] }), btn.dataset.pause + " paused"));
}
for (const btn of document.querySelectorAll("[data-resume]")) {
  btn.addEventListener("click", () =>
    act(() => api("POST", "/api/queue/resume", { priorities: [btn.dataset.resume] }), btn.dataset.resume + " resumed"));
}

refresh();
setInterval(refresh, 2000);
