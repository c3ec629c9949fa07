//! Where pods and their supervisors sit in the cgroup tree.
//!
//! Two placements:
//! - **Systemd scopes** (cgroup v2 with systemd as PID 1, the production
//!   case): each pod is its own transient scope unit
//!   `tepui-pod-<pod>.scope` in `tepui.slice`, with `Delegate=yes`, created
//!   by starting the pod's supervisor through `systemd-run --scope` (the
//!   supervisor is the scope's first process). Inside the delegated scope
//!   `S` the agent moves the supervisor into the leaf `S/@supervisor` and
//!   puts the pod's limits on `S/pod`, with one child `S/pod/<container>`
//!   per container. systemd owns `S` itself (it rewrites the unit's own
//!   memory/cpu files on `daemon-reload`), so no limit is kept there; the
//!   subtree below `S` is ours by the delegation contract
//!   (systemd.io/CGROUP_DELEGATION).
//! - **Standalone** (v1, v2 without systemd, `--cgroups_systemd=false`):
//!   `<--cgroups_root>/<pod>` from the hierarchy root, as Mesos's
//!   `--cgroups_root` (default `tepui`), the supervisor in
//!   `<pod>/@supervisor` beside the containers.
//!
//! Either way the supervisor is never left in the agent's cgroup, and `@`
//! cannot appear in a container id (`ContainerPath`), so the leaf never
//! collides with a container's cgroup.
//!
//! Why a transient scope per pod and not cgroupfs below the agent's own
//! unit (`<unit>/agent` + `<unit>/pods/<pod>`): tried on Debian 12
//! (systemd 252) in the v2 rig, a unit with `Delegate=yes` and
//! `KillMode=process` whose subtree holds live processes logs "Found
//! left-over process ... in control group while starting unit" for every one
//! of them on each `systemctl restart` (systemd walks the unit's cgroup
//! recursively, delegated or not), and `KillMode=control-group` would kill
//! every pod on a restart. Pods must therefore live in units of their own,
//! which only PID 1 can create. We ask it through the `systemd-run` binary
//! (part of systemd itself; it talks to PID 1 on its private socket as
//! root) rather than a D-Bus client library: no new crate, and systemd-run
//! execs the supervisor in place, so the ready pipe and the sealed binary
//! pass through. Measured in the v2 rig (qemu TCG, where even a plain exec
//! of /bin/true takes 0.3-0.6 s): `systemd-run --scope true` 0.7-1.4 s; a
//! whole top-level launch through the operator API 3.1-3.7 s with scopes
//! against 3.2-5.1 s standalone (five each): the scope's round trip to PID 1
//! is inside the noise of a launch (supervisor start, libcontainer's
//! clone/pivot). A D-Bus client would save the systemd-run exec only.
//! `KillMode` of the agent's unit then does not matter to pods:
//! `systemctl stop tepui-agent` leaves them running, as Mesos's agent does.
//! Under a scope the supervisor's argv[0] is the sealed binary's
//! `/proc/<agent pid>/fd/<n>` (systemd-run cannot set argv[0]); its comm is
//! still `tepui-supervise`.

use std::path::Path;

/// Leaf of a pod's cgroup that holds its supervisor.
pub const SUPERVISOR_LEAF: &str = "@supervisor";
/// The slice every pod scope goes to.
pub const SLICE: &str = "tepui.slice";
/// A pod's scope unit is `<SCOPE_PREFIX><pod><SCOPE_SUFFIX>`.
pub const SCOPE_PREFIX: &str = "tepui-pod-";
pub const SCOPE_SUFFIX: &str = ".scope";
/// Inside a pod scope: the cgroup carrying the pod's limits.
pub const POD_LEAF: &str = "pod";
/// Longest unit name systemd accepts (`UNIT_NAME_MAX`).
const UNIT_NAME_MAX: usize = 255;

/// Where pods go (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `/<root>/<pod>`.
    Standalone { root: String },
    /// `/tepui.slice/tepui-pod-<pod>.scope/pod`.
    SystemdScopes,
}

impl Layout {
    pub fn standalone(cgroups_root: &str) -> Self {
        Layout::Standalone {
            root: cgroups_root.trim_matches('/').to_owned(),
        }
    }

    /// The scope unit of a pod (`None` standalone).
    pub fn scope_unit(&self, pod: &str) -> Option<String> {
        match self {
            Layout::Standalone { .. } => None,
            Layout::SystemdScopes => Some(format!("{SCOPE_PREFIX}{pod}{SCOPE_SUFFIX}")),
        }
    }

    /// Errors when the pod's name cannot become a unit name.
    pub fn check_pod(&self, pod: &str) -> Result<(), String> {
        match self.scope_unit(pod) {
            Some(unit) if unit.len() > UNIT_NAME_MAX => Err(format!(
                "a top-level container id of {} bytes is too long for its systemd scope unit name (at most {} bytes)",
                pod.len(),
                UNIT_NAME_MAX - "tepui-pod-.scope".len()
            )),
            _ => Ok(()),
        }
    }

    /// The cgroup the pod owns as a whole: the scope's, or the pod cgroup.
    pub fn pod_root(&self, pod: &str) -> String {
        match self {
            Layout::Standalone { root } if root.is_empty() => format!("/{pod}"),
            Layout::Standalone { root } => format!("/{root}/{pod}"),
            Layout::SystemdScopes => format!("/{SLICE}/{SCOPE_PREFIX}{pod}{SCOPE_SUFFIX}"),
        }
    }

    /// The cgroup carrying the pod's limits, parent of its containers.
    pub fn pod(&self, pod: &str) -> String {
        match self {
            Layout::Standalone { .. } => self.pod_root(pod),
            Layout::SystemdScopes => format!("{}/{POD_LEAF}", self.pod_root(pod)),
        }
    }

    /// The supervisor's leaf.
    pub fn supervisor(&self, pod: &str) -> String {
        format!("{}/{SUPERVISOR_LEAF}", self.pod_root(pod))
    }

    pub fn describe(&self) -> String {
        match self {
            Layout::Standalone { root } => format!("standalone: pods at /{root}/<pod>"),
            Layout::SystemdScopes => {
                format!("systemd: one delegated scope per pod, /{SLICE}/tepui-pod-<pod>.scope")
            }
        }
    }
}

/// Whether this host can use [`Layout::SystemdScopes`]: systemd is PID 1
/// (`sd_booted()`'s test) and `systemd-run` is installed. Returns the
/// `systemd-run` path.
pub fn systemd_run() -> Option<&'static Path> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    ["/usr/bin/systemd-run", "/bin/systemd-run"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let s = Layout::standalone("/tepui/");
        assert_eq!(s.pod("p1"), "/tepui/p1");
        assert_eq!(s.pod_root("p1"), "/tepui/p1");
        assert_eq!(s.supervisor("p1"), "/tepui/p1/@supervisor");
        assert_eq!(s.scope_unit("p1"), None);
        let d = Layout::SystemdScopes;
        assert_eq!(d.pod_root("p1"), "/tepui.slice/tepui-pod-p1.scope");
        assert_eq!(d.pod("p1"), "/tepui.slice/tepui-pod-p1.scope/pod");
        assert_eq!(
            d.supervisor("p1"),
            "/tepui.slice/tepui-pod-p1.scope/@supervisor"
        );
        assert_eq!(d.scope_unit("p1").as_deref(), Some("tepui-pod-p1.scope"));
        assert!(d.check_pod(&"x".repeat(239)).is_ok());
        let long = d.check_pod(&"x".repeat(240)).unwrap_err();
        assert!(long.contains("too long"), "{long}");
        assert!(s.check_pod(&"x".repeat(255)).is_ok());
    }
}
