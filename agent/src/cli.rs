//! The operator CLI's client side (`tepui ps`, `logs`, `kill`, `inspect`):
//! plain operator API v1 calls (protobuf) against one agent.

use std::io::Write;
use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};
use tepui_proto::v1::agent::{Call, Response, call, response};
use tepui_proto::v1::{ContainerId, ResourceStatistics, Task};

use crate::status_updates::is_terminal;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach the agent at {address}: {}", error_chain(source))]
    Unreachable {
        address: String,
        source: reqwest::Error,
    },
    #[error("the agent answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("cannot decode the agent's answer: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("no task or container '{0}' on this agent")]
    NotFound(String),
    #[error("cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("'{0}' is not running (it has finished, or has no container yet)")]
    NotRunning(String),
    #[error("the agent's stream broke: {0}")]
    Stream(reqwest::Error),
    #[error("bad stream from the agent: {0}")]
    Protocol(String),
    #[error("{0}")]
    Failed(String),
    #[error("TLS: {0}")]
    Tls(#[from] tepui_proto::tls::TlsError),
}

/// An error with its causes (reqwest hides the TLS or socket failure in its
/// sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// One agent's operator API.
#[derive(Clone)]
pub struct Client {
    address: String,
    http: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    ca_file: Option<std::path::PathBuf>,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// The address came with `http://` or `https://`.
    explicit_scheme: bool,
}

impl Client {
    pub fn new(address: &str) -> Self {
        let explicit_scheme = address.starts_with("http://") || address.starts_with("https://");
        let address = if explicit_scheme {
            address.trim_end_matches('/').to_string()
        } else {
            format!("http://{address}")
        };
        Client {
            address,
            http: reqwest::Client::new(),
            headers: reqwest::header::HeaderMap::new(),
            ca_file: None,
            identity: None,
            explicit_scheme,
        }
    }

    /// Trusts `ca_file` (in addition to the built-in roots) and presents
    /// `identity` (certificate file, key file) to agents that ask for a
    /// client certificate. An address without a scheme becomes `https`.
    pub fn with_tls(
        mut self,
        ca_file: Option<&std::path::Path>,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Self, CliError> {
        if !self.explicit_scheme
            && (ca_file.is_some() || identity.is_some())
            && let Some(rest) = self.address.strip_prefix("http://")
        {
            self.address = format!("https://{rest}");
        }
        self.ca_file = ca_file.map(std::path::Path::to_path_buf);
        self.identity = identity.map(|(c, k)| (c.to_path_buf(), k.to_path_buf()));
        self.rebuild()?;
        Ok(self)
    }

    /// Sends HTTP Basic credentials with every request.
    pub fn with_credentials(mut self, principal: &str, secret: &str) -> Self {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&tepui_proto::auth::basic_header(
            principal, secret,
        )) {
            self.headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Err(e) = self.rebuild() {
            tracing::warn!("{e}");
        }
        self
    }

    fn rebuild(&mut self) -> Result<(), CliError> {
        let identity = self
            .identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        self.http = crate::tls::client_builder(self.ca_file.as_deref(), identity)?
            .default_headers(self.headers.clone())
            .build()
            .map_err(|e| CliError::Failed(format!("building the HTTP client: {e}")))?;
        Ok(())
    }

    pub async fn call(&self, call: Call) -> Result<Response, CliError> {
        let unreachable = |source| CliError::Unreachable {
            address: self.address.clone(),
            source,
        };
        let answer = self
            .http
            .post(format!("{}/api/v1", self.address))
            .header("Content-Type", "application/x-protobuf")
            .header("Accept", "application/x-protobuf")
            .body(call.encode_to_vec())
            .send()
            .await
            .map_err(unreachable)?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await.map_err(unreachable)?;
        if status != 200 {
            return Err(CliError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(Response::decode(body)?)
    }

    /// A call whose answer is a RecordIO stream (`message` accepted per
    /// record); fails unless the agent answers 200.
    pub async fn post_stream(
        &self,
        call: Vec<u8>,
        message: &str,
    ) -> Result<reqwest::Response, CliError> {
        let answer = self
            .http
            .post(format!("{}/api/v1", self.address))
            .header("Content-Type", message)
            .header("Accept", "application/recordio")
            .header("Message-Accept", message)
            .body(call)
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.address.clone(),
                source,
            })?;
        check_status(answer).await
    }

    /// A tepui JSON endpoint (`/tepui/v1/...`).
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, CliError> {
        let answer = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.address.clone(),
                source,
            })?;
        let body = check_status(answer)
            .await?
            .bytes()
            .await
            .map_err(CliError::Stream)?;
        serde_json::from_slice(&body).map_err(|e| CliError::Protocol(format!("{path}: {e}")))
    }

    /// POSTs JSON to a tepui endpoint; the answer is left to stream.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, CliError> {
        let answer = self
            .http
            .post(format!("{}{path}", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.address.clone(),
                source,
            })?;
        check_status(answer).await
    }

    /// A streaming request body (RecordIO of `message` records).
    pub async fn post_body(
        &self,
        body: reqwest::Body,
        content_type: &str,
        message: &str,
    ) -> Result<reqwest::Response, CliError> {
        let answer = self
            .http
            .post(format!("{}/api/v1", self.address))
            .header("Content-Type", content_type)
            .header("Message-Content-Type", message)
            .body(body)
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.address.clone(),
                source,
            })?;
        check_status(answer).await
    }

    async fn simple(&self, kind: call::Type) -> Result<Response, CliError> {
        self.call(Call {
            r#type: Some(kind as i32),
            ..Default::default()
        })
        .await
    }

    async fn containers(&self) -> Result<Vec<response::get_containers::Container>, CliError> {
        let r = self
            .call(Call {
                r#type: Some(call::Type::GetContainers as i32),
                get_containers: Some(call::GetContainers {
                    show_nested: Some(true),
                    show_standalone: Some(true),
                }),
                ..Default::default()
            })
            .await?;
        Ok(r.get_containers.unwrap_or_default().containers)
    }

    async fn tasks(&self) -> Result<response::GetTasks, CliError> {
        let r = self.simple(call::Type::GetTasks).await?;
        Ok(r.get_tasks.unwrap_or_default())
    }

    /// Up to `length` bytes of a file from `offset`; (file size, data).
    pub async fn read_file(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<(u64, Vec<u8>), CliError> {
        let r = self
            .call(Call {
                r#type: Some(call::Type::ReadFile as i32),
                read_file: Some(call::ReadFile {
                    path: path.to_string(),
                    offset,
                    length,
                }),
                ..Default::default()
            })
            .await?;
        let r = r.read_file.unwrap_or_default();
        Ok((r.size, r.data.to_vec()))
    }

    async fn list_files(&self, path: &str) -> Result<Vec<tepui_proto::v1::FileInfo>, CliError> {
        let r = self
            .call(Call {
                r#type: Some(call::Type::ListFiles as i32),
                list_files: Some(call::ListFiles {
                    path: path.to_string(),
                }),
                ..Default::default()
            })
            .await?;
        Ok(r.list_files.unwrap_or_default().file_infos)
    }
}

async fn check_status(answer: reqwest::Response) -> Result<reqwest::Response, CliError> {
    let status = answer.status().as_u16();
    if status == 200 {
        return Ok(answer);
    }
    let body = answer.text().await.unwrap_or_default();
    Err(CliError::Status { status, body })
}

fn all_tasks(t: &response::GetTasks) -> impl Iterator<Item = &Task> {
    t.pending_tasks
        .iter()
        .chain(&t.queued_tasks)
        .chain(&t.launched_tasks)
        .chain(&t.terminated_tasks)
}

fn container_str(id: &ContainerId) -> String {
    match &id.parent {
        Some(parent) => format!("{}.{}", container_str(parent), id.value),
        None => id.value.clone(),
    }
}

/// What a task or container id names on the agent.
#[derive(Debug, Default)]
pub struct Target {
    pub task: Option<Task>,
    pub container: Option<response::get_containers::Container>,
    /// The sandbox (an operator API path), when it can be named.
    pub sandbox: Option<String>,
}

fn executor_container<'a>(
    containers: &'a [response::get_containers::Container],
    task: &Task,
) -> Option<&'a response::get_containers::Container> {
    containers.iter().find(|c| {
        c.container_id.parent.is_none()
            && c.framework_id.as_ref() == Some(&task.framework_id)
            && c.executor_id.as_ref() == task.executor_id.as_ref()
    })
}

/// The task's own (nested) container: named by its status updates, else
/// the executor's only nested container (a command task's).
fn task_container<'a>(
    containers: &'a [response::get_containers::Container],
    task: &Task,
) -> Option<&'a response::get_containers::Container> {
    let named = task
        .statuses
        .iter()
        .rev()
        .find_map(|s| s.container_status.as_ref()?.container_id.clone());
    if let Some(id) = named {
        return containers.iter().find(|c| c.container_id == id);
    }
    let executor = executor_container(containers, task)?;
    let mut nested = containers
        .iter()
        .filter(|c| c.container_id.parent.as_deref() == Some(&executor.container_id));
    match (nested.next(), nested.next()) {
        (Some(only), None) => Some(only),
        _ => Some(executor),
    }
}

pub async fn resolve(client: &Client, id: &str) -> Result<Target, CliError> {
    let tasks = client.tasks().await?;
    let containers = client.containers().await?;
    if let Some(task) = all_tasks(&tasks).find(|t| t.task_id.value == id) {
        let container = task_container(&containers, task).cloned();
        let run = executor_container(&containers, task)
            .map_or_else(|| "latest".to_string(), |c| c.container_id.value.clone());
        let executor = task
            .executor_id
            .as_ref()
            .map_or_else(|| task.task_id.value.clone(), |e| e.value.clone());
        let base = format!(
            "/frameworks/{}/executors/{executor}/runs/{run}",
            task.framework_id.value
        );
        // Built-in executors link `tasks/<id>` to the task's sandbox; a
        // custom executor's task writes into the executor's sandbox.
        let linked = format!("{base}/tasks/{id}");
        let sandbox = if client.list_files(&linked).await.is_ok() {
            linked
        } else {
            base
        };
        return Ok(Target {
            task: Some(task.clone()),
            container,
            sandbox: Some(sandbox),
        });
    }
    if let Some(container) = containers
        .into_iter()
        .find(|c| c.container_id.value == id || container_str(&c.container_id) == id)
    {
        return Ok(Target {
            task: None,
            container: Some(container),
            sandbox: None,
        });
    }
    // The agent forgets a task once its executor is gone; its sandbox stays.
    let sandbox = find_task_sandbox(client, id)
        .await
        .ok_or_else(|| CliError::NotFound(id.to_string()))?;
    Ok(Target {
        task: None,
        container: None,
        sandbox: Some(sandbox),
    })
}

fn names(infos: &[tepui_proto::v1::FileInfo]) -> Vec<String> {
    infos
        .iter()
        .filter_map(|f| f.path.rsplit('/').next().map(str::to_string))
        .collect()
}

/// `tasks/<id>` in the latest run of some executor, the command executor's
/// (named like the task, its sandbox the task's) first.
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

fn stats_columns(s: Option<&ResourceStatistics>) -> (f64, u64, u64) {
    let Some(s) = s else { return (0.0, 0, 0) };
    let cpu = s.cpus_user_time_secs.unwrap_or(0.0) + s.cpus_system_time_secs.unwrap_or(0.0);
    let mem = s
        .mem_rss_bytes
        .or(s.mem_total_bytes)
        .or(s.mem_anon_bytes)
        .unwrap_or(0);
    (cpu, mem, s.mem_limit_bytes.unwrap_or(0))
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// `tepui ps`: running tasks, then containers no task accounts for.
pub async fn ps(client: &Client, json_output: bool) -> Result<(), CliError> {
    let tasks = client.tasks().await?;
    let containers = client.containers().await?;
    let mut rows = Vec::new();
    let mut shown = Vec::new();
    for task in tasks.queued_tasks.iter().chain(&tasks.launched_tasks) {
        let container = task_container(&containers, task);
        if let Some(c) = container {
            shown.push(c.container_id.clone());
            if let Some(e) = executor_container(&containers, task) {
                shown.push(e.container_id.clone());
            }
        }
        let (cpu, mem, limit) =
            stats_columns(container.and_then(|c| c.resource_statistics.as_ref()));
        let state = tepui_proto::v1::TaskState::try_from(task.state)
            .map_or_else(|_| task.state.to_string(), |s| s.as_str_name().to_string());
        rows.push(json!({
            "id": task.task_id.value,
            "kind": "task",
            "state": state,
            "container_id": container.map(|c| container_str(&c.container_id)),
            "framework_id": task.framework_id.value,
            "cpu_time_secs": cpu,
            "mem_bytes": mem,
            "mem_limit_bytes": limit,
        }));
    }
    for c in containers
        .iter()
        .filter(|c| !shown.contains(&c.container_id))
    {
        let (cpu, mem, limit) = stats_columns(c.resource_statistics.as_ref());
        rows.push(json!({
            "id": container_str(&c.container_id),
            "kind": "container",
            "state": "RUNNING",
            "container_id": container_str(&c.container_id),
            "framework_id": c.framework_id.as_ref().map(|f| f.value.clone()),
            "cpu_time_secs": cpu,
            "mem_bytes": mem,
            "mem_limit_bytes": limit,
        }));
    }
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(out, "{}", Value::Array(rows))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36} {:<10} {:<16} {:>9} {:>10} {:>10}",
        "ID", "KIND", "STATE", "CPU(s)", "MEM", "LIMIT"
    )?;
    for r in &rows {
        let bytes = |k: &str| human_bytes(r[k].as_u64().unwrap_or(0));
        writeln!(
            out,
            "{:<36} {:<10} {:<16} {:>9.2} {:>10} {:>10}",
            r["id"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            r["cpu_time_secs"].as_f64().unwrap_or(0.0),
            bytes("mem_bytes"),
            bytes("mem_limit_bytes"),
        )?;
    }
    Ok(())
}

/// `tepui inspect`: the task and its container, as JSON.
pub async fn inspect(client: &Client, id: &str) -> Result<(), CliError> {
    let target = resolve(client, id).await?;
    let value = json!({
        "task": target.task.as_ref().map(tepui_proto::json::to_value),
        "container": target.container.as_ref().map(tepui_proto::json::to_value),
        "sandbox": target.sandbox,
    });
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// `tepui kill`: KILL_CONTAINER on the task's container.
pub async fn kill(client: &Client, id: &str, signal: Option<i32>) -> Result<(), CliError> {
    let target = resolve(client, id).await?;
    let container = target
        .container
        .ok_or_else(|| CliError::NotFound(format!("{id} (no running container)")))?;
    client
        .call(Call {
            r#type: Some(call::Type::KillContainer as i32),
            kill_container: Some(call::KillContainer {
                container_id: container.container_id,
                signal,
            }),
            ..Default::default()
        })
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub stderr: bool,
    pub tail: Option<usize>,
    pub follow: bool,
}

/// The last `n` lines of `data`.
fn last_lines(data: &[u8], n: usize) -> &[u8] {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    data
}

/// Reads `path` from `offset` to its current end.
async fn read_to_end(
    client: &Client,
    path: &str,
    mut offset: u64,
) -> Result<(u64, Vec<u8>), CliError> {
    let mut out = Vec::new();
    loop {
        let (size, data) = client.read_file(path, offset, None).await?;
        offset += data.len() as u64;
        let done = data.is_empty() || offset >= size;
        out.extend(data);
        if done {
            return Ok((offset, out));
        }
    }
}

async fn task_ended(client: &Client, id: &str) -> Result<bool, CliError> {
    let tasks = client.tasks().await?;
    Ok(all_tasks(&tasks)
        .find(|t| t.task_id.value == id)
        .and_then(|t| tepui_proto::v1::TaskState::try_from(t.state).ok())
        .is_none_or(is_terminal))
}

/// `tepui logs`: prints a task's stdout (or stderr); with `follow`, keeps
/// printing across rotations until the task ends.
pub async fn logs(client: &Client, id: &str, options: &LogsOptions) -> Result<(), CliError> {
    let target = resolve(client, id).await?;
    let sandbox = target
        .sandbox
        .ok_or_else(|| CliError::NotFound(format!("{id} (not a task with a sandbox)")))?;
    let name = if options.stderr { "stderr" } else { "stdout" };
    let path = format!("{sandbox}/{name}");
    let rotated = format!("{sandbox}/{name}.1");
    let mut out = std::io::stdout().lock();
    let (mut offset, data) = read_to_end(client, &path, 0).await?;
    let shown = match options.tail {
        Some(n) => last_lines(&data, n),
        None => &data[..],
    };
    out.write_all(shown)?;
    out.flush()?;
    if !options.follow {
        return Ok(());
    }
    // The rotated file's size tells a rotation apart from plain growth:
    // the logger renames `stdout` to `stdout.1` and starts a new file.
    let rotated_size = |infos: &[tepui_proto::v1::FileInfo]| {
        infos
            .iter()
            .find(|f| f.path.ends_with(&format!("/{name}.1")))
            .and_then(|f| f.size.zip(f.mtime.as_ref().map(|t| t.nanoseconds)))
    };
    let mut last_rotated = rotated_size(&client.list_files(&sandbox).await.unwrap_or_default());
    loop {
        let ended = task_ended(client, id).await?;
        let now_rotated = rotated_size(&client.list_files(&sandbox).await.unwrap_or_default());
        if now_rotated != last_rotated {
            // What was written before the rotation and not shown yet.
            if let Ok((_, rest)) = read_to_end(client, &rotated, offset).await {
                out.write_all(&rest)?;
            }
            offset = 0;
            last_rotated = now_rotated;
        }
        // Between the logger's rename and its new file, the live file is
        // briefly missing: that is a rotation in progress, not an error.
        let size = match client.read_file(&path, 0, Some(0)).await {
            Ok((size, _)) => size,
            Err(CliError::Status { status: 404, .. }) if !ended => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if size < offset {
            // Truncated in place: start over.
            offset = 0;
        }
        let (next, data) = match read_to_end(client, &path, offset).await {
            Ok(read) => read,
            Err(CliError::Status { status: 404, .. }) if !ended => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        offset = next;
        out.write_all(&data)?;
        out.flush()?;
        if ended {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one CLI future on a small runtime of its own.
pub fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let result = runtime.block_on(f);
    // A blocking stdin read (exec -i) must not hold the process open.
    runtime.shutdown_background();
    result
}

/// `tepui top`: live statistics of every running container (nested ones
/// included), refreshed every `interval`; CPU as a share of one core over
/// the interval. `iterations` bounds the refreshes (scripts, tests).
pub async fn top(
    client: &Client,
    interval: std::time::Duration,
    iterations: Option<u32>,
    json_output: bool,
) -> Result<(), CliError> {
    let cpu_of = |s: Option<&ResourceStatistics>| stats_columns(s).0;
    let mut previous: std::collections::HashMap<String, (f64, f64)> = Default::default();
    let mut round = 0;
    loop {
        let containers = client.containers().await?;
        let mut rows = Vec::new();
        for c in &containers {
            let id = container_str(&c.container_id);
            let stats = c.resource_statistics.as_ref();
            let cpu = cpu_of(stats);
            let at = stats.map_or(0.0, |s| s.timestamp);
            let percent = previous.get(&id).and_then(|(cpu0, at0)| {
                (at > *at0).then(|| ((cpu - cpu0) / (at - at0) * 100.0).max(0.0))
            });
            previous.insert(id.clone(), (cpu, at));
            let (_, mem, limit) = stats_columns(stats);
            rows.push(json!({
                "container_id": id,
                "executor": c.executor_name.clone().or_else(|| c.executor_id.as_ref().map(|e| e.value.clone())),
                "cpu_percent": percent,
                "cpu_time_secs": cpu,
                "mem_bytes": mem,
                "mem_limit_bytes": limit,
                "processes": stats.and_then(|s| s.processes),
            }));
        }
        // The first round has no rate yet: it only primes the counters.
        if round > 0 {
            let mut out = std::io::stdout().lock();
            if json_output {
                writeln!(out, "{}", Value::Array(rows))?;
            } else {
                writeln!(
                    out,
                    "{:<60} {:>7} {:>10} {:>10} {:>6}",
                    "CONTAINER", "CPU%", "MEM", "LIMIT", "PROCS"
                )?;
                for r in &rows {
                    writeln!(
                        out,
                        "{:<60} {:>7} {:>10} {:>10} {:>6}",
                        r["container_id"].as_str().unwrap_or(""),
                        r["cpu_percent"]
                            .as_f64()
                            .map_or_else(|| "-".to_string(), |p| format!("{p:.1}")),
                        human_bytes(r["mem_bytes"].as_u64().unwrap_or(0)),
                        human_bytes(r["mem_limit_bytes"].as_u64().unwrap_or(0)),
                        r["processes"].as_u64().unwrap_or(0),
                    )?;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\n", 5), b"a\n");
    }
}
