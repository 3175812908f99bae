//! The queue's atomic steps, one Lua file each under `lua/`, all sharing the `lua/lib.lua` prelude.
//!
//! Each script's body runs as the function `main` between the prelude and an epilogue that writes
//! the outcome counts and events the body recorded ([`EPILOGUE`]), so a script never forgets
//! them, also when its body returns early or raises an error after some writes.
//!
//! `redis::Script` sends `EVALSHA` and falls back to loading the script on `NOSCRIPT`, so a Redis
//! restart (which forgets loaded scripts) needs no special handling.

use redis::Script;

/// Runs the body, then writes its outcome counts and buffered events (`flush_outcomes` and
/// `flush_events` in `lua/lib.lua`); an error of the body is raised again after the counts and
/// events of what it already wrote are out.
const EPILOGUE: &str = "\nend\nlocal ok, r = pcall(main)\nflush_outcomes()\nflush_events()\nif not ok then error(r, 0) end\nreturn r\n";

macro_rules! script {
    ($file:literal) => {
        Script::new(
            &[
                include_str!("lua/lib.lua"),
                "\nlocal function main()\n",
                include_str!(concat!("lua/", $file)),
                EPILOGUE,
            ]
            .concat(),
        )
    };
}

/// Every script the store runs, compiled into the binary.
pub struct Scripts {
    pub enqueue: Script,
    pub claim: Script,
    pub renew: Script,
    pub complete: Script,
    pub fail: Script,
    pub release: Script,
    pub reclaim: Script,
    pub promote: Script,
    pub cancel: Script,
    pub finish_cancel: Script,
    pub recover: Script,
    pub trim: Script,
    pub replay: Script,
    pub stats: Script,
    pub vercel_acquire: Script,
    pub vercel_hold: Script,
    pub set_deployment: Script,
    pub control: Script,
    pub known_good: Script,
    pub schedules: Script,
    pub list: Script,
    pub project_acquire: Script,
    pub throughput: Script,
    pub delete: Script,
    pub release_step: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            enqueue: script!("enqueue.lua"),
            claim: script!("claim.lua"),
            renew: script!("renew.lua"),
            complete: script!("complete.lua"),
            fail: script!("fail.lua"),
            release: script!("release.lua"),
            reclaim: script!("reclaim.lua"),
            promote: script!("promote.lua"),
            cancel: script!("cancel.lua"),
            finish_cancel: script!("finish_cancel.lua"),
            recover: script!("recover.lua"),
            trim: script!("trim.lua"),
            replay: script!("replay.lua"),
            stats: script!("stats.lua"),
            vercel_acquire: script!("vercel_acquire.lua"),
            vercel_hold: script!("vercel_hold.lua"),
            set_deployment: script!("set_deployment.lua"),
            control: script!("control.lua"),
            known_good: script!("known_good.lua"),
            schedules: script!("schedules.lua"),
            list: script!("list.lua"),
            project_acquire: script!("project_acquire.lua"),
            throughput: script!("throughput.lua"),
            delete: script!("delete.lua"),
            release_step: script!("release_step.lua"),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
