//! [`LaunchSpec`]: a Mesos container description reduced to plain serde data.
//!
//! The Mesos protobufs stay at the edge: [`LaunchSpec::from_mesos`] checks and
//! converts `CommandInfo` + `ContainerInfo` once, in the agent; what crosses
//! the Unix socket to the supervisor is this JSON-friendly type, which
//! [`build_spec`](super::build_spec) turns into an OCI `config.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tepui_proto::v1::{
    CommandInfo, ContainerId, ContainerInfo, Resource, container_info, environment,
    linux_info::IpcMode as MesosIpcMode, mount_propagation, r_limit_info::r_limit, value::Scalar,
    volume,
};

use super::SpecError;
use super::capabilities::{mesos_capability_name, parse_capability};
use super::paths::check_volume_paths;
use super::process::rlimit_type;
use crate::ContainerPath;

/// What the container is in its pod; decides which namespaces it creates
/// and which it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    /// The top-level container of a pod (runs the executor). Owns the pod's
    /// network, IPC and UTS namespaces.
    Executor,
    /// A nested container (a task of a task group, or any
    /// `LAUNCH_NESTED_CONTAINER`): joins its parent's network, IPC (by
    /// default) and UTS namespaces, has its own mount and pid namespaces.
    Task,
    /// A nested `DEBUG` container (`LAUNCH_NESTED_CONTAINER_SESSION`, `tepui
    /// exec`): runs inside its parent's namespaces, mount namespace included.
    /// Built with [`build_process`](super::build_process) and started as an
    /// exec (libcontainer's tenant builder), never as a new container.
    Debug,
    /// A top-level container without an executor (operator API
    /// `LAUNCH_CONTAINER`); namespaces as for [`ContainerKind::Executor`].
    Standalone,
}

impl ContainerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Executor => "executor",
            Self::Task => "task",
            Self::Debug => "debug",
            Self::Standalone => "standalone",
        }
    }

    pub fn is_top_level(self) -> bool {
        matches!(self, Self::Executor | Self::Standalone)
    }
}

/// The command to run (`CommandInfo` without URIs, environment and user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// `true` (Mesos's default): run `value` with `/bin/sh -c`.
    #[serde(default = "default_true")]
    pub shell: bool,
    /// The shell command (shell=true) or the executable's path (shell=false).
    #[serde(default)]
    pub value: Option<String>,
    /// shell=false only: the full argv, `arguments[0]` being argv[0].
    #[serde(default)]
    pub arguments: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl Command {
    pub fn shell(value: impl Into<String>) -> Self {
        Self {
            shell: true,
            value: Some(value.into()),
            arguments: Vec::new(),
        }
    }

    pub fn exec(executable: impl Into<String>, arguments: Vec<String>) -> Self {
        Self {
            shell: false,
            value: Some(executable.into()),
            arguments,
        }
    }
}

/// `LinuxInfo.IpcMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IpcMode {
    /// Own IPC namespace and own /dev/shm.
    Private,
    /// The parent's IPC namespace and /dev/shm (the host's for a top-level
    /// container).
    ShareParent,
}

/// `LinuxInfo.seccomp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    /// tepui's default profile (see [`default_seccomp_profile`](super::default_seccomp_profile)).
    #[default]
    Default,
    /// `SeccompInfo.unconfined = true`: no filter.
    Unconfined,
}

/// The Linux part of `ContainerInfo.linux_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxOptions {
    /// Nested containers only: `true` (default) puts the container's
    /// resources on the pod's cgroup, `false` on the container's own one.
    #[serde(default = "default_true")]
    pub share_cgroups: bool,
    /// Nested: share the parent's pid namespace; top-level: the host's.
    #[serde(default)]
    pub share_pid_namespace: bool,
    /// `None` keeps Mesos's behaviour for an unset mode: top-level containers
    /// get a private IPC namespace, nested ones share their parent's.
    #[serde(default)]
    pub ipc_mode: Option<IpcMode>,
    /// Size of a private /dev/shm in MiB (only with `ipc_mode: PRIVATE`).
    #[serde(default)]
    pub shm_size_mb: Option<u32>,
    /// Capability names (`CHOWN` or `CAP_CHOWN`); `None` = not specified.
    #[serde(default)]
    pub effective_capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub bounding_capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub seccomp: SeccompMode,
}

impl Default for LinuxOptions {
    fn default() -> Self {
        Self {
            share_cgroups: true,
            share_pid_namespace: false,
            ipc_mode: None,
            shm_size_mb: None,
            effective_capabilities: None,
            bounding_capabilities: None,
            seccomp: SeccompMode::Default,
        }
    }
}

/// One `RLimitInfo.RLimit`: both bounds or neither (= unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RLimit {
    /// `RLIMIT_NOFILE` (Mesos's `RLMT_NOFILE` is accepted too).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub soft: Option<u64>,
    #[serde(default)]
    pub hard: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u32,
    pub columns: u32,
}

/// `TTYInfo`: the container gets a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tty {
    #[serde(default)]
    pub window_size: Option<WindowSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VolumeMode {
    Rw,
    Ro,
}

/// Whose sandbox a SANDBOX_PATH volume comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SandboxOf {
    /// The container's own sandbox (`SandboxPath.Type.SELF`).
    #[serde(rename = "SELF")]
    Own,
    /// The parent container's sandbox (nested containers only).
    Parent,
}

/// `MountPropagation.Mode` of a HOST_PATH volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Propagation {
    /// Host mounts under the path propagate into the container (rslave).
    #[default]
    HostToContainer,
    /// Both ways (rshared); the host path must be a shared mount.
    Bidirectional,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VolumeSource {
    /// An absolute path on the host.
    HostPath {
        path: String,
        #[serde(default)]
        propagation: Propagation,
    },
    /// A path relative to a sandbox.
    SandboxPath { of: SandboxOf, path: String },
}

/// One `ContainerInfo.volumes` entry: `source` bind-mounted at
/// `container_path` (relative = inside the container's sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub container_path: String,
    pub mode: VolumeMode,
    pub source: VolumeSource,
}

/// A resource limit: a number, or `Unlimited` (Mesos's `Infinity`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Finite(f64),
    Unlimited,
}

/// The container's cpu/mem request (`resources`) and limit (`limits`).
/// Units are Mesos's: cpus, MiB.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceRequest {
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub cpus_limit: Option<Limit>,
    #[serde(default)]
    pub mem_mb: Option<f64>,
    #[serde(default)]
    pub mem_limit_mb: Option<Limit>,
}

impl ResourceRequest {
    /// Sums the scalar `cpus` and `mem` resources (reservations split one
    /// resource into several) and reads `limits` (`TaskInfo.limits`, an
    /// infinite value meaning unlimited). Other resources are ignored here.
    pub fn from_mesos(
        resources: &[Resource],
        limits: &BTreeMap<String, Scalar>,
    ) -> Result<Self, SpecError> {
        let mut request = Self::default();
        for resource in resources {
            let slot = match resource.name.as_str() {
                "cpus" => &mut request.cpus,
                "mem" => &mut request.mem_mb,
                _ => continue,
            };
            let Some(scalar) = resource.scalar else {
                return Err(SpecError::InvalidResource {
                    resource: static_name(&resource.name),
                    reason: "not a scalar".into(),
                });
            };
            *slot = Some(slot.unwrap_or(0.0) + scalar.value);
        }
        for (name, scalar) in limits {
            let slot = match name.as_str() {
                "cpus" => &mut request.cpus_limit,
                "mem" => &mut request.mem_limit_mb,
                _ => continue,
            };
            *slot = Some(if scalar.value == f64::INFINITY {
                Limit::Unlimited
            } else {
                Limit::Finite(scalar.value)
            });
        }
        super::resources::check(&request)?;
        Ok(request)
    }
}

fn static_name(name: &str) -> &'static str {
    match name {
        "cpus" => "cpus",
        "mem" => "mem",
        _ => "resource",
    }
}

/// An image to run the container in (`Image` of type DOCKER; APPC images
/// are not supported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    /// `busybox:1.36`, `127.0.0.1:5000/app@sha256:...`.
    pub reference: String,
    /// `Image.Docker.credential` (deprecated by Mesos, still sent by some
    /// frameworks): principal and secret.
    #[serde(default, skip_serializing)]
    pub credentials: Option<(String, String)>,
}

impl ImageRequest {
    #[allow(deprecated)] // `credential`: frameworks still send it.
    pub fn from_mesos(image: &tepui_proto::v1::Image) -> Result<Self, SpecError> {
        use tepui_proto::v1::image::Type;
        match Type::try_from(image.r#type) {
            Ok(Type::Docker) => {
                let docker = image.docker.as_ref().ok_or_else(|| {
                    SpecError::Unsupported("a DOCKER image without 'docker.name'".into())
                })?;
                if docker.name.trim().is_empty() {
                    return Err(SpecError::Unsupported(
                        "a DOCKER image with an empty 'docker.name'".into(),
                    ));
                }
                Ok(Self {
                    reference: docker.name.clone(),
                    credentials: docker
                        .credential
                        .as_ref()
                        .map(|c| (c.principal.clone(), c.secret.clone().unwrap_or_default())),
                })
            }
            Ok(Type::Appc) => Err(SpecError::Unsupported(
                "APPC images (only DOCKER images are supported)".into(),
            )),
            Err(_) => Err(SpecError::Unsupported("an image of unknown type".into())),
        }
    }
}

/// Everything needed to build one container's OCI spec, as plain data (it
/// crosses the agent -> supervisor socket as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub container_id: ContainerPath,
    pub kind: ContainerKind,
    pub command: Command,
    /// `CommandInfo.user` (or the framework's user, as the agent decides):
    /// a name, `uid`, `name:group` or `uid:gid`. `None` runs as root.
    #[serde(default)]
    pub user: Option<String>,
    /// `CommandInfo.environment` (VALUE variables), in order; it overrides
    /// `env` and `MESOS_SANDBOX`.
    #[serde(default)]
    pub environment: Vec<(String, String)>,
    /// What the agent adds (`MESOS_*` variables, executor environment). For a
    /// DEBUG container, the parent's environment goes here too.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Host path of this container's sandbox.
    pub sandbox_dir: PathBuf,
    /// The provisioned image rootfs; `None` = the host filesystem.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// The process's working directory inside an image rootfs (the image's
    /// `WorkingDir`); `None` = the sandbox.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `ContainerInfo.mesos.image`: the image the containerizer pulls and
    /// provisions into [`rootfs`](Self::rootfs) before launching.
    #[serde(default)]
    pub image: Option<ImageRequest>,
    /// `ContainerInfo.hostname` (top-level containers only).
    #[serde(default)]
    pub hostname: Option<String>,
    /// `ContainerInfo.network_infos` that name a CNI network (top-level
    /// containers only): the pod gets a network namespace of its own,
    /// attached to each (`crate::cni`). Empty: the host's network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkRequest>,
    #[serde(default)]
    pub linux: LinuxOptions,
    #[serde(default)]
    pub rlimits: Vec<RLimit>,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    #[serde(default)]
    pub tty: Option<Tty>,
    #[serde(default)]
    pub resources: ResourceRequest,
}

/// A CNI network a pod joins (`NetworkInfo` with a `name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    pub name: String,
    /// `NetworkInfo.labels`, handed to the plugins in `args`.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// `NetworkInfo.port_mappings`: `runtimeConfig.portMappings`.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// A host port forwarded to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
}

impl NetworkRequest {
    /// The named networks of `ContainerInfo.network_infos`. A NetworkInfo
    /// without a name is the host's network (Mesos's `network/cni`
    /// isolator skips those too).
    pub fn from_mesos(infos: &[tepui_proto::v1::NetworkInfo]) -> Vec<Self> {
        infos
            .iter()
            .filter_map(|network| {
                Some(NetworkRequest {
                    name: network.name.clone()?,
                    labels: network
                        .labels
                        .iter()
                        .flat_map(|l| &l.labels)
                        .map(|l| (l.key.clone(), l.value.clone().unwrap_or_default()))
                        .collect(),
                    port_mappings: network
                        .port_mappings
                        .iter()
                        .map(|p| PortMapping {
                            host_port: p.host_port,
                            container_port: p.container_port,
                            protocol: p.protocol.clone(),
                        })
                        .collect(),
                })
            })
            .collect()
    }
}

impl LaunchSpec {
    /// A container running `command` in `sandbox_dir` on the host
    /// filesystem, with every option at its default.
    pub fn new(
        container_id: ContainerPath,
        kind: ContainerKind,
        command: Command,
        sandbox_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            container_id,
            kind,
            command,
            user: None,
            environment: Vec::new(),
            env: Vec::new(),
            sandbox_dir: sandbox_dir.into(),
            rootfs: None,
            working_dir: None,
            image: None,
            hostname: None,
            networks: Vec::new(),
            linux: LinuxOptions::default(),
            rlimits: Vec::new(),
            volumes: Vec::new(),
            tty: None,
            resources: ResourceRequest::default(),
        }
    }

    /// Checks and converts a Mesos description. The caller then fills in
    /// what the agent decides: [`rootfs`](Self::rootfs) (the provisioned
    /// image), [`env`](Self::env), [`resources`](Self::resources) (see
    /// [`ResourceRequest::from_mesos`]) and, when `CommandInfo.user` is unset,
    /// [`user`](Self::user).
    pub fn from_mesos(
        container_id: &ContainerId,
        kind: ContainerKind,
        command: &CommandInfo,
        container: Option<&ContainerInfo>,
        sandbox_dir: impl Into<PathBuf>,
    ) -> Result<Self, SpecError> {
        let id = ContainerPath::from_container_id(container_id)?;
        let mut launch = Self::new(
            id,
            kind,
            Command {
                shell: command.shell(),
                value: command.value.clone(),
                arguments: command.arguments.clone(),
            },
            sandbox_dir,
        );
        launch.user = command.user.clone();
        if let Some(env) = &command.environment {
            for variable in &env.variables {
                let kind = variable
                    .r#type
                    .unwrap_or(environment::variable::Type::Value as i32);
                if kind == environment::variable::Type::Secret as i32 || variable.secret.is_some() {
                    return Err(SpecError::SecretEnvironment {
                        name: variable.name.clone(),
                    });
                }
                if kind != environment::variable::Type::Value as i32 {
                    return Err(SpecError::InvalidEnvironment {
                        name: variable.name.clone(),
                        reason: "unknown variable type",
                    });
                }
                launch.environment.push((
                    variable.name.clone(),
                    variable.value.clone().unwrap_or_default(),
                ));
            }
        }
        if let Some(info) = container {
            launch.apply_container_info(info)?;
        }
        launch.validate()?;
        Ok(launch)
    }

    fn apply_container_info(&mut self, info: &ContainerInfo) -> Result<(), SpecError> {
        if info.r#type != container_info::Type::Mesos as i32 {
            let name = container_info::Type::try_from(info.r#type)
                .map(|t| t.as_str_name())
                .unwrap_or("UNKNOWN");
            return Err(SpecError::Unsupported(format!(
                "ContainerInfo type {name} (only MESOS containers run here)"
            )));
        }
        self.hostname = info.hostname.clone();
        // A nested container is in its pod's network namespace whatever
        // it names (a command task's ContainerInfo reaches its executor's
        // pod and the task alike): only a top-level one joins networks.
        if self.kind.is_top_level() {
            self.networks = NetworkRequest::from_mesos(&info.network_infos);
        }
        if let Some(image) = info.mesos.as_ref().and_then(|m| m.image.as_ref()) {
            self.image = Some(ImageRequest::from_mesos(image)?);
        }

        #[allow(deprecated)] // `capability_info` is read for compatibility, as Mesos does.
        if let Some(linux) = &info.linux_info {
            if linux.capability_info.is_some() && linux.effective_capabilities.is_some() {
                return Err(SpecError::ConflictingCapabilityFields);
            }
            let names = |caps: &tepui_proto::v1::CapabilityInfo| {
                caps.capabilities
                    .iter()
                    .map(|&value| mesos_capability_name(value))
                    .collect::<Result<Vec<_>, _>>()
            };
            if let Some(caps) = linux
                .effective_capabilities
                .as_ref()
                .or(linux.capability_info.as_ref())
            {
                self.linux.effective_capabilities = Some(names(caps)?);
            }
            if let Some(caps) = &linux.bounding_capabilities {
                self.linux.bounding_capabilities = Some(names(caps)?);
            }
            self.linux.share_pid_namespace = linux.share_pid_namespace.unwrap_or(false);
            self.linux.share_cgroups = linux.share_cgroups.unwrap_or(true);
            self.linux.shm_size_mb = linux.shm_size;
            self.linux.ipc_mode = match linux.ipc_mode.map(MesosIpcMode::try_from) {
                None => None,
                Some(Ok(MesosIpcMode::Private)) => Some(IpcMode::Private),
                Some(Ok(MesosIpcMode::ShareParent)) => Some(IpcMode::ShareParent),
                Some(_) => return Err(SpecError::Unsupported("IPC mode UNKNOWN".into())),
            };
            if let Some(seccomp) = &linux.seccomp {
                if seccomp.unconfined() {
                    self.linux.seccomp = SeccompMode::Unconfined;
                } else if let Some(profile) = &seccomp.profile_name {
                    return Err(SpecError::Unsupported(format!(
                        "seccomp profile '{profile}' (only the default profile or unconfined)"
                    )));
                }
            }
        }

        if let Some(rlimits) = &info.rlimit_info {
            for limit in &rlimits.rlimits {
                let value = limit.r#type.unwrap_or(0);
                let name = match r_limit::Type::try_from(value) {
                    Ok(r_limit::Type::Unknown) | Err(_) => {
                        return Err(SpecError::UnknownRlimit(format!("type {value}")));
                    }
                    Ok(kind) => kind.as_str_name().to_string(),
                };
                self.rlimits.push(RLimit {
                    kind: name,
                    soft: limit.soft,
                    hard: limit.hard,
                });
            }
        }

        if let Some(tty) = &info.tty_info {
            self.tty = Some(Tty {
                window_size: tty.window_size.map(|w| WindowSize {
                    rows: w.rows,
                    columns: w.columns,
                }),
            });
        }

        for volume in &info.volumes {
            self.volumes.push(convert_volume(volume)?);
        }
        Ok(())
    }

    /// The checks that need no runtime context. [`build_spec`](super::build_spec)
    /// runs them again (a LaunchSpec may come from anywhere).
    pub fn validate(&self) -> Result<(), SpecError> {
        let kind = self.kind.name();
        match (self.kind.is_top_level(), self.container_id.is_nested()) {
            (true, true) => {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "must be a top-level container (its ContainerID has a parent)",
                });
            }
            (false, false) => {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "must be nested (its ContainerID needs a parent)",
                });
            }
            _ => {}
        }
        // Without a value, an executable (shell=false) comes from the image:
        // its Entrypoint, else Cmd[0] (Mesos's docker/runtime rules; see
        // `images::apply_image_config`, which refuses an image with neither).
        let from_image = !self.command.shell && self.image.is_some();
        match (&self.command.value, self.command.shell) {
            (None, true) => return Err(SpecError::MissingShellCommand),
            (None, false) if from_image => {}
            (None, false) => return Err(SpecError::MissingExecutable),
            (Some(value), _) if value.is_empty() && from_image => {}
            (Some(value), _) if value.is_empty() => {
                return Err(if self.command.shell {
                    SpecError::MissingShellCommand
                } else {
                    SpecError::MissingExecutable
                });
            }
            _ => {}
        }
        for arg in self.command.value.iter().chain(&self.command.arguments) {
            if arg.contains('\0') {
                return Err(SpecError::InvalidEnvironment {
                    name: "<command>".into(),
                    reason: "command and arguments may not contain NUL bytes",
                });
            }
        }
        for (name, value) in self.env.iter().chain(&self.environment) {
            check_env(name, value)?;
        }
        if !self.sandbox_dir.is_absolute() {
            return Err(SpecError::InvalidVolume {
                volume: "sandbox".into(),
                reason: format!("sandbox_dir {:?} is not absolute", self.sandbox_dir),
            });
        }
        if let Some(rootfs) = &self.rootfs
            && !rootfs.is_absolute()
        {
            return Err(SpecError::Unsupported(format!(
                "a relative rootfs path {rootfs:?}"
            )));
        }
        if !self.networks.is_empty() {
            if !self.kind.is_top_level() {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "cannot join CNI networks (it shares its parent's network namespace)",
                });
            }
            if let Some(bad) = self
                .networks
                .iter()
                .find(|n| !crate::cni::config::valid_name(&n.name))
            {
                return Err(SpecError::Unsupported(format!(
                    "the network name '{}'",
                    bad.name
                )));
            }
            for mapping in self.networks.iter().flat_map(|n| &n.port_mappings) {
                let protocol_ok = mapping
                    .protocol
                    .as_deref()
                    .is_none_or(|p| p.eq_ignore_ascii_case("tcp") || p.eq_ignore_ascii_case("udp"));
                if mapping.host_port == 0
                    || mapping.host_port > 65535
                    || mapping.container_port == 0
                    || mapping.container_port > 65535
                    || !protocol_ok
                {
                    return Err(SpecError::Unsupported(format!(
                        "the port mapping {mapping:?} (ports 1-65535, protocol tcp or udp)"
                    )));
                }
            }
        }
        if let Some(hostname) = &self.hostname {
            if !self.kind.is_top_level() {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "cannot set a hostname (it shares its parent's UTS namespace)",
                });
            }
            let valid = !hostname.is_empty()
                && hostname.len() <= 64
                && hostname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
            if !valid {
                return Err(SpecError::Unsupported(format!("hostname '{hostname}'")));
            }
        }

        if self.linux.shm_size_mb.is_some() && self.linux.ipc_mode != Some(IpcMode::Private) {
            return Err(SpecError::ShmSizeRequiresPrivateIpc);
        }
        for name in self
            .linux
            .effective_capabilities
            .iter()
            .chain(&self.linux.bounding_capabilities)
            .flatten()
        {
            parse_capability(name)?;
        }
        let mut seen = Vec::new();
        for limit in &self.rlimits {
            let kind = rlimit_type(&limit.kind)?;
            if seen.contains(&kind) {
                return Err(SpecError::InvalidRlimit {
                    rlimit: limit.kind.clone(),
                    reason: "given more than once",
                });
            }
            seen.push(kind);
        }
        super::resources::check(&self.resources)?;

        if self.kind == ContainerKind::Debug {
            if self.rootfs.is_some() {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "cannot have its own rootfs (it runs in its parent's filesystem)",
                });
            }
            if !self.volumes.is_empty() {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "cannot have volumes",
                });
            }
            if self.linux.ipc_mode == Some(IpcMode::Private) {
                return Err(SpecError::KindMismatch {
                    kind,
                    reason: "cannot have a PRIVATE IPC mode",
                });
            }
        }
        for volume in &self.volumes {
            check_volume_paths(volume, self.kind)?;
        }
        Ok(())
    }
}

fn check_env(name: &str, value: &str) -> Result<(), SpecError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.contains('=') {
        "the name contains '='"
    } else if name.contains('\0') || value.contains('\0') {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(SpecError::InvalidEnvironment {
        name: name.to_string(),
        reason,
    })
}

/// `Volume` -> [`VolumeSpec`], following Mesos's legacy rules: an absolute
/// `host_path` is a HOST_PATH volume, a relative one a SANDBOX_PATH (SELF).
fn convert_volume(volume: &tepui_proto::v1::Volume) -> Result<VolumeSpec, SpecError> {
    let name = volume.container_path.clone();
    let mode = match volume::Mode::try_from(volume.mode) {
        Ok(volume::Mode::Rw) => VolumeMode::Rw,
        Ok(volume::Mode::Ro) => VolumeMode::Ro,
        _ => {
            return Err(SpecError::InvalidVolume {
                volume: name,
                reason: format!("unknown mode {}", volume.mode),
            });
        }
    };
    let unsupported = |kind| SpecError::UnsupportedVolume {
        volume: name.clone(),
        kind,
    };
    if volume.image.is_some() {
        return Err(unsupported("image"));
    }
    use volume::source::Type;
    let source = if let Some(source) = &volume.source {
        match source.r#type.map(Type::try_from) {
            Some(Ok(Type::HostPath)) => {
                let host = source
                    .host_path
                    .as_ref()
                    .ok_or_else(|| SpecError::InvalidVolume {
                        volume: name.clone(),
                        reason: "HOST_PATH volume without host_path".into(),
                    })?;
                let propagation = match host.mount_propagation.as_ref().map(|p| p.mode()) {
                    Some(mount_propagation::Mode::Bidirectional) => Propagation::Bidirectional,
                    _ => Propagation::HostToContainer,
                };
                VolumeSource::HostPath {
                    path: host.path.clone(),
                    propagation,
                }
            }
            Some(Ok(Type::SandboxPath)) => {
                let sandbox =
                    source
                        .sandbox_path
                        .as_ref()
                        .ok_or_else(|| SpecError::InvalidVolume {
                            volume: name.clone(),
                            reason: "SANDBOX_PATH volume without sandbox_path".into(),
                        })?;
                use volume::source::sandbox_path::Type as SandboxType;
                let of = match sandbox.r#type.map(SandboxType::try_from) {
                    Some(Ok(SandboxType::Self_)) => SandboxOf::Own,
                    Some(Ok(SandboxType::Parent)) => SandboxOf::Parent,
                    _ => {
                        return Err(SpecError::InvalidVolume {
                            volume: name,
                            reason: "unknown SANDBOX_PATH volume type".into(),
                        });
                    }
                };
                VolumeSource::SandboxPath {
                    of,
                    path: sandbox.path.clone(),
                }
            }
            Some(Ok(Type::Secret)) => return Err(unsupported("SECRET")),
            Some(Ok(Type::DockerVolume)) => return Err(unsupported("DOCKER_VOLUME")),
            Some(Ok(Type::CsiVolume)) => return Err(unsupported("CSI_VOLUME")),
            _ => {
                return Err(SpecError::InvalidVolume {
                    volume: name,
                    reason: "unknown volume source type".into(),
                });
            }
        }
    } else if let Some(host_path) = &volume.host_path {
        if host_path.starts_with('/') {
            VolumeSource::HostPath {
                path: host_path.clone(),
                propagation: Propagation::HostToContainer,
            }
        } else {
            VolumeSource::SandboxPath {
                of: SandboxOf::Own,
                path: host_path.clone(),
            }
        }
    } else {
        return Err(SpecError::InvalidVolume {
            volume: name,
            reason: "needs a host_path or a source".into(),
        });
    };
    Ok(VolumeSpec {
        container_path: volume.container_path.clone(),
        mode,
        source,
    })
}
