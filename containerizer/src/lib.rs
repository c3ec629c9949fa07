//! tepui-containerizer owns turning Mesos task and container descriptions into
//! running OCI containers: bundles, the per-pod supervisor that calls
//! libcontainer, cgroups (v1 and v2), namespaces shared inside a pod, image
//! rootfs assembly, and recovery of containers after an agent restart.
//!
//! It must not speak to the master or to executors, nor keep task state: the
//! agent owns task lifecycles and calls this crate through its API.

pub mod atomic;
pub mod cgroups;
pub mod cni;
mod container_path;
pub mod containerizer;
pub mod images;
pub mod paths;
pub mod safe_remove;
pub mod spec;
pub mod supervisor;

pub use container_path::{ContainerPath, ContainerPathError};
pub use containerizer::{
    Containerizer, ContainerizerConfig, ContainerizerError, ImagesConfig, Launched, PtyMaster,
    RecoveredContainer, SessionEnds,
};
pub use paths::RuntimeDir;
