//! Container networks through CNI (issue 22), end to end as root: a real
//! `tepui master` and `tepui agent` with `--network_cni_*`, Debian's real
//! plugins (`bridge`, `host-local`, `portmap` from /usr/lib/cni), and a
//! JSON scheduler. Each test owns its network: a bridge named
//! `tpcni<pid><n>` on a private 10.88.<k>.0/24 subnet, host-local leases
//! under /var/lib/cni/networks/tepui-test-<pid>-<n>; no other interface
//! is touched, and everything is removed at the end (the leftover check,
//! scripts/check-leftovers.sh, lists what escapes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::json_scheduler::{JsonScheduler, scalar};
use common::mesos_cluster::{free_port, get_json, http, wait_until};
use serde_json::{Value, json};

static NETWORKS: AtomicUsize = AtomicUsize::new(0);

/// The plain-http test registry (scripts/oci-testenv.sh).
fn registry() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oci-testenv/env.json");
    let path = if path.exists() {
        path
    } else {
        PathBuf::from("/work/main/target/oci-testenv/env.json")
    };
    let env: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    env["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A test's own CNI network and the agent + master using it.
struct Cluster {
    dir: PathBuf,
    cgroup_root: String,
    master: Child,
    agent: Option<Child>,
    master_addr: String,
    agent_port: u16,
    agent_args: Vec<String>,
    /// The network's name (and its host-local lease dir's).
    network: String,
    bridge: String,
    /// `10.88.<k>`
    subnet: String,
    plugins: PathBuf,
}

impl Cluster {
    /// `range` limits host-local to `.first`-`.last` of the subnet.
    fn start(range: (u8, u8)) -> Self {
        let n = NETWORKS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let network = format!("tepui-test-{pid}-{n}");
        let bridge = format!("tpcni{}{n}", pid % 100_000);
        let subnet = format!("10.88.{}", (pid as usize % 60) * 4 + n % 4);
        let dir = tempfile::tempdir().unwrap().keep();
        let config = dir.join("cni.d");
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&plugins).unwrap();
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": network,
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true,
                 "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{
                     "subnet": format!("{subnet}.0/24"),
                     "rangeStart": format!("{subnet}.{}", range.0),
                     "rangeEnd": format!("{subnet}.{}", range.1)}]]}},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        });
        std::fs::write(
            config.join("10-test.conflist"),
            serde_json::to_vec_pretty(&conflist).unwrap(),
        )
        .unwrap();
        let cgroup_root = format!("tepui-test-cni-{pid}-{n}");
        let (master_port, agent_port) = (free_port(), free_port());
        let master = Command::new(common::tepui_bin())
            .args([
                "master",
                "--ip=127.0.0.1",
                &format!("--port={master_port}"),
                &format!("--work_dir={}", dir.join("master").display()),
                "--allocation_interval=100ms",
            ])
            .env(
                "TEPUI_LOG",
                std::env::var("CNI_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("master.log")).unwrap())
            .spawn()
            .unwrap();
        let agent_args = vec![
            "agent".to_string(),
            format!("--master=127.0.0.1:{master_port}"),
            // Pods reach the agent over their bridge: not loopback only.
            "--ip=0.0.0.0".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:8;mem:8192;disk:1024".into(),
            "--image_providers=docker".into(),
            format!("--docker_insecure_registries={}", registry()),
            format!("--network_cni_config_dir={}", config.display()),
            format!(
                "--network_cni_plugins_dir={}:/usr/lib/cni",
                plugins.display()
            ),
            "--network_cni_plugin_timeout=3secs".into(),
            "--executor_shutdown_grace_period=1secs".into(),
        ];
        let mut cluster = Cluster {
            dir,
            cgroup_root,
            master,
            agent: None,
            master_addr: format!("127.0.0.1:{master_port}"),
            agent_port,
            agent_args,
            network,
            bridge,
            subnet,
            plugins,
        };
        cluster.start_agent();
        let master = cluster.master_addr.clone();
        wait_until("the master listens", || TcpStream::connect(&master).is_ok());
        wait_until("the agent registered", || {
            get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        });
        cluster
    }

    fn start_agent(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        self.agent = Some(
            Command::new(common::tepui_bin())
                .args(&self.agent_args)
                .env(
                    "TEPUI_LOG",
                    std::env::var("CNI_TEST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    fn kill_agent(&mut self) {
        let mut agent = self.agent.take().unwrap();
        let _ = agent.kill();
        let _ = agent.wait();
    }

    fn base(&self) -> String {
        format!("http://{}", self.master_addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    fn cni_root(&self) -> PathBuf {
        self.dir.join("agent/run/cni")
    }

    /// Pods with CNI state (netns file, checkpoints) on the agent.
    fn cni_pods(&self) -> Vec<String> {
        std::fs::read_dir(self.cni_root())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// host-local's lease files (one per address handed out).
    fn leases(&self) -> Vec<String> {
        std::fs::read_dir(Path::new("/var/lib/cni/networks").join(&self.network))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The host ends of veths on this test's bridge.
    fn veths(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// portmap's per-container NAT chains.
    fn dnat_chains(&self) -> usize {
        let out = Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("-N CNI-DN-"))
            .count()
    }

    /// Nothing of any pod is left: no CNI dir (netns file), lease, veth.
    fn assert_released(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(self.cni_pods().is_empty() && self.leases().is_empty() && self.veths().is_empty()) {
            assert!(
                Instant::now() < deadline,
                "left: pods {:?}, leases {:?}, veths {:?}",
                self.cni_pods(),
                self.leases(),
                self.veths()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn script_plugin(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.plugins.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn add_network(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join("cni.d").join(file), text).unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(120).collect();
            eprintln!("agent log (last lines):");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "for f in $(find {} -name stderr -o -name supervisor.log); do echo \"== $f\"; tail -n 15 $f; done",
                    self.dir.display()
                ))
                .output()
                .unwrap();
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
            let agent = format!("127.0.0.1:{}", self.agent_port);
            let state = std::panic::catch_unwind(|| get_json(&agent, "/state"));
            eprintln!(
                "agent state: {:?}",
                state.map(|s| s["frameworks"].to_string())
            );
            let m = self.master_addr.clone();
            let tasks = std::panic::catch_unwind(move || get_json(&m, "/master/tasks"));
            eprintln!("master tasks: {:?}", tasks.map(|t| t.to_string()));
            let master = std::fs::read_to_string(self.dir.join("master.log")).unwrap_or_default();
            eprintln!(
                "master log: {}",
                master.lines().rev().take(80).collect::<Vec<_>>().join("\n")
            );
        }
        let frameworks = std::panic::catch_unwind(|| {
            get_json(&self.master_addr, "/master/frameworks")["frameworks"].clone()
        });
        for f in frameworks
            .ok()
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let body = format!("frameworkId={}", f["id"].as_str().unwrap_or_default());
            let master = self.master_addr.clone();
            let _ =
                std::panic::catch_unwind(move || http(&master, "POST", "/master/teardown", &body));
        }
        if let Some(mut agent) = self.agent.take() {
            let run = self.dir.join("agent/run");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline
                && (common::processes_mentioning(&run.to_string_lossy())
                    .iter()
                    .any(|(pid, _)| *pid != agent.id())
                    || !self.cni_pods().is_empty())
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: kill has no memory preconditions; the pid is our child.
            unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
            let _ = agent.wait();
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
        // What a failed test may have left of its network: netns binds,
        // the bridge (plugins never delete it), the lease dir.
        for pod in self.cni_pods() {
            let ns = self.cni_root().join(pod).join("ns");
            let _ = nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/var/lib/cni/networks").join(&self.network));
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("leaving {}: {e}", self.dir.display());
        }
    }
}

/// A default-executor task group whose pod joins `network` (with
/// `mappings` host->container ports), one busybox task running `command`.
fn pod(
    executor: &str,
    agent: &Value,
    network: &str,
    mappings: &[(u32, u32)],
    task: &str,
    command: &str,
    image: Option<&str>,
) -> Value {
    let mut t = json!({"name": task, "task_id": {"value": task}, "agent_id": agent,
        "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)],
        "command": {"value": command}});
    if let Some(image) = image {
        t["container"] = json!({"type": "MESOS", "mesos": {"image": {
            "type": "DOCKER", "docker": {"name": image}}}});
    }
    let mappings: Vec<Value> = mappings
        .iter()
        .map(|(h, c)| json!({"host_port": h, "container_port": c, "protocol": "tcp"}))
        .collect();
    json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"type": "DEFAULT", "executor_id": {"value": executor},
            "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)],
            "container": {"type": "MESOS", "hostname": executor,
                "network_infos": [{"name": network,
                    "labels": {"labels": [{"key": "tenant", "value": executor}]},
                    "port_mappings": mappings}]}},
        "task_group": {"tasks": [t]}}})
}

/// A command task on `network`.
fn command_on(id: &str, agent: &Value, network: &str, command: &str) -> Value {
    json!({"type": "LAUNCH", "launch": {"task_infos": [{
        "name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)],
        "command": {"value": command},
        "container": {"type": "MESOS", "network_infos": [{"name": network}]}}]}})
}

async fn agent_of(s: &mut JsonScheduler) -> (Value, Value) {
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    (offer["agent_id"].clone(), offer["id"].clone())
}

async fn launch(s: &mut JsonScheduler, offer: &Value, operations: Vec<Value>) {
    let call = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer],
        "operations": operations}});
    assert_eq!(s.call(call).await, 202);
}

/// Updates until `task` reaches `state` (panics on another terminal one).
async fn until(s: &mut JsonScheduler, task: &str, state: &str) -> Value {
    loop {
        let u = s.update().await;
        if u["task_id"]["value"] != task {
            continue;
        }
        let got = u["state"].as_str().unwrap_or_default();
        if got == state {
            return u;
        }
        assert!(
            matches!(got, "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"),
            "{task}: expected {state}, got {u}"
        );
    }
}

/// Updates until every task of `tasks` reached `state` (the updates of
/// one are not lost while waiting for another); their updates.
async fn all(
    s: &mut JsonScheduler,
    tasks: &[&str],
    state: &str,
) -> std::collections::BTreeMap<String, Value> {
    let mut reached = std::collections::BTreeMap::new();
    while reached.len() < tasks.len() {
        let u = s.update().await;
        let id = u["task_id"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !tasks.contains(&id.as_str()) {
            continue;
        }
        let got = u["state"].as_str().unwrap_or_default();
        if got == state {
            reached.insert(id, u);
        } else {
            assert!(
                matches!(got, "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"),
                "{id}: expected {state}, got {u}"
            );
        }
    }
    reached
}

/// The pod's IP of a status update (container_status.network_infos).
fn ip_of(status: &Value, network: &str) -> String {
    let infos = &status["container_status"]["network_infos"];
    let info = infos
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == network))
        .unwrap_or_else(|| panic!("no network_info for {network}: {status}"));
    info["ip_addresses"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What a plain TCP request to `addr` answers (empty until it listens).
fn fetch(addr: &str) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
    else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

fn eventually_serves(addr: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = fetch(addr);
        if got.contains(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never answered {expected:?} (last: {got:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A busybox server on :8080 answering `name`, its host name and its
/// effective capabilities (`CapEff`, hex) to each connection.
fn server(name: &str) -> String {
    format!(
        "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from {name} on %s\\ncaps %s\\n' \"$(hostname)\" \"$(grep CapEff /proc/self/status | cut -f2)\" | nc -l -p 8080; done"
    )
}

/// A pod on a CNI network runs without NET_RAW (it could forge another
/// pod's source address, which names callers to the agent) but keeps the
/// rest of the default set.
fn assert_no_net_raw(addr: &str) {
    // The busybox loop restarts `nc` after each answer: retry until one
    // comes (as `eventually_serves` does).
    eventually_serves(addr, "caps ");
    let deadline = Instant::now() + Duration::from_secs(30);
    let caps = loop {
        let got = fetch(addr);
        if let Some(caps) = got.lines().find_map(|l| l.strip_prefix("caps ")) {
            break caps.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{addr}: no caps line (last: {got:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let caps = u64::from_str_radix(caps.trim(), 16).unwrap();
    const NET_RAW: u64 = 1 << 13;
    const CHOWN: u64 = 1;
    assert_eq!(caps & NET_RAW, 0, "{addr}: CapEff {caps:x} has NET_RAW");
    assert_ne!(
        caps & CHOWN,
        0,
        "{addr}: CapEff {caps:x} lost the default set"
    );
}

/// The journey: two pods on one bridge network, both listening on :8080,
/// each at its own address; a portmap from a host port reaches one from
/// the host's loopback; the IP is in TASK_RUNNING and /master/state; a
/// kill runs DEL (no lease, veth, NAT chain or netns left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_on_one_network_get_their_own_addresses_and_port_mappings() {
    if !common::require_root("two_pods_on_one_network_get_their_own_addresses_and_port_mappings") {
        return;
    }
    let cluster = Cluster::start((10, 50));
    let image = format!("{}/busybox:latest", registry());
    let host_port = 20000 + (std::process::id() % 20000);
    let mut s = JsonScheduler::subscribe(&cluster.base(), "cni-journey").await;
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![
            pod(
                "pod-a",
                &agent,
                &cluster.network,
                &[(host_port, 8080)],
                "web-a",
                &server("a"),
                Some(&image),
            ),
            pod(
                "pod-b",
                &agent,
                &cluster.network,
                &[],
                "web-b",
                &server("b"),
                Some(&image),
            ),
        ],
    )
    .await;
    let running = all(&mut s, &["web-a", "web-b"], "TASK_RUNNING").await;
    let (running_a, running_b) = (&running["web-a"], &running["web-b"]);
    let (ip_a, ip_b) = (
        ip_of(running_a, &cluster.network),
        ip_of(running_b, &cluster.network),
    );
    assert_ne!(ip_a, ip_b);
    for ip in [&ip_a, &ip_b] {
        assert!(
            ip.starts_with(&format!("{}.", cluster.subnet)),
            "{ip}: {running_a}"
        );
    }
    let labels = &running_a["container_status"]["network_infos"][0]["labels"]["labels"][0];
    assert_eq!(labels["value"], "pod-a", "{running_a}");
    assert_eq!(cluster.leases().len(), 2);
    assert_eq!(cluster.veths().len(), 2);

    // Same port, own address, own hostname (ContainerInfo.hostname).
    eventually_serves(&format!("{ip_a}:8080"), "hello from a on pod-a");
    eventually_serves(&format!("{ip_b}:8080"), "hello from b on pod-b");
    assert_no_net_raw(&format!("{ip_a}:8080"));
    // portmap: host port -> pod a's :8080, from the host's loopback.
    eventually_serves(&format!("127.0.0.1:{host_port}"), "hello from a");

    // /master/state shows the address in the task's statuses.
    let state = get_json(&cluster.master_addr, "/master/state");
    let text = state.to_string();
    assert!(
        text.contains(&format!("\"ip_address\":\"{ip_a}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"ip_address\":\"{ip_b}\"")),
        "{text}"
    );
    // ... and so does the agent's own state (the host's caller is an operator).
    let agent_state = get_json(
        &format!("127.0.0.1:{}", cluster.agent_port),
        "/slave(1)/state",
    )
    .to_string();
    assert!(
        agent_state.contains(&format!("\"ip_address\":\"{ip_a}\"")),
        "{agent_state}"
    );

    // Killing pod a's task ends its group: DEL releases its address, veth
    // and port mapping; pod b keeps serving.
    let chains_before = cluster.dnat_chains();
    let kill = json!({"type": "KILL", "kill": {"task_id": {"value": "web-a"}, "agent_id": agent}});
    assert_eq!(s.call(kill).await, 202);
    until(&mut s, "web-a", "TASK_KILLED").await;
    wait_until("pod a's lease and veth are released", || {
        cluster.leases() == [ip_b.clone()]
            && cluster.veths().len() == 1
            && cluster.cni_pods().len() == 1
    });
    assert!(
        cluster.dnat_chains() < chains_before,
        "portmap's chain of pod a is gone"
    );
    assert!(fetch(&format!("127.0.0.1:{host_port}")).is_empty());
    eventually_serves(&format!("{ip_b}:8080"), "hello from b");

    let teardown = json!({"type": "TEARDOWN"});
    assert_eq!(s.call(teardown).await, 202);
    cluster.assert_released();
}

/// The agent is SIGKILLed, the pod dies while it is away; the restarted
/// agent runs DEL for it (lease, veth, netns file released).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_died_while_the_agent_was_down_is_released_at_recovery() {
    if !common::require_root("a_pod_that_died_while_the_agent_was_down_is_released_at_recovery") {
        return;
    }
    let mut cluster = Cluster::start((10, 50));
    let mut s = JsonScheduler::subscribe(&cluster.base(), "cni-recovery").await;
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![pod(
            "pod-r",
            &agent,
            &cluster.network,
            &[],
            "sleeper",
            "sleep 1000",
            None,
        )],
    )
    .await;
    let running = until(&mut s, "sleeper", "TASK_RUNNING").await;
    let ip = ip_of(&running, &cluster.network);
    assert_eq!(cluster.leases(), std::slice::from_ref(&ip));
    cluster.kill_agent();
    // The whole pod dies meanwhile: supervisor, executor, task (its
    // netns stays bound, as after any crash short of a reboot).
    for (pid, _) in common::processes_mentioning(&cluster.dir.join("agent/run").to_string_lossy()) {
        // SAFETY: signalling a pid just read from /proc.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    for cgroup in common::cgroups_named(&cluster.cgroup_root) {
        for pid in std::fs::read_to_string(cgroup.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            // SAFETY: as above.
            unsafe { libc::kill(pid.trim().parse().unwrap_or(0), libc::SIGKILL) };
        }
    }
    wait_until("the pod is dead", || {
        !common::sleeping_in(&cluster.cgroup_root)
    });
    assert_eq!(cluster.leases(), [ip], "nothing released it yet");
    cluster.start_agent();
    let ended = loop {
        let u = s.update().await;
        if u["task_id"]["value"] == "sleeper"
            && !matches!(u["state"].as_str(), Some("TASK_RUNNING" | "TASK_STARTING"))
        {
            break u;
        }
    };
    assert!(
        matches!(
            ended["state"].as_str(),
            Some("TASK_FAILED" | "TASK_LOST" | "TASK_GONE")
        ),
        "{ended}"
    );
    cluster.assert_released();
    assert!(
        cluster.log().contains("CNI DEL"),
        "the restarted agent ran DEL:\n{}",
        cluster.log()
    );
}

/// Bad input: each launch fails TASK_FAILED / REASON_CONTAINER_LAUNCH_FAILED
/// with a message naming the network, the plugin and its error, and leaves
/// no netns, veth or lease behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_networks_fail_the_launch_naming_network_plugin_and_error() {
    if !common::require_root("bad_networks_fail_the_launch_naming_network_plugin_and_error") {
        return;
    }
    // One address only: the second pod exhausts the range.
    let cluster = Cluster::start((10, 10));
    cluster.add_network("20-broken.conf", "{ this is not json");
    cluster.add_network(
        "30-missing.conf",
        r#"{"cniVersion":"1.0.0","name":"missing-plugin","type":"no-such-plugin"}"#,
    );
    cluster.script_plugin(
        "failing",
        r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":100,"msg":"the test plugin refuses","details":"on purpose"}'; exit 1"#,
    );
    cluster.add_network(
        "40-failing.conf",
        r#"{"cniVersion":"1.0.0","name":"failing","type":"failing"}"#,
    );
    cluster.script_plugin("hanging", "sleep 600; sleep 600");
    cluster.add_network(
        "50-hanging.conf",
        r#"{"cniVersion":"1.0.0","name":"hanging","type":"hanging"}"#,
    );
    let mut s = JsonScheduler::subscribe(&cluster.base(), "cni-bad").await;
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![
            command_on("unknown", &agent, "no-such-network", "sleep 1000"),
            command_on("missing", &agent, "missing-plugin", "sleep 1000"),
            command_on("failing", &agent, "failing", "sleep 1000"),
            command_on("hanging", &agent, "hanging", "sleep 1000"),
            command_on("first", &agent, &cluster.network, "sleep 1000"),
        ],
    )
    .await;
    let mut failed = std::collections::BTreeMap::new();
    let mut first_running = false;
    while failed.len() < 4 || !first_running {
        let u = s.update().await;
        let id = u["task_id"]["value"].as_str().unwrap().to_string();
        match u["state"].as_str().unwrap() {
            "TASK_FAILED" => {
                failed.insert(id, u);
            }
            "TASK_RUNNING" if id == "first" => first_running = true,
            _ => {}
        }
    }
    let expect = |id: &str, parts: &[&str]| {
        let u = &failed[id];
        assert_eq!(u["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{u}");
        let message = u["message"].as_str().unwrap();
        for part in parts {
            assert!(message.contains(part), "{id}: {message:?} lacks {part:?}");
        }
    };
    expect(
        "unknown",
        &["'no-such-network'", "20-broken.conf", "not JSON"],
    );
    expect(
        "missing",
        &["'missing-plugin'", "'no-such-plugin'", "not found"],
    );
    expect(
        "failing",
        &[
            "'failing'",
            "plugin 'failing'",
            "the test plugin refuses (on purpose)",
        ],
    );
    expect("hanging", &["'hanging'", "plugin 'hanging'", "timed out"]);
    // The range's only address is taken: the next pod cannot have one.
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![command_on("second", &agent, &cluster.network, "sleep 1000")],
    )
    .await;
    let u = until(&mut s, "second", "TASK_FAILED").await;
    let message = u["message"].as_str().unwrap();
    assert_eq!(u["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{u}");
    for part in [
        cluster.network.as_str(),
        "plugin 'bridge'",
        "no IP addresses available",
    ] {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
    // Only the first pod holds anything; no hanging plugin is left.
    assert_eq!(cluster.cni_pods().len(), 1, "{:?}", cluster.cni_pods());
    assert_eq!(cluster.leases().len(), 1);
    assert_eq!(cluster.veths().len(), 1);
    let hanging = cluster.plugins.join("hanging");
    assert!(
        common::processes_mentioning(&hanging.to_string_lossy()).is_empty(),
        "the hanging plugin was killed"
    );
    let teardown = json!({"type": "TEARDOWN"});
    assert_eq!(s.call(teardown).await, 202);
    cluster.assert_released();
}

/// Tenant safety over the bridge: a pod on a CNI network reaches the agent
/// from its own address, which a sock_diag lookup in the agent's namespace
/// cannot see; the agent names the pod by that address and confines it,
/// so it cannot kill or launch into another tenant's container, nor list
/// the agent's state, as a remote operator could.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_on_a_cni_network_is_no_operator_of_the_agent() {
    if !common::require_root("a_pod_on_a_cni_network_is_no_operator_of_the_agent") {
        return;
    }
    let cluster = Cluster::start((10, 50));
    let image = format!("{}/busybox:latest", registry());
    let mut s = JsonScheduler::subscribe(&cluster.base(), "cni-tenants").await;
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![pod(
            "victim",
            &agent,
            &cluster.network,
            &[],
            "victim-task",
            "sleep 1000",
            None,
        )],
    )
    .await;
    let victim = until(&mut s, "victim-task", "TASK_RUNNING").await;
    let victim_container = victim["container_status"]["container_id"].clone();
    let victim_pod = victim_container["parent"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let agent_ip = {
        let state = get_json(&cluster.master_addr, "/master/state");
        let pid = state["slaves"][0]["pid"].as_str().unwrap().to_string();
        pid.split('@')
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string()
    };
    let url = format!("http://{agent_ip}:{}", cluster.agent_port);
    let post = |body: Value| {
        format!(
            "echo {name}; wget -q -O- --header 'Content-Type: application/json' --post-data '{body}' {url}/api/v1 2>&1; echo",
            name = body["type"].as_str().unwrap(),
        )
    };
    let attacks = [
        post(json!({"type": "KILL_CONTAINER", "kill_container": {"container_id": victim_container}})),
        post(json!({"type": "KILL_CONTAINER", "kill_container": {"container_id": {"value": victim_pod}}})),
        post(json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION", "launch_nested_container_session": {
            "container_id": {"value": "evil", "parent": {"value": victim_pod}},
            "command": {"value": "id"}}})),
        post(json!({"type": "GET_STATE"})),
        format!("echo STATE; wget -q -O- {url}/state 2>&1; echo; echo DONE"),
    ]
    .join("; ");
    let (agent, offer) = agent_of(&mut s).await;
    launch(
        &mut s,
        &offer,
        vec![pod(
            "attacker",
            &agent,
            &cluster.network,
            &[],
            "attacker-task",
            &format!("{attacks}; sleep 1000"),
            Some(&image),
        )],
    )
    .await;
    let attacker = until(&mut s, "attacker-task", "TASK_RUNNING").await;
    let attacker_ip = ip_of(&attacker, &cluster.network);
    let sandbox = find_file(&cluster.dir.join("agent/work/slaves"), "attacker-task");
    let out_path = sandbox.join("stdout");
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        if out.contains("DONE") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "the attacker's calls never ended: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // busybox wget prints the status line of a refusal.
    let refusals = out.matches("403 Forbidden").count();
    eprintln!("attacker output:\n{out}");
    assert!(refusals >= 5, "every call refused with 403:\n{out}");
    assert!(!out.contains("\"get_state\""), "no state leaked:\n{out}");
    // The victim still runs.
    let state = get_json(&cluster.master_addr, "/master/state").to_string();
    assert!(state.contains("victim-task"));
    let victim_state = get_json(&cluster.master_addr, "/master/tasks");
    let running = victim_state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "victim-task" && t["state"] == "TASK_RUNNING");
    assert!(running, "{victim_state}");
    assert!(attacker_ip.starts_with(&format!("{}.", cluster.subnet)));
    let teardown = json!({"type": "TEARDOWN"});
    assert_eq!(s.call(teardown).await, 202);
    cluster.assert_released();
}

/// The sandbox dir of a task group's task (`.../tasks/<task id>`).
fn find_file(root: &Path, task: &str) -> PathBuf {
    fn walk(dir: &Path, task: &str, depth: usize) -> Option<PathBuf> {
        if depth > 12 {
            return None;
        }
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if entry.file_name() == task && path.parent()?.ends_with("tasks") {
                return Some(path);
            }
            if entry.file_type().ok()?.is_dir()
                && let Some(found) = walk(&path, task, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }
    let mut found = None;
    wait_until("the task's sandbox exists", || {
        found = walk(root, task, 0);
        found.is_some()
    });
    found.unwrap()
}

/// The journey with a scheduler tepui did not write: pymesos (PyPI, JSON
/// codec; tests/journeys/pymesos/journey.py, which scripts/deps.sh installs
/// as `install_journey_clients`) launches a task group whose executor
/// names the network; the pod serves at its own address, which
/// /master/state reports, and its teardown releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pymesos_framework_puts_a_pod_on_a_cni_network() {
    if !common::require_root("a_pymesos_framework_puts_a_pod_on_a_cni_network") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/journeys/venv/bin/python3");
    assert!(
        python.exists(),
        "pymesos is missing: run scripts/deps.sh (install_journey_clients)"
    );
    let cluster = Cluster::start((10, 50));
    let image = format!("{}/busybox:latest", registry());
    let mut driver = Command::new(&python)
        .arg(root.join("tests/journeys/pymesos/journey.py"))
        .arg(&cluster.master_addr)
        .arg("cni-pymesos")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(cluster.dir.join("pymesos.log")).unwrap())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = driver.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(event) = serde_json::from_str(&line)
                && tx.send(event).is_err()
            {
                return;
            }
        }
    });
    let next = |what: &dyn Fn(&Value) -> bool| loop {
        let event = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("pymesos said nothing more\n{}", cluster.log()));
        assert_ne!(event["type"], "error", "{event}");
        if what(&event) {
            return event;
        }
    };
    next(&|e| e["type"] == "subscribed");
    let group = pod(
        "py-pod",
        &Value::Null,
        &cluster.network,
        &[],
        "py-web",
        &server("py"),
        Some(&image),
    );
    let executor = group["launch_group"]["executor"].clone();
    let mut task = group["launch_group"]["task_group"]["tasks"][0].clone();
    task.as_object_mut().unwrap().remove("agent_id");
    let command = json!({"op": "launch", "cells": [
        {"cell": "cni", "launch": "LAUNCH_GROUP", "executor": executor, "tasks": [task]}]});
    let mut stdin = driver.stdin.take().unwrap();
    writeln!(stdin, "{command}").unwrap();
    let running = next(&|e| {
        e["type"] == "update" && e["task_id"] == "py-web" && {
            assert!(
                matches!(e["state"].as_str(), Some("TASK_STARTING" | "TASK_RUNNING")),
                "{e}"
            );
            e["state"] == "TASK_RUNNING"
        }
    });
    assert_eq!(running["source"], "SOURCE_EXECUTOR");
    // pymesos reports no container_status: the address comes from the
    // master's state, as a service discovery tool would read it.
    let state = get_json(&cluster.master_addr, "/master/state");
    let ip = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
        .find(|t| t["id"] == "py-web")
        .map(|t| {
            ip_of(
                t["statuses"].as_array().unwrap().last().unwrap(),
                &cluster.network,
            )
        })
        .expect("the task in /master/state");
    assert!(ip.starts_with(&format!("{}.", cluster.subnet)), "{ip}");
    eventually_serves(&format!("{ip}:8080"), "hello from py on py-pod");
    writeln!(stdin, "{}", json!({"op": "teardown"})).unwrap();
    next(&|e| e["type"] == "torn_down");
    let _ = driver.wait();
    cluster.assert_released();
}
