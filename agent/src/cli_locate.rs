//! Finds the agent that runs a task by asking a master (`--master`):
//! GET_TASKS names the task's agent, GET_AGENTS its address. `zk://`
//! masters are looked up in ZooKeeper first.

use std::time::Duration;

use serde_json::Value;

use crate::cli::CliError;

/// The base URL of a master given as `host:port`, a URL or `zk://` (its
/// current leader).
pub async fn master_base(master: &str) -> Result<String, CliError> {
    if master.starts_with("zk://") {
        let url = tepui_proto::zk::ZkUrl::parse(master)
            .map_err(|e| CliError::Usage(format!("--master: {e}")))?;
        let client = url
            .connect(Duration::from_secs(10))
            .await
            .map_err(|e| CliError::Failed(format!("cannot reach ZooKeeper {master}: {e}")))?;
        let leader = tepui_proto::zk::current_leader(&client, &url.path)
            .await
            .map_err(|e| CliError::Failed(format!("cannot read {master}: {e}")))?
            .ok_or_else(|| CliError::Failed(format!("no leading master in {master}")))?;
        return Ok(format!("http://{}", leader.endpoint()));
    }
    Ok(
        if master.starts_with("http://") || master.starts_with("https://") {
            master.trim_end_matches('/').to_string()
        } else {
            format!("http://{master}")
        },
    )
}

async fn operator_call(http: &reqwest::Client, base: &str, kind: &str) -> Result<Value, CliError> {
    let answer = http
        .post(format!("{base}/api/v1"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(serde_json::json!({ "type": kind }).to_string())
        .send()
        .await
        .map_err(|source| CliError::Unreachable {
            address: base.to_string(),
            source,
        })?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.map_err(CliError::Stream)?;
    if status != 200 {
        return Err(CliError::Status {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    serde_json::from_slice(&body).map_err(|e| CliError::Protocol(format!("{kind}: {e}")))
}

/// The address (`ip:port`) of the agent running `task`, per the master.
pub async fn agent_of_task(
    master: &str,
    task: &str,
    authorization: Option<&str>,
) -> Result<String, CliError> {
    let base = master_base(master).await?;
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = authorization.and_then(|a| reqwest::header::HeaderValue::from_str(a).ok())
    {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|source| CliError::Unreachable {
            address: base.clone(),
            source,
        })?;
    let tasks = operator_call(&http, &base, "GET_TASKS").await?;
    let agent_id = [
        "tasks",
        "pending_tasks",
        "unreachable_tasks",
        "completed_tasks",
    ]
    .iter()
    .flat_map(|list| {
        tasks["get_tasks"][list]
            .as_array()
            .cloned()
            .unwrap_or_default()
    })
    .find(|t| t["task_id"]["value"] == task)
    .and_then(|t| t["agent_id"]["value"].as_str().map(str::to_string))
    .ok_or_else(|| {
        CliError::NotFound(format!("{task} (the master at {base} knows no such task)"))
    })?;
    let agents = operator_call(&http, &base, "GET_AGENTS").await?;
    let agent = agents["get_agents"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["agent_info"]["id"]["value"] == agent_id.as_str())
        .ok_or_else(|| CliError::Failed(format!("the master lists no agent {agent_id}")))?;
    // The pid (`slave(1)@ip:port`) has the address the agent registered
    // from; the hostname may not resolve where the CLI runs.
    if let Some(address) = agent["pid"]
        .as_str()
        .and_then(|p| p.split_once('@'))
        .map(|(_, a)| a)
    {
        return Ok(address.to_string());
    }
    let info = &agent["agent_info"];
    Ok(format!(
        "{}:{}",
        info["hostname"].as_str().unwrap_or("127.0.0.1"),
        info["port"].as_i64().unwrap_or(5051)
    ))
}
