//! Destroying every pod when the agent stops for good (`tepui dev`, whose
//! temporary work dir no later agent recovers). A normal `tepui agent`
//! leaves its pods running for the next agent to recover; this is the
//! exception, the one place the agent ends everything it started.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tepui_containerizer::ContainerPath;

use super::Agent;
use super::state::Phase;

/// How long the pods get to die and be removed before we give up.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(20);

impl Agent {
    /// Kills every container at once (no grace: nobody will look at them
    /// again), then removes each pod: its supervisor, cgroups, runtime dir
    /// and image mounts. Returns the pods that could not be removed.
    pub async fn destroy_all_pods(self: &Arc<Self>) -> Vec<String> {
        // Executors still launching see this and destroy their container
        // themselves once it exists (`launch_executor`).
        {
            let mut state = self.state.lock().await;
            for framework in state.frameworks.values_mut() {
                for executor in framework.executors.values_mut() {
                    executor.phase = Phase::Terminating;
                }
            }
        }
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        loop {
            let pods: BTreeSet<String> = self
                .containerizer
                .list()
                .await
                .into_iter()
                .map(|c| c.container.pod().to_string())
                .collect();
            // An executor still launching has no pod to list yet; one whose
            // end is not handled yet still has its watcher running.
            let launching = !self.state.lock().await.containers.is_empty();
            if pods.is_empty() && !launching {
                return Vec::new();
            }
            if Instant::now() >= deadline {
                return pods.into_iter().collect();
            }
            for pod in &pods {
                let Ok(id) = ContainerPath::new(vec![pod.clone()]) else {
                    continue;
                };
                tracing::info!(pod = %pod, "destroying the pod");
                // Each step may race the executor's watcher, which removes
                // the pod itself once it sees the end: errors are expected,
                // the next round looks again.
                let _ = self.containerizer.kill(&id, Duration::ZERO).await;
                let waited = tokio::time::timeout(
                    deadline.saturating_duration_since(Instant::now()),
                    self.containerizer.wait(&id),
                )
                .await;
                if matches!(waited, Ok(Ok(_)))
                    && let Err(e) = self.containerizer.remove(&id).await
                {
                    tracing::debug!(pod = %pod, "{e}");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
