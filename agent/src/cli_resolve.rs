//! What a task id (or container id) names for the CLI's task verbs (`exec`,
//! `attach`, `logs`, `kill`, `inspect`): the task, *its own* container and
//! its sandbox, on the agent that runs it.
//!
//! The built-in executors launch each task as a nested container of the
//! executor's and name it in every status update
//! (`TaskStatus.container_status.container_id`, with its parent); the agent
//! and the master keep those updates in `Task.statuses`. A custom executor
//! may name none: then, and only then, the executor's container stands in,
//! and the CLI says so. A task the agent has forgotten (its executor ended)
//! is found through the master, and its sandbox under the agent's
//! `--work_dir`, as Mesos's CLI finds it.

use std::io::Write;

use serde_json::json;
use tepui_proto::v1::agent::{Call, call, response};
use tepui_proto::v1::{ContainerId, Task, TaskState};

use crate::cli::{CliError, Client};
use crate::cli_locate::Scope;
use crate::status_updates::is_terminal;

pub type Container = response::get_containers::Container;

/// Every task of an agent's GET_TASKS answer.
pub fn all_tasks(t: &response::GetTasks) -> impl Iterator<Item = &Task> {
    t.pending_tasks
        .iter()
        .chain(&t.queued_tasks)
        .chain(&t.launched_tasks)
        .chain(&t.terminated_tasks)
        .chain(&t.completed_tasks)
}

/// `parent.child` (the operator's way of writing a nested container id).
pub fn container_str(id: &ContainerId) -> String {
    match &id.parent {
        Some(parent) => format!("{}.{}", container_str(parent), id.value),
        None => id.value.clone(),
    }
}

/// The container the task's status updates name (the latest that names one).
pub fn own_container_id(task: &Task) -> Option<ContainerId> {
    task.statuses
        .iter()
        .rev()
        .find_map(|s| s.container_status.as_ref()?.container_id.clone())
}

/// The top-level container of the task's executor.
pub fn executor_container<'a>(containers: &'a [Container], task: &Task) -> Option<&'a Container> {
    containers.iter().find(|c| {
        c.container_id.parent.is_none()
            && c.framework_id.as_ref() == Some(&task.framework_id)
            && c.executor_id.as_ref() == task.executor_id.as_ref()
    })
}

/// The task's own container among `containers` (running ones), and
/// whether the executor's stands in for it (a task whose executor names no
/// container).
pub fn task_container<'a>(
    containers: &'a [Container],
    task: &Task,
) -> (Option<&'a Container>, bool) {
    if let Some(id) = own_container_id(task) {
        return (containers.iter().find(|c| c.container_id == id), false);
    }
    let started = TaskState::try_from(task.state)
        .is_ok_and(|s| s != TaskState::TaskStaging && !is_terminal(s));
    if !started {
        return (None, false);
    }
    let executor = executor_container(containers, task);
    (executor, executor.is_some())
}

/// What an id names.
pub struct Target {
    /// The agent that runs (or ran) it.
    pub agent: Client,
    pub task: Option<Task>,
    /// The task's own container, while it runs.
    pub container: Option<Container>,
    /// The container its status updates name (also once it has ended).
    pub container_id: Option<ContainerId>,
    /// Why `container` is not the task's own (the executor's stands in).
    pub note: Option<String>,
    /// The sandbox, as a path the agent's files API takes.
    pub sandbox: Option<String>,
}

impl Target {
    /// Prints the note, if any, on stderr.
    pub fn warn(&self) {
        if let Some(note) = &self.note {
            let _ = writeln!(std::io::stderr(), "tepui: note: {note}");
        }
    }

    fn terminal(&self) -> bool {
        self.task
            .as_ref()
            .is_some_and(|t| TaskState::try_from(t.state).is_ok_and(is_terminal))
    }

    /// The running container to act on, or why there is none.
    pub fn running(&self, id: &str) -> Result<ContainerId, CliError> {
        if self.terminal() {
            return Err(CliError::NotRunning(id.to_string()));
        }
        self.warn();
        self.container
            .as_ref()
            .map(|c| c.container_id.clone())
            .ok_or_else(|| CliError::NotRunning(id.to_string()))
    }
}

/// Resolves `id` on the scope's agent, else on the agent the master says
/// runs (or ran) it.
pub async fn resolve(scope: &Scope, id: &str) -> Result<Target, CliError> {
    let mut from_master = None;
    let mut agent = match (&scope.agent, &scope.master) {
        (Some(agent), _) => agent.clone(),
        (None, Some(master)) => {
            let (_, task) = master.task(id).await?.ok_or_else(|| {
                CliError::Unknown(format!(
                    "the master at {} knows no such task '{id}'",
                    master.base()
                ))
            })?;
            let address = master.agent_address(&task.agent_id.value).await?;
            from_master = Some(task);
            scope.template.with_address(&address)
        }
        (None, None) => {
            return Err(CliError::Usage(
                "name an agent (--agent) or a master (--master)".into(),
            ));
        }
    };
    let tasks = agent.tasks().await?;
    let containers = agent.containers().await?;
    if let Some(task) = pick(all_tasks(&tasks).filter(|t| t.task_id.value == id), id)? {
        return on_agent(agent, &containers, task.clone()).await;
    }
    if let Some(container) = containers
        .into_iter()
        .find(|c| c.container_id.value == id || container_str(&c.container_id) == id)
    {
        return Ok(Target {
            agent,
            task: None,
            container: Some(container),
            container_id: None,
            note: None,
            sandbox: None,
        });
    }
    // The agent forgets a task once its executor is gone; the master keeps
    // it (completed_tasks), its sandbox stays on the agent.
    if from_master.is_none()
        && let Some(master) = &scope.master
        && let Some((_, task)) = master.task(id).await?
    {
        // A task of another agent than the one named.
        if agent.agent_id().await.ok().as_deref() != Some(task.agent_id.value.as_str()) {
            let address = master.agent_address(&task.agent_id.value).await?;
            agent = scope.template.with_address(&address);
        }
        from_master = Some(task);
    }
    if let Some(task) = from_master {
        return ended(agent, task).await;
    }
    if let Some(sandbox) = find_task_sandbox(&agent, id).await {
        return Ok(Target {
            agent,
            task: None,
            container: None,
            container_id: None,
            note: None,
            sandbox: Some(sandbox),
        });
    }
    Err(CliError::NotFound(id.to_string()))
}

/// The one task an id names: task ids are unique per framework only. The
/// live one wins over ended ones; two live ones are ambiguous.
fn pick<'a>(
    candidates: impl Iterator<Item = &'a Task>,
    id: &str,
) -> Result<Option<&'a Task>, CliError> {
    let all: Vec<&Task> = candidates.collect();
    let live: Vec<&Task> = all
        .iter()
        .copied()
        .filter(|t| !TaskState::try_from(t.state).is_ok_and(is_terminal))
        .collect();
    match live.as_slice() {
        [one] => Ok(Some(one)),
        [] => Ok(all.last().copied()),
        many => Err(CliError::Failed(format!(
            "task id '{id}' is running in {} frameworks ({}): name its container instead (`tepui ps` shows them)",
            many.len(),
            many.iter()
                .map(|t| t.framework_id.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn on_agent(agent: Client, containers: &[Container], task: Task) -> Result<Target, CliError> {
    let id = task.task_id.value.clone();
    let own = own_container_id(&task);
    let (container, stand_in) = task_container(containers, &task);
    let note = stand_in.then(|| {
        format!(
            "the executor of task '{id}' names no container for it (a custom executor): \
             acting on the executor's container {}",
            container.map_or_else(String::new, |c| container_str(&c.container_id))
        )
    });
    let run = own
        .as_ref()
        .and_then(|c| c.parent.as_ref().map(|p| p.value.clone()))
        .or_else(|| executor_container(containers, &task).map(|c| c.container_id.value.clone()))
        .unwrap_or_else(|| "latest".to_string());
    let base = format!(
        "/frameworks/{}/executors/{}/runs/{run}",
        task.framework_id.value,
        executor_of(&task)
    );
    let sandbox = task_sandbox(&agent, &base, &id).await;
    Ok(Target {
        agent,
        container: container.cloned(),
        container_id: own,
        note,
        sandbox: Some(sandbox),
        task: Some(task),
    })
}

/// A task the agent no longer lists, as the master knows it; its sandbox
/// under the agent's work dir (Mesos's layout, `src/slave/paths.cpp`).
async fn ended(agent: Client, task: Task) -> Result<Target, CliError> {
    let id = task.task_id.value.clone();
    let own = own_container_id(&task);
    let run = own
        .as_ref()
        .and_then(|c| c.parent.as_ref().map(|p| p.value.clone()))
        .unwrap_or_else(|| "latest".to_string());
    let tail = format!(
        "frameworks/{}/executors/{}/runs/{run}",
        task.framework_id.value,
        executor_of(&task)
    );
    let base = match agent.work_dir().await {
        Ok(work_dir) => format!(
            "{}/slaves/{}/{tail}",
            work_dir.trim_end_matches('/'),
            task.agent_id.value
        ),
        // The virtual path works too where the agent's id is the task's.
        Err(_) => format!("/{tail}"),
    };
    let sandbox = if agent.list_files(&base).await.is_ok() {
        Some(task_sandbox(&agent, &base, &id).await)
    } else {
        None
    };
    Ok(Target {
        agent,
        container: None,
        container_id: own,
        note: None,
        sandbox,
        task: Some(task),
    })
}

/// The executor's id: the task's, else the command executor's (named
/// after the task, as in Mesos).
fn executor_of(task: &Task) -> String {
    task.executor_id
        .as_ref()
        .or_else(|| task.statuses.iter().find_map(|s| s.executor_id.as_ref()))
        .map_or_else(|| task.task_id.value.clone(), |e| e.value.clone())
}

/// Built-in executors give each task `tasks/<id>` in the run's sandbox; a
/// custom executor's task writes into the executor's sandbox.
async fn task_sandbox(agent: &Client, base: &str, id: &str) -> String {
    let linked = format!("{base}/tasks/{id}");
    if agent.list_files(&linked).await.is_ok() {
        linked
    } else {
        base.to_string()
    }
}

fn names(infos: &[tepui_proto::v1::FileInfo]) -> Vec<String> {
    infos
        .iter()
        .filter_map(|f| f.path.rsplit('/').next().map(str::to_string))
        .collect()
}

/// `tasks/<id>` in the latest run of some executor, the command executor's
/// (named like the task, its sandbox the task's) first: without a master,
/// all that is left of a task whose executor ended.
async fn find_task_sandbox(client: &Client, id: &str) -> Option<String> {
    let frameworks = names(&client.list_files("/frameworks").await.ok()?);
    for fw in &frameworks {
        let executors = names(
            &client
                .list_files(&format!("/frameworks/{fw}/executors"))
                .await
                .unwrap_or_default(),
        );
        let mut ordered: Vec<&String> = executors.iter().filter(|e| *e == id).collect();
        ordered.extend(executors.iter().filter(|e| *e != id));
        for ex in ordered {
            let path = format!("/frameworks/{fw}/executors/{ex}/runs/latest/tasks/{id}");
            if client.list_files(&path).await.is_ok() {
                return Some(path);
            }
            // A command task works in its executor's sandbox (as in Mesos).
            let run = format!("/frameworks/{fw}/executors/{ex}/runs/latest");
            if ex == id && client.list_files(&run).await.is_ok() {
                return Some(run);
            }
        }
    }
    None
}

/// `tepui inspect`: the task, its container and sandbox, as JSON.
pub async fn inspect(scope: &Scope, id: &str) -> Result<(), CliError> {
    let target = resolve(scope, id).await?;
    if target.task.is_none() && target.container.is_none() {
        return Err(CliError::Unknown(format!(
            "the agent at {} no longer lists task '{id}' (its executor has ended); its sandbox \
             is {} (`tepui logs {id}` reads it); name a master (--master) to see the task",
            target.agent.address(),
            target.sandbox.as_deref().unwrap_or("gone")
        )));
    }
    target.warn();
    let value = json!({
        "task": target.task.as_ref().map(tepui_proto::json::to_value),
        "container": target.container.as_ref().map(tepui_proto::json::to_value),
        "container_id": target
            .container_id
            .as_ref()
            .or(target.container.as_ref().map(|c| &c.container_id))
            .map(container_str),
        "agent": target.agent.label(),
        "sandbox": target.sandbox,
        "note": target.note,
    });
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// `tepui kill`: KILL_CONTAINER on the task's own container. Its executor
/// reports TASK_KILLED; the default executor then kills the rest of the
/// group, as Mesos's does.
pub async fn kill(scope: &Scope, id: &str, signal: Option<i32>) -> Result<(), CliError> {
    let target = resolve(scope, id).await?;
    let container = target.running(id)?;
    target
        .agent
        .call(Call {
            r#type: Some(call::Type::KillContainer as i32),
            kill_container: Some(call::KillContainer {
                container_id: container,
                signal,
            }),
            ..Default::default()
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::{ContainerStatus, TaskId, TaskStatus};

    fn status(state: TaskState, container: Option<ContainerId>) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: state as i32,
            container_status: container.map(|c| ContainerStatus {
                container_id: Some(c),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_latest_status_naming_a_container_names_the_tasks_own() {
        let nested = ContainerId {
            value: "child".into(),
            parent: Some(Box::new(ContainerId {
                value: "pod".into(),
                parent: None,
            })),
        };
        let task = Task {
            state: TaskState::TaskFinished as i32,
            statuses: vec![
                status(TaskState::TaskRunning, Some(nested.clone())),
                status(TaskState::TaskFinished, None),
            ],
            ..Default::default()
        };
        assert_eq!(own_container_id(&task), Some(nested.clone()));
        assert_eq!(container_str(&nested), "pod.child");
        assert_eq!(own_container_id(&Task::default()), None);
    }

    #[test]
    fn the_executors_container_stands_in_only_for_a_started_task_naming_none() {
        let executor = Container {
            container_id: ContainerId {
                value: "pod".into(),
                parent: None,
            },
            executor_id: Some(tepui_proto::v1::ExecutorId { value: "ex".into() }),
            framework_id: Some(tepui_proto::v1::FrameworkId { value: "fw".into() }),
            ..Default::default()
        };
        let task = |state: TaskState| Task {
            state: state as i32,
            executor_id: Some(tepui_proto::v1::ExecutorId { value: "ex".into() }),
            framework_id: tepui_proto::v1::FrameworkId { value: "fw".into() },
            ..Default::default()
        };
        let containers = [executor];
        let (found, stand_in) = task_container(&containers, &task(TaskState::TaskRunning));
        assert_eq!(found.map(|c| c.container_id.value.as_str()), Some("pod"));
        assert!(stand_in);
        for state in [TaskState::TaskStaging, TaskState::TaskFinished] {
            let (found, stand_in) = task_container(&containers, &task(state));
            assert!(found.is_none() && !stand_in, "{state:?}");
        }
        // A named container that has ended: nothing stands in for it.
        let mut named = task(TaskState::TaskRunning);
        named.statuses = vec![status(
            TaskState::TaskRunning,
            Some(ContainerId {
                value: "gone".into(),
                parent: None,
            }),
        )];
        assert!(matches!(task_container(&containers, &named), (None, false)));
    }
}
