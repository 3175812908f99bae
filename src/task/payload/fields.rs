//! How payload fields are read: *checked* fields (a non-empty string at the first alias present,
//! or the right type) and *passed-through* ones (the first alias holding a string wins), plus the
//! labels a deployment's `meta` gets.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ValidationError;

/// A checked string: the first alias present (not null) must be a non-empty string.
pub(super) fn str_field<'a>(
    payload: &'a Value,
    names: &[&str],
) -> Result<Option<&'a str>, ValidationError> {
    for name in names {
        match payload.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.trim().is_empty() => return Ok(Some(s.as_str())),
            Some(_) => {
                return Err(ValidationError::new(
                    format!("payload.{name}"),
                    "must be a non-empty string",
                ));
            }
        }
    }
    Ok(None)
}

/// A checked string that must be present; the error names the first alias and lists the others.
pub(super) fn required_str<'a>(
    payload: &'a Value,
    names: &[&str],
) -> Result<&'a str, ValidationError> {
    str_field(payload, names)?.ok_or_else(|| {
        ValidationError::new(
            format!("payload.{}", names[0]),
            if names.len() > 1 {
                format!("is required (or one of: {})", names[1..].join(", "))
            } else {
                "is required".to_string()
            },
        )
    })
}

pub(super) fn optional_bool(payload: &Value, name: &str) -> Result<bool, ValidationError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ValidationError::new(
            format!("payload.{name}"),
            "must be true or false",
        )),
    }
}

/// A passed-through string: the first alias holding a string (any string), others ignored.
pub(super) fn first_string(payload: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| payload.get(*n).and_then(Value::as_str))
        .map(str::to_string)
}

/// Stringify a scalar for Vercel's string-only `meta`; objects, arrays and null are skipped.
fn meta_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// See [`Build::meta`].
pub(super) fn labels(payload: &Value) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    if let Some(Value::Object(m)) = payload.get("meta") {
        for (k, v) in m {
            if let Some(s) = meta_value(v) {
                meta.insert(k.clone(), s);
            }
        }
    }
    for (key, names) in [
        ("pr", &["pr", "pr_number", "prNumber"][..]),
        ("branch", &["branch", "ref"][..]),
        ("commit", &["commit", "sha"][..]),
    ] {
        if let Some(v) = names
            .iter()
            .find_map(|n| payload.get(*n).and_then(meta_value))
        {
            meta.insert(key.into(), v);
        }
    }
    meta
}
