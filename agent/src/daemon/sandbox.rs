//! Sandboxes belong to the user their container runs as, mode 0750 (Mesos's
//! `paths::createExecutorDirectory` chowns the run's directory to the
//! executor's user): a task of another user cannot read them, and a task
//! running as `nobody` can write its own.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tepui_containerizer::spec::{UserDb, resolve_user};

/// Creates `dir` (and its parents, owned as they come) and gives it to
/// `user` (the agent's own user when `None`) with mode 0750.
pub fn prepare(dir: &Path, user: Option<&str>) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the sandbox {}: {e}", dir.display()))?;
    if let Some(user) = user {
        let db = UserDb::Files {
            passwd: "/etc/passwd".into(),
            group: "/etc/group".into(),
        };
        let owner = resolve_user(user, &db).map_err(|e| {
            format!("Failed to launch: the user '{user}' does not exist on this agent: {e}")
        })?;
        std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
            .map_err(|e| format!("cannot give the sandbox {} to '{user}': {e}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
        .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))
}

/// Lets `user` pass through `parent` (another user's sandbox holding the
/// user's own nested sandbox, a task group's task running as another user
/// than its executor) by adding the search bit for others: entries there
/// stay unlistable, but readable by a name others can guess (`stdout`).
pub fn let_through(parent: &Path, user: Option<&str>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let uid = match user {
        Some(user) => {
            let db = UserDb::Files {
                passwd: "/etc/passwd".into(),
                group: "/etc/group".into(),
            };
            resolve_user(user, &db).map_err(|e| e.to_string())?.uid
        }
        // SAFETY: geteuid has no preconditions.
        None => unsafe { libc::geteuid() },
    };
    if uid == 0 || uid == meta.uid() || meta.mode() & 0o001 != 0 {
        return Ok(());
    }
    std::fs::set_permissions(
        parent,
        std::fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o001),
    )
    .map_err(|e| {
        format!(
            "cannot open {} to '{}': {e}",
            parent.display(),
            user.unwrap_or("")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_sandbox_is_its_users_with_mode_0750() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("a/b");
        prepare(&sandbox, None).unwrap();
        let meta = std::fs::metadata(&sandbox).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o750);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            prepare(&sandbox, Some("nobody")).unwrap();
            let meta = std::fs::metadata(&sandbox).unwrap();
            assert_ne!(meta.uid(), 0);
        }
        let err = prepare(&sandbox, Some("no-such-user-tepui")).unwrap_err();
        assert!(err.contains("'no-such-user-tepui'"), "{err}");
    }
}
