//! Facts read off a `TaskInfo` that both the daemon and the built-in
//! executors need.

use tepui_proto::v1::TaskInfo;

/// `container.linux_info.share_cgroups`: true unless set to false (Mesos's
/// default).
pub fn shares_cgroups(task: &TaskInfo) -> bool {
    task.container
        .as_ref()
        .and_then(|c| c.linux_info.as_ref())
        .and_then(|l| l.share_cgroups)
        != Some(false)
}
