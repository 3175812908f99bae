//! Unit tests of the configuration reader.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn run_requires_redis_url_and_names_every_bad_variable() {
    let err = Config::from_vars(
        &vars(&[("WORKER_CONCURRENCY", "zero"), ("LOG_FORMAT", "xml")]),
        Mode::Run,
    )
    .unwrap_err();
    let names: Vec<_> = err.problems.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        names,
        [
            "REDIS_URL",
            "WORKER_CONCURRENCY",
            "VERCEL_TOKEN",
            "LOG_FORMAT",
            "JWT_SECRET"
        ]
    );
    assert!(err.to_string().contains("WORKER_CONCURRENCY: `zero`"));
}

#[test]
fn defaults_follow_the_spec() {
    let c = Config::from_vars(
        &vars(&[
            ("REDIS_URL", "redis://h:1"),
            ("VERCEL_TOKEN", "t"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]),
        Mode::Run,
    )
    .unwrap();
    assert_eq!(c.worker.poll_interval, Duration::from_secs(5));
    assert_eq!(c.worker.shutdown_timeout, Duration::from_secs(25));
    assert_eq!(c.queue.lease, Duration::from_secs(30));
    assert_eq!(c.queue.max_retries, 3);
    assert_eq!(c.port, 8080);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.queue.key_base(), "ops:{default}");
    assert_eq!(c.jwt_max_ttl, Duration::from_secs(30 * 86_400));
}

#[test]
fn jwt_max_ttl_is_a_duration_up_to_ten_years() {
    let c = Config::from_vars(&vars(&[("JWT_MAX_TTL", "12h")]), Mode::Tool).unwrap();
    assert_eq!(c.jwt_max_ttl, Duration::from_secs(12 * 3_600));
    for bad in ["0", "forever", "3651d", "-1"] {
        let err = Config::from_vars(&vars(&[("JWT_MAX_TTL", bad)]), Mode::Tool).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{bad}: {err}");
        assert_eq!(err.problems[0].0, "JWT_MAX_TTL", "{bad}");
        assert!(err.problems[0].1.contains("3650d"), "{}", err.problems[0].1);
    }
}

#[test]
fn secrets_never_print() {
    let c = Config::from_vars(
        &vars(&[
            ("REDIS_URL", "redis://:hunter2pw@h:1/0"),
            ("VERCEL_TOKEN", "tok_supersecret"),
            ("JWT_SECRET", "jwt_supersecret_jwt_supersecret_xx"),
            ("SENTRY_DSN", "https://dsnkey_secret@o1.ingest.sentry.io/1"),
        ]),
        Mode::Run,
    )
    .unwrap();
    let dbg = format!("{c:?}");
    for s in [
        "hunter2pw",
        "tok_supersecret",
        "jwt_supersecret",
        "dsnkey_secret",
    ] {
        assert!(!dbg.contains(s), "{s} leaked in {dbg}");
    }
    assert_eq!(c.redis_url.to_string(), "redis://***@h:1/0");
}

#[test]
fn port_zero_means_any_free_port() {
    let c = Config::from_vars(&vars(&[("PORT", "0")]), Mode::Tool).unwrap();
    assert_eq!(c.port, 0);
    let err = Config::from_vars(&vars(&[("PORT", "65536")]), Mode::Tool).unwrap_err();
    assert_eq!(
        err.problems,
        [(
            "PORT".to_string(),
            "`65536` is not a number from 0 to 65535".to_string()
        )]
    );
}

#[test]
fn variables_lists_every_section() {
    let all = Config::variables();
    for v in [
        "REDIS_URL",
        "QUEUE_PREFIX",
        "INSTANCE_ID",
        "VERCEL_TEAM_ID",
        "LOG_FORMAT",
        "SENTRY_DSN",
        "AUTH_TRUST_LOOPBACK",
        "API_BODY_LIMIT_BYTES",
        "JWT_MAX_TTL",
    ] {
        assert!(all.contains(v), "{v} missing from {all:?}");
    }
    assert_eq!(all.len(), 36, "{all:?}");
}
