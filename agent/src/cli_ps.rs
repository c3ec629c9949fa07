//! `tepui ps` and `tepui top`: one agent's tasks and containers, or with a
//! master, every agent's. A task's row carries its own container's usage
//! and limits (the container its status updates name, see `cli_resolve`).

use std::collections::HashMap;
use std::io::Write;

use serde_json::{Value, json};
use tepui_proto::v1::agent::{Call, call};
use tepui_proto::v1::{ContainerId, ResourceStatistics, Task, TaskState};

use crate::cli::{CliError, Client, human_bytes, write_table};
use crate::cli_locate::{Scope, TaskList};
use crate::cli_resolve::{Container, all_tasks, container_str, task_container};
use crate::status_updates::is_terminal;

/// (cpu seconds, memory in use) of a container.
fn usage(s: &ResourceStatistics) -> (f64, u64) {
    let cpu = s.cpus_user_time_secs.unwrap_or(0.0) + s.cpus_system_time_secs.unwrap_or(0.0);
    let mem = s
        .mem_rss_bytes
        .or(s.mem_total_bytes)
        .or(s.mem_anon_bytes)
        .unwrap_or(0);
    (cpu, mem)
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state).map_or_else(|_| state.to_string(), |s| s.as_str_name().to_string())
}

/// One agent's share of a listing.
struct AgentView {
    /// How the agent is shown (its address).
    label: String,
    id: Option<String>,
    containers: Vec<Container>,
}

/// The usage and limit columns of a container's statistics (`null` where
/// there is nothing: no container, no limit of its own).
fn stats_fields(container: Option<&Container>) -> Value {
    let stats = container.and_then(|c| c.resource_statistics.as_ref());
    let (cpu, mem) = stats.map(usage).unzip();
    json!({
        "cpu_time_secs": cpu,
        "mem_bytes": mem,
        "cpus_limit": stats.and_then(|s| s.cpus_limit),
        "mem_limit_bytes": stats.and_then(|s| s.mem_limit_bytes),
    })
}

fn merge(mut row: Value, extra: Value) -> Value {
    if let (Some(row), Value::Object(extra)) = (row.as_object_mut(), extra) {
        row.extend(extra);
    }
    row
}

/// Whether `ancestor` is `id` or one of its parents.
fn is_within(id: &ContainerId, ancestor: &ContainerId) -> bool {
    id == ancestor || id.parent.as_deref().is_some_and(|p| is_within(p, ancestor))
}

/// `tepui ps`: a row per task (with `all`, ended ones too), then the
/// containers no task accounts for (debug sessions, standalone containers).
pub async fn ps(scope: &Scope, all: bool, json_output: bool) -> Result<(), CliError> {
    let mut views: Vec<AgentView> = Vec::new();
    for (id, label, client) in scope.agents().await? {
        let containers = match client.containers().await {
            Ok(c) => c,
            // One agent down must not hide the others' tasks.
            Err(e) if scope.agent.is_none() => {
                let _ = writeln!(std::io::stderr(), "tepui: agent {label}: {e}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        views.push(AgentView {
            label,
            id,
            containers,
        });
    }
    // (task, index of its agent's view, framework name)
    let mut tasks: Vec<(Task, Option<usize>)> = Vec::new();
    let mut framework_names: HashMap<String, String> = HashMap::new();
    if let Some(master) = &scope.master {
        for f in master.frameworks().await? {
            if let (Some(id), Some(name)) = (
                f["framework_info"]["id"]["value"].as_str(),
                f["framework_info"]["name"].as_str(),
            ) {
                framework_names.insert(id.to_string(), name.to_string());
            }
        }
        for (list, task) in master.tasks().await? {
            let view = views
                .iter()
                .position(|v| v.id.as_deref() == Some(task.agent_id.value.as_str()));
            // Named an agent: only its tasks.
            if scope.agent.is_some() && view.is_none() {
                continue;
            }
            if list == TaskList::Completed && !all {
                continue;
            }
            tasks.push((task, view));
        }
    } else if let Some(agent) = &scope.agent {
        // Names are a nicety: an agent that will not say still lists tasks.
        framework_names = agent_framework_names(agent).await.unwrap_or_default();
        let listed = agent.tasks().await?;
        for task in all_tasks(&listed) {
            let ended = TaskState::try_from(task.state).is_ok_and(is_terminal);
            if ended && !all {
                continue;
            }
            tasks.push((task.clone(), Some(0)));
        }
    }

    let mut rows = Vec::new();
    let mut shown: Vec<(usize, ContainerId)> = Vec::new();
    for (task, view) in &tasks {
        let (container, stand_in) = match view {
            Some(i) => task_container(&views[*i].containers, task),
            None => (None, false),
        };
        if let (Some(i), Some(c)) = (view, container) {
            shown.push((*i, c.container_id.clone()));
        }
        let row = json!({
            "id": task.task_id.value,
            "name": task.name,
            "kind": "task",
            "state": state_name(task.state),
            "agent": view.map_or_else(|| task.agent_id.value.clone(), |i| views[i].label.clone()),
            "agent_id": task.agent_id.value,
            "framework_id": task.framework_id.value,
            "framework": framework_names.get(&task.framework_id.value),
            "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()),
            "container_id": container.map(|c| container_str(&c.container_id)),
            "executor_container": stand_in,
        });
        rows.push(merge(row, stats_fields(container)));
    }
    for (i, view) in views.iter().enumerate() {
        for c in &view.containers {
            let accounted = shown
                .iter()
                .any(|(j, id)| *j == i && is_within(id, &c.container_id));
            if accounted {
                continue;
            }
            let id = container_str(&c.container_id);
            let row = json!({
                "id": id,
                "name": c.executor_name.clone().or_else(|| c.executor_id.as_ref().map(|e| e.value.clone())),
                "kind": "container",
                "state": "RUNNING",
                "agent": view.label,
                "agent_id": view.id,
                "framework_id": c.framework_id.as_ref().map(|f| f.value.clone()),
                "framework": c.framework_id.as_ref().and_then(|f| framework_names.get(&f.value)),
                "executor_id": c.executor_id.as_ref().map(|e| e.value.clone()),
                "container_id": id,
            });
            rows.push(merge(row, stats_fields(Some(c))));
        }
    }
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(out, "{}", Value::Array(rows))?;
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            let bytes = |k: &str| r[k].as_u64().map_or_else(|| "-".to_string(), human_bytes);
            vec![
                text("id"),
                text("name"),
                text("state"),
                text("agent"),
                r["framework"]
                    .as_str()
                    .or(r["framework_id"].as_str())
                    .unwrap_or("-")
                    .to_string(),
                r["cpu_time_secs"]
                    .as_f64()
                    .map_or_else(|| "-".to_string(), |c| format!("{c:.2}")),
                bytes("mem_bytes"),
                r["cpus_limit"]
                    .as_f64()
                    .map_or_else(|| "-".to_string(), |c| format!("{c}")),
                bytes("mem_limit_bytes"),
            ]
        })
        .collect();
    write_table(
        &mut out,
        &[
            "ID",
            "NAME",
            "STATE",
            "AGENT",
            "FRAMEWORK",
            ">CPU(s)",
            ">MEM",
            ">CPUS LIMIT",
            ">MEM LIMIT",
        ],
        &cells,
    )?;
    Ok(())
}

/// Framework id -> name, as an agent knows them.
async fn agent_framework_names(agent: &Client) -> Result<HashMap<String, String>, CliError> {
    let answer = agent
        .call(Call {
            r#type: Some(call::Type::GetFrameworks as i32),
            ..Default::default()
        })
        .await?;
    Ok(answer
        .get_frameworks
        .map(|f| {
            f.frameworks
                .into_iter()
                .chain(f.completed_frameworks)
                .filter_map(|f| Some((f.framework_info.id?.value, f.framework_info.name)))
                .collect()
        })
        .unwrap_or_default())
}

/// `tepui top`: live statistics of every running container (nested ones
/// included) of the scope's agents, refreshed every `interval`, with the
/// task each one runs; CPU as a share of one core over the interval.
/// `iterations` bounds the refreshes (scripts, tests).
pub async fn top(
    scope: &Scope,
    interval: std::time::Duration,
    iterations: Option<u32>,
    json_output: bool,
) -> Result<(), CliError> {
    let agents = scope.agents().await?;
    let mut previous: HashMap<(String, String), (f64, f64)> = HashMap::new();
    let mut round = 0;
    loop {
        let mut rows = Vec::new();
        for (_, label, client) in &agents {
            let listed = match client.containers().await {
                Ok(containers) => client.tasks().await.map(|tasks| (containers, tasks)),
                Err(e) => Err(e),
            };
            let (containers, tasks) = match listed {
                Ok(listed) => listed,
                // One agent down must not stop the view of the others.
                Err(e) if scope.agent.is_none() => {
                    let _ = writeln!(std::io::stderr(), "tepui: agent {label}: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Container -> the task it runs.
            let mut owners: HashMap<String, String> = HashMap::new();
            for task in all_tasks(&tasks) {
                if let (Some(c), _) = task_container(&containers, task) {
                    owners
                        .entry(container_str(&c.container_id))
                        .or_insert_with(|| task.task_id.value.clone());
                }
            }
            for c in &containers {
                let id = container_str(&c.container_id);
                let stats = c.resource_statistics.as_ref();
                let (cpu, mem) = stats.map(usage).unwrap_or((0.0, 0));
                let at = stats.map_or(0.0, |s| s.timestamp);
                let key = (label.clone(), id.clone());
                let percent = previous.get(&key).and_then(|(cpu0, at0)| {
                    (at > *at0).then(|| ((cpu - cpu0) / (at - at0) * 100.0).max(0.0))
                });
                previous.insert(key, (cpu, at));
                rows.push(json!({
                    "container_id": id,
                    "task": owners.get(&id),
                    "agent": label,
                    "executor": c.executor_name.clone().or_else(|| c.executor_id.as_ref().map(|e| e.value.clone())),
                    "cpu_percent": percent,
                    "cpu_time_secs": cpu,
                    "mem_bytes": mem,
                    "mem_limit_bytes": stats.and_then(|s| s.mem_limit_bytes),
                    "processes": stats.and_then(|s| s.processes),
                }));
            }
        }
        // The first round has no rate yet: it only primes the counters.
        if round > 0 {
            let mut out = std::io::stdout().lock();
            if json_output {
                writeln!(out, "{}", Value::Array(rows))?;
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r["container_id"].as_str().unwrap_or("").to_string(),
                            r["task"].as_str().unwrap_or("-").to_string(),
                            r["agent"].as_str().unwrap_or("").to_string(),
                            r["cpu_percent"]
                                .as_f64()
                                .map_or_else(|| "-".to_string(), |p| format!("{p:.1}")),
                            human_bytes(r["mem_bytes"].as_u64().unwrap_or(0)),
                            r["mem_limit_bytes"]
                                .as_u64()
                                .map_or_else(|| "-".to_string(), human_bytes),
                            r["processes"]
                                .as_u64()
                                .map_or_else(|| "-".to_string(), |p| p.to_string()),
                        ]
                    })
                    .collect();
                write_table(
                    &mut out,
                    &[
                        "CONTAINER",
                        "TASK",
                        "AGENT",
                        ">CPU%",
                        ">MEM",
                        ">LIMIT",
                        ">PROCS",
                    ],
                    &cells,
                )?;
                writeln!(out)?;
            }
            out.flush()?;
        }
        round += 1;
        if iterations.is_some_and(|n| round > n) {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}
