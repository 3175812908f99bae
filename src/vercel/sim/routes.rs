//! The simulated Vercel endpoints (deployments, projects, user); faults, auth and the rate limit
//! are applied before these run (see `gate` in the parent module).

use super::bodies::*;
use super::*;

pub(super) fn find_deployment(g: &Inner, key: &str) -> Option<usize> {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key = key.trim_end_matches('/');
    g.deployments
        .iter()
        .position(|d| d.id == key || d.url == key)
}

pub(super) fn find_project(g: &Inner, key: &str) -> Option<usize> {
    g.projects.iter().position(|p| p.id == key || p.name == key)
}

/// Optional string property of the request body; the 400 message names the field if mistyped.
pub(super) fn opt_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("Invalid request: `{key}` should be string.")),
    }
}

/// Check a request `gitSource` (an object with string `type` and `ref`); keep its scalar fields.
pub(super) fn git_source(v: &Value) -> Result<Value, String> {
    let obj = v
        .as_object()
        .filter(|o| o.get("type").is_some_and(Value::is_string));
    let Some(obj) = obj.filter(|o| o.get("ref").is_some_and(Value::is_string)) else {
        let msg = "Invalid request: `gitSource` should be an object with `type` and `ref`.";
        return Err(msg.into());
    };
    let scalar = |v: &&Value| v.is_string() || v.is_number();
    let mut out = Map::new();
    for (k, v) in obj.iter().filter(|(_, v)| scalar(v)) {
        out.insert(k.clone(), v.clone());
    }
    out.entry("sha")
        .or_insert_with(|| json!(random_chars(40, true)));
    Ok(Value::Object(out))
}

pub(super) async fn get_user() -> HttpResponse {
    HttpResponse::Ok().json(json!({"user": {
        "id": USER_ID, "email": EMAIL, "name": "Sim User", "username": USERNAME, "avatar": null,
        "defaultTeamId": null, "createdAt": 1_700_000_000_000_i64, "softBlock": null,
        "billing": null, "resourceConfig": {"concurrentBuilds": 1}, "stagingPrefix": USERNAME,
        "hasTrialAvailable": true,
    }}))
}

/// `name`, `project`, `target`, `gitSource`, `meta`, `deploymentId` of a create request.
pub(super) type CreateArgs = (
    String,
    Option<String>,
    Option<String>,
    Option<Value>,
    Map<String, Value>,
    Option<String>,
);

pub(super) fn create_args(body: &[u8]) -> Result<CreateArgs, String> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err("Invalid request: the body should be a JSON object.".into());
    };
    let name = opt_str(&body, "name")?.filter(|n| !n.trim().is_empty());
    let name = name.ok_or("Invalid request: missing required property `name`.")?;
    let target = opt_str(&body, "target")?;
    if let Some(t) = target
        .as_deref()
        .filter(|t| !matches!(*t, "production" | "preview" | "staging"))
    {
        let msg = format!(
            "Invalid request: `target` should be production, preview or staging, not `{t}`."
        );
        return Err(msg);
    }
    let git = body
        .get("gitSource")
        .filter(|v| !v.is_null())
        .map(git_source)
        .transpose()?;
    let meta = match body.get("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => m.clone(),
        Some(_) => {
            return Err("Invalid request: `meta` should be an object of strings.".into());
        }
    };
    let (project, redeploy) = (opt_str(&body, "project")?, opt_str(&body, "deploymentId")?);
    Ok((name, project, target, git, meta, redeploy))
}

pub(super) async fn create_deployment(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (name, project, mut target, mut git, mut meta, redeploy) = match create_args(&body) {
        Ok(args) => args,
        Err(msg) => return bad_request(msg),
    };
    let now = now_ms();
    let mut g = lock(&state);
    let mut project_key = project.unwrap_or(name);
    let mut source = if git.is_some() { "git" } else { "cli" };
    if let Some(id) = redeploy {
        let Some(i) = find_deployment(&g, &id) else {
            return not_found("Deployment");
        };
        let orig = g.deployments[i].clone();
        project_key = orig.project_id;
        target = target.or(orig.target);
        git = git.or(orig.git_source);
        for (k, v) in orig.meta {
            meta.entry(k).or_insert(v);
        }
        source = "redeploy";
    }
    let pi = find_project(&g, &project_key).unwrap_or_else(|| {
        let id = format!("prj_{}", random_chars(28, false));
        g.projects.push(Project {
            id,
            name: project_key,
            created_ms: now,
            production: None,
        });
        g.projects.len() - 1
    });
    let p = g.projects[pi].clone();
    let d = Deployment {
        id: format!("dpl_{}", random_chars(24, false)),
        url: format!("{}-{}.vercel.app", slug(&p.name), random_chars(9, true)),
        name: p.name.clone(),
        project_id: p.id,
        owner_id: query(&req)
            .remove("teamId")
            .unwrap_or_else(|| USER_ID.into()),
        target: target.filter(|t| t != "preview"),
        git_source: git,
        meta,
        source,
        created_ms: now,
        build_ms: (g.config.build_secs.max(0.0) * 1000.0) as i64,
        fails: p.name.starts_with("error-"),
        canceled_ms: None,
        held_at: g.holding.then_some(now),
        delay_ms: 0,
        site: g.site.clone(),
    };
    *g.created.entry(p.name).or_insert(0) += 1;
    let body = deployment_json(&d, false, now);
    g.deployments.push(d);
    HttpResponse::Ok().json(body)
}

pub(super) async fn get_deployment(state: State, path: web::Path<String>) -> HttpResponse {
    let g = lock(&state);
    let Some(i) = find_deployment(&g, &path) else {
        return not_found("Deployment");
    };
    let d = &g.deployments[i];
    let promoted = g
        .projects
        .iter()
        .any(|p| p.production.as_deref() == Some(&d.id));
    HttpResponse::Ok().json(deployment_json(d, promoted, now_ms()))
}

pub(super) async fn list_deployments(state: State, req: HttpRequest) -> HttpResponse {
    let q = query(&req);
    let mut nums = [("limit", 20), ("since", i64::MIN), ("until", i64::MAX)];
    for (key, value) in nums.iter_mut() {
        if let Some(raw) = q.get(*key) {
            let Ok(n) = raw.parse() else {
                return bad_request(format!("Invalid request: `{key}` should be number."));
            };
            *value = n;
        }
    }
    let [(_, limit), (_, since), (_, until)] = nums;
    let limit = limit.clamp(1, 100) as usize;
    let states: Option<Vec<String>> = q
        .get("state")
        .map(|s| s.split(',').map(|x| x.trim().to_uppercase()).collect());
    let now = now_ms();
    let g = lock(&state);
    let project = q
        .get("projectId")
        .map(|k| find_project(&g, k).map(|i| &g.projects[i].id));
    if project == Some(None) {
        // Vercel's answer for a project that does not exist (yet: a deploy by name creates it).
        return not_found("Project");
    }
    let matching: Vec<&Deployment> = g
        .deployments
        .iter()
        .rev()
        .filter(|d| project.is_none_or(|p| p == Some(&d.project_id)))
        .filter(|d| q.get("app").is_none_or(|a| a == &d.name))
        .filter(|d| {
            q.get("target")
                .is_none_or(|t| d.target.as_deref().unwrap_or("preview") == t)
        })
        .filter(|d| {
            states
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == d.state(now).as_str()))
        })
        .filter(|d| d.created_ms > since && d.created_ms < until)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|d| list_item(d, now))
        .collect();
    let next = (matching.len() > limit).then(|| matching[limit - 1].created_ms);
    let prev = matching.first().map(|d| d.created_ms);
    let pagination = json!({"count": page.len(), "next": next, "prev": prev});
    HttpResponse::Ok().json(json!({"pagination": pagination, "deployments": page}))
}

pub(super) async fn cancel(state: State, path: web::Path<String>) -> HttpResponse {
    let now = now_ms();
    let mut g = lock(&state);
    let Some(i) = find_deployment(&g, &path) else {
        return not_found("Deployment");
    };
    let d = &mut g.deployments[i];
    match d.state(now) {
        ReadyState::Queued | ReadyState::Building => d.canceled_ms = Some(now),
        ReadyState::Canceled => {}
        other => return bad_request(format!("Cannot cancel a deployment that is {other}.")),
    }
    HttpResponse::Ok().json(deployment_json(d, false, now))
}

/// Promote and rollback: point the project's production at a READY deployment; 201, empty body.
pub(super) async fn set_production(
    state: State,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (project, deployment) = path.into_inner();
    let mut g = lock(&state);
    let Some(pi) = find_project(&g, &project) else {
        return not_found("Project");
    };
    let Some(di) = find_deployment(&g, &deployment) else {
        return not_found("Deployment");
    };
    let d = &g.deployments[di];
    if d.project_id != g.projects[pi].id {
        return bad_request("The deployment does not belong to this project.");
    }
    let st = d.state(now_ms());
    if st != ReadyState::Ready {
        let msg = format!(
            "Deployment {} is {st}; only a READY deployment can serve production.",
            d.id
        );
        return error(StatusCode::CONFLICT, "deployment_not_ready", msg);
    }
    let id = d.id.clone();
    g.projects[pi].production = Some(id);
    HttpResponse::Created().finish()
}

pub(super) async fn get_project(state: State, path: web::Path<String>) -> HttpResponse {
    let g = lock(&state);
    let Some(i) = find_project(&g, &path) else {
        return not_found("Project");
    };
    HttpResponse::Ok().json(project_json(&g, &g.projects[i]))
}
