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
    assert_eq!(c.redis.url.to_string(), "redis://***@h:1/0");
}

#[test]
fn metrics_port_is_optional_and_differs_from_port() {
    let c = Config::from_vars(&vars(&[]), Mode::Tool).unwrap();
    assert_eq!(c.metrics_port, None);
    let c = Config::from_vars(&vars(&[("METRICS_PORT", "9100")]), Mode::Tool).unwrap();
    assert_eq!(c.metrics_port, Some(9100));
    let c = Config::from_vars(&vars(&[("PORT", "0"), ("METRICS_PORT", "0")]), Mode::Tool).unwrap();
    assert_eq!(c.metrics_port, Some(0));
    for (port, metrics) in [("8080", "8080"), ("9100", "9100")] {
        let err = Config::from_vars(
            &vars(&[("PORT", port), ("METRICS_PORT", metrics)]),
            Mode::Tool,
        )
        .unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|(v, m)| v == "METRICS_PORT" && m.contains("differ")),
            "{err:?}"
        );
    }
    let err = Config::from_vars(&vars(&[("METRICS_PORT", "70000")]), Mode::Tool).unwrap_err();
    assert!(
        err.problems.iter().any(|(v, _)| v == "METRICS_PORT"),
        "{err:?}"
    );
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
    assert_eq!(all.len(), 45, "{all:?}");
}

#[test]
fn redis_tls_options_need_rediss_and_readable_pem_files() {
    let dir = std::env::temp_dir().join(format!("ops-worker-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key = dir.join("client.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let not_pem = dir.join("notes.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let path = |p: &std::path::Path| p.display().to_string();

    let plain = Config::from_vars(&vars(&[]), Mode::Tool).unwrap();
    assert!(plain.redis.tls.is_none());
    let c = Config::from_vars(
        &vars(&[
            ("REDIS_URL", "rediss://u:p@h:6380"),
            ("REDIS_CA_FILE", &path(&pem)),
            ("REDIS_CLIENT_CERT", &path(&pem)),
            ("REDIS_CLIENT_KEY", &path(&key)),
        ]),
        Mode::Tool,
    )
    .unwrap();
    let tls = c.redis.tls.as_ref().expect("rediss:// has TLS settings");
    assert!(tls.ca.is_some() && tls.client.is_some() && !tls.insecure);
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("c2VjcmV0LWtleQ") && !debug.contains(":p@"),
        "{debug}"
    );

    let problems = problem_names;
    let tls_url = ("REDIS_URL", "rediss://h:6380");
    assert_eq!(
        problems(&[("REDIS_TLS_INSECURE", "true")]),
        ["REDIS_TLS_INSECURE"]
    );
    assert_eq!(
        problems(&[tls_url, ("REDIS_CA_FILE", &path(&not_pem))]),
        ["REDIS_CA_FILE"]
    );
    assert_eq!(
        problems(&[tls_url, ("REDIS_CA_FILE", "/nonexistent.pem")]),
        ["REDIS_CA_FILE"]
    );
    assert_eq!(
        problems(&[tls_url, ("REDIS_CLIENT_KEY", &path(&key))]),
        ["REDIS_CLIENT_CERT"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sentinels_need_a_master_name_and_host_port_pairs() {
    let c = Config::from_vars(
        &vars(&[
            ("REDIS_SENTINELS", "10.0.0.1:26379, s2.internal:26380"),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
        ]),
        Mode::Tool,
    )
    .unwrap();
    let s = c.redis.sentinel().unwrap();
    assert_eq!(s.master, "mymaster");
    assert_eq!(
        s.nodes,
        [
            ("10.0.0.1".to_string(), 26379),
            ("s2.internal".to_string(), 26380)
        ]
    );
    assert_eq!(c.redis.topology.name(), "sentinel");
    let problems = problem_names;
    assert_eq!(
        problems(&[("REDIS_SENTINELS", "h:1")]),
        ["REDIS_SENTINEL_MASTER"]
    );
    assert_eq!(
        problems(&[("REDIS_SENTINEL_MASTER", "m")]),
        ["REDIS_SENTINELS"]
    );
    for bad in ["h", "h:0", ":1", "h:x", "h:1,"] {
        let v = [("REDIS_SENTINELS", bad), ("REDIS_SENTINEL_MASTER", "m")];
        assert_eq!(problems(&v), ["REDIS_SENTINELS"], "{bad}");
    }
}

/// The variables a configuration of `v` is refused for.
fn problem_names(v: &[(&str, &str)]) -> Vec<String> {
    Config::from_vars(&vars(v), Mode::Tool)
        .unwrap_err()
        .problems
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn cluster_nodes_are_host_port_pairs_and_exclude_sentinel() {
    let c = Config::from_vars(
        &vars(&[("REDIS_CLUSTER_NODES", "10.0.0.1:7000, [::1]:7001")]),
        Mode::Tool,
    )
    .unwrap();
    assert_eq!(
        c.redis.topology,
        Topology::Cluster(vec![("10.0.0.1".into(), 7000), ("::1".into(), 7001)])
    );
    assert_eq!(c.redis.topology.name(), "cluster");
    let problems = problem_names;
    for bad in ["h", "h:0", "h:1,", ":7000"] {
        assert_eq!(
            problems(&[("REDIS_CLUSTER_NODES", bad)]),
            ["REDIS_CLUSTER_NODES"],
            "{bad}"
        );
    }
    assert_eq!(
        problems(&[
            ("REDIS_CLUSTER_NODES", "h:7000"),
            ("REDIS_URL", "redis://h:7000/2"),
        ]),
        ["REDIS_URL"]
    );
    assert_eq!(
        problems(&[
            ("REDIS_CLUSTER_NODES", "h:7000"),
            ("REDIS_SENTINELS", "h:26379"),
            ("REDIS_SENTINEL_MASTER", "m"),
        ]),
        ["REDIS_SENTINELS", "REDIS_CLUSTER_NODES"]
    );
}
