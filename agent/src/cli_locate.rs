//! The CLI's view of a master (`--master`): its operator API v1 (JSON) for
//! tasks, agents and frameworks, and the agent that runs a task (GET_TASKS
//! names the task's agent, GET_AGENTS its address). `zk://` masters are
//! looked up in ZooKeeper first.

use std::time::Duration;

use serde_json::Value;
use tepui_proto::v1::Task;

use crate::cli::{CliError, Client};

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

/// Which of the master's task lists a task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskList {
    Pending,
    Active,
    Unreachable,
    Completed,
}

/// GET_TASKS's lists, in the order they are searched.
const TASK_LISTS: [(&str, TaskList); 4] = [
    ("tasks", TaskList::Active),
    ("pending_tasks", TaskList::Pending),
    ("unreachable_tasks", TaskList::Unreachable),
    ("completed_tasks", TaskList::Completed),
];

/// A master's operator API, with the CLI's TLS settings and credentials.
#[derive(Clone)]
pub struct Master {
    base: String,
    http: reqwest::Client,
}

impl Master {
    /// `master` as `host:port`, a URL or `zk://`; `template` lends its HTTP
    /// client (CA, client certificate, credentials). With TLS settings, a
    /// master without a scheme is reached over https.
    pub async fn connect(master: &str, template: &Client) -> Result<Self, CliError> {
        let mut base = master_base(master).await?;
        if template.is_https()
            && !master.starts_with("http://")
            && let Some(rest) = base.strip_prefix("http://")
        {
            base = format!("https://{rest}");
        }
        Ok(Self {
            base,
            http: template.http().clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One operator call (`{"type": kind}`), answered in JSON.
    pub async fn call(&self, kind: &str) -> Result<Value, CliError> {
        let answer = self
            .http
            .post(format!("{}/api/v1", self.base))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(serde_json::json!({ "type": kind }).to_string())
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                address: self.base.clone(),
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

    /// Every task the master knows, with the list it is in.
    pub async fn tasks(&self) -> Result<Vec<(TaskList, Task)>, CliError> {
        let answer = self.call("GET_TASKS").await?;
        let mut out = Vec::new();
        for (name, list) in TASK_LISTS {
            for value in answer["get_tasks"][name].as_array().into_iter().flatten() {
                let task = tepui_proto::json::from_value::<Task>(value)
                    .map_err(|e| CliError::Protocol(format!("GET_TASKS {name}: {e}")))?;
                out.push((list, task));
            }
        }
        Ok(out)
    }

    /// The task named `id`: a live one before ended ones (ids are unique
    /// per framework only), the latest ended one otherwise.
    pub async fn task(&self, id: &str) -> Result<Option<(TaskList, Task)>, CliError> {
        let mut named: Vec<(TaskList, Task)> = self
            .tasks()
            .await?
            .into_iter()
            .filter(|(_, t)| t.task_id.value == id)
            .collect();
        Ok(
            match named.iter().position(|(l, _)| *l != TaskList::Completed) {
                Some(live) => Some(named.swap_remove(live)),
                None => named.pop(),
            },
        )
    }

    /// GET_AGENTS's `agents` (Mesos JSON).
    pub async fn agents(&self) -> Result<Vec<Value>, CliError> {
        let answer = self.call("GET_AGENTS").await?;
        Ok(answer["get_agents"]["agents"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// GET_FRAMEWORKS's frameworks, completed ones last (with
    /// `"completed": true` added).
    pub async fn frameworks(&self) -> Result<Vec<Value>, CliError> {
        let answer = self.call("GET_FRAMEWORKS").await?;
        let mut out: Vec<Value> = answer["get_frameworks"]["frameworks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for mut f in answer["get_frameworks"]["completed_frameworks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            f["completed"] = Value::Bool(true);
            out.push(f);
        }
        Ok(out)
    }

    /// The address (`ip:port`) of the agent with id `agent_id`.
    pub async fn agent_address(&self, agent_id: &str) -> Result<String, CliError> {
        let agents = self.agents().await?;
        let agent = agents
            .iter()
            .find(|a| a["agent_info"]["id"]["value"] == agent_id)
            .ok_or_else(|| CliError::Failed(format!("the master lists no agent {agent_id}")))?;
        Ok(agent_address(agent))
    }

    /// The address of the agent that runs (or ran) `task`.
    pub async fn agent_of_task(&self, task: &str) -> Result<String, CliError> {
        let (_, found) = self.task(task).await?.ok_or_else(|| {
            CliError::NotFound(format!(
                "{task} (the master at {} knows no such task)",
                self.base
            ))
        })?;
        self.agent_address(&found.agent_id.value).await
    }
}

/// An agent's address from its GET_AGENTS entry: the pid
/// (`slave(1)@ip:port`) has the address it registered from; its hostname
/// may not resolve where the CLI runs.
pub fn agent_address(agent: &Value) -> String {
    if let Some(address) = agent["pid"]
        .as_str()
        .and_then(|p| p.split_once('@'))
        .map(|(_, a)| a)
    {
        return address.to_string();
    }
    let info = &agent["agent_info"];
    format!(
        "{}:{}",
        info["hostname"].as_str().unwrap_or("127.0.0.1"),
        info["port"].as_i64().unwrap_or(5051)
    )
}

/// Where a command looks: one agent, a master (and through it the agents
/// it lists), or both (the master's view of that one agent).
pub struct Scope {
    /// The agent named by `--agent`, `TEPUI_AGENT` or the config file (or
    /// the default one when no master is given either).
    pub agent: Option<Client>,
    pub master: Option<Master>,
    /// Lends TLS settings and credentials to agents found through the
    /// master.
    pub template: Client,
}

impl Scope {
    /// The agents to ask: (agent id when known, address, client). With a
    /// master and a named agent, just that one.
    pub async fn agents(&self) -> Result<Vec<(Option<String>, String, Client)>, CliError> {
        match (&self.agent, &self.master) {
            (Some(agent), _) => {
                let id = agent.agent_id().await.ok();
                Ok(vec![(id, agent.label().to_string(), agent.clone())])
            }
            (None, Some(master)) => Ok(master
                .agents()
                .await?
                .iter()
                .map(|a| {
                    let address = agent_address(a);
                    let id = a["agent_info"]["id"]["value"].as_str().map(str::to_string);
                    (id, address.clone(), self.template.with_address(&address))
                })
                .collect()),
            (None, None) => Err(CliError::Usage(
                "name an agent (--agent) or a master (--master)".into(),
            )),
        }
    }
}
