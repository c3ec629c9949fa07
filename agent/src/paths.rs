//! Every path of the agent's work directory, in one place (Mesos's
//! `paths.hpp` is the model, and sandboxes sit where Mesos puts them, so
//! tools that browse `.../runs/<container>` keep working).
//!
//! ```text
//! <work_dir>/
//!   meta/
//!     agent.json                          agent id, resources and attributes it registered with
//!     frameworks/<fw>/
//!       framework.json                    FrameworkInfo (checkpointing frameworks only)
//!       executors/<ex>/
//!         executor.json                   ExecutorInfo + kind
//!         runs/<container>/
//!           run.json                      the run: container id, completed marker
//!           tasks/<task>/
//!             task.json                   TaskInfo
//!             updates.jsonl               status updates and acknowledgements, appended
//!   slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/   the sandbox
//!     stdout, stderr                      the executor's output (rotated)
//!     containers/<nested>/                a nested container's sandbox
//!   containers/<container>/               sandbox of a standalone container
//! ```
//!
//! JSON files use Mesos's JSON mapping and are written atomically (temp file,
//! fsync, rename); `updates.jsonl` is appended and fsynced per record.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }

    pub fn agent_file(&self) -> PathBuf {
        self.meta().join("agent.json")
    }

    pub fn frameworks_meta(&self) -> PathBuf {
        self.meta().join("frameworks")
    }

    pub fn framework_meta(&self, fw: &str) -> PathBuf {
        self.frameworks_meta().join(fw)
    }

    pub fn framework_file(&self, fw: &str) -> PathBuf {
        self.framework_meta(fw).join("framework.json")
    }

    pub fn executor_meta(&self, fw: &str, ex: &str) -> PathBuf {
        self.framework_meta(fw).join("executors").join(ex)
    }

    pub fn executor_file(&self, fw: &str, ex: &str) -> PathBuf {
        self.executor_meta(fw, ex).join("executor.json")
    }

    pub fn run_meta(&self, fw: &str, ex: &str, container: &str) -> PathBuf {
        self.executor_meta(fw, ex).join("runs").join(container)
    }

    pub fn run_file(&self, fw: &str, ex: &str, container: &str) -> PathBuf {
        self.run_meta(fw, ex, container).join("run.json")
    }

    pub fn task_meta(&self, fw: &str, ex: &str, container: &str, task: &str) -> PathBuf {
        self.run_meta(fw, ex, container).join("tasks").join(task)
    }

    pub fn task_file(&self, fw: &str, ex: &str, container: &str, task: &str) -> PathBuf {
        self.task_meta(fw, ex, container, task).join("task.json")
    }

    pub fn task_updates(&self, fw: &str, ex: &str, container: &str, task: &str) -> PathBuf {
        self.task_meta(fw, ex, container, task)
            .join("updates.jsonl")
    }

    /// The executor's sandbox (`MESOS_DIRECTORY`).
    pub fn executor_sandbox(&self, agent: &str, fw: &str, ex: &str, container: &str) -> PathBuf {
        self.root
            .join("slaves")
            .join(agent)
            .join("frameworks")
            .join(fw)
            .join("executors")
            .join(ex)
            .join("runs")
            .join(container)
    }

    /// A standalone container's sandbox (operator API `LAUNCH_CONTAINER`
    /// without a parent).
    pub fn standalone_sandbox(&self, container: &str) -> PathBuf {
        self.root.join("containers").join(container)
    }
}

/// A nested container's sandbox, inside its parent's.
pub fn nested_sandbox(parent_sandbox: &Path, leaf: &str) -> PathBuf {
    parent_sandbox.join("containers").join(leaf)
}

/// Ids become path components: refuse anything that could climb out or
/// not fit one component (Mesos's `validateID` rules, shared with the
/// master in `tepui_proto::ids`).
pub fn valid_component(id: &str) -> bool {
    tepui_proto::ids::is_valid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_sit_where_mesos_puts_them() {
        let w = WorkDir::new("/var/lib/tepui");
        assert_eq!(
            w.executor_sandbox("A-S0", "fw", "ex", "c1"),
            Path::new("/var/lib/tepui/slaves/A-S0/frameworks/fw/executors/ex/runs/c1")
        );
        assert_eq!(
            w.task_updates("fw", "ex", "c1", "t"),
            Path::new(
                "/var/lib/tepui/meta/frameworks/fw/executors/ex/runs/c1/tasks/t/updates.jsonl"
            )
        );
        assert_eq!(
            nested_sandbox(Path::new("/s"), "n"),
            Path::new("/s/containers/n")
        );
    }

    proptest::proptest! {
        /// Any id a client sends: a valid one is one path component, right
        /// under its parent; the containerizer's own check agrees or is
        /// stricter. Nothing panics.
        #[test]
        fn ids_never_leave_their_directory(
            id in "[ -~]{0,12}|(\\.\\.?/?){1,3}|[\\x00-\\xff]{0,8}",
            parent in proptest::collection::vec("[ -~]{0,6}", 0..3),
        ) {
            let root = Path::new("/w/containers");
            if valid_component(&id) {
                let joined = root.join(&id);
                proptest::prop_assert_eq!(joined.parent(), Some(root));
                proptest::prop_assert!(!joined.ends_with(".."));
            }
            let mut parts = parent.clone();
            parts.push(id.clone());
            if let Ok(path) = tepui_containerizer::ContainerPath::new(parts) {
                for part in path.parts() {
                    proptest::prop_assert!(valid_component(part), "{part:?}");
                }
            }
        }
    }

    #[test]
    fn ids_that_climb_are_refused() {
        assert!(valid_component("task-1.x"));
        let long = "x".repeat(256);
        for bad in ["", ".", "..", "a/b", "a\0", "a\\b", "a\nb", long.as_str()] {
            assert!(!valid_component(bad), "{bad:?}");
        }
    }
}
