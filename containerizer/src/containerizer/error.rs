use std::path::PathBuf;

use crate::ContainerPath;
use crate::cgroups::{CgroupError, LimitsError};
use crate::spec::SpecError;
use crate::supervisor::SupervisorError;

/// Why a containerizer call failed. Every variant names the container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    #[error("container {container}: {source}")]
    Spec {
        container: ContainerPath,
        #[source]
        source: SpecError,
    },
    #[error("container {container}: {source}")]
    Limits {
        container: ContainerPath,
        #[source]
        source: LimitsError,
    },
    #[error("container {container}: {source}")]
    Cgroup {
        container: ContainerPath,
        #[source]
        source: CgroupError,
    },
    #[error("container {container}: {source}")]
    Supervisor {
        container: ContainerPath,
        #[source]
        source: SupervisorError,
    },
    /// The supervisor refused or failed the launch; `message` says why
    /// (a missing executable, an unknown user, a volume escaping the
    /// sandbox, ...).
    #[error("{message}")]
    Launch {
        container: ContainerPath,
        message: String,
    },
    /// Pulling or provisioning the container's image failed.
    /// `message` names the image (see `Containerizer::provision`).
    #[error("{message}")]
    Image {
        container: ContainerPath,
        image: String,
        message: String,
    },
    /// PRUNE_IMAGES failed (or images are not enabled).
    #[error("pruning images: {0}")]
    PruneImages(String),
    #[error("unknown container {0}")]
    Unknown(ContainerPath),
    #[error("container {0} already exists")]
    AlreadyExists(ContainerPath),
    #[error("cannot launch {container}: its parent {parent} is not running")]
    ParentNotRunning {
        container: ContainerPath,
        parent: ContainerPath,
    },
    #[error(
        "cannot launch {container}: pod {pod} runs its tasks with share_cgroups={pod_value}, and all tasks of one executor must use the same value"
    )]
    ShareCgroupsMismatch {
        container: ContainerPath,
        pod: String,
        pod_value: bool,
    },
    #[error("cannot launch {container}: its rootfs {} does not exist", rootfs.display())]
    MissingRootfs {
        container: ContainerPath,
        rootfs: PathBuf,
    },
    #[error("container {container}: {what} {}: {source}", path.display())]
    Io {
        container: ContainerPath,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the containerizer cannot start: {0}")]
    Setup(String),
}
