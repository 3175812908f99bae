//! A record through its Redis hash and back, strictly and for display.

use serde_json::json;

use super::*;
use crate::task::NewTask;

#[test]
fn record_round_trips_through_hash_fields() {
    let rec = NewTask {
        task_type: Some("check".into()),
        payload: Some(json!({"deployment_id": "dpl_1"})),
        idempotency_key: Some("k".into()),
        run_at: Some("2030-01-01T00:00:00Z".into()),
        ..Default::default()
    }
    .validate(2, Utc::now())
    .unwrap();
    let mut map: HashMap<String, String> = rec
        .to_fields()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    // The key holds the id (a compact record does not repeat it).
    with_key_id(&mut map, &rec.task_id.to_string());
    let back = TaskRecord::from_fields(&map).unwrap();
    // created_at is stored with millisecond precision.
    assert_eq!(back.task_id, rec.task_id);
    assert_eq!(back.payload, rec.payload);
    assert_eq!(back.run_at, rec.run_at);
    assert_eq!(back.idempotency_key.as_deref(), Some("k"));
}

#[test]
fn decode_names_the_broken_field() {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("task_id".into(), Uuid::new_v4().to_string());
    map.insert("type".into(), "noop".into());
    map.insert("priority".into(), "P1".into());
    map.insert("payload".into(), "{not json".into());
    let e = TaskRecord::from_fields(&map).unwrap_err();
    assert_eq!(e.field, "payload");
    // For display, the same record is shown as stored.
    let shown = TaskRecord::from_fields_lossy(&map);
    assert_eq!(shown.payload, Value::String("{not json".into()));
    assert_eq!(shown.priority, Priority::P1);
    map.insert("type".into(), "launch_missiles".into());
    map.insert("task_id".into(), "garbage-id".into());
    let shown = TaskRecord::from_fields_lossy(&map);
    assert_eq!(shown.task_type, TaskType::Unknown);
    assert!(shown.error.unwrap().contains("garbage-id"));
    assert!(
        "unknown".parse::<TaskType>().is_err(),
        "never accepted at submission"
    );
}

#[test]
fn defaults_are_not_written_and_read_back_as_defaults() {
    let rec = NewTask {
        task_type: Some("noop".into()),
        ..Default::default()
    }
    .validate(2, Utc::now())
    .unwrap();
    let mut map: HashMap<String, String> = rec
        .to_fields()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    // Compact: neither the optionals nor the defaults builds before compact records required.
    for absent in [
        "metadata",
        "run_at",
        "idempotency_key",
        "task_id",
        "payload",
        "attempts",
    ] {
        assert!(
            !map.contains_key(absent),
            "{absent} is not written: {map:?}"
        );
    }
    with_key_id(&mut map, &rec.task_id.to_string());
    let back = TaskRecord::from_fields(&map).unwrap();
    assert_eq!(back, TaskRecord::from_fields_lossy(&map));
    assert_eq!((back.payload, back.metadata), (json!({}), json!({})));
    assert_eq!((back.attempts, back.task_id), (0, rec.task_id));
    // A stored id wins over the key's, so a reader can tell them apart.
    map.insert("task_id".into(), "stored".into());
    with_key_id(&mut map, &rec.task_id.to_string());
    assert_eq!(map["task_id"], "stored");
}
