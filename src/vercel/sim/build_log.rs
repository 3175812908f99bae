//! `GET /v3/deployments/{idOrUrl}/events`: a deployment's build log, derived from its timeline
//! like its state: lines appear as the simulated build reaches them (the first when it is
//! created, the install at BUILDING, the last when it ends). `since` (epoch ms, exclusive) and
//! `limit` page through them, oldest first unless `direction=backward`.

use super::*;

/// The log lines of `d` and when each appears: (offset from creation in ms, stream, text).
fn script(d: &Deployment) -> Vec<(i64, &'static str, String)> {
    let b = d.build_ms;
    let mut lines = vec![
        (
            0,
            "command",
            format!(
                "Running build in Washington, D.C., USA (East) – iad1 for {}",
                d.name
            ),
        ),
        (b / 5, "stdout", "Installing dependencies...".to_string()),
        (b / 2, "stdout", "Running \"npm run build\"".to_string()),
    ];
    if d.fails {
        lines.push((
            b,
            "stderr",
            "Error: Command \"npm run build\" exited with 1".into(),
        ));
    } else {
        lines.push((b, "stdout", "Build Completed in /vercel/output".into()));
    }
    lines
}

/// The events visible now, as Vercel's event objects.
fn visible(d: &Deployment, now: i64) -> Vec<Value> {
    let end = d.canceled_ms.unwrap_or(i64::MAX).min(now);
    let build = format!("bld_{}", d.id.trim_start_matches("dpl_"));
    script(d)
        .into_iter()
        .enumerate()
        .map(|(n, (offset, stream, text))| (n, d.created_ms + offset, stream, text))
        .filter(|(_, at, _, _)| *at <= end)
        .map(|(n, at, stream, text)| {
            json!({
                "created": at, "date": at, "deploymentId": d.id, "id": format!("evt_{}_{n}", d.id),
                "serial": format!("{at}-{n}"), "text": text, "type": stream,
                "info": {"type": "build", "name": build, "entrypoint": "."},
            })
        })
        .collect()
}

pub(super) async fn deployment_events(
    state: State,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let q = query(&req);
    let mut nums = [("since", i64::MIN), ("limit", 100)];
    for (key, value) in nums.iter_mut() {
        if let Some(raw) = q.get(*key) {
            let Ok(n) = raw.parse() else {
                return bad_request(format!("Invalid request: `{key}` should be number."));
            };
            *value = n;
        }
    }
    let [(_, since), (_, limit)] = nums;
    let g = lock(&state);
    let Some(i) = find_deployment(&g, &path) else {
        return not_found("Deployment");
    };
    let mut events: Vec<Value> = visible(&g.deployments[i], now_ms())
        .into_iter()
        .filter(|e| e["created"].as_i64().is_some_and(|c| c > since))
        .collect();
    if q.get("direction").map(String::as_str) == Some("backward") {
        events.reverse();
    }
    events.truncate(limit.clamp(1, 1000) as usize);
    HttpResponse::Ok().json(events)
}
