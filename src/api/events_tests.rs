//! Unit tests of `GET /api/events`: ids, filters, lifetimes, frames.

use super::*;
use serde_json::json;

fn event(name: &str, task: &str) -> StreamEvent {
    StreamEvent {
        event: name.into(),
        task_id: task.into(),
        data: json!({"event": name, "task_id": task}),
    }
}

fn query(kind: Option<&str>, task: Option<&str>) -> EventsQuery {
    EventsQuery {
        after: None,
        kind: kind.map(String::from),
        task: task.map(String::from),
        timeout: None,
    }
}

#[test]
fn ids_compare_as_numbers_not_text() {
    assert!(is_newer("10-0", "9-5"));
    assert!(is_newer("9-10", "9-9"));
    assert!(!is_newer("9-9", "9-9"));
    assert!(is_newer("1-0", "0"));
    assert!(is_newer("9-9:1", "9-9:0"));
    assert!(is_newer("9-9:10", "9-9:9"));
    assert!(!is_newer("9-9:3", "9-9"), "a whole entry covers its events");
    assert!(is_newer("9-10:0", "9-9"));
    assert!(is_newer("9-9", "9-9:63"));
    assert_eq!(parse_id("12"), Some((12, 0, u64::MAX)));
    assert_eq!(parse_id("12-3:4"), Some((12, 3, 4)));
    assert_eq!(parse_id("12-3:"), None);
    assert_eq!(parse_id("12-x"), None);
    assert_eq!(parse_id("-1"), None);
}

#[test]
fn filters_match_prefixes_and_the_task() {
    let f = parse_filter(&query(Some("task.,deploy.succeeded"), Some("abc"))).unwrap();
    assert!(f.matches(&event("task.created", "abc")));
    assert!(f.matches(&event("deploy.succeeded", "abc")));
    assert!(!f.matches(&event("deploy.started", "abc")));
    assert!(!f.matches(&event("task.created", "other")));
    assert!(Filter::default().matches(&event("worker.started", "")));
    for bad in ["", "Task.", "task.,", "a b", &"x".repeat(65)] {
        assert!(parse_filter(&query(Some(bad), None)).is_err(), "{bad:?}");
    }
    assert!(parse_filter(&query(None, Some("no such id"))).is_err());
}

#[test]
fn a_stream_lasts_until_its_timeout_the_token_expiry_or_a_day() {
    let now = chrono::Utc::now().timestamp() as u64;
    let secs = |t, exp| lifetime(t, exp).map(|d| d.as_secs());
    assert_eq!(secs(Some(30), u64::MAX).ok(), Some(30));
    assert_eq!(secs(None, u64::MAX).ok(), Some(TIMEOUT_MAX));
    let left = secs(Some(3600), now + 60).unwrap();
    assert!((58..=60).contains(&left), "{left}");
    assert_eq!(secs(None, now.saturating_sub(5)).ok(), Some(0));
    assert!(secs(Some(0), u64::MAX).is_err());
    assert!(secs(Some(TIMEOUT_MAX + 1), u64::MAX).is_err());
}

#[test]
fn a_frame_is_one_id_one_event_one_data_line() {
    let text = frame("5-1", &event("task.created", "abc"));
    assert_eq!(
        text,
        "id: 5-1\nevent: task.created\ndata: {\"event\":\"task.created\",\"task_id\":\"abc\"}\n\n"
    );
    let mut odd = event("bad\nname", "abc");
    odd.data = serde_json::Value::Null;
    let text = frame("5-2", &odd);
    assert_eq!(text.matches('\n').count(), 4, "{text}");
    assert!(text.contains("event: badname\n"));
}
