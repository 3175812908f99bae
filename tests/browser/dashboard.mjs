// Drives the ops-worker dashboard in headless Chromium, step by step with tests/browser.rs.
//
// Run by `cargo test --test browser`, which starts Redis and `ops-worker run`, then this script with
//   BASE_URL    the worker's HTTP address (http://127.0.0.1:PORT)
//   TOKEN       an admin token for that worker
//   INSTANCE    the worker's INSTANCE_ID (its row in the instances table)
//   SCREENSHOT  where to save a full-page PNG at the end
//   VIEWER_TOKEN  a viewer token (the page must then offer no buttons)
//   AGENT_TOKEN   an agent token (the page must then offer cancel and nothing else)
//   CHROMIUM    the browser binary (default /usr/bin/chromium)
//   STEP_TIMEOUT_MS  how long one step may wait for the page (default 30000)
//
// Protocol (one line each way, `WORD rest`):
//   script -> test (stdout): LOG <text> | STEP <text> | READY | TASK_COMPLETED <id> | PAUSED P3 |
//                            P3_PENDING <id> | RESUMED P3 | P3_COMPLETED <id> | RETRIED <id> |
//                            DEPLOY_SHOWN <id> <deployment id> | DETAIL_SHOWN <id> | ROW_OPENED <id> |
//                            CANCELLED <id> | WATCHING <id> | LIVE <id> | PAUSED P1 | RESUMED P1 |
//                            WAITING_SHOWN <status> project=<p> holder=<id> | STEPS_SHOWN <status> <step:state,…> |
//                            RELEASE_DONE <step:state,…> | WAITED_DONE <id> |
//                            PAUSED_EACH P0|P2 | RESUMED_EACH P0|P2 | INSPECTOR <url> | CHARTS <completed in the hour> <capacity> |
//                            LIVE_CHART <sum> | DAY_CHART <points> | FILTERED <id> <prefix> <rows> |
//                            INSTANCE_STOPPED <instance> | BULK_RETRIED <id> <id> | BULK_DELETED <id> |
//                            BULK_CANCELLED <id> <id> | INSTANCE_STARTED <instance> |
//                            CLUSTER_RESTARTED <instance> | DETAIL_RETRIED <id> | ROW_DELETED <id> |
//                            TYPES <a,b,…> | SCHEDULE_REFUSED <field>=<message>|… | SCHEDULE_ADDED <name> |
//                            SCHEDULE_REMOVED <name> | A11Y_OK <focus ring> | ADMIN_CONTROLS <n> |
//                            SCREENSHOT <path> | VIEWER_NO_BUTTONS | AGENT_CONTROLS <control,…> |
//                            AGENT_CANCELLED <id> | POLLING | POLLED <id> | DONE | FAIL <reason>
//   test -> script (stdin):  TASK <id> | TASK_P3 <id> | FAILED_TASK <id> | DEPLOY <id> |
//                            DETAIL <id> | WAITING <id> | WATCH <id> | P1_CHECKED |
//                            RELEASE <release id> <waiting deploy id> | VERIFY_PASSES | MANY |
//                            DEAD <id> <id> <id> | DEAD2 <id> <id> | OK (the test checked the last step) |
//                            SHOT <release id> |
//                            ROLES <waiting id> | TASK_POLLED <id>
// Nothing sleeps: every wait polls the page (waitForFunction / waitForSelector) until a deadline.
// When stdin closes early (the test failed or died) the browser is closed and the script exits.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    console.log(`FAIL environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const BASE_URL = env("BASE_URL");
const TOKEN = env("TOKEN");
const INSTANCE = env("INSTANCE");
const SCREENSHOT = env("SCREENSHOT");
const VIEWER_TOKEN = env("VIEWER_TOKEN");
const AGENT_TOKEN = env("AGENT_TOKEN");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const STEP_TIMEOUT = Number(env("STEP_TIMEOUT_MS", "30000"));

const send = (line) => console.log(line);
const log = (text) => send("LOG " + text);

// ---- stdin: lines from the test, awaited one at a time --------------------------------------
const inbox = [];
const waiters = [];
let stdinClosed = false;
let finished = false;
let context = null;
let userDataDir = null;
// Error answers a step provokes on purpose ("HTTP 400 POST /api/schedules"), each allowed once.
const expectedErrors = [];

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const w = waiters.shift();
  if (w) w.resolve(line.trim());
  else inbox.push(line.trim());
});
rl.on("close", () => {
  stdinClosed = true;
  for (const w of waiters.splice(0)) w.reject(new Error("the test closed stdin (it failed or stopped)"));
  if (!finished) {
    // The test gave up: don't leave a browser behind.
    cleanup().finally(() => process.exit(3));
  }
});

function nextLine() {
  if (inbox.length) return Promise.resolve(inbox.shift());
  if (stdinClosed) return Promise.reject(new Error("the test closed stdin (it failed or stopped)"));
  return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
}

/** Wait for the test's next line, which must be `WORD arg`; returns arg. */
async function expectLine(word) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no "${word}" line from the test within 120 s`)), 120_000);
  });
  try {
    const line = await Promise.race([nextLine(), timeout]);
    const [got, ...rest] = line.split(" ");
    if (got !== word) throw new Error(`expected "${word}" from the test, got "${line}"`);
    return rest.join(" ");
  } finally {
    clearTimeout(timer);
  }
}

async function cleanup() {
  const ctx = context;
  context = null;
  if (ctx) await ctx.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

// ---- page helpers ------------------------------------------------------------------------------

/** Poll `fn(arg)` in the page until truthy; on timeout fail with `what` and what the page shows. */
async function until(page, what, fn, arg) {
  try {
    const handle = await page.waitForFunction(fn, arg, { polling: 100, timeout: STEP_TIMEOUT });
    return await handle.jsonValue();
  } catch (e) {
    const msg = await page.textContent("#status-msg").catch(() => "?");
    const paused = await page.textContent("#paused").catch(() => "?");
    const rows = await page
      .$$eval("#recent tbody tr", (trs) => trs.map((tr) => tr.dataset.taskId + "=" + tr.querySelector("td.status")?.textContent))
      .catch(() => []);
    throw new Error(
      `timed out after ${STEP_TIMEOUT} ms waiting for: ${what} ` +
        `(status message "${msg}", paused "${paused}", recent rows [${rows.join(", ")}]; ${e.message.split("\n")[0]})`,
    );
  }
}

/** Wait until the recent-tasks row of `id` shows `status` (rows are matched by data-task-id). */
async function recentRowReaches(page, id, status) {
  return until(
    page,
    `recent-tasks row ${id} to show status "${status}"`,
    ([id, status]) => {
      const td = document.querySelector(`#recent tbody tr[data-task-id="${id}"] td.status`);
      return td && td.textContent === status ? status : false;
    },
    [id, status],
  );
}

const statusMsg = (page) => page.textContent("#status-msg");

/** Click a control button and wait for the page's confirmation `done`; a "Failed: …" message
 *  (the API refused the action) fails the step at once. */
async function act(page, selector, done) {
  await page.click(selector);
  const outcome = await until(
    page,
    `the message "${done}" after clicking ${selector}`,
    (done) => {
      const text = document.querySelector("#status-msg").textContent;
      return text === done || text.startsWith("Failed:") ? text : false;
    },
    done,
  );
  if (outcome !== done) throw new Error(`clicking ${selector} was refused: ${outcome}`);
}

/** Show `#/tasks/{id}` and wait until its record shows `status` (null: any); answers the status. */
async function openDetail(page, id, status) {
  await page.evaluate((id) => { location.hash = "#/tasks/" + id; }, id);
  return until(
    page,
    `the detail of ${id} to show status "${status}"`,
    ([id, status]) => {
      const d = document.querySelector("#detail");
      const f = (k) => document.querySelector(`#detail-fields dd[data-field="${k}"]`)?.textContent;
      return !d.hidden && f("task_id") === id && (status === null || f("status") === status) ? f("status") : false;
    },
    [id, status],
  );
}

/** The timeline of the open detail reaches `event` (it comes from /api/events only). */
const timelineHas = (page, id, event) =>
  until(page, `event ${event} in the timeline of ${id}`, (ev) =>
    document.querySelector(`#detail-events li[data-event="${ev}"]`) ? true : false, event);

async function detailScenario(page, p3, dialogs) {
  // 10. A deploy against the simulator: deployment id, states up to READY and the build log.
  const deploy = await expectLine("DEPLOY");
  await openDetail(page, deploy, "completed");
  const build = await until(page, `the build of ${deploy} (deployment id, READY, a log)`, () => {
    const dep = document.querySelector("#build-deployment").textContent;
    const states = [...document.querySelectorAll("#build-states li")].map((li) => li.textContent);
    const log = document.querySelector("#build-log").textContent;
    const ok = !document.querySelector("#detail-build").hidden && dep !== "–" &&
      states.some((s) => s.startsWith("READY")) && log && !log.startsWith("(no build log");
    return ok ? dep + " " + log.split("\n")[0] : false;
  });
  await timelineHas(page, deploy, "task.completed");
  send(`DEPLOY_SHOWN ${deploy} ${build}`);
  const inspector = await until(page, "the link to Vercel's inspector", () => {
    const a = document.querySelector("#build-inspector");
    return !a.hidden && a.href ? a.href : false;
  });
  send("INSPECTOR " + inspector);

  // 11. A deep link, loaded afresh: the noop's fields, payload and timeline.
  const id = await expectLine("DETAIL");
  await page.goto("about:blank");
  await page.goto(BASE_URL + "/#/tasks/" + id, { waitUntil: "load", timeout: STEP_TIMEOUT });
  await openDetail(page, id, "completed");
  await until(page, "the payload pretty-printed and the record's fields", () =>
    document.querySelector("#detail-payload").textContent.includes('"sleep_ms": 300') &&
    document.querySelector('#detail-fields dd[data-field="attempts"]')?.textContent === "1");
  await timelineHas(page, id, "task.created");
  await timelineHas(page, id, "task.completed");
  send("DETAIL_SHOWN " + id);

  // 12. A click on a recent-tasks row opens that task (100 a page: the background traffic has
  //     pushed it down the list by now).
  await setFilter(page, "recent", "limit", "100");
  await page.waitForSelector(`#recent tbody tr[data-task-id="${p3}"]`, { timeout: STEP_TIMEOUT });
  await page.click(`#recent tbody tr[data-task-id="${p3}"] td:nth-child(3)`);
  await openDetail(page, p3, "completed");
  if ((await page.evaluate(() => location.hash)) !== "#/tasks/" + p3) throw new Error("the row did not deep-link");
  await setFilter(page, "recent", "limit", "20");
  send("ROW_OPENED " + p3);

  // 13. Cancel a waiting task from its detail (after a confirmation).
  const waiting = await expectLine("WAITING");
  await openDetail(page, waiting, "pending");
  const asked = dialogs.length;
  await act(page, "#detail-cancel", "cancel requested for " + waiting);
  if (dialogs.length !== asked + 1) throw new Error("Cancel did not ask for a confirmation");
  await timelineHas(page, waiting, "task.cancelled");
  send("CANCELLED " + waiting);

  // 14. Live: the test cancels a task behind the page's back; the open detail shows it, no reload.
  const watched = await expectLine("WATCH");
  await openDetail(page, watched, "pending");
  await until(page, "the live stream to be connected", () => document.querySelector("#live-state").textContent === "connected");
  await page.evaluate(() => { window.__noReload = true; });
  send("WATCHING " + watched);
  await timelineHas(page, watched, "task.cancelled");
  await openDetail(page, watched, "cancelled");
  if (!(await page.evaluate(() => window.__noReload))) throw new Error("the page reloaded");
  send("LIVE " + watched);

  // 15. Pause and resume P1 from the page (pausing asks first).
  const before = dialogs.length;
  await act(page, "#btn-pause-p1", "P1 paused");
  if (dialogs.length !== before + 1) throw new Error("Pause P1 did not ask for a confirmation");
  send("PAUSED P1");
  await expectLine("P1_CHECKED");
  await act(page, "#btn-resume-p1", "P1 resumed");
  send("RESUMED P1");
  // 15a. The other priorities' buttons, P0 and P2, each checked by the test while paused.
  for (const p of ["P0", "P2"]) {
    await act(page, `#btn-pause-${p.toLowerCase()}`, p + " paused");
    send("PAUSED_EACH " + p);
    await expectLine("OK");
    await act(page, `#btn-resume-${p.toLowerCase()}`, p + " resumed");
    send("RESUMED_EACH " + p);
    await expectLine("OK");
  }
}

async function releaseScenario(page) {
  // 25b. A real release (two consumers by now: the deploy is deferred, not stuck behind it), held at its verification (the site answers 503), and a deploy of the
  //      same project deferred behind it: the deploy's detail says what it waits for, the
  //      release's shows its steps so far; once the site passes, both complete.
  const [rel, dep] = (await expectLine("RELEASE")).split(" ");
  await openDetail(page, dep, null);
  const waiting = await until(page, `the "waiting for" block of ${dep}`, () => {
    if (document.querySelector("#detail-waiting").hidden) return false;
    const pairs = [...document.querySelectorAll("#waiting-fields dt")].map((dt) => dt.textContent + "=" + dt.nextElementSibling.textContent);
    const status = document.querySelector('#detail-fields dd[data-field="status"]').textContent;
    return pairs.length ? status + " " + pairs.join(" ") : false;
  });
  send("WAITING_SHOWN " + waiting);
  await openDetail(page, rel, null);
  const soFar = await until(page, `the steps of release ${rel} up to verify:started`, () => {
    const words = [...document.querySelectorAll("#steps-table tbody tr[data-step]")].map((tr) => tr.cells[0].textContent + ":" + tr.cells[1].textContent);
    const status = document.querySelector('#detail-fields dd[data-field="status"]').textContent;
    return !document.querySelector("#detail-steps").hidden && words.includes("verify:started") ? status + " " + words.join(",") : false;
  });
  send("STEPS_SHOWN " + soFar);
  await expectLine("VERIFY_PASSES");
  await openDetail(page, rel, "completed");
  const all = await until(page, `the steps of release ${rel} up to verify:succeeded`, () => {
    const words = [...document.querySelectorAll("#steps-table tbody tr[data-step]")].map((tr) => tr.cells[0].textContent + ":" + tr.cells[1].textContent);
    return words.includes("verify:succeeded") && words[words.length - 1].endsWith(":succeeded") ? words.join(",") : false;
  });
  send("RELEASE_DONE " + all);
  await openDetail(page, dep, "completed");
  await until(page, `the "waiting for" block of ${dep} gone`, () => document.querySelector("#detail-waiting").hidden);
  send("WAITED_DONE " + dep);
}

/** Every visible control (button, input, select, form) but the token form's and the paging and
 *  chart-range buttons (data-nav, they only change what is shown), named by id or by class and
 *  the table it sits in. */
const visibleControls = (page) => page.evaluate(() => {
  const out = new Set();
  for (const el of document.querySelectorAll("button, input, select, textarea, form")) {
    if (el.offsetParent === null) continue;
    if (el.closest("#token-form") || el.dataset.nav || el.closest(".filters")) continue;
    const table = el.closest("table");
    out.add(el.id || (el.className.split(" ").pop() + "@" + (table ? table.id : "?")));
  }
  return [...out].sort();
});

// ---- charts, lists, controls, schedules, accessibility ------------------------------------------

/** The data attributes of one chart line: points drawn, their sum and the last value. */
const line = (page, chart, series) => page.evaluate(([chart, series]) => {
  const p = document.querySelector(`#${chart} path[data-series="${series}"]`);
  return p ? { points: Number(p.dataset.points), sum: Number(p.dataset.sum), last: p.dataset.last } : null;
}, [chart, series]);

async function chartsScenario(page) {
  // 16. The hour's history: processed per second, a depth sample, capacity and wait percentiles.
  await page.click('.range-btn[data-range="1h"]');
  await until(page, "the hour's charts with processed tasks, a depth sample, capacity and waits", () => {
    const n = (c, s) => Number(document.querySelector(`#${c} path[data-series="${s}"]`)?.dataset.points || 0);
    const sum = Number(document.querySelector('#chart-throughput path[data-series="processed"]')?.dataset.sum || 0);
    return document.body.dataset.chartsRange === "1h" && sum > 0 && n("chart-depth", "P2") > 0 &&
      n("chart-capacity", "capacity") > 0 && n("chart-wait", "p99") > 0;
  });
  const hour = await line(page, "chart-throughput", "processed");
  const capacity = await line(page, "chart-capacity", "capacity");
  // The line is per second, averaged over each minute: its sum times 60 is the tasks completed.
  send(`CHARTS ${Math.round(hour.sum * 60)} ${capacity.last}`);

  // 17. Live: the last 10 minutes, one point per second.
  await page.click('.range-btn[data-range="10m"]');
  await until(page, "the live chart with 600 points per series and processed tasks", () => {
    const p = document.querySelector('#chart-throughput path[data-series="processed"]');
    return document.body.dataset.chartsRange === "10m" && p && p.dataset.points === "600" && Number(p.dataset.sum) > 0;
  });
  send("LIVE_CHART " + (await line(page, "chart-throughput", "processed")).sum);

  // 18. A day, in 5-minute steps.
  await page.click('.range-btn[data-range="24h"]');
  await until(page, "the day's chart in 5-minute steps", () => {
    const p = document.querySelector('#chart-throughput path[data-series="processed"]');
    return document.body.dataset.chartsRange === "24h" && p && Number(p.dataset.points) >= 288 && Number(p.dataset.sum) > 0;
  });
  send("DAY_CHART " + (await line(page, "chart-throughput", "processed")).points);
}

/** Ids of the rows the recent list shows now. */
const recentIds = (page) => page.$$eval("#recent tbody tr[data-task-id]", (trs) => trs.map((tr) => tr.dataset.taskId));

async function setFilter(page, list, name, value) {
  const sel = `#${list}-filters [name="${name}"]`;
  if (name === "id_prefix") await page.fill(sel, value);
  else await page.selectOption(sel, value);
}

async function listsScenario(page) {
  // 19. Paging: 10 a page, next and previous.
  await expectLine("MANY");
  await setFilter(page, "recent", "limit", "10");
  await until(page, "10 rows and an enabled Next page", () =>
    document.querySelectorAll("#recent tbody tr[data-task-id]").length === 10 &&
    !document.querySelector('[data-list="recent"] .next-page').disabled);
  const first = await recentIds(page);
  await page.click('[data-list="recent"] .next-page');
  await until(page, "page 2 of the recent tasks", () =>
    document.querySelector('[data-list="recent"] .page-no').textContent === "page 2" &&
    document.querySelectorAll("#recent tbody tr[data-task-id]").length > 0);
  const second = await recentIds(page);
  if (second.some((id) => first.includes(id))) throw new Error("page 2 repeats rows of page 1");
  await page.click('[data-list="recent"] .prev-page');
  await until(page, "page 1 again", () => document.querySelector('[data-list="recent"] .page-no').textContent === "page 1");
  await setFilter(page, "recent", "limit", "20");

  // 20. Filters: by status, by type, by id prefix; each row matches.
  await setFilter(page, "recent", "status", "completed");
  await until(page, "only completed rows", () => {
    const st = [...document.querySelectorAll("#recent tbody tr[data-task-id] td.status")].map((td) => td.textContent);
    return st.length > 0 && st.every((s) => s === "completed");
  });
  await setFilter(page, "recent", "status", "");
  await setFilter(page, "recent", "type", "deploy");
  await until(page, "only deploy rows", () => {
    const ty = [...document.querySelectorAll("#recent tbody tr[data-task-id] td:nth-child(3)")].map((td) => td.textContent);
    return ty.length > 0 && ty.every((t) => t === "deploy");
  });
  await setFilter(page, "recent", "type", "");
  const prefix = second[0].slice(0, 6);
  await setFilter(page, "recent", "id_prefix", prefix);
  const matched = await until(page, `only ids starting with ${prefix}`, (prefix) => {
    const ids = [...document.querySelectorAll("#recent tbody tr[data-task-id]")].map((tr) => tr.dataset.taskId);
    return ids.length > 0 && ids.every((id) => id.startsWith(prefix)) ? ids.length : false;
  }, prefix);
  await setFilter(page, "recent", "id_prefix", "no-such-prefix");
  await until(page, "the empty state", () =>
    document.querySelector("#recent tbody tr.placeholder")?.textContent.startsWith("No"));
  await setFilter(page, "recent", "id_prefix", "");
  send(`FILTERED ${second[0]} ${prefix} ${matched}`);
}

/** Tick the checkboxes of `ids` in list `list`. */
async function tick(page, list, ids) {
  for (const id of ids) {
    const box = `#${list} tbody tr[data-task-id="${id}"] input.select-task`;
    await page.waitForSelector(box, { timeout: STEP_TIMEOUT });
    await page.check(box);
  }
}

async function controlsScenario(page, dialogs) {
  // 21. Stop this instance only (asks first).
  const dead = (await expectLine("DEAD")).split(" ");
  const asked = dialogs.length;
  await act(page, `#instances tr[data-instance="${INSTANCE}"] .instance-stop`, `stop sent to instance ${INSTANCE}`);
  if (dialogs.length !== asked + 1) throw new Error("Stop did not ask for a confirmation");
  await until(page, `instance ${INSTANCE} stopped`, (i) =>
    document.querySelector(`#instances tr[data-instance="${i}"] td.status`)?.textContent === "stopped", INSTANCE);
  send("INSTANCE_STOPPED " + INSTANCE);
  await expectLine("OK");

  // 22. Retry two dead letters at once: they are pending again (the pool is stopped).
  await tick(page, "failed", [dead[0], dead[1]]);
  await act(page, "#failed-retry", "2 retried");
  send(`BULK_RETRIED ${dead[0]} ${dead[1]}`);
  await expectLine("OK");

  // 23. Delete the third for good (asks first).
  const before = dialogs.length;
  await tick(page, "failed", [dead[2]]);
  await act(page, "#failed-delete", "1 deleted");
  if (dialogs.length !== before + 1) throw new Error("Delete selected did not ask for a confirmation");
  await until(page, "the deleted row gone", (id) => !document.querySelector(`#failed tbody tr[data-task-id="${id}"]`), dead[2]);
  send("BULK_DELETED " + dead[2]);
  await expectLine("OK");

  // 24. Cancel the two pending ones from the recent list (asks first).
  await setFilter(page, "recent", "status", "pending");
  await tick(page, "recent", [dead[0], dead[1]]);
  const again = dialogs.length;
  await act(page, "#recent-cancel", "2 cancelled");
  if (dialogs.length !== again + 1) throw new Error("Cancel selected did not ask for a confirmation");
  await setFilter(page, "recent", "status", "");
  send(`BULK_CANCELLED ${dead[0]} ${dead[1]}`);
  await expectLine("OK");

  // 25. Start this instance again with 2 consumers.
  await page.fill("#concurrency", "2");
  await act(page, `#instances tr[data-instance="${INSTANCE}"] .instance-start`, `start sent to instance ${INSTANCE}`);
  await until(page, `instance ${INSTANCE} running with 2 consumers`, (i) => {
    const tr = document.querySelector(`#instances tr[data-instance="${i}"]`);
    return tr?.querySelector("td.status")?.textContent === "running" && tr.cells[2].textContent === "2";
  }, INSTANCE);
  await page.fill("#concurrency", "");
  send("INSTANCE_STARTED " + INSTANCE);
  await expectLine("OK");
  await clusterControls(page, dialogs);
  await oneByOne(page, dialogs);
}

// 25c. Cluster-wide: Stop all, Start all, then Restart all with 3 consumers (stop and restart ask first).
async function clusterControls(page, dialogs) {
  const asked = dialogs.length;
  const overall = (want) => until(page, `the overall badge "${want}"`, (w) => document.querySelector("#overall").textContent === w, want);
  await act(page, "#btn-stop", "stop sent to every instance");
  await overall("stopped");
  await act(page, "#btn-start", "start sent to every instance");
  await overall("running");
  await page.fill("#concurrency", "3");
  await act(page, "#btn-restart", "restart sent to every instance");
  await until(page, `instance ${INSTANCE} running with 3 consumers`, (i) => {
    const tr = document.querySelector(`#instances tr[data-instance="${i}"]`);
    return tr?.querySelector("td.status")?.textContent === "running" && tr.cells[2].textContent === "3";
  }, INSTANCE);
  await page.fill("#concurrency", "");
  if (dialogs.length !== asked + 2) throw new Error("Stop all and Restart all must ask for a confirmation");
  send("CLUSTER_RESTARTED " + INSTANCE);
  await expectLine("OK");
}

// 25d. One dead letter retried from its detail (Retry task), another deleted from its row (asks first).
async function oneByOne(page, dialogs) {
  const [retried, deleted] = (await expectLine("DEAD2")).split(" ");
  await openDetail(page, retried, "failed");
  await act(page, "#detail-retry", "retried " + retried);
  send("DETAIL_RETRIED " + retried);
  await expectLine("OK");
  await page.evaluate(() => { location.hash = ""; });
  const row = `#failed tbody tr[data-task-id="${deleted}"]`;
  await page.waitForSelector(row, { timeout: STEP_TIMEOUT });
  const asked = dialogs.length;
  await act(page, `${row} .delete-btn`, "deleted " + deleted);
  if (dialogs.length !== asked + 1) throw new Error("Delete on a row did not ask for a confirmation");
  send("ROW_DELETED " + deleted);
  await expectLine("OK");
}

async function addSchedule(page, s) {
  await page.fill("#sch-name", s.name);
  await page.fill("#sch-cron", s.cron);
  await page.selectOption("#sch-type", s.type);
  await page.fill("#sch-payload", s.payload);
  await page.selectOption("#sch-priority", s.priority);
  await page.fill("#sch-tz", s.tz);
  await page.click("#sch-add");
  await until(page, `schedule ${s.name} listed`, (n) => document.querySelector(`#schedules-table tr[data-schedule="${n}"]`), s.name);
}

async function schedulesScenario(page, dialogs) {
  // The type pickers offer the task types of /openapi.json.
  const types = await page.$$eval("#sch-type option", (os) => os.map((o) => o.value));
  send("TYPES " + types.join(","));
  // 26. A bad payload is refused on the page, naming the field; a good schedule is added.
  await page.fill("#sch-name", "nightly-check");
  await page.fill("#sch-cron", "0 9 * * *");
  await page.fill("#sch-payload", "{not json");
  await page.click("#sch-add");
  await until(page, "the payload marked invalid", () =>
    document.querySelector("#sch-payload").getAttribute("aria-invalid") === "true" &&
    document.querySelector("#status-msg").textContent.startsWith("Failed: payload"));
  // A bad cron and a bad zone are refused by the API: the field is marked, focused and named.
  await page.fill("#sch-payload", '{"project": "dashboard-web"}');
  const refused = [];
  for (const [field, bad, good] of [["cron", "every morning", "0 9 * * *"], ["tz", "Mars/Olympus", "UTC"]]) {
    await page.fill("#sch-" + field, bad);
    expectedErrors.push("HTTP 400 POST /api/schedules");
    await page.click("#sch-add");
    const msg = await until(page, `the ${field} field marked invalid, focused and named`, (field) => {
      const el = document.querySelector("#sch-" + field);
      const text = document.querySelector("#status-msg").textContent;
      return el.getAttribute("aria-invalid") === "true" && document.activeElement === el &&
        text.startsWith("Failed: 400") ? text : false;
    }, field);
    refused.push(field + "=" + msg);
    await page.fill("#sch-" + field, good);
  }
  send("SCHEDULE_REFUSED " + refused.join("|"));
  await addSchedule(page, { name: "nightly-check", cron: "0 9 * * *", type: "check",
    payload: '{"project": "dashboard-web"}', priority: "P1", tz: "Europe/Paris" });
  send("SCHEDULE_ADDED nightly-check");
  await expectLine("OK");
  // 27. Remove it (asks first).
  const asked = dialogs.length;
  await page.click('#schedules-table tr[data-schedule="nightly-check"] .schedule-remove');
  await until(page, "schedule nightly-check gone", () => !document.querySelector('#schedules-table tr[data-schedule="nightly-check"]'));
  if (dialogs.length !== asked + 1) throw new Error("Remove did not ask for a confirmation");
  send("SCHEDULE_REMOVED nightly-check");
  await expectLine("OK");
  await addSchedule(page, { name: "weekly-check", cron: "0 6 * * 1", type: "check",
    payload: '{"project": "dashboard-web"}', priority: "P2", tz: "UTC" });
}

async function a11yScenario(page) {
  // 28. Every visible control has a name, every clickable thing is a real button or link, the
  //     focus ring shows.
  const problems = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, input, select, textarea")) {
      if (el.offsetParent === null) continue;
      const named = el.labels?.length || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim());
      if (!named) out.push(el.outerHTML.slice(0, 80));
    }
    if (document.querySelector("[onclick], div[role=button], span[role=button]")) out.push("a fake button");
    return out;
  });
  if (problems.length) throw new Error("controls without an accessible name: " + problems.join("; "));
  await page.focus('.range-btn[data-range="1h"]');
  await page.keyboard.press("Tab");
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (ring === "none") throw new Error("the focused control shows no focus ring");
  const low = await lowContrastText(page);
  if (low.length) throw new Error("text below the WCAG AA contrast ratio: " + low.join("; "));
  send("A11Y_OK " + ring);
}

/** Visible text whose colour against its background is below WCAG AA (4.5:1, or 3:1 for large
 *  text), as "<tag> '<text>' <ratio>" (one entry per tag and colour pair). */
async function lowContrastText(page) {
  return page.evaluate(() => {
    const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
    };
    const over = (fg, bg) => {
      const a = fg.length > 3 ? fg[3] : 1;
      return [0, 1, 2].map((i) => fg[i] * a + bg[i] * (1 - a));
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c.length >= 3 && (c.length === 3 || c[3] > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const seen = new Set();
    const out = [];
    for (const el of document.querySelectorAll("body *")) {
      if (el.offsetParent === null || el.closest("svg")) continue;
      const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
      if (!text) continue;
      const style = getComputedStyle(el);
      const bg = background(el);
      const fg = over(parse(style.color), bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const key = el.tagName + style.color + bg.join();
      if (ratio < (large ? 3 : 4.5) && !seen.has(key)) {
        seen.add(key);
        out.push(`${el.tagName.toLowerCase()} '${text.slice(0, 30)}' ${ratio.toFixed(2)}`);
      }
    }
    return out;
  });
}

// ---- roles: each token is offered exactly what it may do ----------------------------------------

/** Use `token` (the token form, as an operator would). */
async function useToken(page, token) {
  await page.fill("#token-input", token);
  await page.click("#token-save");
}

// The admin sees every control (the release's detail is open: no cancel or retry there).
const ADMIN_CONTROLS = ["btn-start", "btn-stop", "btn-restart", "concurrency",
  ...["p0", "p1", "p2", "p3"].flatMap((p) => ["btn-pause-" + p, "btn-resume-" + p]),
  "instance-start@instances", "instance-stop@instances", "instance-restart@instances",
  "recent-cancel", "select-all@recent", "select-task@recent",
  "failed-retry", "failed-delete", "select-all@failed", "select-task@failed", "retry-btn@failed", "delete-btn@failed",
  "schedule-form", "sch-name", "sch-cron", "sch-type", "sch-payload", "sch-priority", "sch-tz", "sch-add",
  "schedule-remove@schedules-table"];

async function adminSeesEverything(page) {
  const shown = await visibleControls(page);
  const missing = ADMIN_CONTROLS.filter((c) => !shown.includes(c));
  if (missing.length) throw new Error("the admin is not offered: " + missing.join(", ") + " (shown: " + shown.join(", ") + ")");
  send("ADMIN_CONTROLS " + shown.length);
}

// 30. A viewer token, a waiting task open: the page loads and offers no button at all.
async function viewerSeesNoButton(page) {
  const waiting = await expectLine("ROLES");
  await useToken(page, VIEWER_TOKEN);
  await openDetail(page, waiting, "pending");
  const shown = await until(page, "no visible button but the token form's with a viewer token", () => {
    if (document.body.dataset.loaded !== "true" || !document.querySelector("#failed tbody tr")) return false;
    // Paging and chart-range buttons (data-nav) only change what is shown; they stay.
    const visible = [...document.querySelectorAll("button, input[type=checkbox], #schedule-form, #concurrency")]
      .filter((b) => b.offsetParent !== null && b.id !== "token-save" && !b.dataset.nav);
    return visible.length === 0 ? "none" : false;
  });
  const left = await visibleControls(page);
  if (left.length) throw new Error("a viewer is offered: " + left.join(", "));
  send("VIEWER_NO_BUTTONS " + shown);
  return waiting;
}

// 31. An agent token, a waiting task open: cancelling (that task, or the ticked recent tasks) is
//     all the page offers; no retry, delete, pool, pause or schedule control. Its Cancel works.
const AGENT_CONTROLS = ["detail-cancel", "recent-cancel", "select-all@recent", "select-task@recent"];

async function agentMayOnlyCancel(page, waiting) {
  await useToken(page, AGENT_TOKEN);
  await openDetail(page, waiting, "pending");
  await until(page, "the agent's Cancel task and the recent list's checkboxes", () =>
    !document.querySelector("#detail-cancel").hidden && document.querySelector("#recent input.select-task")?.offsetParent);
  const shown = await visibleControls(page);
  if (shown.join(",") !== AGENT_CONTROLS.join(",")) {
    throw new Error(`an agent must be offered exactly ${AGENT_CONTROLS.join(", ")}; the page offers ${shown.join(", ")}`);
  }
  send("AGENT_CONTROLS " + shown.join(","));
  await act(page, "#detail-cancel", "cancel requested for " + waiting);
  await timelineHas(page, waiting, "task.cancelled");
  send("AGENT_CANCELLED " + waiting);
}

// 32. The live stream refused (every /api/events request aborted): the page says so and keeps
//     up by polling; a task the test enqueues then reaches completed on the page.
async function pollsWithoutTheStream(page) {
  await page.route("**/api/events**", (route) => route.abort());
  await page.reload({ waitUntil: "load", timeout: STEP_TIMEOUT });
  await until(page, "the live state to say it is polling", () =>
    document.querySelector("#live-state").textContent.startsWith("reconnecting"));
  send("POLLING");
  const id = await expectLine("TASK_POLLED");
  await recentRowReaches(page, id, "completed");
  if (await page.evaluate(() => document.querySelector("#live-state").textContent === "connected")) {
    throw new Error("the stream was blocked, yet the page says connected");
  }
  await page.unroute("**/api/events**");
  send("POLLED " + id);
}

// ---- the scenario ------------------------------------------------------------------------------

async function main() {
  userDataDir = mkdtempSync(join(tmpdir(), "ops-worker-dashboard-"));
  log(`launching ${CHROMIUM} (profile ${userDataDir})`);
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => {
    pageErrors.push(e.message);
    log("page error: " + e.message);
  });
  page.on("console", (m) => {
    // Failed fetches are logged below with their URL; other console errors are worth seeing.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) log("console error: " + m.text());
  });
  // Once the real token is in, every call the page makes must succeed.
  let tokenAccepted = false;
  const badResponses = [];
  page.on("response", (r) => {
    if (r.status() < 400) return;
    const what = `HTTP ${r.status()} ${r.request().method()} ${r.url().replace(BASE_URL, "")}`;
    log(what);
    const planned = expectedErrors.indexOf(what);
    if (planned >= 0) expectedErrors.splice(planned, 1);
    else if (tokenAccepted) badResponses.push(what);
  });
  // Confirmations (stop, pause, cancel) are accepted; each one is recorded to be checked.
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    log("confirm: " + d.message());
    d.accept().catch(() => {});
  });
  log(`browser ${context.browser()?.version() ?? "(persistent context)"}`);

  // 1. A fresh browser has no token: the page asks for one.
  await page.goto(BASE_URL + "/", { waitUntil: "load", timeout: STEP_TIMEOUT });
  await until(page, "the page to ask for a token", () =>
    document.querySelector("#status-msg")?.textContent.includes("Enter a token"),
  );
  send("STEP page loaded and asks for a token: " + (await statusMsg(page)));

  // 2. A bogus token is rejected, visibly, and nothing is rendered as loaded.
  await page.fill("#token-input", "not-a-valid.jwt.token");
  await page.click("#token-save");
  await until(page, 'the "Token rejected" message for a bogus token', () => {
    const el = document.querySelector("#status-msg");
    return el.classList.contains("error") && el.textContent.startsWith("Token rejected");
  });
  if (await page.evaluate(() => document.body.dataset.loaded)) {
    throw new Error("the page claims to be loaded with a bogus token");
  }
  await until(page, "the focus on the token field after the 401", () => document.activeElement?.id === "token-input");
  send("STEP bogus token rejected: " + (await statusMsg(page)));

  // 3. The real token: the page loads, keeps the token, and shows this worker running.
  await page.fill("#token-input", TOKEN);
  await page.click("#token-save");
  await until(page, "the page to load with the admin token (and clear the error)", () => {
    const el = document.querySelector("#status-msg");
    return document.body.dataset.loaded === "true" && !el.classList.contains("error");
  });
  tokenAccepted = true;
  const stored = await page.evaluate(() => [
    sessionStorage.getItem("ops-worker-token"),
    localStorage.getItem("ops-worker-token"),
  ]);
  if (stored[0] !== TOKEN) throw new Error("the token was not kept in sessionStorage");
  if (stored[1] !== null) throw new Error("the token reached localStorage, which outlives the tab");
  if ((await page.inputValue("#token-input")) !== "") throw new Error("the token input was not cleared");
  const instance = await until(
    page,
    `instances row ${INSTANCE} to show status "running" with 1 consumer, and the overall badge "running"`,
    (inst) => {
      const tr = document.querySelector(`#instances tbody tr[data-instance="${inst}"]`);
      if (!tr) return false;
      const cells = [...tr.cells].map((td) => td.textContent);
      const ok =
        tr.querySelector("td.status")?.textContent === "running" &&
        cells[2] === "1" &&
        document.querySelector("#overall").textContent === "running";
      return ok ? cells.join(" | ") : false;
    },
    INSTANCE,
  );
  send("STEP instances table: " + instance);
  send("READY");

  // 4. The test enqueues a task; its row must reach completed.
  const id = await expectLine("TASK");
  await recentRowReaches(page, id, "completed");
  // Times are relative ("3.2 s ago"), the absolute time on hover (the cell's title).
  const when = await page.$eval(`#recent tbody tr[data-task-id="${id}"] td:nth-child(7)`, (td) => [td.textContent, td.title]);
  if (!/ ago$/.test(when[0]) || isNaN(Date.parse(when[1]))) throw new Error("the updated time is not relative with an absolute title: " + when);
  send("TASK_COMPLETED " + id);

  // 5. A reload keeps the token (sessionStorage lives as long as the tab) and shows the same row without asking again.
  await page.reload({ waitUntil: "load", timeout: STEP_TIMEOUT });
  await recentRowReaches(page, id, "completed");
  send("STEP after a reload the page still has the token and shows " + id + " completed");

  // 6. Pause P3 from the page.
  await act(page, "#btn-pause-p3", "P3 paused");
  await until(page, '"#paused" to show P3', () =>
    document.querySelector("#paused").textContent.split(/\s+/).includes("P3"),
  );
  send("PAUSED P3");

  // 7. The test enqueues a P3 task while paused: it waits in the queue (depth 1, row pending).
  const p3 = await expectLine("TASK_P3");
  await until(
    page,
    `P3 depth 1 and row ${p3} pending while P3 is paused`,
    (id) => {
      const td = document.querySelector(`#recent tbody tr[data-task-id="${id}"] td.status`);
      return document.querySelector("#depth-P3").textContent === "1" && td?.textContent === "pending";
    },
    p3,
  );
  send("P3_PENDING " + p3);

  // 8. Resume P3 from the page: the marker clears and the waiting task runs.
  await act(page, "#btn-resume-p3", "P3 resumed");
  await until(page, '"#paused" to show none', () => document.querySelector("#paused").textContent === "none");
  send("RESUMED P3");
  await recentRowReaches(page, p3, "completed");
  send("P3_COMPLETED " + p3);

  // 9. A dead-lettered task shows in the failed table; its Retry button replays it.
  const failed = await expectLine("FAILED_TASK");
  const failedRow = `#failed tbody tr[data-task-id="${failed}"]`;
  await page.waitForSelector(failedRow, { timeout: STEP_TIMEOUT });
  const reason = await page.textContent(`${failedRow} td:nth-child(7)`);
  send(`STEP failed row ${failed}: ${reason}`);
  await act(page, `${failedRow} .retry-btn`, `retried ${failed}`);
  send("RETRIED " + failed);

  await detailScenario(page, p3, dialogs);
  await chartsScenario(page);
  await listsScenario(page);
  await controlsScenario(page, dialogs);
  await releaseScenario(page);
  await schedulesScenario(page, dialogs);
  await a11yScenario(page);

  // 29. Screenshots (a release's detail open) once the page is settled; the charts on the live
  //     range, where the test's minute of traffic fills a stretch of each line.
  const release = await expectLine("SHOT");
  await openDetail(page, release, "completed");
  await page.waitForSelector(failedRow, { timeout: STEP_TIMEOUT });
  await page.waitForSelector("#recent tbody tr[data-task-id]", { timeout: STEP_TIMEOUT });
  await page.click('.range-btn[data-range="10m"]');
  await until(page, "the live charts drawn", () => document.body.dataset.chartsRange === "10m" &&
    document.querySelector('#chart-throughput path[data-series="processed"]')?.dataset.points === "600");
  await adminSeesEverything(page);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  const extra = (name) => SCREENSHOT.replace(/\.png$/, "") + "-" + name + ".png";
  await page.locator("#charts").screenshot({ path: extra("charts") });
  await page.locator(".task-list[data-list=failed]").screenshot({ path: extra("lists") });
  await page.locator("#schedules").screenshot({ path: extra("schedules") });
  send(`SCREENSHOT ${SCREENSHOT} ${statSync(SCREENSHOT).size} bytes`);

  await agentMayOnlyCancel(page, await viewerSeesNoButton(page));
  await pollsWithoutTheStream(page);

  if (pageErrors.length) throw new Error("uncaught errors in the page: " + pageErrors.join("; "));
  if (badResponses.length) throw new Error("API calls failed with the admin token: " + badResponses.join("; "));
}

try {
  await main();
  finished = true;
  await cleanup();
  send("DONE");
  rl.close();
  process.exit(0);
} catch (e) {
  finished = true;
  send("FAIL " + String(e && e.message ? e.message : e).replace(/\s*\n\s*/g, " "));
  await cleanup();
  process.exit(1);
}
