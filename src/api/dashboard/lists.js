// ops-worker dashboard, the task lists: recent tasks and dead letters, each with filters (status,
// type, priority, id prefix), pages (the API's next_cursor; a stack of the cursors seen gives
// "Previous page"), checkboxes and bulk actions (POST /api/tasks/bulk, answered per id).
// Defines functions only; app.js calls wireLists() and loadList(). Uses app.js's helpers.
"use strict";

// Per list: the filters' query, the cursor of the page shown, the cursors of the pages before it,
// the next page's cursor, and the ids ticked (kept across refreshes of the same page).
const LISTS = {
  recent: { path: "/api/tasks/recent", cursor: null, back: [], next: null, selected: new Set(), bulkRole: "agent" },
  failed: { path: "/api/tasks/failed", cursor: null, back: [], next: null, selected: new Set(), bulkRole: "admin" },
};

const listSection = (name) => document.querySelector(`.task-list[data-list="${name}"]`);

// The filters as a query string, checked as the API would (a bad id prefix is shown, not sent).
function listQuery(name) {
  const form = document.getElementById(name + "-filters");
  const q = new URLSearchParams();
  for (const el of form.elements) {
    if (el.name && el.value) q.set(el.name, el.value.trim());
  }
  const st = LISTS[name];
  if (st.cursor) q.set("cursor", st.cursor);
  return q;
}

async function loadList(name) {
  const st = LISTS[name];
  const tbody = document.querySelector(`#${name} tbody`);
  const form = document.getElementById(name + "-filters");
  const prefix = form.elements.id_prefix;
  if (!prefix.checkValidity()) {
    placeholder(tbody, "The id prefix may only hold A-Z a-z 0-9 - _ .", true);
    return;
  }
  let page;
  try {
    page = await api("GET", st.path + "?" + listQuery(name));
  } catch (e) {
    placeholder(tbody, "Could not load the list: " + e.message, true);
    throw e;
  }
  st.next = page.next_cursor;
  const render = name === "recent" ? recentRow : failedRow;
  tbody.replaceChildren(...page.tasks.map(render));
  if (!page.tasks.length) {
    placeholder(tbody, page.next_cursor
      ? "Nothing matched in this stretch of the index; try the next page."
      : st.cursor ? "No more tasks." : "No tasks match.");
  }
  updatePager(name);
  updateSelection(name);
}

function updatePager(name) {
  const st = LISTS[name];
  const sec = listSection(name);
  sec.querySelector(".prev-page").disabled = st.back.length === 0;
  sec.querySelector(".next-page").disabled = !st.next;
  sec.querySelector(".page-no").textContent = "page " + (st.back.length + 1);
}

// A checkbox cell selecting task `id` for the list's bulk actions.
function selectCell(tr, name, id) {
  const st = LISTS[name];
  const td = cell(tr, "");
  td.dataset.role = st.bulkRole;
  td.hidden = !may(st.bulkRole);
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "select-task";
  box.value = id;
  box.checked = st.selected.has(id);
  box.setAttribute("aria-label", "select task " + id);
  box.addEventListener("change", () => {
    if (box.checked) st.selected.add(id); else st.selected.delete(id);
    updateSelection(name);
  });
  td.appendChild(box);
}

// A task id cell: a link to the task's detail view (keyboard reachable); the whole row opens it too.
function idCell(tr, id) {
  const td = cell(tr, "", "mono");
  const a = document.createElement("a");
  a.href = "#/tasks/" + id;
  a.textContent = id.slice(0, 8);
  a.title = id;
  a.className = "task-link";
  a.setAttribute("aria-label", "task " + id);
  td.appendChild(a);
  tr.classList.add("clickable");
  tr.addEventListener("click", (ev) => {
    if (ev.target.closest("button, a, input")) return;
    location.hash = "#/tasks/" + id;
  });
}

function recentRow(t) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = t.task_id;
  selectCell(tr, "recent", t.task_id);
  idCell(tr, t.task_id);
  cell(tr, t.type);
  cell(tr, t.priority);
  cell(tr, t.status, "status " + t.status);
  cell(tr, t.attempts);
  timeCell(tr, t.completed_at || t.started_at || t.created_at);
  cell(tr, t.error || "");
  return tr;
}

function failedRow(t) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = t.task_id;
  selectCell(tr, "failed", t.task_id);
  idCell(tr, t.task_id);
  cell(tr, t.type);
  cell(tr, t.priority);
  cell(tr, t.attempts);
  timeCell(tr, t.completed_at);
  cell(tr, t.error || "");
  const td = cell(tr, "");
  td.dataset.role = "admin";
  td.hidden = !may("admin");
  td.append(
    rowButton("Retry", "retry-btn", "admin", () =>
      act(() => api("POST", "/tasks/" + t.task_id + "/retry"), "retried " + t.task_id), "retry task " + t.task_id),
    rowButton("Delete", "delete-btn", "admin", (ev) => confirmed(ev.currentTarget) &&
      act(() => api("DELETE", "/tasks/" + t.task_id), "deleted " + t.task_id), "delete task " + t.task_id),
  );
  td.lastChild.dataset.confirm = "Delete dead letter " + t.task_id + " for good?";
  return tr;
}

// Forget ticked ids no longer on the page, then enable the bulk buttons when something is ticked.
function updateSelection(name) {
  const st = LISTS[name];
  const sec = listSection(name);
  const shown = new Set([...sec.querySelectorAll("input.select-task")].map((b) => b.value));
  for (const id of [...st.selected]) if (!shown.has(id)) st.selected.delete(id);
  for (const btn of sec.querySelectorAll(".bulk-btn")) btn.disabled = st.selected.size === 0;
  const all = sec.querySelector("input.select-all");
  all.checked = shown.size > 0 && st.selected.size === shown.size;
  all.indeterminate = st.selected.size > 0 && st.selected.size < shown.size;
  document.getElementById(name + "-selected").textContent =
    st.selected.size ? st.selected.size + " selected" : "";
}

// "3 retried; 1 not: task … is pending; only failed tasks can be retried"
function bulkSummary(action, report) {
  const past = { retry: "retried", delete: "deleted", cancel: "cancelled" }[action];
  const bad = report.results.filter((r) => !r.ok);
  let text = `${report.succeeded} ${past}`;
  if (bad.length) text += `; ${bad.length} not: ` + bad.map((r) => r.error.message).join("; ");
  return text;
}

function wireList(name) {
  const st = LISTS[name];
  const sec = listSection(name);
  const form = document.getElementById(name + "-filters");
  let typing = null;
  const restart = () => { st.cursor = null; st.back = []; st.selected.clear(); loadList(name).catch(() => {}); };
  form.addEventListener("change", restart);
  form.addEventListener("input", (ev) => {
    if (ev.target.name !== "id_prefix") return;
    clearTimeout(typing);
    typing = setTimeout(restart, 300);
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); restart(); });
  sec.querySelector(".next-page").addEventListener("click", () => {
    if (!st.next) return;
    st.back.push(st.cursor);
    st.cursor = st.next;
    st.selected.clear();
    loadList(name).catch(() => {});
  });
  sec.querySelector(".prev-page").addEventListener("click", () => {
    if (!st.back.length) return;
    st.cursor = st.back.pop();
    st.selected.clear();
    loadList(name).catch(() => {});
  });
  sec.querySelector("input.select-all").addEventListener("change", (ev) => {
    for (const box of sec.querySelectorAll("input.select-task")) {
      box.checked = ev.target.checked;
      if (box.checked) st.selected.add(box.value); else st.selected.delete(box.value);
    }
    updateSelection(name);
  });
  for (const btn of sec.querySelectorAll(".bulk-btn")) {
    btn.addEventListener("click", () => {
      const ids = [...st.selected];
      if (!ids.length || !confirmed(btn)) return;
      const action = btn.dataset.bulk;
      act(async () => {
        const report = await api("POST", "/api/tasks/bulk", { action, ids });
        st.selected.clear();
        return report;
      }, (report) => bulkSummary(action, report));
    });
  }
}

function wireLists() {
  wireList("recent");
  wireList("failed");
}
