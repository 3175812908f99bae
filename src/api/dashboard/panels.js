// ops-worker dashboard, the panels: the instances with their pool controls (cluster-wide and per
// instance, with an optional concurrency), the queue summary, the schedules (list, add, remove),
// and the parts of the task detail view that only some tasks have (a deploy's build and Vercel
// links, a release's steps and what it waits for). Defines functions only; app.js calls them.
"use strict";

// ---- pool: cluster-wide and per-instance commands ---------------------------------------------------
// The body of a pool command: the instance (none = the whole cluster) and, for start and restart,
// the concurrency typed in the field (empty = each instance's own WORKER_CONCURRENCY).
function poolBody(cmd, instance) {
  const body = {};
  if (instance) body.instance = instance;
  const raw = $("#concurrency").value.trim();
  if (raw && cmd !== "stop") body.config = { concurrency: Number(raw) };
  return body;
}

function poolCommand(cmd, instance) {
  const field = $("#concurrency");
  if (cmd !== "stop" && field.value.trim() && !field.checkValidity()) {
    say("Concurrency must be a whole number from 1 to 1024.", true);
    field.focus();
    return;
  }
  const scope = instance ? "instance " + instance : "every instance";
  act(() => api("POST", "/api/worker/" + cmd, poolBody(cmd, instance)), cmd + " sent to " + scope);
}

function wirePool() {
  for (const btn of document.querySelectorAll("[data-cmd]")) {
    btn.addEventListener("click", () => confirmed(btn) && poolCommand(btn.dataset.cmd));
  }
}

const INSTANCE_CONFIRM = {
  stop: (i) => `Stop the pool of ${i}? Its running tasks finish, it starts no new ones.`,
  restart: (i) => `Restart the pool of ${i}?`,
};

function instanceActions(tr, id) {
  const td = cell(tr, "");
  td.dataset.role = "admin";
  td.hidden = !may("admin");
  for (const cmd of ["start", "stop", "restart"]) {
    const label = cmd[0].toUpperCase() + cmd.slice(1);
    const btn = rowButton(label, "instance-btn instance-" + cmd, "admin", () => {
      if (INSTANCE_CONFIRM[cmd] && !window.confirm(INSTANCE_CONFIRM[cmd](id))) return;
      poolCommand(cmd, id);
    }, `${cmd} the pool of ${id}`);
    btn.dataset.cmdInstance = cmd;
    td.appendChild(btn);
  }
}

function renderInstances(data) {
  const overall = $("#overall");
  overall.textContent = data.status;
  overall.className = "badge " + data.status;
  const body = $("#instances tbody");
  if (!data.instances.length) {
    placeholder(body, "No live instance (none has sent a heartbeat in the last 10 s).");
    return;
  }
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
    instanceActions(tr, i.instance);
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

// ---- schedules --------------------------------------------------------------------------------------
async function loadSchedules() {
  const body = $("#schedules-table tbody");
  let list;
  try {
    list = await api("GET", "/api/schedules");
  } catch (e) {
    placeholder(body, "Could not load the schedules: " + e.message, true);
    throw e;
  }
  if (!list.length) {
    placeholder(body, "No schedules yet." + (may("admin") ? " Add one below." : ""));
    return;
  }
  body.replaceChildren();
  for (const s of list) {
    const tr = document.createElement("tr");
    tr.dataset.schedule = s.name;
    cell(tr, s.name, "mono");
    cell(tr, s.cron, "mono");
    cell(tr, s.tz);
    cell(tr, s.type);
    cell(tr, s.priority);
    cell(tr, JSON.stringify(s.payload), "mono");
    timeCell(tr, s.next_tick);
    const td = cell(tr, "");
    td.dataset.role = "admin";
    td.hidden = !may("admin");
    const btn = rowButton("Remove", "schedule-remove", "admin", () => {
      if (!window.confirm(`Remove schedule ${s.name}? It will not fire again.`)) return;
      act(() => api("DELETE", "/api/schedules/" + encodeURIComponent(s.name)), "schedule " + s.name + " removed");
    }, "remove schedule " + s.name);
    td.appendChild(btn);
    body.appendChild(tr);
  }
}

// The form as the API's body; a payload that is not a JSON object is refused here, naming it.
function scheduleBody(form) {
  const f = form.elements;
  let payload;
  try {
    payload = JSON.parse(f.payload.value || "{}");
  } catch (e) {
    throw Object.assign(new Error("payload: not valid JSON (" + e.message + ")"), { field: "payload" });
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw Object.assign(new Error("payload: must be a JSON object"), { field: "payload" });
  }
  return { name: f.name.value.trim(), cron: f.cron.value.trim(), type: f.type.value,
           payload, priority: f.priority.value, tz: f.tz.value.trim() || "UTC" };
}

function wireSchedules() {
  const form = $("#schedule-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    try {
      const body = scheduleBody(form);
      const s = await api("POST", "/api/schedules", body);
      say("schedule " + s.name + " added; next tick " + (s.next_tick || "never"), false);
      await loadSchedules();
    } catch (e) {
      // A 400 names the field: mark it and put the focus there.
      const name = (e.field || "").split(".")[0];
      const el = name && form.elements[name];
      if (el) { el.setAttribute("aria-invalid", "true"); el.focus(); }
      if (e.status === 401) askForToken(e); else say("Failed: " + e.message, true);
    }
  });
}

// ---- the detail view's optional parts --------------------------------------------------------------
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
  const inspector = $("#build-inspector");
  const insp = t.inspector_url || (t.result && t.result.inspector_url);
  inspector.hidden = !insp || !/^https?:\/\//.test(insp);
  if (!inspector.hidden) inspector.href = insp;
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

// `steps` ([{step, state, at, detail}]) and `waiting_for` (an object), shown when the record has
// them (release tasks), whatever their fields hold.
function renderExtras(t) {
  const steps = Array.isArray(t.steps) ? t.steps : null;
  $("#detail-steps").hidden = !steps;
  const body = $("#steps-table tbody");
  body.replaceChildren();
  for (const s of steps || []) {
    const tr = document.createElement("tr");
    tr.dataset.step = s.step;
    cell(tr, s.step);
    cell(tr, s.state, "status " + s.state);
    timeCell(tr, s.at);
    cell(tr, s.detail === undefined || s.detail === null ? "" :
      typeof s.detail === "object" ? JSON.stringify(s.detail) : s.detail);
    body.appendChild(tr);
  }
  if (steps && !steps.length) placeholder(body, "No steps yet.");
  const w = t.waiting_for && typeof t.waiting_for === "object" ? t.waiting_for : null;
  $("#detail-waiting").hidden = !w;
  const dl = $("#waiting-fields");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(w || {})) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    dl.append(dt, dd);
  }
}
