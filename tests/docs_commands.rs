//! The documented commands work as written.
//!
//! Every command line in the ```bash blocks of `docs/operations.md` and `README.md` that runs
//! `ops-worker …` (at the start of the line, after `VAR=value` assignments, or after `$(`, `&&`,
//! `||`, `;`, `|`) or that curls `localhost:8080` is run with `bash -c` (`set -euo pipefail`) against
//! a live worker (`ops-worker run`) on a private Redis, with the Vercel simulator behind it, and must
//! exit 0. `\` continuations are joined and heredoc bodies skipped. Every `curl` gets `--fail`, so
//! an HTTP error fails the command even where the document's curl has no `-f`.
//!
//! The documents' placeholders are filled in: `$TOKEN` is a minted admin token, `$TASK_ID` a real
//! task, `$FAILED_TASK_ID` a fresh dead-lettered task, `$DEPLOYMENT_ID` the deployment of a completed
//! deploy, and `http://localhost:8080` the worker's address. A `$TASK_ID` given to a command that
//! cancels gets a fresh pending task, and one given to a command that retries gets a fresh failed
//! task, because those are the only states in which those actions make sense.
//!
//! After each command the test undoes what an operator would undo next: it starts a stopped pool,
//! resumes paused priorities and lets the queue drain, so that commands don't depend on each other.
//!
//! Commands that run until stopped (`run`, `vercel-sim`, `demo`) are not run here. [`ELSEWHERE`]
//! names the test that exercises each one, and checks that the entry is still documented and the
//! named test still exists. Each skipped command is parsed with `--help` appended, so a misspelt
//! flag is still caught. `ops-worker bench` runs with `--tasks 200 --concurrency 2` substituted.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ops_worker::queue::QueueStore;
use ops_worker::task::{NewTask, Priority, TaskStatus};
use serde_json::{Value, json};
use support::*;

/// The documents whose commands are run, and the fewest commands each must yield (so an extraction
/// bug cannot make the test pass by finding nothing).
const DOCS: [(&str, usize); 2] = [("docs/operations.md", 60), ("README.md", 12)];
/// The fewest commands actually executed, over both documents.
const MIN_EXECUTED: usize = 65;

/// `doctor` rejects `support::TEST_JWT_SECRET` (it contains the placeholder word "secret"), and the
/// documents run `doctor`, so the worker and the commands share this one.
const STRONG_JWT_SECRET: &str = "9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a";
/// The docs' example queue, so `ops:{default}:…` keys in them name this test's keys.
const QUEUE: &str = "default";
/// Longest a single documented command may take.
const COMMAND_TIMEOUT_SECS: u32 = 180;

/// A documented command that runs until stopped, and the test that exercises it instead.
struct Elsewhere {
    /// Leading words of the invocation, e.g. `ops-worker demo --scenario bugfix`.
    prefix: &'static str,
    /// The test file and function that run it.
    file: &'static str,
    test_fn: &'static str,
    /// Text the test file must contain, showing how it runs the command.
    marker: &'static str,
    why: &'static str,
}

/// Most specific first: the first entry whose prefix matches wins.
const ELSEWHERE: &[Elsewhere] = &[
    Elsewhere {
        prefix: "ops-worker demo --scenario bugfix",
        file: "tests/operate.rs",
        test_fn: "bugfix_scenario_passes",
        marker: "\"--scenario\"",
        why: "starts a second pool and simulator and takes ~10 s; tests/operate.rs runs it on a private Redis",
    },
    Elsewhere {
        prefix: "ops-worker demo",
        file: "tests/operate.rs",
        test_fn: "demo_starts_without_redis_runs_every_sample_and_stops_on_sigint",
        marker: "\"demo\"",
        why: "runs until Ctrl-C",
    },
    Elsewhere {
        prefix: "ops-worker run",
        file: "tests/worker.rs",
        test_fn: "sigterm_finishes_or_hands_back_and_a_restart_completes_everything",
        marker: "Worker::builder",
        why: "runs until SIGTERM (this test's own worker is `ops-worker run` too)",
    },
    Elsewhere {
        prefix: "ops-worker vercel-sim",
        file: "tests/vercel.rs",
        test_fn: "deploy_reaches_ready_error_fails_without_retry_and_5xx_bursts_are_retried",
        marker: "SimProcess::spawn",
        why: "runs until SIGTERM (this test's simulator is `ops-worker vercel-sim` too)",
    },
];

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

/// One logical command line of a ```bash block.
#[derive(Debug, Clone)]
struct DocCommand {
    file: &'static str,
    /// 1-based line of its first physical line.
    line: usize,
    /// Continuations joined, trailing comment removed.
    code: String,
}

/// Cut a bash comment: `#` at the start of a word, outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && !single && !double && prev_blank {
            return line[..i].trim_end();
        }
        prev_blank = c.is_whitespace();
    }
    line.trim_end()
}

/// The delimiter of a heredoc started on this line (`<<EOF`, `<<'EOF'`, `<<-"EOF"`).
fn heredoc_delimiter(code: &str) -> Option<String> {
    let at = code.find("<<")?;
    let rest = code[at + 2..].trim_start_matches('-').trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Every logical line of every ```bash block.
fn bash_lines(file: &'static str, markdown: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let mut in_bash = false;
    let mut heredoc: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (idx, raw) in markdown.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("```") {
            in_bash = !in_bash && line.trim_start_matches('`').trim() == "bash";
            heredoc = None;
            pending = None;
            continue;
        }
        if !in_bash {
            continue;
        }
        if let Some(delim) = &heredoc {
            if line == delim {
                heredoc = None;
            }
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((idx + 1, String::new()));
        if let Some(body) = line.strip_suffix('\\') {
            text.push_str(body);
            pending = Some((start, text));
            continue;
        }
        text.push_str(line);
        let code = strip_comment(&text).trim().to_string();
        heredoc = heredoc_delimiter(&code);
        if !code.is_empty() {
            out.push(DocCommand {
                file,
                line: start,
                code,
            });
        }
    }
    out
}

fn is_env_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// Byte offsets where `ops-worker` is invoked as a command in `code`.
fn invocations(code: &str) -> Vec<usize> {
    code.match_indices("ops-worker ")
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = code[..i].trim_end();
            before.is_empty()
                || ["$(", "(", "&&", "||", ";", "|"]
                    .iter()
                    .any(|s| before.ends_with(s))
                || before.split_whitespace().all(is_env_assignment)
        })
        .collect()
}

/// The invocation starting at `at`, up to the next command separator.
fn invocation_text(code: &str, at: usize) -> &str {
    let rest = &code[at..];
    let end = [" && ", " || ", " | ", ";", ")", " &"]
        .iter()
        .filter_map(|s| rest.find(s))
        .min()
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches('&').trim()
}

fn is_local_curl(code: &str) -> bool {
    code.contains("curl ") && code.contains("localhost:8080")
}

/// The lines this test runs (or hands to [`ELSEWHERE`]).
fn commands(file: &'static str, markdown: &str) -> Vec<DocCommand> {
    bash_lines(file, markdown)
        .into_iter()
        .filter(|c| is_local_curl(&c.code) || !invocations(&c.code).is_empty())
        .collect()
}

fn words_start_with(text: &str, prefix: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let want: Vec<&str> = prefix.split_whitespace().collect();
    words.len() >= want.len() && words[..want.len()] == want[..]
}

/// The entry that exercises this command elsewhere, with its invocation text.
fn elsewhere(code: &str) -> Option<(&'static Elsewhere, String)> {
    for at in invocations(code) {
        let inv = invocation_text(code, at);
        if let Some(e) = ELSEWHERE.iter().find(|e| words_start_with(inv, e.prefix)) {
            return Some((e, inv.to_string()));
        }
    }
    None
}

/// `ops-worker bench` with small numbers: `--tasks 200 --concurrency 2`.
fn small_bench(code: &str) -> Option<String> {
    if !invocations(code)
        .iter()
        .any(|&at| words_start_with(invocation_text(code, at), "ops-worker bench"))
    {
        return None;
    }
    let mut words: Vec<String> = code.split_whitespace().map(String::from).collect();
    let mut seen = (false, false);
    for i in 0..words.len() {
        let flag = words[i].split('=').next().unwrap_or("").to_string();
        let value = match flag.as_str() {
            "--tasks" => {
                seen.0 = true;
                "200"
            }
            "--concurrency" => {
                seen.1 = true;
                "2"
            }
            _ => continue,
        };
        if words[i].contains('=') {
            words[i] = format!("{flag}={value}");
        } else if i + 1 < words.len() {
            words[i + 1] = value.to_string();
        }
    }
    let at = words.iter().position(|w| w == "bench").unwrap_or(0) + 1;
    if !seen.1 {
        words.insert(at, "--concurrency 2".into());
    }
    if !seen.0 {
        words.insert(at, "--tasks 200".into());
    }
    Some(words.join(" "))
}

fn mentions(code: &str, var: &str) -> bool {
    code.contains(&format!("${var}")) || code.contains(&format!("${{{var}}}"))
}

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn all_commands() -> Vec<DocCommand> {
    let mut all = Vec::new();
    for (file, min) in DOCS {
        let found = commands(file, &repo_file(file));
        assert!(
            found.len() >= min,
            "{file}: only {} commands found (expected at least {min}); is the extraction broken?\n{}",
            found.len(),
            found
                .iter()
                .map(|c| format!("  {}: {}", c.line, c.code))
                .collect::<Vec<_>>()
                .join("\n")
        );
        all.extend(found);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

struct Outcome {
    ok: bool,
    report: String,
}

fn tail(s: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(s);
    let s = s.trim_end();
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &s[cut..])
}

/// Prepended to every command: strict bash, and every curl fails on an HTTP error status even when
/// the document's curl has no `-f` (README's `curl -s`), so the exit status means success.
const PRELUDE: &str = "set -euo pipefail\ncurl() { command curl --fail \"$@\"; }\n";

/// `bash -c` with [`PRELUDE`], under a timeout.
fn run_bash(script: &str, env: &HashMap<String, String>, dir: &Path) -> Outcome {
    let out = Command::new("timeout")
        .args(["-k", "5", &COMMAND_TIMEOUT_SECS.to_string(), "bash", "-c"])
        .arg(format!("{PRELUDE}{script}"))
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .output()
        .expect("run bash");
    let code = out.status.code().map_or("signal".into(), |c| c.to_string());
    Outcome {
        ok: out.status.success(),
        report: format!(
            "exit {code}{}\n    stdout: {}\n    stderr: {}",
            if code == "124" { " (timed out)" } else { "" },
            tail(&out.stdout, 1500),
            tail(&out.stderr, 1500)
        ),
    }
}

fn bin_dir() -> PathBuf {
    Path::new(bin()).parent().expect("bin dir").to_path_buf()
}

/// A noop that fails at once and is never retried, processed by the worker until dead-lettered.
async fn failed_task(store: &QueueStore) -> String {
    let mut t = noop(json!({"fail": true}));
    t.max_retries = 0;
    let id = t.task_id.to_string();
    store.enqueue(&[t]).await.expect("enqueue failing noop");
    wait_status(store, &id, TaskStatus::Failed).await;
    id
}

/// A task that stays pending for an hour (delayed), so it can be cancelled.
async fn pending_task(store: &QueueStore) -> String {
    let t = NewTask {
        task_type: Some("noop".into()),
        payload: Some(json!({})),
        source: Some("docs-test".into()),
        run_at: Some((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()),
        ..Default::default()
    }
    .validate(3, chrono::Utc::now())
    .expect("valid delayed noop");
    let id = t.task_id.to_string();
    store.enqueue(&[t]).await.expect("enqueue delayed noop");
    id
}

async fn wait_status(
    store: &QueueStore,
    id: &str,
    want: TaskStatus,
) -> ops_worker::task::TaskRecord {
    eventually(
        Duration::from_secs(60),
        &format!("task {id} {want}"),
        || async { store.get(id).await.ok()?.filter(|r| r.status == want) },
    )
    .await
}

async fn pool_running(store: &QueueStore, instance: &str) -> bool {
    store
        .instances()
        .await
        .ok()
        .and_then(|hs| hs.into_iter().find(|h| h.instance == instance))
        .is_some_and(|h| h.status == Some(ops_worker::queue::PoolStatus::Running))
}

/// Undo what a command may have left behind: a stopped pool, paused priorities, a full queue.
async fn restore(store: &QueueStore, worker: &Worker) -> Result<(), String> {
    let stopped = store
        .control()
        .await
        .map_err(|e| e.to_string())?
        .for_instance("")
        .running;
    let stopped = !stopped
        || store
            .control()
            .await
            .map_err(|e| e.to_string())?
            .instances
            .values()
            .any(|s| s.state == Some(ops_worker::queue::DesiredState::Stopped));
    if stopped {
        store
            .set_control(None, ops_worker::queue::PoolCommand::Start, None)
            .await
            .map_err(|e| e.to_string())?;
    }
    store
        .resume(&Priority::ALL)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pool_running(store, &worker.instance).await {
        if Instant::now() > deadline {
            return Err("the pool did not return to `running` within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the work a command submitted finish, so the next command sees a quiet queue. Not an
    // error if it doesn't (e.g. a documented long task): the next command just runs alongside.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match store.stats().await {
            Ok(s) if s.pending_total() == 0 && s.in_flight == 0 => break,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(())
}

/// An admin token minted by the CLI, as an operator would.
fn admin_token(redis_url: &str) -> String {
    let out = cli(
        redis_url,
        QUEUE,
        &[("JWT_SECRET", STRONG_JWT_SECRET)],
        &["token", "--role", "admin"],
    );
    assert!(out.status.success(), "token: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A deploy run to completion: `(task id, deployment id)`.
async fn completed_deploy(store: &QueueStore) -> (String, String) {
    let t = task(
        "deploy",
        "P2",
        json!({"project": "morningai-web", "target": "production"}),
    );
    let id = t.task_id.to_string();
    store.enqueue(&[t]).await.unwrap();
    let rec = wait_status(store, &id, TaskStatus::Completed).await;
    let deployment = rec
        .deployment_id
        .expect("a completed deploy has a deployment id");
    (id, deployment)
}

/// Waits until the worker's pool reports running.
async fn wait_pool_running(store: &QueueStore, worker: &mut Worker) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pool_running(store, &worker.instance).await {
        assert!(
            worker.alive() && Instant::now() < deadline,
            "worker did not start; log:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A documented command left to another test: its flags must still parse. `Some(failure)` if not.
fn check_elsewhere(
    cmd: &DocCommand,
    entry: &Elsewhere,
    inv: &str,
    env: &HashMap<String, String>,
    dir: &Path,
) -> Option<String> {
    let check = run_bash(&format!("{inv} --help >/dev/null"), env, dir);
    (!check.ok).then(|| {
        format!(
            "{}:{}: `{}`\n  (run by {}::{}; `{inv} --help` failed, so the flags don't parse)\n  {}",
            cmd.file, cmd.line, cmd.code, entry.file, entry.test_fn, check.report
        )
    })
}

/// docs/operations.md's convention: every curl to the local instance fails on HTTP errors.
fn curl_convention(cmd: &DocCommand) -> Option<String> {
    let local = cmd.file == "docs/operations.md" && is_local_curl(&cmd.code);
    let bad = cmd.code.matches("curl ").count() != cmd.code.matches("curl -fsS ").count();
    (local && bad).then(|| {
        format!(
            "{}:{}: `{}`\n  every curl to the local instance must be `curl -fsS` (docs/operations.md conventions)",
            cmd.file, cmd.line, cmd.code
        )
    })
}

/// The live parts every command runs against.
struct Stage {
    /// Drives the async helpers from this synchronous test.
    rt: tokio::runtime::Runtime,
    /// Keeps the private Redis alive.
    _redis: RedisServer,
    /// Keeps the Vercel simulator alive.
    _sim: SimProcess,
    /// The live `ops-worker run`.
    worker: Worker,
    /// Direct access to the queue, for fixtures and clean-up.
    store: QueueStore,
    /// A completed deploy, the `$TASK_ID` of commands that only read.
    task_id: String,
    /// The environment every command gets (placeholders filled in).
    env: HashMap<String, String>,
    /// The commands' working directory and `$HOME`.
    scratch: PathBuf,
}

impl Stage {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // The store's connection manager spawns onto the runtime it is created in.
        let _enter = rt.enter();
        let redis = RedisServer::start();
        let sim = SimProcess::spawn(&["--build-secs", "0.5"]);
        let mut env_extra = sim.worker_env();
        env_extra.push(("JWT_SECRET", STRONG_JWT_SECRET.to_string()));
        let mut worker = rt.block_on(Worker::builder(&redis.url(), QUEUE).envs(env_extra).spawn());
        let store = rt.block_on(store(&redis.url(), QUEUE));
        rt.block_on(wait_pool_running(&store, &mut worker));
        let token = admin_token(&redis.url());
        let (task_id, deployment_id) = rt.block_on(completed_deploy(&store));
        let scratch = scratch_dir("docs");
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = [
            ("PATH", path),
            ("HOME", scratch.display().to_string()),
            ("LANG", "C.UTF-8".to_string()),
            ("REDIS_URL", redis.url()),
            ("QUEUE_NAME", QUEUE.to_string()),
            ("VERCEL_API_URL", sim.url.clone()),
            ("VERCEL_TOKEN", sim.token.clone()),
            ("JWT_SECRET", STRONG_JWT_SECRET.to_string()),
            ("TOKEN", token),
            ("DEPLOYMENT_ID", deployment_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        drop(_enter);
        Stage {
            rt,
            _redis: redis,
            _sim: sim,
            worker,
            store,
            task_id,
            env,
            scratch,
        }
    }

    /// The command's environment: `$TASK_ID` in the state its action needs, `$FAILED_TASK_ID`.
    fn env_for(&self, code: &str) -> HashMap<String, String> {
        let mut env = self.env.clone();
        self.rt.block_on(async {
            let task = if mentions(code, "TASK_ID") && code.contains("cancel") {
                pending_task(&self.store).await
            } else if mentions(code, "TASK_ID") && code.contains("retry") {
                failed_task(&self.store).await
            } else {
                self.task_id.clone()
            };
            env.insert("TASK_ID".into(), task);
            let failed = if mentions(code, "FAILED_TASK_ID") {
                failed_task(&self.store).await
            } else {
                "no-failed-task-needed".into()
            };
            env.insert("FAILED_TASK_ID".into(), failed);
        });
        env
    }

    /// Runs one documented command; `Some(failure report)` when it fails. Afterwards the pool is
    /// restored (started, resumed, drained) and must still be alive.
    fn run(&mut self, cmd: &DocCommand) -> Option<String> {
        let at = format!("{}:{}", cmd.file, cmd.line);
        let base = self.worker.base_url();
        let host_port = base.trim_start_matches("http://").to_string();
        let code = small_bench(&cmd.code).unwrap_or_else(|| cmd.code.clone());
        let script = code
            .replace("http://localhost:8080", &base)
            .replace("localhost:8080", &host_port);
        let outcome = run_bash(&script, &self.env_for(&code), &self.scratch);
        let failure = (!outcome.ok).then(|| {
            let shown = if code == cmd.code {
                String::new()
            } else {
                format!("\n  ran as: `{code}`")
            };
            format!(
                "{at}: `{}`{shown}\n  {}\n{}",
                cmd.code,
                outcome.report,
                self.worker_state()
            )
        });
        if let Err(e) = self.rt.block_on(restore(&self.store, &self.worker)) {
            panic!(
                "after {at} (`{}`): {e}\nworker log:\n{}",
                cmd.code,
                self.worker.logs()
            );
        }
        assert!(
            self.worker.alive(),
            "the worker died after {at}; log:\n{}",
            self.worker.logs()
        );
        failure
    }

    /// What the worker looked like, in case a failure is about it rather than the document.
    fn worker_state(&self) -> String {
        let heartbeat = self
            .rt
            .block_on(self.store.instances())
            .map(|hs| format!("{hs:?}"))
            .unwrap_or_else(|e| e.to_string());
        let logs = self.worker.logs();
        let log_tail: Vec<&str> = logs.lines().rev().take(8).collect();
        format!(
            "    worker heartbeat: {heartbeat}\n    worker log (last lines, newest first):\n      {}",
            log_tail.join("\n      ")
        )
    }
}

#[test]
fn every_documented_command_runs_as_written() {
    let docs = all_commands();
    let mut stage = Stage::start();
    let mut failures = Vec::new();
    let mut executed = 0;
    let mut skipped = Vec::new();
    for cmd in &docs {
        if let Some((entry, inv)) = elsewhere(&cmd.code) {
            // Not run here; still make sure its flags parse.
            failures.extend(check_elsewhere(
                cmd,
                entry,
                &inv,
                &stage.env,
                &stage.scratch,
            ));
            skipped.push(format!(
                "{}:{}: {} -> {}",
                cmd.file, cmd.line, cmd.code, entry.file
            ));
            continue;
        }
        failures.extend(curl_convention(cmd));
        failures.extend(stage.run(cmd));
        executed += 1;
    }
    let _ = std::fs::remove_dir_all(&stage.scratch);

    eprintln!(
        "ran {executed} documented commands; {} left to other tests:\n  {}",
        skipped.len(),
        skipped.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of the documented commands failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        executed >= MIN_EXECUTED,
        "only {executed} commands were executed (expected at least {MIN_EXECUTED})"
    );
}

/// The allow-list can't rot: each entry is still documented, and its test still exists and runs it.
#[test]
fn commands_left_to_other_tests_are_documented_and_tested_there() {
    let docs = all_commands();
    for e in ELSEWHERE {
        let documented: Vec<&DocCommand> = docs
            .iter()
            .filter(|c| elsewhere(&c.code).is_some_and(|(m, _)| m.prefix == e.prefix))
            .collect();
        assert!(
            !documented.is_empty(),
            "`{}` is allow-listed ({}) but no longer documented: remove it from ELSEWHERE",
            e.prefix,
            e.why
        );
        let source = repo_file(e.file);
        assert!(
            source.contains(&format!("fn {}(", e.test_fn)),
            "{} no longer has `fn {}`, which should exercise `{}`",
            e.file,
            e.test_fn,
            e.prefix
        );
        assert!(
            source.contains(e.marker),
            "{} does not contain `{}`: does it still run `{}`?",
            e.file,
            e.marker,
            e.prefix
        );
    }
}

/// `ops-worker bench` (documented with production-sized numbers) reports every field it promises.
#[test]
fn bench_reports_its_measurements_as_json() {
    let redis = RedisServer::start();
    let out = cli(
        &redis.url(),
        QUEUE,
        &[],
        &["bench", "--tasks", "200", "--concurrency", "2", "--json"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(stdout.trim()).expect("bench --json prints one JSON object");
    assert_eq!(v["tasks"], 200, "{v}");
    assert_eq!(v["concurrency"], 2, "{v}");
    assert!(v["prefetch"].as_u64().is_some_and(|n| n >= 1), "{v}");
    for field in [
        "enqueue_per_sec",
        "drain_per_sec",
        "redis_round_trips_per_task",
        "peak_rss_mb",
        "redis_cpu_us_per_task",
    ] {
        assert!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {v}");
    }
    assert!(
        v["redis_version"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    let p50 = v["claim_wait_p50_ms"].as_f64().expect("claim_wait_p50_ms");
    let p99 = v["claim_wait_p99_ms"].as_f64().expect("claim_wait_p99_ms");
    assert!(p50 >= 0.0 && p99 >= p50, "{v}");
    // The private queue is gone, and the real one was never touched.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .unwrap();
    assert!(
        keys.iter()
            .all(|k| !k.contains("bench-") && !k.contains(QUEUE)),
        "bench left keys behind: {keys:?}"
    );
}

/// The extraction rules, on a sample with every construct the documents use.
#[test]
fn extraction_joins_continuations_skips_heredocs_and_finds_embedded_invocations() {
    let md = r##"
Text with `ops-worker stats` inline is not a command.

```bash
# a comment line
ops-worker doctor            # trailing comment
TOKEN=$(ops-worker token --role admin)
ops-worker pause P3 && ops-worker resume P3
QUEUE_NAME=e2e ops-worker demo --scenario bugfix --port 8081
curl -fsS -X POST http://localhost:8080/tasks \
  -H "Authorization: Bearer $TOKEN" \
  -d '{"type": "noop", "note": "# not a comment"}'
cat > env.txt <<EOF
ops-worker run
EOF
git merge --no-ff release/ops-worker
curl -fsS https://api.vercel.com/v2/user
ops-worker bench --tasks 20000 --concurrency 8
```

```yaml
ops-worker run
```

```bash
ops-worker vercel-sim --port 4010 &
```
"##;
    let found = commands("sample.md", md);
    let codes: Vec<&str> = found.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(
        codes,
        vec![
            "ops-worker doctor",
            "TOKEN=$(ops-worker token --role admin)",
            "ops-worker pause P3 && ops-worker resume P3",
            "QUEUE_NAME=e2e ops-worker demo --scenario bugfix --port 8081",
            "curl -fsS -X POST http://localhost:8080/tasks -H \"Authorization: Bearer $TOKEN\" -d '{\"type\": \"noop\", \"note\": \"# not a comment\"}'",
            "ops-worker bench --tasks 20000 --concurrency 8",
            "ops-worker vercel-sim --port 4010 &",
        ]
    );
    assert_eq!(found[0].line, 6);
    assert_eq!(found[4].line, 10);
    assert_eq!(invocations(codes[2]).len(), 2);
    let (e, inv) = elsewhere(codes[3]).unwrap();
    assert_eq!(e.prefix, "ops-worker demo --scenario bugfix");
    assert_eq!(inv, "ops-worker demo --scenario bugfix --port 8081");
    let (e, inv) = elsewhere(codes[6]).unwrap();
    assert_eq!(e.prefix, "ops-worker vercel-sim");
    assert_eq!(inv, "ops-worker vercel-sim --port 4010");
    assert!(elsewhere(codes[0]).is_none());
    assert_eq!(
        small_bench(codes[5]).as_deref(),
        Some("ops-worker bench --tasks 200 --concurrency 2")
    );
    assert_eq!(
        small_bench("ops-worker bench --json").as_deref(),
        Some("ops-worker bench --tasks 200 --concurrency 2 --json")
    );
    assert!(small_bench(codes[0]).is_none());
    assert!(mentions("ops-worker show $TASK_ID", "TASK_ID"));
    assert!(!mentions("ops-worker retry $FAILED_TASK_ID", "TASK_ID"));
}
