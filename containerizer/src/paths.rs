//! Every path of the containerizer's runtime directory, in one place (the
//! model is Mesos's `paths.hpp`). The runtime dir is on tmpfs (`/run/tepui` by
//! default): it describes what is running now and does not survive a reboot.
//!
//! ```text
//! <runtime_dir>/
//!   pods/<pod>/                       one per top-level (executor) container
//!     supervisor.sock                 the agent talks to the pod's supervisor here
//!     supervisor.pid                  written once the socket listens
//!     supervisor.log                  the supervisor's own stderr
//!     hostfs/                         the host's `/`, bind-mounted inside the
//!                                     supervisor's private mount namespace; the
//!                                     rootfs of containers without an image
//!     state/                          libcontainer's state root for this pod
//!     containers/<container>/         `<container>` is the leaf ContainerID value;
//!       spec.json                     what the agent asked for (LaunchSpec)
//!       bundle/config.json            nested ones live under their parent's
//!       termination.json              `containers/` directory, like Mesos's
//!       shm/                          its /dev/shm tmpfs (own IPC namespace;
//!                                     mounted in the supervisor's namespace)
//!       containers/<child>/...        runtime dir
//! ```

use std::path::{Path, PathBuf};

use crate::ContainerPath;

/// The runtime directory and everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeDir {
    root: PathBuf,
}

impl RuntimeDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pods(&self) -> PathBuf {
        self.root.join("pods")
    }

    pub fn pod(&self, pod: &str) -> PathBuf {
        self.pods().join(pod)
    }

    pub fn supervisor_socket(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("supervisor.sock")
    }

    pub fn supervisor_pid(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("supervisor.pid")
    }

    pub fn supervisor_log(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("supervisor.log")
    }

    pub fn hostfs(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("hostfs")
    }

    pub fn libcontainer_state(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("state")
    }

    /// The directory of a container: `containers/<a>/containers/<b>/...`.
    pub fn container(&self, id: &ContainerPath) -> PathBuf {
        let mut dir = self.pod(id.pod());
        for part in id.parts() {
            dir.push("containers");
            dir.push(part);
        }
        dir
    }

    pub fn bundle(&self, id: &ContainerPath) -> PathBuf {
        self.container(id).join("bundle")
    }

    /// The `LaunchSpec` the agent asked for (with live resource updates).
    pub fn launch_spec(&self, id: &ContainerPath) -> PathBuf {
        self.container(id).join("spec.json")
    }

    pub fn termination(&self, id: &ContainerPath) -> PathBuf {
        self.container(id).join("termination.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_containers_live_under_their_parents() {
        let rt = RuntimeDir::new("/run/tepui");
        let id = ContainerPath::new(vec!["pod1".into(), "task".into(), "debug".into()]).unwrap();
        assert_eq!(
            rt.container(&id),
            Path::new("/run/tepui/pods/pod1/containers/pod1/containers/task/containers/debug")
        );
        assert_eq!(
            rt.supervisor_socket(id.pod()),
            Path::new("/run/tepui/pods/pod1/supervisor.sock")
        );
    }
}
