// ops-worker dashboard, the charts: hand-drawn SVG line charts of GET /api/stats/history.
// "Last 10 min" draws processed and failed per second from the live per-second counters (and the
// other charts from the last hour); "Last hour" and "Last 24 h" draw the per-minute history kept
// in Redis. Each line is a <path data-series=…> carrying its number of points, its sum and its
// last value as data attributes, and each chart has a text description for screen readers.
// Defines functions only; app.js calls wireCharts() and loadCharts().
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// The range shown, and when the charts were last read (they are not re-read on every refresh).
const CHARTS = { range: "1h", loadedAt: 0, loading: false };
const CHART_BOX = { w: 480, h: 160, left: 44, right: 8, top: 18, bottom: 20 };

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// A round number at or above `v`, for the top of the y axis.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmtNum = (v) => (v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(v < 1 ? 2 : 1));
const fmtClock = (ms, long) => new Date(ms).toLocaleString([], long
  ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
  : { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// The SVG path of one series: segments over its non-null values (a gap where a value is missing).
function pathOf(times, values, x, y) {
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined || !isFinite(v)) { pen = false; return; }
    d += (pen ? "L" : "M") + x(times[i]).toFixed(1) + "," + y(v).toFixed(1);
    pen = true;
  });
  return d;
}

// A dot for each value with no neighbour (a lone sample draws no line).
function dots(svg, times, s, x, y) {
  const has = (i) => i >= 0 && i < s.values.length && s.values[i] !== null && s.values[i] !== undefined && isFinite(s.values[i]);
  s.values.forEach((v, i) => {
    if (has(i) && !has(i - 1) && !has(i + 1)) {
      svg.appendChild(svgEl("circle", { cx: x(times[i]).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: "dot " + s.cls }));
    }
  });
}

function axes(svg, t0, t1, top, long) {
  const B = CHART_BOX;
  const bottom = B.h - B.bottom;
  svg.append(
    svgEl("line", { x1: B.left, y1: bottom, x2: B.w - B.right, y2: bottom, class: "axis" }),
    svgEl("line", { x1: B.left, y1: B.top, x2: B.left, y2: bottom, class: "axis" }),
    svgEl("text", { x: B.left - 4, y: B.top + 4, "text-anchor": "end", class: "tick" }, fmtNum(top)),
    svgEl("text", { x: B.left - 4, y: bottom, "text-anchor": "end", class: "tick" }, "0"),
    svgEl("text", { x: B.left, y: B.h - 4, class: "tick" }, fmtClock(t0, long)),
    svgEl("text", { x: B.w - B.right, y: B.h - 4, "text-anchor": "end", class: "tick" }, fmtClock(t1, long)),
  );
}

// Draw `series` ([{name, values, cls}]) over `times` (ms) into `svg`; `unit` ends the description.
function drawChart(svg, times, series, unit, long) {
  const B = CHART_BOX;
  svg.replaceChildren();
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined && isFinite(v)));
  const desc = svgEl("desc", { id: svg.id + "-desc" });
  svg.appendChild(desc);
  svg.setAttribute("aria-describedby", desc.id);
  svg.dataset.points = String(all.length);
  if (!times.length || !all.length) {
    svg.appendChild(svgEl("text", { x: B.w / 2, y: B.h / 2, "text-anchor": "middle", class: "empty" }, "No data yet"));
    desc.textContent = "No data yet for this range.";
    return;
  }
  const top = niceMax(Math.max(...all));
  const t0 = times[0];
  const t1 = times[times.length - 1];
  const x = (t) => B.left + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (B.w - B.left - B.right));
  const y = (v) => B.h - B.bottom - (v / top) * (B.h - B.top - B.bottom);
  axes(svg, t0, t1, top, long);
  const said = [];
  series.forEach((s, i) => {
    const present = s.values.filter((v) => v !== null && v !== undefined && isFinite(v));
    const last = present.length ? present[present.length - 1] : null;
    const sum = present.reduce((a, b) => a + b, 0);
    svg.appendChild(svgEl("path", {
      d: pathOf(times, s.values, x, y), class: "line " + s.cls, "data-series": s.name,
      "data-points": present.length, "data-sum": sum, "data-last": last === null ? "" : last,
    }));
    dots(svg, times, s, x, y);
    const lx = B.left + 8 + i * 92;
    svg.append(svgEl("rect", { x: lx, y: 4, width: 10, height: 4, class: "key " + s.cls }),
      svgEl("text", { x: lx + 14, y: 10, class: "legend" }, s.name));
    said.push(`${s.name} ${last === null ? "no value" : fmtNum(last)}`);
  });
  desc.textContent = "Latest: " + said.join(", ") + " " + unit + ".";
}

function drawLive(live) {
  const times = live.points.map((p) => Date.parse(p.at));
  drawChart($("#chart-throughput"), times, [
    { name: "processed", cls: "s-ok", values: live.points.map((p) => p.completed) },
    { name: "failed", cls: "s-bad", values: live.points.map((p) => p.failed) },
  ], "per second", false);
}

function drawHistory(h, withThroughput) {
  const pts = h.points;
  const times = pts.map((p) => Date.parse(p.at));
  const long = h.step_secs >= 300;
  const pick = (f) => pts.map((p) => { const v = f(p); return v === undefined ? null : v; });
  if (withThroughput) {
    drawChart($("#chart-throughput"), times, [
      { name: "processed", cls: "s-ok", values: pick((p) => p.completed_per_sec) },
      { name: "failed", cls: "s-bad", values: pick((p) => p.failed_per_sec) },
    ], "per second, averaged over " + h.step_secs / 60 + " min", long);
  }
  drawChart($("#chart-depth"), times, ["P0", "P1", "P2", "P3"].map((prio, i) => ({
    name: prio, cls: "s-p" + i, values: pick((p) => (p.pending ? p.pending[prio] : null)),
  })), "tasks waiting", long);
  drawChart($("#chart-capacity"), times, [
    { name: "in flight", cls: "s-ok", values: pick((p) => p.in_flight) },
    { name: "capacity", cls: "s-muted", values: pick((p) => p.capacity) },
  ], "tasks and consumers", long);
  drawChart($("#chart-wait"), times, ["p50", "p95", "p99"].map((q, i) => ({
    name: q, cls: "s-q" + i, values: pick((p) => (p.wait_ms ? p.wait_ms[q] : null)),
  })), "ms", long);
}

// Read and draw the charts, at most every 2 s for the live range and every 10 s otherwise.
async function loadCharts(force) {
  const every = CHARTS.range === "10m" ? 2000 : 10000;
  if (CHARTS.loading || (!force && Date.now() - CHARTS.loadedAt < every)) return;
  CHARTS.loading = true;
  const state = $("#charts-state");
  try {
    if (CHARTS.range === "10m") {
      const [live, hour] = await Promise.all([
        api("GET", "/api/stats/history?range=10m"),
        api("GET", "/api/stats/history?range=1h"),
      ]);
      drawLive(live);
      drawHistory(hour, false);
    } else {
      drawHistory(await api("GET", "/api/stats/history?range=" + CHARTS.range), true);
    }
    CHARTS.loadedAt = Date.now();
    document.body.dataset.chartsRange = CHARTS.range;
    state.textContent = CHARTS.range === "10m"
      ? "Live: the last 10 minutes per second; depth, capacity and waits over the last hour."
      : "History kept in Redis, per minute, for 24 hours.";
    state.classList.remove("error");
  } catch (e) {
    state.textContent = "Could not load the charts: " + e.message;
    state.classList.add("error");
    throw e;
  } finally {
    CHARTS.loading = false;
  }
}

function wireCharts() {
  for (const btn of document.querySelectorAll(".range-btn")) {
    btn.addEventListener("click", () => {
      CHARTS.range = btn.dataset.range;
      for (const b of document.querySelectorAll(".range-btn")) b.setAttribute("aria-pressed", String(b === btn));
      loadCharts(true).catch(() => {});
    });
  }
}
