//! Process CPU and memory use as a ratio of the container's limits (the deployment guide alerts at
//! 80 %), read from cgroup v2 or v1, falling back to the host's cores and memory when unlimited.

use std::time::Instant;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// CPU cores this process may use: cgroup quota / period, else the host's cores.
pub fn cpu_limit_cores() -> f64 {
    // cgroup v2: "max 100000" or "200000 100000"
    if let Some(v) = read("/sys/fs/cgroup/cpu.max") {
        let mut it = v.split_whitespace();
        if let (Some(q), Some(p)) = (it.next(), it.next())
            && let (Ok(q), Ok(p)) = (q.parse::<f64>(), p.parse::<f64>())
            && q > 0.0
            && p > 0.0
        {
            return q / p;
        }
    }
    // cgroup v1
    if let (Some(q), Some(p)) = (
        read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ) && let (Ok(q), Ok(p)) = (q.parse::<f64>(), p.parse::<f64>())
        && q > 0.0
        && p > 0.0
    {
        return q / p;
    }
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

/// Memory this process may use in bytes: cgroup limit, else the host's total memory.
pub fn memory_limit_bytes() -> f64 {
    let host = read("/proc/meminfo")
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb * 1024.0)
        .unwrap_or(0.0);
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.parse::<f64>().ok());
    match cgroup {
        // v1 reports "unlimited" as a huge number; anything above the host's memory means none.
        Some(limit) if limit > 0.0 && (host == 0.0 || limit < host) => limit,
        _ => host,
    }
}

/// Resident memory of this process in bytes.
pub fn resident_bytes() -> f64 {
    read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb * 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds (user + system) this process has used.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat: fields 14 and 15 are utime and stime in clock ticks (USER_HZ = 100 on
    // Linux). The command name (field 2) may contain spaces, so split after its closing paren.
    read("/proc/self/stat")
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// Samples CPU use between calls.
pub struct UsageSampler {
    /// Previous sample: (wall clock, CPU seconds).
    last: (Instant, f64),
    /// Latest CPU ratio (kept while the window is too short to measure).
    cpu: f64,
    cpu_cores: f64,
    memory_limit: f64,
}

impl Default for UsageSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageSampler {
    pub fn new() -> Self {
        Self {
            last: (Instant::now(), cpu_seconds()),
            cpu: 0.0,
            cpu_cores: cpu_limit_cores(),
            memory_limit: memory_limit_bytes(),
        }
    }

    /// `(cpu ratio, memory ratio)` since the previous sample, each 0..1 of the limit. CPU time is
    /// counted in 10 ms ticks, so a window shorter than a second would be mostly rounding: then the
    /// previous CPU ratio is kept and the window keeps growing.
    pub fn sample(&mut self) -> (f64, f64) {
        let now = (Instant::now(), cpu_seconds());
        let wall = now.0.duration_since(self.last.0).as_secs_f64();
        if wall >= 1.0 && self.cpu_cores > 0.0 {
            self.cpu = ((now.1 - self.last.1) / wall / self.cpu_cores).max(0.0);
            self.last = now;
        }
        let cpu = self.cpu;
        let mem = if self.memory_limit > 0.0 {
            resident_bytes() / self.memory_limit
        } else {
            0.0
        };
        (cpu, mem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_usage_are_sane() {
        assert!(cpu_limit_cores() > 0.0);
        assert!(memory_limit_bytes() > resident_bytes());
        let mut s = UsageSampler::new();
        // A window this short is not measured: the ratio stays at its previous value.
        assert_eq!(s.sample().0, 0.0);
        // Burn CPU for over a second so the ratio is measurable.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_secs_f64() < 1.1 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        assert!(x != 1);
        let (cpu, mem) = s.sample();
        assert!(cpu > 0.05, "a busy thread shows up: {cpu}");
        assert!((0.0..=1.5).contains(&cpu), "cpu ratio {cpu}");
        assert!(mem > 0.0 && mem < 1.0, "memory ratio {mem}");
    }
}
