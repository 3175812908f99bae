//! Parsing `deploy` and `redeploy` payloads: every alias, every build field, every error.

use serde_json::json;

use super::tests::{NON_EMPTY, field, parse, refused};
use super::*;

fn deploy(payload: Value) -> Deploy {
    match parse(TaskType::Deploy, payload) {
        Ok(Payload::Deploy(d)) => d,
        other => panic!("not a deploy: {other:?}"),
    }
}

#[test]
fn deploy_name_comes_from_any_project_alias_in_order() {
    for alias in PROJECT_FIELDS {
        assert_eq!(deploy(json!({ alias: "web" })).name, "web", "{alias}");
    }
    let all = json!({"service": "s", "name": "n", "projectId": "i", "project": "p"});
    assert_eq!(deploy(all).name, "p");
    assert_eq!(deploy(json!({"project": null, "service": "s"})).name, "s");
}

#[test]
fn deploy_vercel_project_is_only_project_or_project_id() {
    assert_eq!(
        deploy(json!({"project": "p"})).build.project.as_deref(),
        Some("p")
    );
    let d = deploy(json!({"projectId": "prj_1", "name": "n"}));
    assert_eq!(
        (d.name.as_str(), d.build.project.as_deref()),
        ("prj_1", Some("prj_1"))
    );
    for alias in ["name", "service"] {
        let d = deploy(json!({ alias: "web" }));
        assert_eq!((d.name.as_str(), d.build.project), ("web", None), "{alias}");
    }
}

#[test]
fn deploy_reads_every_build_field() {
    let d = deploy(json!({
        "project": "web", "target": "production", "repo": "acme/web", "branch": "fix/login",
        "commit": "abc123", "pr": 42, "meta": {"team": "core", "n": 7, "ok": true, "x": {"a": 1}},
        "deployment_id": "ignored",
    }));
    let b = d.build;
    assert_eq!(b.target.as_deref(), Some("production"));
    assert_eq!(
        b.repo,
        Some(GitHubRepo {
            org: "acme".into(),
            name: "web".into()
        })
    );
    assert_eq!(
        (b.git_ref.as_deref(), b.commit.as_deref()),
        (Some("fix/login"), Some("abc123"))
    );
    assert_eq!(b.git_source, None);
    let want: BTreeMap<String, String> = [
        ("team", "core"),
        ("n", "7"),
        ("ok", "true"),
        ("pr", "42"),
        ("branch", "fix/login"),
        ("commit", "abc123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(b.meta, want, "objects in meta are dropped");
}

#[test]
fn deploy_label_and_git_aliases() {
    for (alias, value) in [
        ("pr", json!(1)),
        ("pr_number", json!("2")),
        ("prNumber", json!(3)),
    ] {
        let b = deploy(json!({"project": "p", alias: value})).build;
        assert_eq!(b.meta["pr"], value.to_string().trim_matches('"'), "{alias}");
    }
    let b = deploy(json!({"project": "p", "ref": "main", "sha": "f00"})).build;
    assert_eq!(
        (b.git_ref.as_deref(), b.commit.as_deref()),
        (Some("main"), Some("f00"))
    );
    assert_eq!(
        (b.meta["branch"].as_str(), b.meta["commit"].as_str()),
        ("main", "f00")
    );
    // First alias wins; payload labels override the meta object.
    let b =
        deploy(json!({"project": "p", "branch": "a", "ref": "b", "meta": {"branch": "m"}})).build;
    assert_eq!(
        (b.git_ref.as_deref(), b.meta["branch"].as_str()),
        (Some("a"), "a")
    );
    // A numeric branch is a label but not a git ref (only strings are refs).
    let b = deploy(json!({"project": "p", "branch": 7, "ref": "r"})).build;
    assert_eq!(
        (b.git_ref.as_deref(), b.meta["branch"].as_str()),
        (Some("r"), "7")
    );
    // A repo without `/` is not a GitHub repository.
    assert_eq!(
        deploy(json!({"project": "p", "repo": "web"})).build.repo,
        None
    );
}

#[test]
fn deploy_git_source_object_is_kept_and_null_is_absent() {
    let g = json!({"type": "github", "repoId": 1, "ref": "main"});
    assert_eq!(
        deploy(json!({"project": "p", "gitSource": g}))
            .build
            .git_source,
        Some(g)
    );
    assert_eq!(
        deploy(json!({"project": "p", "gitSource": null}))
            .build
            .git_source,
        None
    );
    let preview = deploy(json!({"project": "p", "target": "preview"}))
        .build
        .target;
    assert_eq!(preview.as_deref(), Some("preview"));
}

#[test]
fn deploy_errors_name_the_field() {
    let (f, m) = refused(TaskType::Deploy, json!({}));
    assert_eq!(
        (f.as_str(), m.as_str()),
        (
            "payload.project",
            "is required (or one of: projectId, name, service)"
        )
    );
    for alias in PROJECT_FIELDS {
        for bad in [json!(""), json!("  "), json!(5), json!({})] {
            let (f, m) = refused(TaskType::Deploy, json!({ alias: bad }));
            assert_eq!((f, m.as_str()), (format!("payload.{alias}"), NON_EMPTY));
        }
    }
    let (f, m) = refused(
        TaskType::Deploy,
        json!({"project": "p", "target": "staging"}),
    );
    assert_eq!(
        (f.as_str(), m.as_str()),
        ("payload.target", "must be `production` or `preview`")
    );
    let (f, m) = refused(TaskType::Deploy, json!({"project": "p", "target": 1}));
    assert_eq!((f.as_str(), m.as_str()), ("payload.target", NON_EMPTY));
    let (f, m) = refused(
        TaskType::Deploy,
        json!({"project": "p", "gitSource": "main"}),
    );
    assert_eq!(
        (f.as_str(), m.as_str()),
        ("payload.gitSource", "must be a JSON object")
    );
    for alias in DEPLOYMENT_FIELDS {
        let (f, m) = refused(TaskType::Deploy, json!({"project": "p", alias: 3}));
        assert_eq!((f, m.as_str()), (format!("payload.{alias}"), NON_EMPTY));
    }
    // The first alias present decides, even when a later one is valid.
    let bad_first = json!({"project": 5, "service": "s"});
    assert_eq!(field(TaskType::Deploy, bad_first), "payload.project");
}

fn redeploy(payload: Value) -> Redeploy {
    match parse(TaskType::Redeploy, payload) {
        Ok(Payload::Redeploy(r)) => r,
        other => panic!("not a redeploy: {other:?}"),
    }
}

#[test]
fn redeploy_needs_a_deployment_under_either_alias() {
    for alias in DEPLOYMENT_FIELDS {
        let r = redeploy(json!({ alias: "dpl_1" }));
        assert_eq!(
            (r.deployment_id.as_str(), r.name),
            ("dpl_1", None),
            "{alias}"
        );
    }
    let (f, m) = refused(TaskType::Redeploy, json!({"project": "p"}));
    assert_eq!(
        (f.as_str(), m.as_str()),
        (
            "payload.deployment_id",
            "is required (or one of: deploymentId)"
        )
    );
    let (f, m) = refused(TaskType::Redeploy, json!({"deploymentId": ""}));
    assert_eq!(
        (f.as_str(), m.as_str()),
        ("payload.deploymentId", NON_EMPTY)
    );
}

#[test]
fn redeploy_passes_other_fields_through_unchecked() {
    let r = redeploy(
        json!({"deployment_id": "d", "service": "svc", "target": "staging",
                            "gitSource": "raw", "branch": "b"}),
    );
    assert_eq!(r.name.as_deref(), Some("svc"));
    assert_eq!(r.build.project, None);
    assert_eq!(r.build.target.as_deref(), Some("staging"));
    assert_eq!(r.build.git_source, Some(json!("raw")));
    assert_eq!(r.build.git_ref.as_deref(), Some("b"));
    // A mistyped alias is skipped, as before, instead of refusing the redeploy.
    let r = redeploy(json!({"deployment_id": "d", "project": 5, "name": "n"}));
    assert_eq!((r.name.as_deref(), r.build.project), (Some("n"), None));
}
