//! The variable map plus the problems found so far: every section reader takes one and records
//! what is wrong instead of stopping, so a bad configuration is reported all at once.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

/// Reads variables from a map, remembering every name looked up and every problem found.
pub(super) struct Reader<'a> {
    /// The environment (or a test's map), with CLI flags already applied.
    vars: &'a HashMap<String, String>,
    /// `(VARIABLE, what is wrong)`, in the order the variables were read.
    problems: Vec<(String, String)>,
    /// Every variable name looked up, so `Config::variables` can't drift from the code.
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Reader<'a> {
    /// A reader over `vars` with no problems yet.
    pub(super) fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
            read: RefCell::default(),
        }
    }

    /// The trimmed value, or `None` when unset or blank.
    pub(super) fn raw(&self, name: &str) -> Option<&'a str> {
        self.read.borrow_mut().insert(name.to_string());
        self.vars
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// Record that `name` is invalid.
    pub(super) fn problem(&mut self, name: &str, msg: impl Into<String>) {
        self.problems.push((name.to_string(), msg.into()));
    }

    /// The value, or `default` when unset.
    pub(super) fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_string()
    }

    /// A number from `min` to `max` (inclusive); `default` when unset or invalid (recording why).
    pub(super) fn number<T: std::str::FromStr + Copy + PartialOrd + fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problem(name, format!("`{raw}` is not a number from {min} to {max}"));
                default
            }
        }
    }

    /// A duration given in (fractional) seconds, with the same rules as [`Reader::number`].
    pub(super) fn seconds(&mut self, name: &str, default: f64, min: f64, max: f64) -> Duration {
        Duration::from_secs_f64(self.number(name, default, min, max))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`); `default` when unset or invalid.
    pub(super) fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.raw(name).map(str::to_ascii_lowercase) {
            None => default,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no") => false,
            Some(_) => {
                self.problem(name, "must be true or false");
                default
            }
        }
    }

    /// A duration as seconds or with a unit (`90`, `30s`, `15m`, `24h`, `30d`), from 1 s to `max`.
    pub(super) fn duration(&mut self, name: &str, default: Duration, max: Duration) -> Duration {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (num, unit) = raw.split_at(split);
        let mult = match unit.trim() {
            "" | "s" => Some(1u64),
            "m" => Some(60),
            "h" => Some(3_600),
            "d" => Some(86_400),
            _ => None,
        };
        match (num.parse::<u64>().ok(), mult) {
            (Some(n), Some(m)) if n > 0 && n.saturating_mul(m) <= max.as_secs() => {
                Duration::from_secs(n * m)
            }
            _ => {
                let days = max.as_secs() / 86_400;
                self.problem(
                    name,
                    format!("`{raw}` is not a duration from 1s to {days}d (e.g. 3600, 12h, 30d)"),
                );
                default
            }
        }
    }

    /// A name made of 1-64 of `A-Z a-z 0-9 - _ .`; `default()` when unset or invalid.
    pub(super) fn name(&mut self, name: &str, default: impl FnOnce() -> String) -> String {
        match self.raw(name) {
            Some(v) if valid_name(v) => v.to_string(),
            Some(_) => {
                self.problem(name, "use 1-64 of A-Z a-z 0-9 - _ .");
                default()
            }
            None => default(),
        }
    }

    /// The problems found and the names read, consuming the reader.
    pub(super) fn finish(self) -> (Vec<(String, String)>, BTreeSet<String>) {
        (self.problems, self.read.take())
    }
}

/// 1-64 of `A-Z a-z 0-9 - _ .`: safe inside Redis keys and log fields.
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
