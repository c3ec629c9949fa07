//! build_spec / build_process / from_mesos, rule by rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Mount, PosixRlimitType, Spec};
use tepui_proto::v1 as mesos;

use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
const GROUP: &str = "root:x:0:\nalice:x:1000:\nvideo:x:44:alice\n";

/// A host with its own passwd/group files, a host-rootfs dir, a sandbox and
/// a parent sandbox.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let f = Self { dir };
        std::fs::create_dir_all(f.path("etc")).unwrap();
        std::fs::write(f.path("etc/passwd"), PASSWD).unwrap();
        std::fs::write(f.path("etc/group"), GROUP).unwrap();
        std::fs::create_dir_all(f.path("hostroot/data")).unwrap();
        std::fs::create_dir_all(f.path("sandboxes/pod/tasks/web")).unwrap();
        std::fs::create_dir_all(f.path("sandboxes/pod/shared")).unwrap();
        std::fs::create_dir_all(f.path("shm/pod")).unwrap();
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn ctx(&self) -> SpecContext {
        let mut ctx = SpecContext::new("/tepui/pod/web", self.path("hostroot"));
        ctx.host_passwd = self.path("etc/passwd");
        ctx.host_group = self.path("etc/group");
        ctx
    }

    fn nested_ctx(&self) -> SpecContext {
        let mut ctx = self.ctx();
        ctx.parent = Some(ParentContainer {
            init_pid: 4242,
            sandbox_dir: self.path("sandboxes/pod"),
            shm_dir: Some(self.path("shm/pod")),
            cwd: Some(self.path("sandboxes/pod")),
        });
        ctx.host_memory_bytes = Some(8 << 30);
        ctx
    }

    fn executor(&self) -> LaunchSpec {
        LaunchSpec::new(
            ContainerPath::new(vec!["pod".into()]).unwrap(),
            ContainerKind::Executor,
            Command::exec("/usr/bin/tepui", vec!["tepui".into(), "executor".into()]),
            self.path("sandboxes/pod"),
        )
    }

    fn task(&self) -> LaunchSpec {
        LaunchSpec::new(
            ContainerPath::new(vec!["pod".into(), "web".into()]).unwrap(),
            ContainerKind::Task,
            Command::shell("sleep 1000"),
            self.path("sandboxes/pod/tasks/web"),
        )
    }
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap()
        .iter()
        .map(|ns| (ns.typ(), ns.path().clone()))
        .collect()
}

fn ns(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    namespaces(spec)
        .into_iter()
        .find(|(t, _)| *t == typ)
        .map(|(_, p)| p)
}

fn mount_at<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(destination))
}

fn options(mount: &Mount) -> Vec<String> {
    mount.options().clone().unwrap_or_default()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

fn env_var(spec: &Spec, name: &str) -> Option<String> {
    env(spec)
        .into_iter()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

fn host_path_volume(container_path: &str, host: &str, mode: VolumeMode) -> VolumeSpec {
    VolumeSpec {
        container_path: container_path.into(),
        mode,
        source: VolumeSource::HostPath {
            path: host.into(),
            propagation: Propagation::HostToContainer,
        },
    }
}

fn sandbox_volume(container_path: &str, of: SandboxOf, path: &str) -> VolumeSpec {
    VolumeSpec {
        container_path: container_path.into(),
        mode: VolumeMode::Rw,
        source: VolumeSource::SandboxPath {
            of,
            path: path.into(),
        },
    }
}

// ---- the representative nested task, as config.json -------------------------

#[test]
fn nested_task_config_json_has_everything_the_runtime_needs() {
    let f = Fixture::new();
    let mut task = f.task();
    task.user = Some("alice".into());
    task.volumes
        .push(sandbox_volume("shared", SandboxOf::Parent, "shared"));
    task.linux.share_cgroups = false;
    task.resources = ResourceRequest {
        cpus: Some(0.5),
        cpus_limit: Some(Limit::Finite(1.0)),
        mem_mb: Some(64.0),
        mem_limit_mb: Some(Limit::Finite(128.0)),
    };
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();

    let linux = &json["linux"];
    assert_eq!(linux["cgroupsPath"], "/tepui/pod/web");
    let nss: Vec<(String, Option<String>)> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["path"].as_str().map(str::to_string),
            )
        })
        .collect();
    let has = |t: &str, p: Option<&str>| nss.contains(&(t.to_string(), p.map(str::to_string)));
    assert!(has("mount", None), "{nss:?}");
    assert!(has("pid", None), "{nss:?}");
    assert!(has("network", Some("/proc/4242/ns/net")), "{nss:?}");
    assert!(has("uts", Some("/proc/4242/ns/uts")), "{nss:?}");
    assert!(has("ipc", Some("/proc/4242/ns/ipc")), "{nss:?}");
    assert!(has("cgroup", None), "{nss:?}");
    assert_eq!(nss.len(), 6);

    let destinations: Vec<&str> = json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    let sandbox = f.path("sandboxes/pod/tasks/web");
    let shared = sandbox.join("shared");
    for want in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        sandbox.to_str().unwrap(),
        shared.to_str().unwrap(),
    ] {
        assert!(
            destinations.contains(&want),
            "{want} not in {destinations:?}"
        );
    }
    let caps: Vec<&str> = json["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(caps.contains(&"CAP_NET_BIND_SERVICE") && caps.contains(&"CAP_CHOWN"));
    assert_eq!(caps.len(), 14);
    let masked: Vec<&str> = linux["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(masked.contains(&"/proc/kcore") && masked.contains(&"/sys/firmware"));
    assert!(
        linux["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&"/proc/sys".into())
    );
    assert_eq!(json["process"]["noNewPrivileges"], true);
    assert_eq!(json["process"]["user"]["uid"], 1000);
    assert_eq!(json["process"]["user"]["additionalGids"][0], 44);
    assert_eq!(json["process"]["args"][0], "/bin/sh");
    assert_eq!(json["process"]["oomScoreAdj"], 1000 - 1000 * 64 / 8192);
    assert_eq!(linux["resources"]["cpu"]["shares"], 512);
    assert_eq!(linux["resources"]["cpu"]["quota"], 100_000);
    assert_eq!(linux["resources"]["memory"]["limit"], 128 << 20);
    assert_eq!(linux["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(json["root"]["path"], f.path("hostroot").to_str().unwrap());
    // The JSON loads back as a spec.
    let _: Spec = serde_json::from_value(json).unwrap();
}

// ---- rule 1: command, environment, user -------------------------------------

#[test]
fn shell_and_exec_commands() {
    let f = Fixture::new();
    let spec = build_spec(&f.task(), &f.nested_ctx()).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().clone().unwrap(),
        ["/bin/sh", "-c", "sleep 1000"]
    );
    let spec = build_spec(&f.executor(), &f.ctx()).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().clone().unwrap(),
        ["/usr/bin/tepui", "executor"]
    );

    let mut missing = f.task();
    missing.command = Command {
        shell: false,
        value: None,
        arguments: vec!["ls".into()],
    };
    assert_eq!(
        build_spec(&missing, &f.nested_ctx()),
        Err(SpecError::MissingExecutable)
    );
    missing.command.shell = true;
    assert_eq!(
        build_spec(&missing, &f.nested_ctx()),
        Err(SpecError::MissingShellCommand)
    );
}

#[test]
fn environment_priority_follows_mesos() {
    let f = Fixture::new();
    let mut task = f.task();
    task.env = vec![
        ("MESOS_TASK_ID".into(), "web".into()),
        ("FOO".into(), "agent".into()),
        ("MESOS_SANDBOX".into(), "agent-wrong".into()),
    ];
    task.environment = vec![("FOO".into(), "user".into()), ("BAR".into(), "1".into())];
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(env_var(&spec, "FOO").as_deref(), Some("user"));
    assert_eq!(env_var(&spec, "BAR").as_deref(), Some("1"));
    assert_eq!(env_var(&spec, "MESOS_TASK_ID").as_deref(), Some("web"));
    assert_eq!(
        env_var(&spec, "MESOS_SANDBOX"),
        Some(f.path("sandboxes/pod/tasks/web").display().to_string())
    );
    assert_eq!(env_var(&spec, "PATH").as_deref(), Some(DEFAULT_PATH));
    assert_eq!(env_var(&spec, "HOME").as_deref(), Some("/root"));
    assert_eq!(
        env(&spec).iter().filter(|v| v.starts_with("FOO=")).count(),
        1
    );

    task.environment.push(("PATH".into(), "/opt/bin".into()));
    task.environment
        .push(("MESOS_SANDBOX".into(), "/custom".into()));
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(env_var(&spec, "PATH").as_deref(), Some("/opt/bin"));
    assert_eq!(env_var(&spec, "MESOS_SANDBOX").as_deref(), Some("/custom"));

    task.environment.push(("BAD=NAME".into(), "x".into()));
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::InvalidEnvironment { name, .. }) if name == "BAD=NAME"
    ));
}

#[test]
fn users_resolve_on_the_host_or_in_the_image() {
    let f = Fixture::new();
    let mut task = f.task();
    task.user = Some("alice".into());
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    let user = spec.process().as_ref().unwrap().user().clone();
    assert_eq!((user.uid(), user.gid()), (1000, 1000));
    assert_eq!(env_var(&spec, "HOME").as_deref(), Some("/home/alice"));

    task.user = Some("123:456".into());
    let user = build_spec(&task, &f.nested_ctx())
        .unwrap()
        .process()
        .clone()
        .unwrap()
        .user()
        .clone();
    assert_eq!((user.uid(), user.gid()), (123, 456));

    task.user = Some("bob".into());
    match build_spec(&task, &f.nested_ctx()) {
        Err(SpecError::UnknownUser { user, database }) => {
            assert_eq!(user, "bob");
            assert!(database.contains("passwd"));
        }
        other => panic!("{other:?}"),
    }

    // An image has its own passwd: alice is not there, but www is.
    let rootfs = f.path("image");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "www:x:33:33::/var/www:/bin/sh\n").unwrap();
    task.rootfs = Some(rootfs.clone());
    task.user = Some("www".into());
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().uid(), 33);
    task.user = Some("alice".into());
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::UnknownUser { user, .. }) if user == "alice"
    ));
}

// ---- rule 2: namespaces -------------------------------------------------------

#[test]
fn executors_get_new_namespaces() {
    let f = Fixture::new();
    let spec = build_spec(&f.executor(), &f.ctx()).unwrap();
    let list = namespaces(&spec);
    for typ in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ] {
        assert_eq!(ns(&spec, typ), Some(None), "{typ:?} in {list:?}");
    }
    assert_eq!(list.len(), 6);
    assert!(ns(&spec, LinuxNamespaceType::User).is_none());
}

#[test]
fn cgroupfs_is_read_only_inside_and_limits_reach_the_own_cgroup() {
    let f = Fixture::new();
    let ro = |m: &Mount| {
        m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "ro"))
    };
    // v2: a fresh, read-only cgroup2 mount in the container's namespace.
    let spec = build_spec(&f.executor(), &f.ctx()).unwrap();
    let cg: Vec<&Mount> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination().starts_with("/sys/fs/cgroup"))
        .collect();
    assert_eq!(cg.len(), 1);
    assert!(ro(cg[0]), "{cg:?}");
    // v1: a tmpfs, then a read-only bind of the own cgroup per hierarchy;
    // the pod's limits (ceiling), the pids limit and swap = limit.
    let mut ctx = f.ctx();
    ctx.cgroup_v1_binds = vec![(
        "memory".to_string(),
        PathBuf::from("/sys/fs/cgroup/memory/tepui/pod/exec"),
    )];
    ctx.ceiling = Some(crate::spec::Ceiling {
        memory_max_bytes: Some(256 << 20),
        cfs_quota_us: Some(50_000),
    });
    ctx.pids_limit = Some(100);
    ctx.limit_swap = true;
    let spec = build_spec(&f.executor(), &ctx).unwrap();
    let mounts = spec.mounts().as_ref().unwrap();
    let bind = mounts
        .iter()
        .find(|m| m.destination() == Path::new("/sys/fs/cgroup/memory"))
        .expect("memory bind");
    assert!(ro(bind), "{bind:?}");
    assert_eq!(
        bind.source().as_deref(),
        Some(Path::new("/sys/fs/cgroup/memory/tepui/pod/exec"))
    );
    let resources = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    let memory = resources.memory().unwrap();
    assert_eq!(memory.limit(), Some(256 << 20));
    assert_eq!(memory.swap(), Some(256 << 20));
    assert_eq!(resources.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(resources.pids().as_ref().unwrap().limit(), 100);
}

#[test]
fn host_network_and_host_pid_for_top_level_containers() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.host_network = true;
    let mut executor = f.executor();
    executor.linux.share_pid_namespace = true;
    let spec = build_spec(&executor, &ctx).unwrap();
    assert_eq!(ns(&spec, LinuxNamespaceType::Network), None);
    assert_eq!(ns(&spec, LinuxNamespaceType::Uts), None);
    assert_eq!(ns(&spec, LinuxNamespaceType::Pid), None);
    assert_eq!(ns(&spec, LinuxNamespaceType::Mount), Some(None));

    executor.hostname = Some("web-1".into());
    assert!(matches!(
        build_spec(&executor, &ctx),
        Err(SpecError::Unsupported(_))
    ));
    ctx.host_network = false;
    assert_eq!(
        build_spec(&executor, &ctx).unwrap().hostname().as_deref(),
        Some("web-1")
    );
}

#[test]
fn a_pod_on_cni_networks_joins_its_bound_netns_with_its_own_uts_and_etc_files() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    // The agent's default: the host's network, unless the pod has a netns.
    ctx.host_network = true;
    ctx.netns = Some(PathBuf::from("/run/tepui/cni/pod/ns"));
    ctx.etc_files = vec![(
        PathBuf::from("/run/tepui/cni/pod/hosts"),
        PathBuf::from("/etc/hosts"),
    )];
    let mut executor = f.executor();
    executor.hostname = Some("web-1".into());
    let spec = build_spec(&executor, &ctx).unwrap();
    assert_eq!(
        ns(&spec, LinuxNamespaceType::Network),
        Some(Some(PathBuf::from("/run/tepui/cni/pod/ns")))
    );
    assert_eq!(ns(&spec, LinuxNamespaceType::Uts), Some(None));
    assert_eq!(spec.hostname().as_deref(), Some("web-1"));
    let hosts = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/etc/hosts"))
        .expect("/etc/hosts bound");
    assert_eq!(
        hosts.source().as_deref(),
        Some(Path::new("/run/tepui/cni/pod/hosts"))
    );
}

#[test]
fn only_top_level_containers_take_network_infos() {
    let f = Fixture::new();
    let info = tepui_proto::v1::ContainerInfo {
        r#type: tepui_proto::v1::container_info::Type::Mesos as i32,
        network_infos: vec![
            tepui_proto::v1::NetworkInfo {
                name: Some("pods".into()),
                port_mappings: vec![tepui_proto::v1::network_info::PortMapping {
                    host_port: 31000,
                    container_port: 80,
                    protocol: None,
                }],
                ..Default::default()
            },
            // No name: the host's network, nothing to join.
            tepui_proto::v1::NetworkInfo::default(),
        ],
        ..Default::default()
    };
    let command = tepui_proto::v1::CommandInfo {
        value: Some("true".into()),
        ..Default::default()
    };
    let top = tepui_proto::v1::ContainerId {
        value: "pod".into(),
        parent: None,
    };
    let launch = LaunchSpec::from_mesos(
        &top,
        ContainerKind::Executor,
        &command,
        Some(&info),
        f.path("sandboxes/pod"),
    )
    .unwrap();
    assert_eq!(launch.networks.len(), 1);
    assert_eq!(launch.networks[0].name, "pods");
    assert_eq!(launch.networks[0].port_mappings[0].host_port, 31000);
    let nested = tepui_proto::v1::ContainerId {
        value: "task".into(),
        parent: Some(Box::new(top)),
    };
    let launch = LaunchSpec::from_mesos(
        &nested,
        ContainerKind::Task,
        &command,
        Some(&info),
        f.path("sandboxes/pod"),
    )
    .unwrap();
    assert!(
        launch.networks.is_empty(),
        "a task stays in its pod's netns"
    );
}

#[test]
fn nested_containers_join_their_parent() {
    let f = Fixture::new();
    let mut task = f.task();
    task.linux.share_pid_namespace = true;
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(
        ns(&spec, LinuxNamespaceType::Pid),
        Some(Some(PathBuf::from("/proc/4242/ns/pid")))
    );
    assert_eq!(ns(&spec, LinuxNamespaceType::Mount), Some(None));
    assert!(spec.hostname().is_none());

    assert!(matches!(
        build_spec(&task, &f.ctx()),
        Err(SpecError::MissingContext(_))
    ));
    task.hostname = Some("x".into());
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::KindMismatch { kind: "task", .. })
    ));
}

#[test]
fn ipc_modes_and_dev_shm() {
    let f = Fixture::new();
    // Default nested: parent's IPC namespace and its /dev/shm.
    let spec = build_spec(&f.task(), &f.nested_ctx()).unwrap();
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(f.path("shm/pod").as_path()));
    let mut no_shm = f.nested_ctx();
    if let Some(p) = no_shm.parent.as_mut() {
        p.shm_dir = None;
    }
    assert!(matches!(
        build_spec(&f.task(), &no_shm),
        Err(SpecError::MissingContext(_))
    ));

    // PRIVATE nested: own namespace, own sized tmpfs.
    let mut task = f.task();
    task.linux.ipc_mode = Some(IpcMode::Private);
    task.linux.shm_size_mb = Some(16);
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(ns(&spec, LinuxNamespaceType::Ipc), Some(None));
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
    assert!(options(shm).contains(&format!("size={}", 16 << 20)));

    // shm_size needs PRIVATE.
    task.linux.ipc_mode = Some(IpcMode::ShareParent);
    assert_eq!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::ShmSizeRequiresPrivateIpc)
    );
    task.linux.ipc_mode = None;
    assert_eq!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::ShmSizeRequiresPrivateIpc)
    );

    // Top-level: its own shm dir when the runtime provides one...
    let mut ctx = f.ctx();
    ctx.shm_dir = Some(f.path("shm/pod"));
    let spec = build_spec(&f.executor(), &ctx).unwrap();
    assert_eq!(
        mount_at(&spec, "/dev/shm").unwrap().source().as_deref(),
        Some(f.path("shm/pod").as_path())
    );
    // ... SHARE_PARENT means the host's.
    let mut executor = f.executor();
    executor.linux.ipc_mode = Some(IpcMode::ShareParent);
    let spec = build_spec(&executor, &ctx).unwrap();
    assert_eq!(ns(&spec, LinuxNamespaceType::Ipc), None);
    assert_eq!(
        mount_at(&spec, "/dev/shm").unwrap().source().as_deref(),
        Some(Path::new("/dev/shm"))
    );
}

// ---- rule 3: rootfs and sandbox ------------------------------------------------

#[test]
fn host_filesystem_containers_see_the_host_root_and_their_sandbox() {
    let f = Fixture::new();
    let spec = build_spec(&f.executor(), &f.ctx()).unwrap();
    let root = spec.root().clone().unwrap();
    assert_eq!(root.path(), &f.path("hostroot"));
    assert_eq!(root.readonly(), Some(false));
    let sandbox = f.path("sandboxes/pod");
    let mount = mount_at(&spec, sandbox.to_str().unwrap()).unwrap();
    assert_eq!(mount.source().as_deref(), Some(sandbox.as_path()));
    assert!(options(mount).contains(&"rbind".to_string()));
    assert_eq!(spec.process().as_ref().unwrap().cwd(), &sandbox);
    assert_eq!(
        env_var(&spec, "MESOS_SANDBOX"),
        Some(sandbox.display().to_string())
    );
}

/// Where each mount sits in the spec (libcontainer applies them in order).
fn mount_index(spec: &Spec, destination: &Path, typ: &str) -> usize {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .position(|m| m.destination() == destination && m.typ().as_deref() == Some(typ))
        .unwrap_or_else(|| panic!("no {typ} mount at {}", destination.display()))
}

#[test]
fn host_filesystem_containers_do_not_see_the_agents_dirs_but_their_sandbox() {
    let f = Fixture::new();
    let mut ctx = f.nested_ctx();
    let work = f.path("sandboxes");
    ctx.hidden_host_dirs = vec![
        work.clone(),
        // Below the work dir: the outer mask hides it already.
        work.join("pod/meta"),
        PathBuf::from("/run/tepui"),
        PathBuf::from("/run/tepui/"),
        // Never masked: not absolute, or the root itself.
        PathBuf::from("relative/dir"),
        PathBuf::from("/"),
    ];
    ctx.hidden_host_files = vec![PathBuf::from("/etc/tepui/executor.key")];
    let mut task = f.task();
    task.volumes = vec![sandbox_volume("shared", SandboxOf::Parent, "shared")];
    let spec = build_spec(&task, &ctx).unwrap();
    let masks: Vec<&Mount> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs") && m.destination() != Path::new("/dev"))
        .filter(|m| !m.destination().starts_with("/sys") && !m.destination().starts_with("/dev"))
        .collect();
    let mut masked: Vec<&Path> = masks.iter().map(|m| m.destination().as_path()).collect();
    masked.sort();
    assert_eq!(masked, vec![Path::new("/run/tepui"), work.as_path()]);

    // Mask, then the sandbox and volumes bound into it, then the mask
    // sealed read-only (a recursive bind of itself, seen from below the
    // root before pivot_root), so the sandbox stays writable.
    let sandbox = f.path("sandboxes/pod/tasks/web");
    let mask = mount_index(&spec, &work, "tmpfs");
    let own = mount_index(&spec, &sandbox, "bind");
    let volume = mount_index(&spec, &sandbox.join("shared"), "bind");
    let seal = mount_index(&spec, &work, "bind");
    assert!(
        mask < own && own < volume && volume < seal,
        "{mask} {own} {volume} {seal}"
    );
    let seal = &spec.mounts().as_ref().unwrap()[seal];
    assert_eq!(
        seal.source().as_deref(),
        Some(
            f.path("hostroot")
                .join(work.strip_prefix("/").unwrap())
                .as_path()
        )
    );
    for option in ["rbind", "ro"] {
        assert!(options(seal).contains(&option.to_string()), "{option}");
    }
    assert!(options(&spec.mounts().as_ref().unwrap()[own]).contains(&"rw".to_string()));
    assert_eq!(
        env_var(&spec, "MESOS_SANDBOX"),
        Some(sandbox.display().to_string())
    );

    // The agent's secret files: /dev/null over each (maskedPaths).
    let masked = spec
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .clone()
        .unwrap();
    assert!(masked.contains(&"/etc/tepui/executor.key".to_string()));
    assert!(masked.contains(&"/proc/kcore".to_string()));

    // An image container never sees the host's tree: nothing to mask.
    task.rootfs = Some(f.path("image"));
    let spec = build_spec(&task, &ctx).unwrap();
    let masked = spec
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .clone()
        .unwrap();
    assert_eq!(masked.len(), MASKED_PATHS.len());
    assert!(spec.mounts().as_ref().unwrap().iter().all(|m| {
        !m.destination().starts_with(&work) && !m.destination().starts_with("/run/tepui")
    }));
}

#[test]
fn image_containers_get_the_sandbox_at_mnt_mesos_sandbox() {
    let f = Fixture::new();
    let mut task = f.task();
    task.rootfs = Some(f.path("image"));
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().path(), &f.path("image"));
    let mount = mount_at(&spec, "/mnt/mesos/sandbox").unwrap();
    assert_eq!(
        mount.source().as_deref(),
        Some(f.path("sandboxes/pod/tasks/web").as_path())
    );
    assert_eq!(
        spec.process().as_ref().unwrap().cwd(),
        Path::new("/mnt/mesos/sandbox")
    );
    assert_eq!(
        env_var(&spec, "MESOS_SANDBOX").as_deref(),
        Some("/mnt/mesos/sandbox")
    );
}

// ---- rule 4: volumes -----------------------------------------------------------

#[test]
fn host_path_volumes() {
    let f = Fixture::new();
    let mut executor = f.executor();
    executor.volumes = vec![
        host_path_volume("cache", "/var/cache", VolumeMode::Ro),
        host_path_volume("/data", "/srv/data", VolumeMode::Rw),
    ];
    let spec = build_spec(&executor, &f.ctx()).unwrap();
    let cache = f.path("sandboxes/pod/cache");
    let ro = mount_at(&spec, cache.to_str().unwrap()).unwrap();
    assert_eq!(ro.source().as_deref(), Some(Path::new("/var/cache")));
    assert!(options(ro).contains(&"ro".to_string()));
    assert!(options(ro).contains(&"rslave".to_string()));
    let rw = mount_at(&spec, "/data").unwrap();
    assert!(options(rw).contains(&"rw".to_string()));

    // On the host filesystem an absolute mount point must exist there.
    executor.volumes = vec![host_path_volume("/nonexistent", "/srv", VolumeMode::Rw)];
    assert_eq!(
        build_spec(&executor, &f.ctx()),
        Err(SpecError::HostMountPointMissing {
            volume: "/nonexistent".into(),
            path: "/nonexistent".into()
        })
    );
    // In an image, the runtime creates it.
    executor.rootfs = Some(f.path("image"));
    assert!(build_spec(&executor, &f.ctx()).is_ok());
}

#[test]
fn sandbox_path_volumes() {
    let f = Fixture::new();
    let mut task = f.task();
    task.rootfs = Some(f.path("image"));
    task.volumes = vec![
        sandbox_volume("/shared", SandboxOf::Parent, "shared"),
        sandbox_volume("/data", SandboxOf::Own, "out"),
    ];
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(
        mount_at(&spec, "/shared").unwrap().source().as_deref(),
        Some(f.path("sandboxes/pod/shared").as_path())
    );
    assert_eq!(
        mount_at(&spec, "/data").unwrap().source().as_deref(),
        Some(f.path("sandboxes/pod/tasks/web/out").as_path())
    );
    assert_eq!(
        sandbox_volume_sources(&task, &f.nested_ctx()).unwrap(),
        [
            f.path("sandboxes/pod/shared"),
            f.path("sandboxes/pod/tasks/web/out")
        ]
    );

    // SELF needs an absolute container path; PARENT needs a parent.
    task.volumes = vec![sandbox_volume("rel", SandboxOf::Own, "x")];
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::InvalidVolume { volume, .. }) if volume == "rel"
    ));
    let mut executor = f.executor();
    executor.volumes = vec![sandbox_volume("/p", SandboxOf::Parent, "x")];
    assert!(matches!(
        build_spec(&executor, &f.ctx()),
        Err(SpecError::InvalidVolume { volume, .. }) if volume == "/p"
    ));
}

#[test]
fn volume_escapes_are_refused_naming_the_volume() {
    let f = Fixture::new();
    let cases = [
        sandbox_volume("/x", SandboxOf::Parent, "../../etc"),
        sandbox_volume("/x", SandboxOf::Parent, "/etc"),
        sandbox_volume("/x", SandboxOf::Own, "a/../../b"),
        sandbox_volume("../outside", SandboxOf::Parent, "shared"),
        sandbox_volume("a/../../outside", SandboxOf::Parent, "shared"),
        host_path_volume("/../etc", "/srv", VolumeMode::Rw),
        host_path_volume("/x", "/../etc", VolumeMode::Rw),
    ];
    for volume in cases {
        let mut task = f.task();
        let name = volume.container_path.clone();
        task.volumes = vec![volume.clone()];
        match build_spec(&task, &f.nested_ctx()) {
            Err(SpecError::VolumeEscape { volume: v, .. }) => assert_eq!(v, name),
            other => panic!("{volume:?}: {other:?}"),
        }
    }
    // Over the root or /proc, or onto the sandbox itself.
    for bad in ["/", "/proc/sys", ".", "a/.."] {
        let mut task = f.task();
        task.volumes = vec![host_path_volume(bad, "/srv", VolumeMode::Rw)];
        assert!(
            matches!(
                build_spec(&task, &f.nested_ctx()),
                Err(SpecError::InvalidVolume { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn sandbox_volume_symlinks_cannot_escape() {
    let f = Fixture::new();
    std::os::unix::fs::symlink("/etc", f.path("sandboxes/pod/evil")).unwrap();
    let mut task = f.task();
    task.volumes = vec![sandbox_volume("/x", SandboxOf::Parent, "evil")];
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::VolumeEscape { volume, .. }) if volume == "/x"
    ));
}

// ---- rule 5: security defaults ---------------------------------------------------

#[test]
fn security_defaults() {
    let f = Fixture::new();
    let spec = build_spec(&f.executor(), &f.ctx()).unwrap();
    let process = spec.process().clone().unwrap();
    assert_eq!(process.no_new_privileges(), Some(true));
    let caps = process.capabilities().clone().unwrap();
    let bounding = caps.bounding().clone().unwrap();
    assert_eq!(bounding, DEFAULT_CAPABILITIES.into_iter().collect());
    let linux = spec.linux().clone().unwrap();
    assert_eq!(
        linux.masked_paths().clone().unwrap().len(),
        MASKED_PATHS.len()
    );
    assert_eq!(
        linux.readonly_paths().clone().unwrap().len(),
        READONLY_PATHS.len()
    );
    assert!(linux.seccomp().is_some());
    let devices = linux
        .resources()
        .clone()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(!devices[0].allow());
    assert_eq!(
        options(mount_at(&spec, "/sys").unwrap()),
        ["nosuid", "noexec", "nodev", "ro"]
    );
    assert_eq!(
        mount_at(&spec, "/dev/pts").unwrap().typ().as_deref(),
        Some("devpts")
    );
    assert_eq!(
        mount_at(&spec, "/dev/mqueue").unwrap().typ().as_deref(),
        Some("mqueue")
    );
}

#[test]
fn capability_info_replaces_the_defaults() {
    let f = Fixture::new();
    let mut executor = f.executor();
    executor.linux.effective_capabilities = Some(vec!["NET_ADMIN".into(), "SYS_ADMIN".into()]);
    let spec = build_spec(&executor, &f.ctx()).unwrap();
    let caps = spec
        .process()
        .clone()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(
        caps.bounding().clone().unwrap(),
        [Capability::NetAdmin, Capability::SysAdmin]
            .into_iter()
            .collect()
    );
    // SYS_ADMIN reopens the mount syscalls in the seccomp profile.
    let seccomp = spec.linux().clone().unwrap().seccomp().clone().unwrap();
    assert!(
        !seccomp
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.names().contains(&"mount".to_string()))
    );

    executor.linux.bounding_capabilities = Some(vec!["NET_ADMIN".into()]);
    assert_eq!(
        build_spec(&executor, &f.ctx()),
        Err(SpecError::CapabilityNotInBoundingSet("SYS_ADMIN".into()))
    );
    executor.linux.bounding_capabilities = Some(vec!["CAP_TELEKINESIS".into()]);
    assert_eq!(
        build_spec(&executor, &f.ctx()),
        Err(SpecError::UnknownCapability("CAP_TELEKINESIS".into()))
    );

    executor.linux.bounding_capabilities = None;
    executor.linux.seccomp = SeccompMode::Unconfined;
    let spec = build_spec(&executor, &f.ctx()).unwrap();
    assert!(spec.linux().clone().unwrap().seccomp().is_none());
}

// ---- rule 6: rlimits and tty -------------------------------------------------

#[test]
fn rlimits_and_tty() {
    let f = Fixture::new();
    let mut task = f.task();
    task.rlimits = vec![
        RLimit {
            kind: "RLMT_CORE".into(),
            soft: None,
            hard: None,
        },
        RLimit {
            kind: "RLMT_NOFILE".into(),
            soft: Some(1024),
            hard: Some(2048),
        },
    ];
    task.tty = Some(Tty {
        window_size: Some(WindowSize {
            rows: 40,
            columns: 120,
        }),
    });
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    let process = spec.process().clone().unwrap();
    let rlimits = process.rlimits().clone().unwrap();
    assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitCore);
    assert_eq!(rlimits[0].hard(), u64::MAX);
    assert_eq!((rlimits[1].soft(), rlimits[1].hard()), (1024, 2048));
    assert_eq!(process.terminal(), Some(true));
    let size = process.console_size().unwrap();
    assert_eq!((size.height(), size.width()), (40, 120));

    // No rlimits: inherited; no tty: no terminal.
    let spec = build_spec(&f.task(), &f.nested_ctx()).unwrap();
    assert!(spec.process().clone().unwrap().rlimits().is_none());
    assert_eq!(spec.process().clone().unwrap().terminal(), Some(false));

    task.rlimits.push(RLimit {
        kind: "RLMT_CORE".into(),
        soft: Some(1),
        hard: Some(1),
    });
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::InvalidRlimit { .. })
    ));
    task.rlimits = vec![RLimit {
        kind: "RLMT_TIME_TRAVEL".into(),
        soft: None,
        hard: None,
    }];
    assert_eq!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::UnknownRlimit("RLMT_TIME_TRAVEL".into()))
    );
}

// ---- rule 7: resources ------------------------------------------------------------

#[test]
fn resources_only_for_nested_containers_with_their_own_cgroup() {
    let f = Fixture::new();
    let request = ResourceRequest {
        cpus: Some(1.0),
        cpus_limit: None,
        mem_mb: Some(256.0),
        mem_limit_mb: None,
    };
    let mut task = f.task();
    task.resources = request;
    let shared = build_spec(&task, &f.nested_ctx()).unwrap();
    let resources = shared.linux().clone().unwrap().resources().clone().unwrap();
    assert!(resources.cpu().is_none() && resources.memory().is_none());

    task.linux.share_cgroups = false;
    let own = build_spec(&task, &f.nested_ctx()).unwrap();
    let resources = own.linux().clone().unwrap().resources().clone().unwrap();
    assert_eq!(resources.cpu().clone().unwrap().shares(), Some(1024));
    assert_eq!(resources.memory().unwrap().limit(), Some(256 << 20));
    // request == limit: no OOM score.
    assert_eq!(own.process().clone().unwrap().oom_score_adj(), None);

    let mut executor = f.executor();
    executor.resources = request;
    let spec = build_spec(&executor, &f.ctx()).unwrap();
    assert!(
        spec.linux()
            .clone()
            .unwrap()
            .resources()
            .clone()
            .unwrap()
            .cpu()
            .is_none()
    );

    task.resources.mem_limit_mb = Some(Limit::Finite(128.0));
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::LimitBelowRequest {
            resource: "mem",
            ..
        })
    ));
}

#[test]
fn oom_score_needs_the_host_memory() {
    let f = Fixture::new();
    let mut task = f.task();
    task.resources.mem_mb = Some(1024.0);
    task.resources.mem_limit_mb = Some(Limit::Unlimited);
    let spec = build_spec(&task, &f.nested_ctx()).unwrap();
    assert_eq!(spec.process().clone().unwrap().oom_score_adj(), Some(875));
    let mut ctx = f.nested_ctx();
    ctx.host_memory_bytes = None;
    assert!(matches!(
        build_spec(&task, &ctx),
        Err(SpecError::MissingContext(_))
    ));
    // Executors keep the default.
    let mut executor = f.executor();
    executor.resources = task.resources;
    assert_eq!(
        build_spec(&executor, &f.ctx())
            .unwrap()
            .process()
            .clone()
            .unwrap()
            .oom_score_adj(),
        None
    );
}

// ---- kinds, context ----------------------------------------------------------

#[test]
fn kinds_must_match_the_container_id() {
    let f = Fixture::new();
    let mut executor = f.executor();
    executor.kind = ContainerKind::Task;
    assert!(matches!(
        build_spec(&executor, &f.ctx()),
        Err(SpecError::KindMismatch { kind: "task", .. })
    ));
    let mut task = f.task();
    task.kind = ContainerKind::Standalone;
    assert!(matches!(
        build_spec(&task, &f.nested_ctx()),
        Err(SpecError::KindMismatch {
            kind: "standalone",
            ..
        })
    ));
}

#[test]
fn cgroups_path_is_required() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.cgroups_path.clear();
    assert!(matches!(
        build_spec(&f.executor(), &ctx),
        Err(SpecError::MissingContext(what)) if what.contains("cgroupsPath")
    ));
}

#[test]
fn debug_containers_are_execs_into_their_parent() {
    let f = Fixture::new();
    let mut debug = f.task();
    debug.kind = ContainerKind::Debug;
    debug.command = Command::shell("ps");
    debug.env = vec![("MESOS_SANDBOX".into(), "/mnt/mesos/sandbox".into())];
    debug.tty = Some(Tty::default());
    assert_eq!(
        build_spec(&debug, &f.nested_ctx()),
        Err(SpecError::DebugContainerIsExec)
    );

    // The parent's root is our own process's here (/proc/<pid>/root = /).
    let mut ctx = f.nested_ctx();
    if let Some(parent) = ctx.parent.as_mut() {
        parent.init_pid = std::process::id() as i32;
        parent.cwd = Some(PathBuf::from("/mnt/mesos/sandbox"));
    }
    let process = build_process(&debug, &ctx).unwrap();
    assert_eq!(process.cwd(), Path::new("/mnt/mesos/sandbox"));
    assert_eq!(process.args().clone().unwrap(), ["/bin/sh", "-c", "ps"]);
    assert!(
        process
            .env()
            .clone()
            .unwrap()
            .contains(&"MESOS_SANDBOX=/mnt/mesos/sandbox".to_string())
    );
    assert_eq!(process.terminal(), Some(true));

    debug.volumes = vec![sandbox_volume("/x", SandboxOf::Own, "x")];
    assert!(matches!(
        build_process(&debug, &ctx),
        Err(SpecError::KindMismatch { kind: "debug", .. })
    ));
    debug.volumes.clear();
    debug.linux.ipc_mode = Some(IpcMode::Private);
    assert!(matches!(
        build_process(&debug, &ctx),
        Err(SpecError::KindMismatch { kind: "debug", .. })
    ));
    debug.linux.ipc_mode = None;
    debug.rootfs = Some(f.path("image"));
    assert!(matches!(
        build_process(&debug, &ctx),
        Err(SpecError::KindMismatch { kind: "debug", .. })
    ));
}

#[test]
fn launch_spec_round_trips_as_json() {
    let f = Fixture::new();
    let mut task = f.task();
    task.volumes
        .push(sandbox_volume("/shared", SandboxOf::Parent, "shared"));
    task.resources.mem_limit_mb = Some(Limit::Unlimited);
    task.resources.cpus_limit = Some(Limit::Finite(1.5));
    task.linux.ipc_mode = Some(IpcMode::Private);
    task.tty = Some(Tty::default());
    let json = serde_json::to_string(&task).unwrap();
    let back: LaunchSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, task);
    assert!(json.contains(r#""container_id":["pod","web"]"#), "{json}");
    assert!(json.contains(r#""of":"PARENT""#), "{json}");
    // Bad ids are refused when decoding, too.
    let bad = json.replace(r#"["pod","web"]"#, r#"["pod","../x"]"#);
    assert!(serde_json::from_str::<LaunchSpec>(&bad).is_err());
}

// ---- from_mesos --------------------------------------------------------------

fn mesos_id() -> mesos::ContainerId {
    mesos::ContainerId {
        value: "web".into(),
        parent: Some(Box::new(mesos::ContainerId {
            value: "pod".into(),
            parent: None,
        })),
    }
}

fn command_info() -> mesos::CommandInfo {
    mesos::CommandInfo {
        value: Some("/bin/echo".into()),
        arguments: vec!["echo".into(), "hi".into()],
        shell: Some(false),
        user: Some("alice".into()),
        environment: Some(mesos::Environment {
            variables: vec![mesos::environment::Variable {
                name: "GREETING".into(),
                r#type: Some(mesos::environment::variable::Type::Value as i32),
                value: Some("hello".into()),
                secret: None,
            }],
        }),
        ..Default::default()
    }
}

fn container_info() -> mesos::ContainerInfo {
    use mesos::capability_info::Capability as Cap;
    mesos::ContainerInfo {
        r#type: mesos::container_info::Type::Mesos as i32,
        linux_info: Some(mesos::LinuxInfo {
            effective_capabilities: Some(mesos::CapabilityInfo {
                capabilities: vec![Cap::NetAdmin as i32, Cap::Kill as i32],
            }),
            share_pid_namespace: Some(true),
            ipc_mode: Some(mesos::linux_info::IpcMode::Private as i32),
            shm_size: Some(32),
            share_cgroups: Some(false),
            ..Default::default()
        }),
        rlimit_info: Some(mesos::RLimitInfo {
            rlimits: vec![mesos::r_limit_info::RLimit {
                r#type: Some(mesos::r_limit_info::r_limit::Type::RlmtNofile as i32),
                soft: Some(100),
                hard: Some(200),
            }],
        }),
        tty_info: Some(mesos::TtyInfo {
            window_size: Some(mesos::tty_info::WindowSize {
                rows: 24,
                columns: 80,
            }),
        }),
        volumes: vec![
            mesos::Volume {
                mode: mesos::volume::Mode::Ro as i32,
                container_path: "/etc/app".into(),
                host_path: Some("/etc/app".into()),
                ..Default::default()
            },
            mesos::Volume {
                mode: mesos::volume::Mode::Rw as i32,
                container_path: "/legacy".into(),
                host_path: Some("relative/dir".into()),
                ..Default::default()
            },
            mesos::Volume {
                mode: mesos::volume::Mode::Rw as i32,
                container_path: "shared".into(),
                source: Some(mesos::volume::Source {
                    r#type: Some(mesos::volume::source::Type::SandboxPath as i32),
                    sandbox_path: Some(mesos::volume::source::SandboxPath {
                        r#type: Some(mesos::volume::source::sandbox_path::Type::Parent as i32),
                        path: "shared".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[test]
fn from_mesos_converts_everything() {
    let info = container_info();
    let launch = LaunchSpec::from_mesos(
        &mesos_id(),
        ContainerKind::Task,
        &command_info(),
        Some(&info),
        "/var/lib/tepui/sandbox",
    )
    .unwrap();
    assert_eq!(launch.container_id.parts(), ["pod", "web"]);
    assert_eq!(
        launch.command,
        Command::exec("/bin/echo", vec!["echo".into(), "hi".into()])
    );
    assert_eq!(launch.user.as_deref(), Some("alice"));
    assert_eq!(
        launch.environment,
        [("GREETING".to_string(), "hello".to_string())]
    );
    assert_eq!(
        launch.linux.effective_capabilities,
        Some(vec!["NET_ADMIN".to_string(), "KILL".to_string()])
    );
    assert!(launch.linux.share_pid_namespace);
    assert!(!launch.linux.share_cgroups);
    assert_eq!(launch.linux.ipc_mode, Some(IpcMode::Private));
    assert_eq!(launch.linux.shm_size_mb, Some(32));
    assert_eq!(
        launch.rlimits,
        [RLimit {
            kind: "RLMT_NOFILE".into(),
            soft: Some(100),
            hard: Some(200)
        }]
    );
    assert_eq!(
        launch.tty,
        Some(Tty {
            window_size: Some(WindowSize {
                rows: 24,
                columns: 80
            })
        })
    );
    assert_eq!(
        launch.volumes[0].source,
        VolumeSource::HostPath {
            path: "/etc/app".into(),
            propagation: Propagation::HostToContainer
        }
    );
    assert_eq!(launch.volumes[0].mode, VolumeMode::Ro);
    assert_eq!(
        launch.volumes[1].source,
        VolumeSource::SandboxPath {
            of: SandboxOf::Own,
            path: "relative/dir".into()
        }
    );
    assert_eq!(
        launch.volumes[2].source,
        VolumeSource::SandboxPath {
            of: SandboxOf::Parent,
            path: "shared".into()
        }
    );

    // Shell is Mesos's default.
    let shell = mesos::CommandInfo {
        value: Some("echo hi".into()),
        ..Default::default()
    };
    let launch =
        LaunchSpec::from_mesos(&mesos_id(), ContainerKind::Task, &shell, None, "/s").unwrap();
    assert_eq!(launch.command, Command::shell("echo hi"));
}

#[test]
fn from_mesos_refuses_what_it_cannot_run() {
    let from = |command: &mesos::CommandInfo, info: Option<&mesos::ContainerInfo>| {
        LaunchSpec::from_mesos(&mesos_id(), ContainerKind::Task, command, info, "/s")
    };

    let mut secret = command_info();
    if let Some(env) = secret.environment.as_mut() {
        env.variables[0].r#type = Some(mesos::environment::variable::Type::Secret as i32);
    }
    assert_eq!(
        from(&secret, None),
        Err(SpecError::SecretEnvironment {
            name: "GREETING".into()
        })
    );

    let no_value = mesos::CommandInfo {
        shell: Some(false),
        arguments: vec!["ls".into()],
        ..Default::default()
    };
    assert_eq!(from(&no_value, None), Err(SpecError::MissingExecutable));
    assert_eq!(
        from(&mesos::CommandInfo::default(), None),
        Err(SpecError::MissingShellCommand)
    );

    let mut docker = container_info();
    docker.r#type = mesos::container_info::Type::Docker as i32;
    assert!(matches!(
        from(&command_info(), Some(&docker)),
        Err(SpecError::Unsupported(_))
    ));

    let mut both = container_info();
    #[allow(deprecated)]
    if let Some(linux) = both.linux_info.as_mut() {
        linux.capability_info = Some(mesos::CapabilityInfo {
            capabilities: vec![],
        });
    }
    assert_eq!(
        from(&command_info(), Some(&both)),
        Err(SpecError::ConflictingCapabilityFields)
    );

    let mut unknown_cap = container_info();
    if let Some(linux) = unknown_cap.linux_info.as_mut() {
        linux.effective_capabilities = Some(mesos::CapabilityInfo {
            capabilities: vec![9999],
        });
    }
    assert_eq!(
        from(&command_info(), Some(&unknown_cap)),
        Err(SpecError::UnknownCapability("#9999".into()))
    );

    let mut unknown_rlimit = container_info();
    if let Some(r) = unknown_rlimit.rlimit_info.as_mut() {
        r.rlimits[0].r#type = Some(77);
    }
    assert_eq!(
        from(&command_info(), Some(&unknown_rlimit)),
        Err(SpecError::UnknownRlimit("type 77".into()))
    );

    let mut secret_volume = container_info();
    secret_volume.volumes = vec![mesos::Volume {
        mode: mesos::volume::Mode::Ro as i32,
        container_path: "/secret".into(),
        source: Some(mesos::volume::Source {
            r#type: Some(mesos::volume::source::Type::Secret as i32),
            ..Default::default()
        }),
        ..Default::default()
    }];
    assert_eq!(
        from(&command_info(), Some(&secret_volume)),
        Err(SpecError::UnsupportedVolume {
            volume: "/secret".into(),
            kind: "SECRET"
        })
    );

    let mut escaping = container_info();
    if let Some(p) = escaping.volumes[2]
        .source
        .as_mut()
        .and_then(|s| s.sandbox_path.as_mut())
    {
        p.path = "../../../etc".into();
    }
    assert!(matches!(
        from(&command_info(), Some(&escaping)),
        Err(SpecError::VolumeEscape { volume, .. }) if volume == "shared"
    ));

    let mut shm_shared = container_info();
    if let Some(linux) = shm_shared.linux_info.as_mut() {
        linux.ipc_mode = Some(mesos::linux_info::IpcMode::ShareParent as i32);
    }
    assert_eq!(
        from(&command_info(), Some(&shm_shared)),
        Err(SpecError::ShmSizeRequiresPrivateIpc)
    );

    let bad_id = mesos::ContainerId {
        value: "../etc".into(),
        parent: None,
    };
    assert!(matches!(
        LaunchSpec::from_mesos(
            &bad_id,
            ContainerKind::Executor,
            &command_info(),
            None,
            "/s"
        ),
        Err(SpecError::InvalidContainerId(_))
    ));
}

#[test]
fn resource_request_from_mesos() {
    let scalar = |name: &str, value: f64| mesos::Resource {
        name: name.into(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value }),
        ..Default::default()
    };
    let resources = [
        scalar("cpus", 0.5),
        scalar("cpus", 0.25),
        scalar("mem", 128.0),
        scalar("disk", 1024.0),
    ];
    let limits = BTreeMap::from([
        (
            "cpus".to_string(),
            mesos::value::Scalar {
                value: f64::INFINITY,
            },
        ),
        ("mem".to_string(), mesos::value::Scalar { value: 256.0 }),
    ]);
    let request = ResourceRequest::from_mesos(&resources, &limits).unwrap();
    assert_eq!(request.cpus, Some(0.75));
    assert_eq!(request.cpus_limit, Some(Limit::Unlimited));
    assert_eq!(request.mem_mb, Some(128.0));
    assert_eq!(request.mem_limit_mb, Some(Limit::Finite(256.0)));

    let below = BTreeMap::from([("mem".to_string(), mesos::value::Scalar { value: 64.0 })]);
    assert!(matches!(
        ResourceRequest::from_mesos(&resources, &below),
        Err(SpecError::LimitBelowRequest {
            resource: "mem",
            ..
        })
    ));
}
