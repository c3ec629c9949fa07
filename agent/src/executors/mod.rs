//! The built-in executors (`tepui executor command|default`): ordinary
//! executor-API clients that run inside the executor container and launch
//! their tasks as nested containers through the agent's operator API.

pub mod client;
mod health;
mod runner;

pub use client::{AgentClient, ExecutorEnv, ExecutorError};
pub use runner::DEFAULT_GRACE;

/// Mesos's command executor: one command task.
pub async fn command_executor() -> Result<(), ExecutorError> {
    runner::run(runner::Policy::Single).await
}

/// Mesos's default executor: a task group, killed together when one task
/// fails or is killed.
pub async fn default_executor() -> Result<(), ExecutorError> {
    runner::run(runner::Policy::Group).await
}
