//! `tepui run`: launch a command task or a task group through a master,
//! like Mesos's `mesos-execute`. A short-lived framework speaking the
//! scheduler API v1 (JSON): subscribe, take the first offer that fits,
//! ACCEPT with LAUNCH or LAUNCH_GROUP, print and acknowledge every status
//! update, tear down once every task ended. Exit status 0 when all tasks
//! finished, else the failed task's own exit code (1 when it has none).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tepui_proto::recordio;
use tepui_proto::v1::{TaskGroupInfo, TaskInfo};

use crate::cli::CliError;

const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNREACHABLE",
];

/// What to launch.
pub enum Workload {
    /// A shell command with `resources` (Mesos syntax, `cpus:0.1;mem:32`).
    Command {
        name: String,
        command: String,
        resources: String,
        image: Option<String>,
    },
    /// A TaskInfo JSON (Mesos's JSON mapping); agent_id and missing
    /// task_id are filled in.
    Task(Value),
    /// A TaskGroupInfo JSON, e.g. the "Running Workloads" example's
    /// `task_group`; run by the DEFAULT executor.
    TaskGroup(Value),
}

pub struct RunOptions {
    pub master: String,
    pub role: String,
    pub framework_name: String,
    pub json_output: bool,
    /// Give up when no offer fits within this long.
    pub offer_timeout: Duration,
}

/// Reads a task or task-group file and checks it decodes as Mesos JSON, so
/// a bad file fails before anything is launched, naming the field.
pub fn load_workload(path: &std::path::Path, group: bool) -> Result<Workload, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let mut value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Failed(format!("{} is not JSON: {e}", path.display())))?;
    // The document's ACCEPT payload nests it; take what we need from it.
    if group && let Some(inner) = value.pointer("/launch_group/task_group") {
        value = inner.clone();
    }
    let mut check = value.clone();
    if group {
        for task in check["tasks"].as_array_mut().into_iter().flatten() {
            fill_ids(task, "check");
        }
        tepui_proto::json::from_value::<TaskGroupInfo>(&check).map_err(|e| {
            CliError::Failed(format!("{}: not a TaskGroupInfo: {e}", path.display()))
        })?;
        Ok(Workload::TaskGroup(value))
    } else {
        fill_ids(&mut check, "check");
        tepui_proto::json::from_value::<TaskInfo>(&check)
            .map_err(|e| CliError::Failed(format!("{}: not a TaskInfo: {e}", path.display())))?;
        Ok(Workload::Task(value))
    }
}

/// Required ids the file may leave to us.
fn fill_ids(task: &mut Value, agent: &str) {
    if task.get("agent_id").is_none() {
        task["agent_id"] = json!({ "value": agent });
    }
    if task.get("task_id").is_none() {
        let name = task["name"].as_str().unwrap_or("task").to_string();
        task["task_id"] = json!({ "value": format!("{name}-{}", short_id()) });
    }
    if task.get("name").is_none() {
        let id = task["task_id"]["value"].clone();
        task["name"] = id;
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Parses Mesos's resource syntax (`cpus:0.1;mem:32`) into scalar resources.
fn scalar_resources(text: &str, role: &str) -> Result<Vec<Value>, CliError> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, amount) = part
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("--resources: '{part}' is not name:value")))?;
        let value: f64 = amount
            .trim()
            .parse()
            .map_err(|_| CliError::Usage(format!("--resources: '{amount}' is not a number")))?;
        out.push(json!({
            "name": name.trim(), "type": "SCALAR", "scalar": {"value": value},
            "allocation_info": {"role": role},
        }));
    }
    Ok(out)
}

/// Sums each scalar of `resources` by name.
fn scalar_sums(resources: &[Value]) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for r in resources {
        if let (Some(name), Some(value)) = (r["name"].as_str(), r["scalar"]["value"].as_f64()) {
            *sums.entry(name.to_string()).or_insert(0.0) += value;
        }
    }
    sums
}

fn fits(offer: &Value, needed: &BTreeMap<String, f64>) -> bool {
    let have = scalar_sums(offer["resources"].as_array().map_or(&[][..], Vec::as_slice));
    needed
        .iter()
        .all(|(name, amount)| have.get(name).copied().unwrap_or(0.0) + 1e-9 >= *amount)
}

/// Every task's resources carry the role the framework subscribed with
/// (MULTI_ROLE frameworks must say which role they launch under).
fn with_role(task: &mut Value, role: &str) {
    for r in task["resources"].as_array_mut().into_iter().flatten() {
        if r.get("allocation_info").is_none() {
            r["allocation_info"] = json!({ "role": role });
        }
    }
}

struct Scheduler {
    http: reqwest::Client,
    url: String,
    stream_id: Option<String>,
    framework_id: Value,
}

impl Scheduler {
    async fn post(&self, body: Value) -> Result<(), CliError> {
        let mut request = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(id) = &self.stream_id {
            request = request.header("Mesos-Stream-Id", id);
        }
        let answer = request
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.url.clone(),
                source,
            })?;
        let status = answer.status().as_u16();
        if !(200..300).contains(&status) {
            let body = answer.text().await.unwrap_or_default();
            return Err(CliError::Status { status, body });
        }
        Ok(())
    }
}

/// Runs the workload; returns 0 when every task finished, else the failed
/// task's exit code (see `run_exit_code`).
pub async fn run(workload: Workload, options: &RunOptions) -> Result<i32, CliError> {
    let base = crate::cli_locate::master_base(&options.master).await?;
    let mut scheduler = Scheduler {
        http: reqwest::Client::new(),
        url: format!("{base}/api/v1/scheduler"),
        stream_id: None,
        framework_id: Value::Null,
    };
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name);
    let subscribe = json!({
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {
            "user": user,
            "name": options.framework_name,
            "roles": [options.role],
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
        }}
    });
    let response = scheduler
        .http
        .post(&scheduler.url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(subscribe.to_string())
        .send()
        .await
        .map_err(|source| CliError::Unreachable {
            address: scheduler.url.clone(),
            source,
        })?;
    if response.status().as_u16() != 200 {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        return Err(CliError::Status { status, body });
    }
    scheduler.stream_id = response
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let mut events = response.bytes_stream();
    let mut decoder = recordio::Decoder::new();
    let mut launched: Vec<String> = Vec::new();
    let mut finished: BTreeMap<String, String> = BTreeMap::new();
    // Each failed task's code, in the order they ended.
    let mut failures: Vec<Option<i32>> = Vec::new();
    let deadline = tokio::time::Instant::now() + options.offer_timeout;
    loop {
        let next = if launched.is_empty() {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let _ = teardown(&scheduler).await;
                    return Err(CliError::Failed(format!(
                        "no offer fitting the task within {:?}",
                        options.offer_timeout
                    )));
                }
            }
        } else {
            events.next().await
        };
        let Some(chunk) = next else {
            return Err(CliError::Protocol(
                "the master closed the subscription".into(),
            ));
        };
        let chunk = chunk.map_err(CliError::Stream)?;
        let records = decoder
            .feed(&chunk)
            .map_err(|e| CliError::Protocol(e.to_string()))?;
        for record in records {
            let event: Value = serde_json::from_slice(&record)
                .map_err(|e| CliError::Protocol(format!("bad event: {e}")))?;
            match event["type"].as_str().unwrap_or("") {
                "SUBSCRIBED" => {
                    scheduler.framework_id = event["subscribed"]["framework_id"].clone();
                    report(options, &json!({"subscribed": scheduler.framework_id}))?;
                }
                "OFFERS" => {
                    let offers = event["offers"]["offers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    launched =
                        offer_round(&scheduler, &workload, options, &offers, launched).await?;
                }
                "UPDATE" => {
                    let status = &event["update"]["status"];
                    let task = status["task_id"]["value"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let state = status["state"].as_str().unwrap_or("").to_string();
                    report(
                        options,
                        &json!({"task": task, "state": state, "message": status["message"], "agent_id": status["agent_id"]["value"]}),
                    )?;
                    if let Some(uuid) = status["uuid"].as_str() {
                        scheduler
                            .post(json!({
                                "framework_id": scheduler.framework_id,
                                "type": "ACKNOWLEDGE",
                                "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": uuid}
                            }))
                            .await?;
                    }
                    if TERMINAL.contains(&state.as_str())
                        && launched.contains(&task)
                        && !finished.contains_key(&task)
                    {
                        if state != "TASK_FINISHED" {
                            failures.push(task_exit_code(status["message"].as_str()));
                        }
                        finished.insert(task, state);
                    }
                    if !launched.is_empty() && finished.len() == launched.len() {
                        teardown(&scheduler).await?;
                        return Ok(run_exit_code(&failures));
                    }
                }
                "ERROR" => {
                    return Err(CliError::Failed(format!(
                        "the master refused the framework: {}",
                        event["error"]["message"]
                    )));
                }
                _ => {}
            }
        }
    }
}

/// The exit code a failed task's message tells: the built-in executors say
/// "Command exited with status N" or "Command terminated with signal N"
/// (`executors/runner.rs`); 128 + N for a signal, as shells do.
fn task_exit_code(message: Option<&str>) -> Option<i32> {
    let message = message?;
    let number = |prefix: &str| -> Option<i32> {
        let rest = &message[message.find(prefix)? + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    number("Command exited with status ")
        .filter(|n| (1..=255).contains(n))
        .or_else(|| number("Command terminated with signal ").map(|n| 128 + n))
}

/// `tepui run`'s exit status: 0 when every task finished, else the code
/// of the first failed task whose command said one, else 1.
fn run_exit_code(failures: &[Option<i32>]) -> i32 {
    if failures.is_empty() {
        return 0;
    }
    failures.iter().find_map(|c| *c).unwrap_or(1)
}

/// Takes the first offer that fits (once), declines the rest. Returns the
/// launched task ids (empty while nothing fitted).
async fn offer_round(
    scheduler: &Scheduler,
    workload: &Workload,
    options: &RunOptions,
    offers: &[Value],
    launched: Vec<String>,
) -> Result<Vec<String>, CliError> {
    let mut launched = launched;
    for offer in offers {
        let agent_id = offer["agent_id"].clone();
        if launched.is_empty()
            && let Some((operation, ids)) =
                operation_for(workload, options, &agent_id, &scheduler.framework_id)?
            && fits(offer, &needed(&operation))
        {
            scheduler
                .post(json!({
                    "framework_id": scheduler.framework_id,
                    "type": "ACCEPT",
                    "accept": {"offer_ids": [offer["id"]], "operations": [operation],
                               "filters": {"refuse_seconds": 5.0}}
                }))
                .await?;
            report(
                options,
                &json!({"launched": ids, "agent_id": agent_id["value"], "hostname": offer["hostname"]}),
            )?;
            launched = ids;
            continue;
        }
        scheduler
            .post(json!({
                "framework_id": scheduler.framework_id,
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 30.0}}
            }))
            .await?;
    }
    Ok(launched)
}

/// Every resource an operation needs (tasks plus a group's executor).
fn needed(operation: &Value) -> BTreeMap<String, f64> {
    let mut all = Vec::new();
    let tasks = operation["launch"]["task_infos"]
        .as_array()
        .or_else(|| operation["launch_group"]["task_group"]["tasks"].as_array());
    for task in tasks.into_iter().flatten() {
        all.extend(task["resources"].as_array().cloned().unwrap_or_default());
    }
    all.extend(
        operation["launch_group"]["executor"]["resources"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    scalar_sums(&all)
}

/// The LAUNCH or LAUNCH_GROUP operation for `agent_id`, and its task ids.
fn operation_for(
    workload: &Workload,
    options: &RunOptions,
    agent_id: &Value,
    framework_id: &Value,
) -> Result<Option<(Value, Vec<String>)>, CliError> {
    let role = &options.role;
    let finish = |mut task: Value| {
        fill_ids(&mut task, "");
        task["agent_id"] = agent_id.clone();
        with_role(&mut task, role);
        task
    };
    Ok(Some(match workload {
        Workload::Command {
            name,
            command,
            resources,
            image,
        } => {
            let mut task = json!({
                "name": name,
                "task_id": {"value": format!("{name}-{}", short_id())},
                "resources": scalar_resources(resources, role)?,
                "command": {"value": command, "shell": true},
            });
            if let Some(image) = image {
                task["container"] = json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}});
            }
            let task = finish(task);
            let id = task["task_id"]["value"].as_str().unwrap_or("").to_string();
            (
                json!({"type": "LAUNCH", "launch": {"task_infos": [task]}}),
                vec![id],
            )
        }
        Workload::Task(task) => {
            let task = finish(task.clone());
            let id = task["task_id"]["value"].as_str().unwrap_or("").to_string();
            (
                json!({"type": "LAUNCH", "launch": {"task_infos": [task]}}),
                vec![id],
            )
        }
        Workload::TaskGroup(group) => {
            let tasks: Vec<Value> = group["tasks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(finish)
                .collect();
            let ids = tasks
                .iter()
                .filter_map(|t| t["task_id"]["value"].as_str().map(str::to_string))
                .collect();
            let executor = json!({
                "type": "DEFAULT",
                "executor_id": {"value": format!("group-{}", short_id())},
                "framework_id": framework_id,
                "resources": scalar_resources("cpus:0.1;mem:32", role)?,
            });
            (
                json!({"type": "LAUNCH_GROUP", "launch_group": {"executor": executor, "task_group": {"tasks": tasks}}}),
                ids,
            )
        }
    }))
}

async fn teardown(scheduler: &Scheduler) -> Result<(), CliError> {
    scheduler
        .post(json!({"framework_id": scheduler.framework_id, "type": "TEARDOWN"}))
        .await
}

fn report(options: &RunOptions, event: &Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if options.json_output {
        writeln!(out, "{event}")?;
    } else if let Some(id) = event.get("subscribed") {
        writeln!(
            out,
            "subscribed as framework {}",
            id["value"].as_str().unwrap_or("")
        )?;
    } else if let Some(ids) = event.get("launched") {
        writeln!(
            out,
            "launched {} on agent {} ({})",
            ids.as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            event["agent_id"].as_str().unwrap_or(""),
            event["hostname"].as_str().unwrap_or("")
        )?;
    } else {
        let message = event["message"].as_str().unwrap_or("");
        writeln!(
            out,
            "{}: {}{}{}",
            event["task"].as_str().unwrap_or(""),
            event["state"].as_str().unwrap_or(""),
            if message.is_empty() { "" } else { " - " },
            message
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_tasks_own_exit_code_is_passed_through() {
        assert_eq!(
            task_exit_code(Some("Command exited with status 3")),
            Some(3)
        );
        assert_eq!(
            task_exit_code(Some("Command terminated with signal 9")),
            Some(137)
        );
        assert_eq!(task_exit_code(Some("Task killed")), None);
        assert_eq!(task_exit_code(None), None);
        assert_eq!(run_exit_code(&[]), 0);
        assert_eq!(run_exit_code(&[None, Some(3)]), 3);
        assert_eq!(run_exit_code(&[None]), 1);
    }
}
