//! Parsing payloads: objects only, the type, `noop`, promote, rollback, cancel and check.

use serde_json::json;

use super::*;

pub(super) fn parse(ty: TaskType, payload: Value) -> Result<Payload, ValidationError> {
    Payload::parse(ty, &payload)
}

/// The field and message of a refused payload.
pub(super) fn refused(ty: TaskType, payload: Value) -> (String, String) {
    let e = parse(ty, payload.clone()).expect_err(&format!("{ty} {payload} must be refused"));
    (e.field, e.message)
}

pub(super) fn field(ty: TaskType, payload: Value) -> String {
    refused(ty, payload).0
}

/// The message of a checked string field that is mistyped or blank.
pub(super) const NON_EMPTY: &str = "must be a non-empty string";

#[test]
fn a_payload_must_be_an_object_for_every_type() {
    for ty in TaskType::ALL.into_iter().chain([TaskType::Unknown]) {
        for bad in [json!([1]), json!("x"), json!(3), json!(null)] {
            let (f, m) = refused(ty, bad);
            assert_eq!(
                (f.as_str(), m.as_str()),
                ("payload", "must be a JSON object")
            );
        }
    }
}

#[test]
fn unknown_type_is_refused_on_field_type() {
    let (f, m) = refused(TaskType::Unknown, json!({"project": "p"}));
    assert_eq!((f.as_str(), m.as_str()), ("type", "unknown task type"));
}

#[test]
fn every_variant_reports_its_task_type() {
    let cases = [
        (TaskType::Noop, json!({})),
        (TaskType::Deploy, json!({"project": "p"})),
        (TaskType::Redeploy, json!({"deployment_id": "d"})),
        (
            TaskType::Promote,
            json!({"project": "p", "deployment_id": "d"}),
        ),
        (
            TaskType::Rollback,
            json!({"project": "p", "deployment_id": "d"}),
        ),
        (TaskType::Cancel, json!({"deployment_id": "d"})),
        (TaskType::Check, json!({"deployment_id": "d"})),
    ];
    for (ty, payload) in cases {
        assert_eq!(parse(ty, payload).unwrap().task_type(), ty);
    }
}

#[test]
fn noop_defaults_and_values() {
    assert_eq!(
        parse(TaskType::Noop, json!({})).unwrap(),
        Payload::Noop(Noop::default())
    );
    let p = json!({"sleep_ms": NOOP_MAX_SLEEP_MS, "fail": true, "panic": false});
    assert_eq!(
        parse(TaskType::Noop, p).unwrap(),
        Payload::Noop(Noop {
            sleep_ms: NOOP_MAX_SLEEP_MS,
            fail: true,
            panic: false,
            exit_consumer: false
        })
    );
    let nulls = json!({"sleep_ms": null, "fail": null, "panic": null});
    assert_eq!(
        parse(TaskType::Noop, nulls).unwrap(),
        Payload::Noop(Noop::default())
    );
    let p = parse(TaskType::Noop, json!({"panic": true, "sleep_ms": 0})).unwrap();
    assert_eq!(
        p,
        Payload::Noop(Noop {
            sleep_ms: 0,
            fail: false,
            panic: true,
            exit_consumer: false
        })
    );
}

#[test]
fn noop_errors_name_the_field() {
    let range = format!("must be an integer from 0 to {NOOP_MAX_SLEEP_MS}");
    for bad in [
        json!(-1),
        json!(NOOP_MAX_SLEEP_MS + 1),
        json!(1.5),
        json!("10"),
        json!(true),
    ] {
        let (f, m) = refused(TaskType::Noop, json!({ "sleep_ms": bad }));
        assert_eq!((f, m), ("payload.sleep_ms".to_string(), range.clone()));
    }
    for name in ["fail", "panic"] {
        let (f, m) = refused(TaskType::Noop, json!({ name: "yes" }));
        assert_eq!(
            (f, m.as_str()),
            (format!("payload.{name}"), "must be true or false")
        );
    }
    // sleep_ms is checked before fail, fail before panic.
    let both = json!({"sleep_ms": -1, "fail": 1, "panic": 1});
    assert_eq!(field(TaskType::Noop, both), "payload.sleep_ms");
    assert_eq!(
        field(TaskType::Noop, json!({"fail": 1, "panic": 1})),
        "payload.fail"
    );
}

#[test]
fn promote_needs_project_then_deployment_and_rollback_only_the_project() {
    for (p, d) in [("project", "deployment_id"), ("service", "deploymentId")] {
        let change = ProductionChange {
            project: "web".into(),
            deployment_id: "dpl".into(),
        };
        let body = json!({ p: "web", d: "dpl" });
        assert_eq!(
            parse(TaskType::Promote, body.clone()).unwrap(),
            Payload::Promote(change)
        );
        let back = Rollback {
            project: "web".into(),
            deployment_id: Some("dpl".into()),
        };
        assert_eq!(
            parse(TaskType::Rollback, body).unwrap(),
            Payload::Rollback(back)
        );
    }
    assert_eq!(
        parse(TaskType::Rollback, json!({"project": "web"})).unwrap(),
        Payload::Rollback(Rollback {
            project: "web".into(),
            deployment_id: None
        })
    );
    assert_eq!(
        field(TaskType::Promote, json!({"project": "p"})),
        "payload.deployment_id"
    );
    assert_eq!(
        field(
            TaskType::Rollback,
            json!({"project": "p", "deployment_id": 7})
        ),
        "payload.deployment_id"
    );
    for ty in [TaskType::Promote, TaskType::Rollback] {
        assert_eq!(field(ty, json!({})), "payload.project");
        assert_eq!(field(ty, json!({"deployment_id": "d"})), "payload.project");
        assert_eq!(
            field(ty, json!({"name": 1, "deployment_id": "d"})),
            "payload.name"
        );
    }
}

#[test]
fn cancel_needs_a_deployment_and_echoes_a_project() {
    let p = parse(
        TaskType::Cancel,
        json!({"deploymentId": "d", "name": "web"}),
    )
    .unwrap();
    let want = Cancel {
        deployment_id: "d".into(),
        project: Some("web".into()),
    };
    assert_eq!(p, Payload::Cancel(want));
    assert_eq!(
        field(TaskType::Cancel, json!({"project": "p"})),
        "payload.deployment_id"
    );
    let (f, m) = refused(TaskType::Cancel, json!({"deployment_id": []}));
    assert_eq!(
        (f.as_str(), m.as_str()),
        ("payload.deployment_id", NON_EMPTY)
    );
}

#[test]
fn check_a_deployment_or_the_latest_of_a_project() {
    let p = parse(TaskType::Check, json!({"deploymentId": "d", "project": 5})).unwrap();
    let want = Check::Deployment {
        deployment_id: "d".into(),
        project: None,
    };
    assert_eq!(
        p,
        Payload::Check(want),
        "the project is not checked when a deployment is named"
    );
    for alias in PROJECT_FIELDS {
        let p = parse(
            TaskType::Check,
            json!({ alias: "web", "target": "production" }),
        )
        .unwrap();
        let want = Check::Latest {
            project: "web".into(),
            target: Some("production".into()),
        };
        assert_eq!(p, Payload::Check(want), "{alias}");
    }
    let (f, m) = refused(TaskType::Check, json!({}));
    assert_eq!(
        (f.as_str(), m.as_str()),
        (
            "payload.deployment_id",
            "is required (or payload.project, to check its latest deployment)"
        )
    );
    assert_eq!(
        field(TaskType::Check, json!({"deployment_id": 1, "project": "p"})),
        "payload.deployment_id"
    );
    assert_eq!(
        field(TaskType::Check, json!({"service": ""})),
        "payload.service"
    );
}

#[test]
fn the_changed_project_is_the_same_field_for_every_type_and_none_for_reads() {
    let project = |ty, p: Value| parse(ty, p).unwrap().changed_project().map(str::to_string);
    let web = Some("web".to_string());
    assert_eq!(project(TaskType::Deploy, json!({"project": "web"})), web);
    assert_eq!(project(TaskType::Deploy, json!({"service": "web"})), web);
    assert_eq!(
        project(
            TaskType::Deploy,
            json!({"name": "web", "projectId": "prj_1"})
        ),
        Some("prj_1".to_string()),
        "the first of the project fields, as for the other types"
    );
    let change = json!({"project": "web", "deploymentId": "dpl_1"});
    assert_eq!(project(TaskType::Promote, change.clone()), web);
    assert_eq!(project(TaskType::Rollback, json!({"name": "web"})), web);
    assert_eq!(project(TaskType::Cancel, change.clone()), web);
    assert_eq!(project(TaskType::Redeploy, change.clone()), web);
    let bare = json!({"deploymentId": "dpl_1"});
    assert_eq!(project(TaskType::Cancel, bare.clone()), None);
    assert_eq!(project(TaskType::Redeploy, bare), None);
    assert_eq!(
        project(TaskType::Check, change),
        None,
        "reads are never blocked"
    );
    assert_eq!(project(TaskType::Noop, json!({})), None);
}
