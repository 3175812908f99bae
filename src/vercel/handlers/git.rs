//! Where a deployment builds from: the `gitSource` shapes of POST /v13/deployments, made from a
//! payload's `repo` or from the repository linked to the project.

use serde_json::{Value, json};

use super::{TaskError, VercelApi, lookup};
use crate::task::Build;
use crate::vercel::client::requests;

/// The source a payload names: its `gitSource` as given, else `repo: "org/name"` plus a git ref
/// (and optional commit) as a GitHub source.
pub(super) fn payload_git_source(build: &Build) -> Option<Value> {
    if let Some(g) = &build.git_source {
        return Some(g.clone());
    }
    let repo = build.repo.as_ref()?;
    let git_ref = build.git_ref.as_ref()?;
    let mut g = json!({"type": "github", "org": repo.org, "repo": repo.name, "ref": git_ref});
    if let Some(sha) = &build.commit {
        g["sha"] = json!(sha);
    }
    Some(g)
}

/// The `gitSource` for the repository linked to `project` (None when it has no link or does not
/// exist yet: a 404 from `/v9/projects/{project}` is not an error).
pub(super) async fn linked_git_source(
    api: &VercelApi,
    project: &str,
    git_ref: Option<String>,
) -> Result<Option<Value>, TaskError> {
    let Some(project) = lookup::<Value>(api, requests::get_project(project)).await? else {
        return Ok(None);
    };
    Ok(git_source_from_link(&project["link"], git_ref))
}

/// Map a project's `link` to the matching `gitSource` shape of POST /v13/deployments, building
/// `git_ref`, else the link's production branch, else `main`.
pub fn git_source_from_link(link: &Value, git_ref: Option<String>) -> Option<Value> {
    let kind = link.get("type")?.as_str()?;
    let git_ref = git_ref
        .or_else(|| link.get("productionBranch")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "main".into());
    match kind {
        "github" | "github-limited" | "github-custom-host" => github_link(kind, link, git_ref),
        "gitlab" => {
            Some(json!({"type": "gitlab", "ref": git_ref, "projectId": link.get("projectId")?}))
        }
        "bitbucket" => Some(json!({"type": "bitbucket", "ref": git_ref,
                                   "workspaceUuid": link.get("workspaceUuid")?,
                                   "repoUuid": link.get("uuid")?})),
        _ => None,
    }
}

/// A GitHub link: by `repoId` when Vercel knows it, else by `org` and `repo`.
fn github_link(kind: &str, link: &Value, git_ref: String) -> Option<Value> {
    let kind = if kind == "github-custom-host" {
        "github"
    } else {
        kind
    };
    match link.get("repoId").filter(|v| !v.is_null()) {
        Some(id) => Some(json!({"type": kind, "ref": git_ref, "repoId": id})),
        None => Some(json!({"type": kind, "ref": git_ref,
                            "org": link.get("org")?, "repo": link.get("repo")?})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Payload, TaskType};

    fn build(payload: Value) -> Build {
        match Payload::parse(TaskType::Deploy, &payload) {
            Ok(Payload::Deploy(d)) => d.build,
            other => panic!("not a deploy: {other:?}"),
        }
    }

    #[test]
    fn linked_repositories_become_git_sources() {
        let gh = json!({"type": "github", "repoId": 123, "productionBranch": "main", "org": "o", "repo": "r"});
        assert_eq!(
            git_source_from_link(&gh, None),
            Some(json!({"type": "github", "ref": "main", "repoId": 123}))
        );
        let by_name =
            json!({"type": "github-custom-host", "repoId": null, "org": "o", "repo": "r"});
        assert_eq!(
            git_source_from_link(&by_name, Some("dev".into())),
            Some(json!({"type": "github", "ref": "dev", "org": "o", "repo": "r"}))
        );
        let gl = json!({"type": "gitlab", "projectId": "9", "productionBranch": "prod"});
        assert_eq!(
            git_source_from_link(&gl, Some("fix".into())),
            Some(json!({"type": "gitlab", "ref": "fix", "projectId": "9"}))
        );
        let bb = json!({"type": "bitbucket", "workspaceUuid": "w", "uuid": "u"});
        assert_eq!(
            git_source_from_link(&bb, None),
            Some(
                json!({"type": "bitbucket", "ref": "main", "workspaceUuid": "w", "repoUuid": "u"})
            )
        );
        assert_eq!(git_source_from_link(&json!({"type": "svn"}), None), None);
        assert_eq!(git_source_from_link(&Value::Null, None), None);
    }

    #[test]
    fn payload_source_is_git_source_else_repo_and_ref() {
        let given = json!({"type": "gitlab", "ref": "x", "projectId": 1});
        let b = build(json!({"project": "p", "gitSource": given, "repo": "a/b", "branch": "m"}));
        assert_eq!(payload_git_source(&b), Some(given));
        let b = build(json!({"project": "p", "repo": "a/b", "ref": "m"}));
        assert_eq!(
            payload_git_source(&b),
            Some(json!({"type": "github", "org": "a", "repo": "b", "ref": "m"}))
        );
        assert_eq!(
            payload_git_source(&build(json!({"project": "p", "repo": "a/b"}))),
            None
        );
        assert_eq!(
            payload_git_source(&build(json!({"project": "p", "branch": "m"}))),
            None
        );
    }
}
