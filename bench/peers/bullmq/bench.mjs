// BullMQ peer of `ops-worker bench`: enqueue TASKS noop jobs (addBulk, batches of 5000, four at a
// time, as ops-worker's bench does), drain them with one Worker of CONCURRENCY, and print one JSON
// object with the same figures: enqueue/s, drain/s (worker start to last completion), Redis server
// CPU per task from `INFO cpu` before and after (user + sys, enqueue included) and peak RSS.
// The private queue is obliterated afterwards. BullMQ's defaults are kept (completed jobs stay as
// records; events go to its stream), as a deployment would run it.
//
//   REDIS_URL=redis://127.0.0.1:6391 TASKS=50000 CONCURRENCY=50 node bench.mjs
import { randomBytes } from "node:crypto";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const tasks = Number(process.env.TASKS ?? 50000);
const concurrency = Number(process.env.CONCURRENCY ?? 50);
if (!Number.isInteger(tasks) || tasks < 1) throw new Error(`TASKS must be a positive integer, got ${process.env.TASKS}`);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`CONCURRENCY must be a positive integer, got ${process.env.CONCURRENCY}`);

const name = `peer-${randomBytes(4).toString("hex")}`;
const admin = new IORedis(url, { maxRetriesPerRequest: null });

// Redis CPU seconds used so far (used_cpu_sys + used_cpu_user) and the server's version.
async function redisCpu() {
  const info = await admin.info("server");
  const cpu = await admin.info("cpu");
  const field = (text, key) => {
    const line = text.split(/\r?\n/).find((l) => l.startsWith(`${key}:`));
    if (!line) throw new Error(`INFO has no ${key}`);
    return line.slice(key.length + 1).trim();
  };
  return {
    secs: Number(field(cpu, "used_cpu_sys")) + Number(field(cpu, "used_cpu_user")),
    version: field(info, "redis_version"),
  };
}

const queue = new Queue(name, { connection: { url, maxRetriesPerRequest: null } });
await queue.waitUntilReady();
const jobs = Array.from({ length: tasks }, (_, i) => ({ name: "noop", data: { i } }));
const chunks = [];
for (let i = 0; i < jobs.length; i += 5000) chunks.push(jobs.slice(i, i + 5000));

const cpu0 = await redisCpu();
const t0 = performance.now();
for (let i = 0; i < chunks.length; i += 4) {
  await Promise.all(chunks.slice(i, i + 4).map((c) => queue.addBulk(c)));
}
const enqueueSecs = (performance.now() - t0) / 1000;
const cpu1 = await redisCpu();

let done = 0;
let drained;
const finished = new Promise((resolve) => { drained = resolve; });
const t1 = performance.now();
const worker = new Worker(name, async () => {}, {
  connection: { url, maxRetriesPerRequest: null },
  concurrency,
});
worker.on("completed", () => {
  done += 1;
  if (done === tasks) drained(performance.now());
});
worker.on("failed", (job, err) => { console.error(`job ${job?.id} failed: ${err}`); });
const t2 = await finished;
const drainSecs = (t2 - t1) / 1000;
const cpu2 = await redisCpu();
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
await admin.quit();

const us = (secs) => (Math.max(secs, 0) * 1e6) / tasks;
console.log(JSON.stringify({
  system: "bullmq",
  bullmq_version: (await import("bullmq/package.json", { with: { type: "json" } })).default.version,
  tasks,
  concurrency,
  enqueue_per_sec: tasks / enqueueSecs,
  drain_per_sec: tasks / drainSecs,
  redis_cpu_us_per_task: us(cpu2.secs - cpu0.secs),
  redis_cpu_us_per_task_enqueue: us(cpu1.secs - cpu0.secs),
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  redis_version: cpu0.version,
}));
