//! Why a Mesos container description cannot become an OCI spec.

use std::path::PathBuf;

/// Every way a [`LaunchSpec`](super::LaunchSpec) can be refused. Each variant
/// names the offending input (user, capability, volume, ...) so the agent can
/// put the message into a `TASK_FAILED` status as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("invalid container id: {0}")]
    InvalidContainerId(String),

    #[error("a {kind} container {reason}")]
    KindMismatch {
        kind: &'static str,
        reason: &'static str,
    },

    #[error("the shell command is not specified (CommandInfo.value is required when shell=true)")]
    MissingShellCommand,

    #[error(
        "the executable path is not specified (CommandInfo.value is required when shell=false)"
    )]
    MissingExecutable,

    #[error(
        "environment variable '{name}' is a SECRET; secret environment variables are not supported"
    )]
    SecretEnvironment { name: String },

    #[error("environment variable '{name}' is invalid: {reason}")]
    InvalidEnvironment { name: String, reason: &'static str },

    #[error("unknown user '{user}': not found in {database}")]
    UnknownUser { user: String, database: String },

    #[error("unknown group '{group}' (for user '{user}'): not found in {database}")]
    UnknownGroup {
        user: String,
        group: String,
        database: String,
    },

    #[error("invalid user '{user}': {reason}")]
    InvalidUser { user: String, reason: String },

    #[error("cannot read user database {path:?}: {reason}")]
    UserDatabase { path: PathBuf, reason: String },

    #[error("unknown capability '{0}'")]
    UnknownCapability(String),

    #[error("only one of 'capability_info' (deprecated) and 'effective_capabilities' may be set")]
    ConflictingCapabilityFields,

    #[error("effective capability '{0}' is not in the bounding set")]
    CapabilityNotInBoundingSet(String),

    #[error("volume '{volume}': path '{path}' escapes {base}")]
    VolumeEscape {
        volume: String,
        path: String,
        base: &'static str,
    },

    #[error("volume '{volume}': {reason}")]
    InvalidVolume { volume: String, reason: String },

    #[error("volume '{volume}': {kind} volumes are not supported")]
    UnsupportedVolume { volume: String, kind: &'static str },

    #[error(
        "volume '{volume}': mount point '{path}' does not exist on the host; an absolute container_path must exist when the container uses the host filesystem"
    )]
    HostMountPointMissing { volume: String, path: String },

    #[error("unknown rlimit '{0}'")]
    UnknownRlimit(String),

    #[error("rlimit '{rlimit}': {reason}")]
    InvalidRlimit {
        rlimit: String,
        reason: &'static str,
    },

    #[error("resource '{resource}': {reason}")]
    InvalidResource {
        resource: &'static str,
        reason: String,
    },

    #[error("resource '{resource}': limit {limit} is below the request {request}")]
    LimitBelowRequest {
        resource: &'static str,
        request: f64,
        limit: f64,
    },

    #[error("the size of /dev/shm can only be set when the IPC mode is PRIVATE")]
    ShmSizeRequiresPrivateIpc,

    #[error("{0} is not supported")]
    Unsupported(String),

    #[error("the runtime did not provide {0}")]
    MissingContext(&'static str),

    #[error("internal error building the OCI spec: {0}")]
    Internal(String),

    #[error(
        "a DEBUG container runs inside its parent container (like `exec`): build its process with build_process, not a spec"
    )]
    DebugContainerIsExec,
}

impl From<crate::ContainerPathError> for SpecError {
    fn from(err: crate::ContainerPathError) -> Self {
        SpecError::InvalidContainerId(err.to_string())
    }
}
