//! Task health checks as Mesos's executors run them: COMMAND (a nested
//! container inside the task's container), HTTP (any 2xx/3xx, or the listed
//! statuses) and TCP (a connection), with Mesos's defaults for delay,
//! interval, timeout, grace period and consecutive failures. Tasks share the
//! executor's network namespace, so HTTP and TCP checks reach them on
//! 127.0.0.1.

use std::time::{Duration, Instant};

use tepui_proto::v1::{ContainerId, HealthCheck, agent, health_check};

use super::client::AgentClient;

/// One check's outcome, as the executor acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The first success, or a success after failures: report healthy.
    Healthy,
    /// A failure outside the grace period, below the threshold.
    Unhealthy { failures: u32, message: String },
    /// `consecutive_failures` reached: kill the task.
    Kill { failures: u32, message: String },
}

/// The check's timing with Mesos's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub consecutive_failures: u32,
}

fn secs(value: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(value.unwrap_or(default).max(0.0)).unwrap_or(Duration::ZERO)
}

impl Timing {
    pub fn of(check: &HealthCheck) -> Self {
        Self {
            delay: secs(check.delay_seconds, 15.0),
            interval: secs(check.interval_seconds, 10.0).max(Duration::from_millis(100)),
            timeout: secs(check.timeout_seconds, 20.0).max(Duration::from_millis(100)),
            grace: secs(check.grace_period_seconds, 10.0),
            consecutive_failures: check.consecutive_failures.unwrap_or(3).max(1),
        }
    }
}

/// Mesos's rules for turning results into verdicts: failures during the
/// grace period (until the first success) do not count; only changes are
/// reported, plus the kill.
#[derive(Debug)]
pub struct Tracker {
    timing: Timing,
    started: Instant,
    ever_healthy: bool,
    reported_healthy: Option<bool>,
    failures: u32,
}

impl Tracker {
    pub fn new(timing: Timing, started: Instant) -> Self {
        Self {
            timing,
            started,
            ever_healthy: false,
            reported_healthy: None,
            failures: 0,
        }
    }

    pub fn record(&mut self, now: Instant, result: Result<(), String>) -> Option<Verdict> {
        match result {
            Ok(()) => {
                self.ever_healthy = true;
                self.failures = 0;
                if self.reported_healthy == Some(true) {
                    return None;
                }
                self.reported_healthy = Some(true);
                Some(Verdict::Healthy)
            }
            Err(message) => {
                let in_grace =
                    !self.ever_healthy && now.duration_since(self.started) < self.timing.grace;
                if in_grace {
                    return None;
                }
                self.failures += 1;
                if self.failures >= self.timing.consecutive_failures {
                    return Some(Verdict::Kill {
                        failures: self.failures,
                        message,
                    });
                }
                if self.reported_healthy == Some(false) {
                    return None;
                }
                self.reported_healthy = Some(false);
                Some(Verdict::Unhealthy {
                    failures: self.failures,
                    message,
                })
            }
        }
    }
}

/// Runs one check; `Err` says why it failed.
pub async fn check_once(
    client: &AgentClient,
    check: &HealthCheck,
    task_container: &ContainerId,
    timeout: Duration,
) -> Result<(), String> {
    use health_check::Type;
    let kind = check.r#type.and_then(|t| Type::try_from(t).ok());
    match kind {
        Some(Type::Http) => {
            let http = check.http.as_ref().ok_or("an HTTP check needs 'http'")?;
            let scheme = http.scheme.clone().unwrap_or_else(|| "http".into());
            let path = http.path.clone().unwrap_or_else(|| "/".into());
            let url = format!("{scheme}://127.0.0.1:{}{path}", http.port);
            let response = reqwest::Client::new()
                .get(&url)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = u32::from(response.status().as_u16());
            let ok = if http.statuses.is_empty() {
                (200..400).contains(&status)
            } else {
                http.statuses.contains(&status)
            };
            if ok {
                Ok(())
            } else {
                Err(format!("GET {url} answered {status}"))
            }
        }
        Some(Type::Tcp) => {
            let tcp = check.tcp.as_ref().ok_or("a TCP check needs 'tcp'")?;
            let address = format!("127.0.0.1:{}", tcp.port);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connecting to {address}: {e}")),
                Err(_) => Err(format!(
                    "connecting to {address}: no answer within {timeout:?}"
                )),
            }
        }
        Some(Type::Command) => {
            let command = check
                .command
                .clone()
                .ok_or("a COMMAND check needs 'command'")?;
            command_check(client, command, task_container, timeout).await
        }
        Some(Type::Unknown) | None => Err("a health check without a known 'type'".into()),
    }
}

/// A COMMAND check: a nested container inside the task's container, waited
/// for up to `timeout`, then removed.
async fn command_check(
    client: &AgentClient,
    command: tepui_proto::v1::CommandInfo,
    task_container: &ContainerId,
    timeout: Duration,
) -> Result<(), String> {
    let id = ContainerId {
        value: format!("check-{}", uuid::Uuid::new_v4()),
        parent: Some(Box::new(task_container.clone())),
    };
    let launch = agent::Call {
        r#type: Some(agent::call::Type::LaunchContainer as i32),
        launch_container: Some(agent::call::LaunchContainer {
            container_id: id.clone(),
            command: Some(command),
            ..Default::default()
        }),
        ..Default::default()
    };
    client
        .operator(&launch, "LAUNCH_CONTAINER")
        .await
        .map_err(|e| format!("cannot start the check: {e}"))?;
    let wait = agent::Call {
        r#type: Some(agent::call::Type::WaitContainer as i32),
        wait_container: Some(agent::call::WaitContainer {
            container_id: id.clone(),
        }),
        ..Default::default()
    };
    let outcome = tokio::time::timeout(timeout, client.operator(&wait, "WAIT_CONTAINER")).await;
    let result = match outcome {
        Ok(Ok(response)) => {
            let status = response
                .wait_container
                .and_then(|w| w.exit_status)
                .unwrap_or(-1);
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(())
            } else if libc::WIFEXITED(status) {
                Err(format!(
                    "the check command exited with status {}",
                    libc::WEXITSTATUS(status)
                ))
            } else {
                Err(format!(
                    "the check command was killed by signal {}",
                    libc::WTERMSIG(status)
                ))
            }
        }
        Ok(Err(e)) => Err(format!("cannot wait for the check: {e}")),
        Err(_) => {
            let kill = agent::Call {
                r#type: Some(agent::call::Type::KillContainer as i32),
                kill_container: Some(agent::call::KillContainer {
                    container_id: id.clone(),
                    signal: Some(libc::SIGKILL),
                }),
                ..Default::default()
            };
            let _ = client.operator(&kill, "KILL_CONTAINER").await;
            let _ = client.operator(&wait, "WAIT_CONTAINER").await;
            Err(format!(
                "the check command did not finish within {timeout:?}"
            ))
        }
    };
    let remove = agent::Call {
        r#type: Some(agent::call::Type::RemoveContainer as i32),
        remove_container: Some(agent::call::RemoveContainer { container_id: id }),
        ..Default::default()
    };
    let _ = client.operator(&remove, "REMOVE_CONTAINER").await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            consecutive_failures: 3,
        }
    }

    #[test]
    fn defaults_are_mesoss() {
        let t = Timing::of(&HealthCheck::default());
        assert_eq!(t.delay, Duration::from_secs(15));
        assert_eq!(t.interval, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(20));
        assert_eq!(t.grace, Duration::from_secs(10));
        assert_eq!(t.consecutive_failures, 3);
    }

    #[test]
    fn failures_in_the_grace_period_do_not_count_until_the_first_success() {
        let start = Instant::now();
        let mut tracker = Tracker::new(timing(), start);
        let fail = || Err("down".to_string());
        assert_eq!(tracker.record(start + Duration::from_secs(1), fail()), None);
        assert_eq!(tracker.record(start + Duration::from_secs(2), fail()), None);
        assert_eq!(
            tracker.record(start + Duration::from_secs(3), Ok(())),
            Some(Verdict::Healthy)
        );
        assert_eq!(tracker.record(start + Duration::from_secs(4), Ok(())), None);
        // After the first success, failures count even inside the grace.
        assert!(matches!(
            tracker.record(start + Duration::from_secs(5), fail()),
            Some(Verdict::Unhealthy { failures: 1, .. })
        ));
        assert_eq!(tracker.record(start + Duration::from_secs(6), fail()), None);
        assert!(matches!(
            tracker.record(start + Duration::from_secs(7), fail()),
            Some(Verdict::Kill { failures: 3, .. })
        ));
    }

    #[test]
    fn a_task_never_healthy_is_killed_after_the_grace_period() {
        let start = Instant::now();
        let mut tracker = Tracker::new(timing(), start);
        let fail = || Err("down".to_string());
        assert_eq!(tracker.record(start + Duration::from_secs(9), fail()), None);
        assert!(matches!(
            tracker.record(start + Duration::from_secs(11), fail()),
            Some(Verdict::Unhealthy { failures: 1, .. })
        ));
        tracker.record(start + Duration::from_secs(12), fail());
        assert!(matches!(
            tracker.record(start + Duration::from_secs(13), fail()),
            Some(Verdict::Kill { .. })
        ));
    }
}
