//! The simulator's response bodies: deployments, list items and projects shaped like Vercel's
//! (they validate against the OpenAPI subset; see tests/vercel_contract.rs).

use super::*;

/// The full v13 deployment object (create, get, cancel).
pub(super) fn deployment_json(d: &Deployment, promoted: bool, now: i64) -> Value {
    let state = d.state(now);
    let ready = state == ReadyState::Ready;
    let production = d.target.as_deref() == Some("production");
    let alias: Vec<String> = if ready && production {
        vec![format!("{}.vercel.app", slug(&d.name))]
    } else {
        vec![]
    };
    let mut v = json!({
        "id": d.id, "url": d.url, "name": d.name, "projectId": d.project_id, "ownerId": d.owner_id,
        "createdAt": d.created_ms, "bootedAt": d.created_ms, "createdIn": REGION,
        "buildingAt": if state == ReadyState::Queued { d.created_ms } else { d.building_ms() },
        "readyState": state, "status": state, "regions": [REGION], "type": "LAMBDAS", "version": 2,
        "plan": "hobby", "public": false, "target": d.target, "source": d.source, "meta": d.meta,
        "build": {"env": []}, "env": [], "routes": null, "inspectorUrl": d.inspector_url(),
        "isInConcurrentBuildsQueue": false, "isInSystemBuildsQueue": false, "buildSkipped": false,
        "aliasAssigned": ready, "alias": alias, "aliasError": null,
        "creator": {"uid": USER_ID, "username": USERNAME},
        "project": {"id": d.project_id, "name": d.name, "framework": "nextjs"},
        "projectSettings": {"framework": "nextjs", "buildCommand": null, "devCommand": null,
            "installCommand": null, "outputDirectory": null, "commandForIgnoringBuildStep": null},
    });
    let extra = match state {
        ReadyState::Ready if production || promoted => {
            let sub = if promoted { "PROMOTED" } else { "STAGED" };
            json!({"ready": d.done_ms(), "readyStateAt": d.done_ms(),
                "aliasAssignedAt": d.done_ms(), "readySubstate": sub})
        }
        ReadyState::Ready => json!({"ready": d.done_ms(), "readyStateAt": d.done_ms(),
            "aliasAssignedAt": d.done_ms()}),
        ReadyState::Error => json!({"errorCode": "BUILD_FAILED", "errorMessage": BUILD_ERROR,
            "errorStep": "build", "buildErrorAt": d.done_ms(), "readyStateAt": d.done_ms()}),
        ReadyState::Canceled => json!({"canceledAt": d.canceled_ms, "readyStateAt": d.canceled_ms}),
        _ => json!({}),
    };
    merge(&mut v, extra);
    if let Some(g) = &d.git_source {
        merge(&mut v, json!({"gitSource": g}));
    }
    v
}

pub(super) fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// A `GET /v6/deployments` item.
pub(super) fn list_item(d: &Deployment, now: i64) -> Value {
    let state = d.state(now);
    let ready = state == ReadyState::Ready;
    let production = d.target.as_deref() == Some("production");
    let mut v = json!({
        "uid": d.id, "name": d.name, "projectId": d.project_id, "url": d.url,
        "created": d.created_ms, "createdAt": d.created_ms, "state": state, "readyState": state,
        "type": "LAMBDAS", "target": d.target, "source": d.source, "meta": d.meta,
        "inspectorUrl": d.inspector_url(), "aliasAssigned": ready, "aliasError": null,
        "creator": {"uid": USER_ID, "username": USERNAME, "email": EMAIL},
        "isRollbackCandidate": ready && production,
    });
    let extra = match state {
        ReadyState::Queued => json!({}),
        ReadyState::Ready => json!({"buildingAt": d.building_ms(), "ready": d.done_ms()}),
        ReadyState::Error => json!({"buildingAt": d.building_ms(), "errorCode": "BUILD_FAILED",
            "errorMessage": BUILD_ERROR}),
        _ => json!({"buildingAt": d.building_ms()}),
    };
    merge(&mut v, extra);
    v
}

pub(super) fn project_json(g: &Inner, p: &Project) -> Value {
    let mine = g.deployments.iter().filter(|d| d.project_id == p.id);
    let updated = mine.map(|d| d.created_ms).max().unwrap_or(p.created_ms);
    let rc = json!({"functionDefaultRegions": [REGION], "functionDefaultTimeout": 300});
    json!({
        "id": p.id, "name": p.name, "accountId": USER_ID, "createdAt": p.created_ms,
        "updatedAt": updated, "directoryListing": false, "nodeVersion": "22.x",
        "framework": "nextjs", "live": false, "resourceConfig": rc, "defaultResourceConfig": rc,
    })
}

pub(super) fn slug(name: &str) -> String {
    let lower = |c: char| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        }
    };
    name.chars().map(lower).collect()
}
