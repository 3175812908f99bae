//! Validation of a submitted task: defaults, aliases, and errors that name the field.

use serde_json::json;

use super::*;

fn new(ty: &str, payload: Value) -> NewTask {
    NewTask {
        task_type: Some(ty.into()),
        payload: Some(payload),
        ..Default::default()
    }
}

#[test]
fn guide_deployment_example_is_a_deploy_of_project_test() {
    let rec = new("deployment", json!({"service": "test"}))
        .validate(3, Utc::now())
        .unwrap();
    assert_eq!(rec.task_type, TaskType::Deploy);
    assert_eq!(rec.priority, Priority::P2);
    assert_eq!(rec.max_retries, 3);
}

#[test]
fn errors_name_the_field() {
    let e = new("deploy", json!({}))
        .validate(3, Utc::now())
        .unwrap_err();
    assert_eq!(e.field, "payload.project");
    let e = new("noop", json!({"sleep_ms": -1}))
        .validate(3, Utc::now())
        .unwrap_err();
    assert_eq!(e.field, "payload.sleep_ms");
    let e = NewTask {
        task_type: Some("noop".into()),
        priority: Some("P9".into()),
        ..Default::default()
    }
    .validate(3, Utc::now())
    .unwrap_err();
    assert_eq!(e.field, "priority");
    let e = NewTask::default().validate(3, Utc::now()).unwrap_err();
    assert_eq!(e.field, "type");
    let e = new("promote", json!({"project": "p"}))
        .validate(3, Utc::now())
        .unwrap_err();
    assert_eq!(e.field, "payload.deployment_id");
    let e = new("noop", json!([1])).validate(3, Utc::now()).unwrap_err();
    assert_eq!(e.field, "payload");
}
