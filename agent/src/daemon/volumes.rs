//! Persistent volumes on this agent: the master's CREATE makes a volume's
//! directory, DESTROY removes it, and a container whose resources hold a
//! volume gets it bind-mounted at `disk.volume.container_path` in its
//! sandbox (Mesos's `Slave::applyOperation`/`syncCheckpointedResources`
//! and the `filesystem/linux` isolator's persistent volume mounts).

use std::path::{Path, PathBuf};

use tepui_containerizer::spec::{Propagation, VolumeMode, VolumeSource, VolumeSpec};
use tepui_proto::v1::Resource;
use tepui_proto::v1::offer::Operation;
use tepui_proto::v1::offer::operation::Type as OpType;
use tepui_proto::v1::volume::Mode;

/// `<work_dir>/volumes/roles/<role>/<persistence id>` (Mesos's
/// `paths::getPersistentVolumePath`: a hierarchical role's `/` becomes a
/// space, which no role may contain). The role and the id are validated
/// before they become path components.
pub fn volume_path(work_dir: &Path, volume: &Resource) -> Result<PathBuf, String> {
    #[allow(deprecated)] // the legacy `role` field of pre-refinement volumes.
    let role = volume
        .reservations
        .last()
        .and_then(|r| r.role.clone())
        .or_else(|| volume.role.clone())
        .ok_or("a persistent volume must be reserved for a role")?;
    tepui_proto::resources::role::validate(&role)
        .map_err(|e| format!("invalid role '{role}' of a persistent volume: {e}"))?;
    let id = volume
        .disk
        .as_ref()
        .and_then(|d| d.persistence.as_ref())
        .map(|p| p.id.clone())
        .ok_or("not a persistent volume")?;
    tepui_proto::ids::check("disk.persistence.id", &id)?;
    Ok(work_dir
        .join("volumes")
        .join("roles")
        .join(role.replace('/', " "))
        .join(id))
}

/// Applies the master's CREATE or DESTROY to the volumes' directories;
/// other operations change nothing on disk. `in_use` says whether a live
/// container has a volume directory mounted: its DESTROY leaves the data
/// (the master refuses it already; this guards a racing launch).
pub fn apply(
    work_dir: &Path,
    op: &Operation,
    in_use: impl Fn(&Path) -> bool,
) -> Result<(), String> {
    let kind = op.r#type.and_then(|t| OpType::try_from(t).ok());
    match kind {
        Some(OpType::Create) => {
            for v in op.create.iter().flat_map(|c| &c.volumes) {
                let dir = volume_path(work_dir, v)?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create volume {}: {e}", dir.display()))?;
                tracing::info!(volume = %dir.display(), "persistent volume created");
            }
        }
        Some(OpType::Destroy) => {
            for v in op.destroy.iter().flat_map(|d| &d.volumes) {
                let dir = volume_path(work_dir, v)?;
                if in_use(&dir) {
                    return Err(format!(
                        "persistent volume {} is in use by a container",
                        dir.display()
                    ));
                }
                tepui_containerizer::safe_remove::remove_tree(&dir)
                    .map_err(|e| format!("cannot remove volume {}: {e}", dir.display()))?;
                tracing::info!(volume = %dir.display(), "persistent volume destroyed");
            }
        }
        _ => {}
    }
    Ok(())
}

/// The bind mounts of the persistent volumes among `resources`, each
/// directory made if missing (an agent that missed the CREATE) and, when
/// the container runs as `owner` (uid, gid) other than root, given to it
/// (the `filesystem/linux` isolator chowns a volume to the sandbox's
/// owner, not recursively). A `container_path` that is not one plain
/// name is skipped as Mesos does (it "contains slash").
pub fn mounts(
    work_dir: &Path,
    resources: &[Resource],
    user: Option<&str>,
) -> Result<Vec<VolumeSpec>, String> {
    let owner = match user {
        Some(user) => {
            let db = tepui_containerizer::spec::UserDb::Files {
                passwd: "/etc/passwd".into(),
                group: "/etc/group".into(),
            };
            let u = tepui_containerizer::spec::resolve_user(user, &db)
                .map_err(|e| format!("the user '{user}' does not exist on this agent: {e}"))?;
            Some((u.uid, u.gid))
        }
        None => None,
    };
    let mut out = Vec::new();
    for r in resources {
        let Some(disk) = r.disk.as_ref() else {
            continue;
        };
        let (Some(_), Some(volume)) = (disk.persistence.as_ref(), disk.volume.as_ref()) else {
            continue;
        };
        let at = &volume.container_path;
        if at.is_empty() || at.contains('/') || at == "." || at == ".." {
            tracing::warn!(container_path = %at, "persistent volume skipped: its container path is not one name");
            continue;
        }
        let dir = volume_path(work_dir, r)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create volume {}: {e}", dir.display()))?;
        if let Some((uid, gid)) = owner.filter(|(uid, _)| *uid != 0)
            && r.shared.is_none()
        {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give volume {} to uid {uid}: {e}", dir.display()))?;
        }
        out.push(VolumeSpec {
            container_path: at.clone(),
            mode: if volume.mode == Mode::Ro as i32 {
                VolumeMode::Ro
            } else {
                VolumeMode::Rw
            },
            source: VolumeSource::HostPath {
                path: dir.to_string_lossy().into_owned(),
                propagation: Propagation::HostToContainer,
            },
        });
    }
    Ok(out)
}

impl super::Agent {
    /// The master's `ApplyOperation`: CREATE/DESTROY on the volumes'
    /// directories. A failure is logged: the master has converted the
    /// resources already and a launch makes a missing directory.
    pub(super) async fn apply_operation(&self, op: &Operation) {
        let work_dir = self.work.root().to_path_buf();
        let state = self.state.lock().await;
        let in_use = |dir: &Path| {
            state.frameworks.values().any(|f| {
                f.executors.values().any(|e| {
                    e.info
                        .resources
                        .iter()
                        .chain(e.tasks.values().flat_map(|t| t.info.resources.iter()))
                        .any(|r| {
                            r.disk.as_ref().is_some_and(|d| d.persistence.is_some())
                                && volume_path(&work_dir, r).is_ok_and(|p| p == dir)
                        })
                })
            })
        };
        if let Err(e) = apply(&work_dir, op, in_use) {
            tracing::error!("cannot apply the master's operation: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::resource::DiskInfo;
    use tepui_proto::v1::resource::disk_info::Persistence;

    fn volume(role: &str, id: &str, at: &str) -> Resource {
        let mut r = tepui_proto::resources::parse_resources(&format!("disk({role}):8"), "*")
            .unwrap()
            .into_vec()
            .remove(0);
        r.disk = Some(DiskInfo {
            persistence: Some(Persistence {
                id: id.into(),
                principal: None,
            }),
            volume: Some(tepui_proto::v1::Volume {
                container_path: at.into(),
                mode: Mode::Rw as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_hierarchical_role_is_one_directory_and_bad_ids_build_no_path() {
        let work = Path::new("/w");
        assert_eq!(
            volume_path(work, &volume("eng/web", "v1", "data")).unwrap(),
            Path::new("/w/volumes/roles/eng web/v1")
        );
        for bad in ["..", "a/b", "."] {
            assert!(
                volume_path(work, &volume("web", bad, "data")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn mounts_make_the_directory_and_skip_paths_that_are_not_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let v = mounts(
            dir.path(),
            &[volume("web", "v1", "data"), volume("web", "v2", "a/b")],
            None,
        )
        .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container_path, "data");
        assert!(dir.path().join("volumes/roles/web/v1").is_dir());
        assert!(!dir.path().join("volumes/roles/web/v2").exists());
    }
}
