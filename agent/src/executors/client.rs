//! An executor's view of its agent: Mesos's documented executor environment
//! and the executor and operator APIs over HTTP (protobuf). The built-in
//! executors use nothing else, exactly like a third-party executor would.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use prost::Message;
use tepui_proto::v1::{ExecutorId, FrameworkId, TaskInfo, agent, executor};

use crate::record_stream::StreamFault;

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("environment variable {name}: {reason}")]
    Environment { name: &'static str, reason: String },
    #[error("agent at {endpoint}: {message}")]
    Agent { endpoint: String, message: String },
    #[error("agent at {endpoint} answered {status} to {call}: {body}")]
    Refused {
        endpoint: String,
        call: &'static str,
        status: u16,
        body: String,
    },
}

/// What Mesos tells an executor through its environment.
#[derive(Debug, Clone)]
pub struct ExecutorEnv {
    pub agent_endpoint: String,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub sandbox: String,
    pub checkpoint: bool,
    pub recovery_timeout: Duration,
    pub backoff_max: Duration,
    pub shutdown_grace_period: Duration,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: sent as a Bearer token.
    pub token: Option<String>,
    /// `LIBPROCESS_SSL_*`: the agent serves https; its CA, and our client
    /// certificate when the agent asks for one.
    pub tls: tepui_proto::tls::TlsSettings,
}

fn var(name: &'static str) -> Result<String, ExecutorError> {
    std::env::var(name).map_err(|_| ExecutorError::Environment {
        name,
        reason: "not set (is this running under a Mesos agent?)".into(),
    })
}

fn duration_var(name: &'static str, default: Duration) -> Result<Duration, ExecutorError> {
    match std::env::var(name) {
        Ok(value) => {
            tepui_proto::duration::parse_duration(&value).map_err(|e| ExecutorError::Environment {
                name,
                reason: e.to_string(),
            })
        }
        Err(_) => Ok(default),
    }
}

impl ExecutorEnv {
    pub fn from_env() -> Result<Self, ExecutorError> {
        Ok(Self {
            agent_endpoint: var("MESOS_AGENT_ENDPOINT")?,
            framework_id: FrameworkId {
                value: var("MESOS_FRAMEWORK_ID")?,
            },
            executor_id: ExecutorId {
                value: var("MESOS_EXECUTOR_ID")?,
            },
            sandbox: var("MESOS_SANDBOX").or_else(|_| var("MESOS_DIRECTORY"))?,
            checkpoint: std::env::var("MESOS_CHECKPOINT").is_ok_and(|v| v == "1"),
            recovery_timeout: duration_var("MESOS_RECOVERY_TIMEOUT", Duration::from_secs(900))?,
            backoff_max: duration_var("MESOS_SUBSCRIPTION_BACKOFF_MAX", Duration::from_secs(2))?,
            shutdown_grace_period: duration_var(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                Duration::from_secs(5),
            )?,
            token: std::env::var(tepui_proto::auth::EXECUTOR_TOKEN_ENV).ok(),
            tls: tepui_proto::tls::TlsSettings::from_env(),
        })
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<executor::Event, ExecutorError>> + Send>>;

#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    pub env: ExecutorEnv,
}

impl AgentClient {
    pub fn new(env: ExecutorEnv) -> Result<Self, ExecutorError> {
        let tls_error = |e: &dyn std::fmt::Display| ExecutorError::Environment {
            name: tepui_proto::tls::ENV_CA_FILE,
            reason: e.to_string(),
        };
        let http = crate::tls::settings_builder(&env.tls)
            .map_err(|e| tls_error(&e))?
            .build()
            .map_err(|e| tls_error(&e))?;
        Ok(Self { http, env })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}://{}{path}",
            self.env.tls.scheme(),
            self.env.agent_endpoint
        )
    }

    fn transport(&self, e: impl std::fmt::Display) -> ExecutorError {
        ExecutorError::Agent {
            endpoint: self.env.agent_endpoint.clone(),
            message: e.to_string(),
        }
    }

    async fn post(
        &self,
        path: &str,
        call: &'static str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ExecutorError> {
        let mut request = self
            .http
            .post(self.url(path))
            .header("Content-Type", "application/x-protobuf")
            .header("Accept", "application/x-protobuf");
        if let Some(token) = &self.env.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ExecutorError::Refused {
                endpoint: self.env.agent_endpoint.clone(),
                call,
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        Ok(response)
    }

    fn executor_call(&self, kind: executor::call::Type) -> executor::Call {
        executor::Call {
            executor_id: self.env.executor_id.clone(),
            framework_id: self.env.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// SUBSCRIBE, offering what the agent may not have seen.
    pub async fn subscribe(
        &self,
        unacknowledged_tasks: Vec<TaskInfo>,
        unacknowledged_updates: Vec<executor::call::Update>,
    ) -> Result<EventStream, ExecutorError> {
        let mut call = self.executor_call(executor::call::Type::Subscribe);
        call.subscribe = Some(executor::call::Subscribe {
            unacknowledged_tasks,
            unacknowledged_updates,
        });
        let response = self
            .post("/api/v1/executor", "SUBSCRIBE", call.encode_to_vec())
            .await?;
        let endpoint = self.env.agent_endpoint.clone();
        Ok(Box::pin(
            crate::record_stream::decode::<executor::Event, _>(response.bytes_stream()).map(
                move |item| {
                    item.map_err(|fault| ExecutorError::Agent {
                        endpoint: endpoint.clone(),
                        message: match fault {
                            StreamFault::Transport(m) => m,
                            StreamFault::Malformed(m) => format!("malformed event stream: {m}"),
                        },
                    })
                },
            ),
        ))
    }

    pub async fn update(&self, update: &executor::call::Update) -> Result<(), ExecutorError> {
        let mut call = self.executor_call(executor::call::Type::Update);
        call.update = Some(update.clone());
        self.post("/api/v1/executor", "UPDATE", call.encode_to_vec())
            .await
            .map(|_| ())
    }

    /// An operator API call; the decoded answer (empty for 200/202 without body).
    pub async fn operator(
        &self,
        call: &agent::Call,
        name: &'static str,
    ) -> Result<agent::Response, ExecutorError> {
        let response = self.post("/api/v1", name, call.encode_to_vec()).await?;
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        if body.is_empty() {
            return Ok(agent::Response::default());
        }
        agent::Response::decode(body).map_err(|e| ExecutorError::Agent {
            endpoint: self.env.agent_endpoint.clone(),
            message: format!("malformed answer to {name}: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_reach_the_agent_over_https_when_ssl_is_enabled() {
        let env = |enabled| ExecutorEnv {
            agent_endpoint: "127.0.0.1:5051".into(),
            framework_id: FrameworkId::default(),
            executor_id: ExecutorId::default(),
            sandbox: "/tmp".into(),
            checkpoint: false,
            recovery_timeout: Duration::from_secs(1),
            backoff_max: Duration::from_secs(1),
            shutdown_grace_period: Duration::from_secs(1),
            token: None,
            tls: tepui_proto::tls::TlsSettings::from_lookup(|name| {
                (enabled && name == tepui_proto::tls::ENV_ENABLED).then(|| "true".to_string())
            }),
        };
        let client = AgentClient::new(env(true)).expect("client");
        assert_eq!(
            client.url("/api/v1/executor"),
            "https://127.0.0.1:5051/api/v1/executor"
        );
        let client = AgentClient::new(env(false)).expect("client");
        assert_eq!(client.url("/api/v1"), "http://127.0.0.1:5051/api/v1");
    }
}
