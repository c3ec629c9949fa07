//! Sizing an executor's pod by its live tasks, as Mesos sizes the
//! executor's container: before the executor gets its tasks and whenever a
//! task ends (`Slave::__run`, `Slave::statusUpdate` in src/slave/slave.cpp).
//! With `share_cgroups` the tasks then read the group's whole limit from
//! their first instant (see `Containerizer::size_pod`).

use std::sync::Arc;

use tepui_containerizer::spec::ResourceRequest;
use tepui_containerizer::{ContainerPath, ContainerizerError};
use tepui_proto::v1::TaskInfo;

use super::Agent;
use crate::status_updates::is_terminal;
use crate::task_info::shares_cgroups;

impl Agent {
    /// Tells the containerizer the executor's live tasks. Harmless before
    /// the executor's container exists (it is sized again once launched)
    /// and after it is gone.
    pub(super) async fn size_executor_pod(self: &Arc<Self>, fw: &str, ex: &str) {
        let (container, requests, share) = {
            let state = self.state.lock().await;
            let Some(executor) = state.executor(fw, ex) else {
                return;
            };
            let live: Vec<&TaskInfo> = executor
                .tasks
                .values()
                .filter(|t| !is_terminal(t.state))
                .map(|t| &t.info)
                .collect();
            let requests: Vec<ResourceRequest> = live
                .iter()
                .filter_map(|t| ResourceRequest::from_mesos(&t.resources, &t.limits).ok())
                .collect();
            let share = live.iter().all(|t| shares_cgroups(t));
            (executor.container_id.clone(), requests, share)
        };
        let Ok(top) = ContainerPath::new(vec![container]) else {
            return;
        };
        match self.containerizer.size_pod(&top, requests, share).await {
            Ok(()) | Err(ContainerizerError::Unknown(_)) => {}
            Err(e) => tracing::warn!(
                framework = fw,
                executor = ex,
                "cannot size the executor's pod: {e}"
            ),
        }
    }
}
