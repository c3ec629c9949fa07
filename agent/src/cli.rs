//! The operator CLI's client side: operator API v1 calls (protobuf)
//! against one agent, and `tepui logs`. Task resolution is in
//! `cli_resolve`, listings in `cli_ps`, the master's view in `cli_locate`
//! and `cli_cluster`.

use std::io::Write;
use std::time::Duration;

use prost::Message;
use tepui_proto::v1::agent::{Call, Response, call, response};

use crate::cli_locate::Scope;
use crate::cli_resolve::{Target, resolve};
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
    /// A task id that names nothing (the message names the id and where
    /// it was looked for).
    #[error("{0}")]
    Unknown(String),
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

    /// The same TLS settings and credentials towards another agent; an
    /// address without a scheme gets this one's.
    pub fn with_address(&self, address: &str) -> Self {
        let explicit_scheme = address.starts_with("http://") || address.starts_with("https://");
        let address = if explicit_scheme {
            address.trim_end_matches('/').to_string()
        } else if self.is_https() {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        Client {
            address,
            explicit_scheme,
            ..self.clone()
        }
    }

    /// The agent's base URL.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The agent's address as operators write it (`host:port`).
    pub fn label(&self) -> &str {
        self.address
            .split_once("://")
            .map_or(self.address.as_str(), |(_, rest)| rest)
    }

    pub fn is_https(&self) -> bool {
        self.address.starts_with("https://")
    }

    /// The HTTP client (TLS settings, credentials), for the master too.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
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

    pub async fn containers(&self) -> Result<Vec<response::get_containers::Container>, CliError> {
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

    pub async fn tasks(&self) -> Result<response::GetTasks, CliError> {
        let r = self.simple(call::Type::GetTasks).await?;
        Ok(r.get_tasks.unwrap_or_default())
    }

    /// The agent's id (GET_AGENT).
    pub async fn agent_id(&self) -> Result<String, CliError> {
        let r = self.simple(call::Type::GetAgent).await?;
        r.get_agent
            .and_then(|a| a.agent_info)
            .and_then(|i| i.id)
            .map(|id| id.value)
            .ok_or_else(|| CliError::Protocol("GET_AGENT named no agent id".into()))
    }

    /// The agent's `--work_dir` (its `/flags`), where sandboxes of ended
    /// executors are found as Mesos's CLI finds them.
    pub async fn work_dir(&self) -> Result<String, CliError> {
        let flags = self.get_json("/flags").await?;
        flags["flags"]["work_dir"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Protocol("/flags has no work_dir".into()))
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

    pub async fn list_files(&self, path: &str) -> Result<Vec<tepui_proto::v1::FileInfo>, CliError> {
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

/// Writes rows as columns as wide as their widest cell (the last one
/// unpadded); columns whose header starts with `>` are right-aligned.
pub fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let names: Vec<&str> = header.iter().map(|h| h.trim_start_matches('>')).collect();
    let mut widths: Vec<usize> = names.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            let right = header.get(i).is_some_and(|h| h.starts_with('>'));
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                if !last {
                    text.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                text.push_str("  ");
            }
        }
        text
    };
    writeln!(out, "{}", line(&names))?;
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
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
    Ok(!crate::cli_resolve::all_tasks(&tasks).any(|t| {
        t.task_id.value == id
            && !tepui_proto::v1::TaskState::try_from(t.state).is_ok_and(is_terminal)
    }))
}

/// `tepui logs`: prints a task's stdout (or stderr); with `follow`, keeps
/// printing across rotations until the task ends.
pub async fn logs(scope: &Scope, id: &str, options: &LogsOptions) -> Result<(), CliError> {
    let target: Target = resolve(scope, id).await?;
    let client = &target.agent;
    let sandbox = target
        .sandbox
        .ok_or_else(|| CliError::NotFound(format!("{id} (no sandbox found for it)")))?;
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

/// A signal given as a number or a name (`HUP`, `SIGHUP`, `term`), as
/// `kill(1)` takes it.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is not a signal number (1-64)"))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("'{text}' is not a signal (a number, or a name like HUP, SIGTERM)"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_numbers_or_names() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGKILL"), Ok(libc::SIGKILL));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").unwrap_err().contains("NOPE"));
    }

    #[test]
    fn tables_align_their_columns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["ID", ">MEM", "STATE"],
            &[
                vec!["a".into(), "1B".into(), "TASK_RUNNING".into()],
                vec!["long-id".into(), "10.0MiB".into(), "-".into()],
            ],
        )
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ID           MEM  STATE\na             1B  TASK_RUNNING\nlong-id  10.0MiB  -\n"
        );
    }

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\n", 5), b"a\n");
    }
}
