//! One tenant against another on real processes (issue 16): a real
//! `tepui master` and `tepui agent`, two frameworks. The victim's task
//! runs as root with a secret in its sandbox; the attacker's tasks (one as
//! `nobody`, one as root) run `tests/hostile_tenant/attack.py`, which tries
//! every way into the victim through the agent API (nested launch,
//! session, attach, wait, kill, remove, a forged executor UPDATE and
//! SUBSCRIBE, the files API, listings) and the filesystem. Each is refused,
//! the attacker's calls on its own pod succeed, and the victim runs on
//! untouched. Twice: default flags, then `--authenticate_http_readwrite`
//! and `--authenticate_http_readonly` with executor tokens on (the test,
//! on the host, reads the agent's own operator credential file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::json_scheduler::{JsonScheduler, WAIT, command_task};
use serde_json::{Value, json};

const ATTACK: &str = include_str!("hostile_tenant/attack.py");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[String], log: PathBuf) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(common::tepui_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub struct Cluster {
    pub dir: PathBuf,
    pub base: String,
    pub agent_url: String,
    pub cgroup_root: String,
    master: Child,
    agent: Child,
    /// Basic credentials for the agent (its operator credential file).
    pub auth: Option<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our child.
        unsafe { libc::kill(self.agent.id() as i32, libc::SIGTERM) };
        let _ = self.agent.wait();
        let _ = self.master.kill();
        let _ = self.master.wait();
        if std::thread::panicking() {
            for f in ["agent.log", "master.log"] {
                let log = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                eprintln!("--- {f}\n{log}");
            }
        }
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("{} left: {e}", self.dir.display());
        }
    }
}

impl Cluster {
    pub async fn start(name: &str, extra: &[String]) -> Cluster {
        Self::start_with_work_dir(name, extra, None).await
    }

    /// `work`: the agent's work dir, when it must be somewhere else than
    /// `<dir>/work` (on a filesystem the test made).
    pub async fn start_with_work_dir(
        name: &str,
        extra: &[String],
        work: Option<PathBuf>,
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tepui-{name}-"))
            .tempdir()
            .unwrap()
            .keep();
        // Tasks running as nobody read the attack script and write results.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let agent_port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let cgroup_root = format!("tepui-test-{name}-{}", std::process::id());
        let work = work.unwrap_or_else(|| dir.join("work"));
        let master = spawn(
            &[
                "master".into(),
                "--ip=127.0.0.1".into(),
                format!("--port={port}"),
                "--allocation_interval=100ms".into(),
            ],
            dir.join("master.log"),
        );
        let mut args = vec![
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", work.display()),
            format!("--runtime_dir={}", dir.join("run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:8;mem:8192;disk:1024".into(),
        ];
        args.extend_from_slice(extra);
        let agent = spawn(&args, dir.join("agent.log"));
        let mut cluster = Cluster {
            dir,
            base,
            agent_url: format!("http://127.0.0.1:{agent_port}"),
            cgroup_root,
            master,
            agent,
            auth: None,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let n = match reqwest::get(format!("{}/slaves", cluster.base)).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .map_or(0, |v| v["slaves"].as_array().map_or(0, Vec::len)),
                Err(_) => 0,
            };
            if n == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the agent never registered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let credential = work.join("operator.credential");
        if credential.exists() {
            let c = tepui_agent::operator_credential::read(&credential).unwrap();
            cluster.auth = Some(tepui_proto::auth::basic_header(&c.principal, &c.secret));
        }
        cluster
    }

    /// An operator API call from the host (the test is the operator).
    pub async fn operator(&self, call: Value) -> Value {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/v1", self.agent_url))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(call.to_string());
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{call}");
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    /// The live containers of framework `fw`: (root, nested) ids.
    pub async fn containers_of(&self, fw: &str) -> Vec<(String, Option<String>)> {
        let got = self
            .operator(json!({"type": "GET_CONTAINERS",
                "get_containers": {"show_nested": true}}))
            .await;
        got["get_containers"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|c| c["framework_id"]["value"] == fw)
            .map(|c| {
                let id = &c["container_id"];
                match id["parent"]["value"].as_str() {
                    Some(parent) => (
                        parent.to_string(),
                        Some(id["value"].as_str().unwrap().to_string()),
                    ),
                    None => (id["value"].as_str().unwrap().to_string(), None),
                }
            })
            .collect()
    }

    /// The state of task `task` on the agent.
    pub async fn task_state(&self, task: &str) -> Option<String> {
        let got = self.operator(json!({"type": "GET_TASKS"})).await;
        let tasks = &got["get_tasks"];
        for list in ["launched_tasks", "completed_tasks", "terminated_tasks"] {
            for t in tasks[list].as_array().into_iter().flatten() {
                if t["task_id"]["value"] == task {
                    return t["state"].as_str().map(str::to_string);
                }
            }
        }
        None
    }

    /// The sandbox of framework `fw`'s only executor.
    pub async fn sandbox_of(&self, fw: &str) -> String {
        let got = self.operator(json!({"type": "GET_EXECUTORS"})).await;
        let _ = got;
        let base = self.dir.join("work/slaves");
        let agent = std::fs::read_dir(&base)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .file_name();
        let executors = base
            .join(agent)
            .join("frameworks")
            .join(fw)
            .join("executors");
        let ex = std::fs::read_dir(&executors)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        let run = std::fs::read_dir(ex.join("runs"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name() != "latest")
            .unwrap()
            .path();
        run.to_string_lossy().into_owned()
    }

    /// Waits until nothing of the test's pods is left.
    pub async fn await_no_pods(&self) {
        let run = self.dir.join("run");
        let deadline = Instant::now() + WAIT;
        loop {
            let supervisors: Vec<_> = common::processes_mentioning(&run.to_string_lossy())
                .into_iter()
                .filter(|(_, cmd)| cmd.contains("supervise"))
                .collect();
            let cgroups: Vec<_> = common::cgroups_named(&self.cgroup_root)
                .into_iter()
                .filter(|c| !c.ends_with(&self.cgroup_root))
                .collect();
            let mounts = common::mounts_under(&self.dir);
            if supervisors.is_empty() && cgroups.is_empty() && mounts.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: {supervisors:?} {cgroups:?} {mounts:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn as_user(mut task: Value, user: &str) -> Value {
    task["command"]["user"] = json!(user);
    task
}

async fn launch(s: &mut JsonScheduler, tasks: Vec<Value>) {
    let offers = s.next("OFFERS").await["offers"]["offers"].clone();
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offers[0]["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        "filters": {"refuse_seconds": 0.0}}});
    assert_eq!(s.call(accept).await, 202);
}

/// Every file below `dir`.
fn files_below(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `extra`'s secret key files: a task must not read them from disk.
fn secret_files(extra: &[String]) -> Vec<String> {
    extra
        .iter()
        .filter_map(|a| a.strip_prefix("--executor_secret_key="))
        .map(str::to_string)
        .collect()
}

async fn tenants_cannot_reach_each_other(name: &str, extra: &[String]) {
    let cluster = Cluster::start(name, extra).await;
    // The victim: a root task with a secret in its sandbox.
    let mut victim = JsonScheduler::subscribe(&cluster.base, "victim").await;
    let offer = victim.next("OFFERS").await["offers"]["offers"][0].clone();
    let agent_id = offer["agent_id"].clone();
    let mut task = command_task(
        "victim-task",
        &agent_id,
        "echo s3cret > secret; exec sleep 600",
    );
    // A secret in its environment too: /proc/<pid>/environ of its
    // processes must not be reachable from another tenant's pod.
    task["command"]["environment"] =
        json!({"variables": [{"name": "VICTIM_SECRET", "value": "env-s3cret"}]});
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}});
    assert_eq!(victim.call(accept).await, 202);
    victim.await_all(&["victim-task"], "TASK_RUNNING").await;
    let containers = cluster.containers_of(&victim.framework_id).await;
    let (root, nested) = containers
        .iter()
        .find_map(|(root, nested)| nested.as_ref().map(|n| (root.clone(), n.clone())))
        .unwrap_or_else(|| panic!("no task container: {containers:?}"));
    let sandbox = cluster.sandbox_of(&victim.framework_id).await;
    let executor = std::path::Path::new(&sandbox)
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let deadline = Instant::now() + WAIT;
    while !std::path::Path::new(&sandbox).join("secret").exists() {
        assert!(
            Instant::now() < deadline,
            "the victim never wrote its secret"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // What a root task on the host's filesystem would read without the
    // agent's dirs hidden: the victim's checkpoints under `meta/` (the
    // agent's own records of its framework), the victim pod's supervisor
    // socket, the operator credential (there when authentication is on).
    let work = cluster.dir.join("work");
    let meta = files_below(&work.join("meta/frameworks").join(&victim.framework_id));
    assert!(!meta.is_empty(), "no checkpoints of the victim under meta/");
    let socket = cluster
        .dir
        .join("run/pods")
        .join(&root)
        .join("supervisor.sock");
    assert!(
        socket.exists(),
        "no supervisor socket at {}",
        socket.display()
    );

    // The attacker: two tasks, as nobody and as root.
    let script = cluster.dir.join("attack.py");
    std::fs::write(&script, ATTACK).unwrap();
    let results = cluster.dir.join("results");
    std::fs::create_dir(&results).unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut attacker = JsonScheduler::subscribe(&cluster.base, "attacker").await;
    let mut tasks = Vec::new();
    for user in ["nobody", "root"] {
        let params = cluster.dir.join(format!("params-{user}.json"));
        let body = json!({"agent": cluster.agent_url, "out": results.join(format!("{user}.json")),
            "victim": {"root": root, "task": nested, "framework": victim.framework_id,
                "executor": executor, "task_id": "victim-task", "sandbox": sandbox},
            "host": {"work_dir": work, "run_dir": cluster.dir.join("run"), "meta": meta,
                "socket": socket, "credential": work.join("operator.credential"),
                "secret_files": secret_files(extra)}});
        std::fs::write(&params, body.to_string()).unwrap();
        let command = format!("python3 {} {}", script.display(), params.display());
        tasks.push(as_user(
            command_task(&format!("attack-{user}"), &agent_id, &command),
            user,
        ));
    }
    launch(&mut attacker, tasks).await;
    attacker
        .await_all(&["attack-nobody", "attack-root"], "TASK_FINISHED")
        .await;

    for user in ["nobody", "root"] {
        let text = std::fs::read_to_string(results.join(format!("{user}.json")))
            .unwrap_or_else(|e| panic!("the {user} attacker wrote no results: {e}"));
        let got: Value = serde_json::from_str(&text).unwrap();
        for (attack, outcome) in got.as_object().unwrap() {
            let status = outcome[0].as_u64().unwrap();
            let body = outcome[1].as_str().unwrap_or_default();
            if attack.starts_with("own_") {
                assert_eq!(status, 200, "{user} {attack}: {body}");
            } else if attack.starts_with("fs_") {
                // The filesystem, root or not: the agent's dirs are hidden
                // in every container without an image.
                assert_eq!(status, 403, "{user} {attack}: {body}");
                assert!(!body.contains("s3cret"), "{user} {attack}: {body}");
            } else {
                assert!(
                    status == 403 || status == 401,
                    "{user} {attack}: {status} {body}"
                );
                assert!(!body.contains("s3cret"), "{user} {attack}: {body}");
            }
        }
        eprintln!("{name}: {user} attacker refused: {got}");
    }

    // The victim is untouched: still running, its container alone under
    // its executor, no update but RUNNING sent for it.
    assert_eq!(
        cluster.task_state("victim-task").await.as_deref(),
        Some("TASK_RUNNING")
    );
    let now = cluster.containers_of(&victim.framework_id).await;
    assert_eq!(now, containers, "the victim's containers changed");
    assert!(
        std::fs::read_to_string(std::path::Path::new(&sandbox).join("secret"))
            .unwrap()
            .contains("s3cret")
    );

    assert_eq!(attacker.call(json!({"type": "TEARDOWN"})).await, 202);
    assert_eq!(victim.call(json!({"type": "TEARDOWN"})).await, 202);
    cluster.await_no_pods().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_other_with_default_flags() {
    if !common::require_root("tenants_cannot_reach_each_other_with_default_flags") {
        return;
    }
    tenants_cannot_reach_each_other("tenant", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_other_with_authentication_and_executor_tokens() {
    if !common::require_root(
        "tenants_cannot_reach_each_other_with_authentication_and_executor_tokens",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("executor.key");
    std::fs::write(&key, "a-secret-executor-key-of-32-bytes-or-more").unwrap();
    tenants_cannot_reach_each_other(
        "tenant-auth",
        &[
            "--authenticate_http_readwrite".into(),
            "--authenticate_http_readonly".into(),
            "--authenticate_http_executors".into(),
            format!("--executor_secret_key={}", key.display()),
        ],
    )
    .await;
}

/// Mesos's `disk/du` with `--enforce_container_disk_quota`: a task given
/// 32 MB of disk that writes 200 MB is killed, TASK_FAILED with
/// REASON_CONTAINER_LIMITATION_DISK naming its usage and quota; a task
/// within its quota runs on and shows its usage in its statistics; nothing
/// is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_over_its_disk_quota_is_killed_with_the_limitation() {
    if !common::require_root("a_task_over_its_disk_quota_is_killed_with_the_limitation") {
        return;
    }
    let Some(testenv) =
        common::oci_testenv("a_task_over_its_disk_quota_is_killed_with_the_limitation")
    else {
        return;
    };
    let registry = testenv["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let cluster = Cluster::start(
        "disk",
        &[
            "--enforce_container_disk_quota".into(),
            "--container_disk_watch_interval=200ms".into(),
            "--isolation=filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem".into(),
            "--image_providers=docker".into(),
            format!("--docker_insecure_registries={registry}"),
        ],
    )
    .await;
    let mut s = JsonScheduler::subscribe(&cluster.base, "disk").await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let agent_id = offer["agent_id"].clone();
    let with_disk = |mut t: Value, mb: f64| {
        t["resources"]
            .as_array_mut()
            .unwrap()
            .push(common::json_scheduler::scalar("disk", mb));
        t
    };
    let filler = with_disk(
        command_task(
            "filler",
            &agent_id,
            "dd if=/dev/zero of=big bs=1M count=200 && exec sleep 600",
        ),
        32.0,
    );
    let quiet = with_disk(
        command_task("quiet", &agent_id, "echo small > small; exec sleep 600"),
        64.0,
    );
    // An image task writing into its rootfs, not its sandbox: the
    // overlay's writable layer counts against its disk too.
    let mut image_filler = with_disk(
        command_task(
            "imgfill",
            &agent_id,
            "dd if=/dev/zero of=/big bs=1M count=200 && exec sleep 600",
        ),
        32.0,
    );
    image_filler["container"] = json!({"type": "MESOS", "mesos": {"image": {
        "type": "DOCKER", "docker": {"name": format!("{registry}/busybox:latest")}}}});
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [filler, quiet, image_filler]}}]}});
    assert_eq!(s.call(accept).await, 202);
    let mut ended = std::collections::BTreeMap::new();
    while ended.len() < 2 {
        let u = s.update().await;
        let task = u["task_id"]["value"].as_str().unwrap().to_string();
        if task != "quiet"
            && !matches!(
                u["state"].as_str(),
                Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING")
            )
        {
            ended.insert(task, u);
            continue;
        }
        if u["task_id"]["value"] == "quiet" {
            assert!(
                matches!(
                    u["state"].as_str(),
                    Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING")
                ),
                "{u}"
            );
        }
    }
    for (task, failed) in &ended {
        assert_eq!(failed["state"], "TASK_FAILED", "{task}: {failed}");
        assert_eq!(
            failed["reason"], "REASON_CONTAINER_LIMITATION_DISK",
            "{task}: {failed}"
        );
        let message = failed["message"].as_str().unwrap();
        assert!(
            message.starts_with("Disk usage (") && message.ends_with("exceeds quota (32MB)"),
            "{task}: {message}"
        );
    }

    // The quiet task runs on, its usage and quota in its statistics.
    assert_eq!(
        cluster.task_state("quiet").await.as_deref(),
        Some("TASK_RUNNING")
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let got = cluster.operator(json!({"type": "GET_CONTAINERS"})).await;
        let stats = got["get_containers"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["executor_id"]["value"] == "quiet")
            .map(|c| c["resource_statistics"].clone())
            .unwrap_or_default();
        if stats["disk_limit_bytes"] == json!(64u64 << 20) {
            let used = stats["disk_used_bytes"].as_u64().unwrap();
            assert!(used > 0 && used < 1 << 20, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "no disk statistics: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    cluster.await_no_pods().await;
}

/// A third-party executor that knows nothing of tokens (pymesos's
/// `MesosExecutorDriver`) keeps working with `--authenticate_http_readwrite`
/// and `--authenticate_http_executors` on: the agent knows it by its pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokenless_pymesos_executor_works_with_authentication_on() {
    if !common::require_root("a_tokenless_pymesos_executor_works_with_authentication_on") {
        return;
    }
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/journeys/venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "pymesos missing: scripts/deps.sh install_journey_clients"
        );
        eprintln!("skipped: no pymesos venv at {}", python.display());
        return;
    }
    let cluster = Cluster::start(
        "tenant-pymesos",
        &[
            "--authenticate_http_readwrite".into(),
            "--authenticate_http_executors".into(),
        ],
    )
    .await;
    let script = cluster.dir.join("pymesos_executor.py");
    std::fs::write(&script, include_str!("hostile_tenant/pymesos_executor.py")).unwrap();
    let mut s = JsonScheduler::subscribe(&cluster.base, "pymesos-executor").await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let mut task = command_task("by-pymesos", &offer["agent_id"], "true");
    task.as_object_mut().unwrap().remove("command");
    task["executor"] = json!({"type": "CUSTOM", "executor_id": {"value": "pymesos"},
        "command": {"value": format!("{} {}", python.display(), script.display())},
        "resources": [common::json_scheduler::scalar("cpus", 0.1),
            common::json_scheduler::scalar("mem", 64.0)]});
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}});
    assert_eq!(s.call(accept).await, 202);
    s.await_all(&["by-pymesos"], "TASK_FINISHED").await;
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    cluster.await_no_pods().await;
}

/// Task users by Mesos's rules: a user this host does not know ends the
/// task TASK_FAILED naming the user; a task without `command.user` runs as
/// its framework's user, in a sandbox that user owns with mode 0750.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_users_follow_mesos_rules() {
    if !common::require_root("task_users_follow_mesos_rules") {
        return;
    }
    let cluster = Cluster::start("users", &[]).await;
    let results = cluster.dir.join("results");
    std::fs::create_dir(&results).unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The framework's user is nobody; one task names a user nobody knows.
    let mut s = JsonScheduler::subscribe_with_user(&cluster.base, "users", "nobody").await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let agent_id = offer["agent_id"].clone();
    let unknown = as_user(
        command_task("unknown-user", &agent_id, "true"),
        "no-such-user-tepui",
    );
    let report = results.join("id");
    let inherits = command_task(
        "framework-user",
        &agent_id,
        &format!(
            "id -u > {} && stat -c '%U %a' . >> {}",
            report.display(),
            report.display()
        ),
    );
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [unknown, inherits]}}]}});
    assert_eq!(s.call(accept).await, 202);
    let mut ended = std::collections::BTreeMap::new();
    while ended.len() < 2 {
        let u = s.update().await;
        let state = u["state"].as_str().unwrap_or_default().to_string();
        if !matches!(
            state.as_str(),
            "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"
        ) {
            ended.insert(u["task_id"]["value"].as_str().unwrap().to_string(), u);
        }
    }
    let failed = &ended["unknown-user"];
    assert_eq!(failed["state"], "TASK_FAILED", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("'no-such-user-tepui'"),
        "{failed}"
    );
    assert_eq!(
        ended["framework-user"]["state"], "TASK_FINISHED",
        "{}",
        ended["framework-user"]
    );
    let got = std::fs::read_to_string(&report).unwrap();
    let nobody_uid = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap()
        .stdout;
    let nobody_uid = String::from_utf8_lossy(&nobody_uid).trim().to_string();
    let mut lines = got.lines();
    assert_eq!(lines.next(), Some(nobody_uid.as_str()), "{got}");
    assert_eq!(lines.next(), Some("nobody 750"), "{got}");
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    cluster.await_no_pods().await;
}

/// Runs `tepui agent` standalone until it exits (it must refuse to start);
/// its log.
fn agent_refuses(dir: &std::path::Path, work: &std::path::Path, extra: &[&str]) -> String {
    let log = dir.join("refused.log");
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--ip=127.0.0.1".into(),
        format!("--port={}", free_port()),
        format!("--work_dir={}", work.display()),
        format!("--runtime_dir={}", dir.join("run").display()),
        format!("--cgroups_root=tepui-test-xfs-{}", std::process::id()),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut agent = spawn(&args, log.clone());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = agent.kill();
            let _ = agent.wait();
            panic!(
                "the agent started: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    std::fs::read_to_string(&log).unwrap()
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/deps.sh installs xfsprogs)"))
}

/// Unmounts the test's XFS if the test fails while it is mounted (the
/// loop device goes with it: `mount -o loop` sets autoclear).
struct Unmount(String);

impl Drop for Unmount {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("umount").args(["-l", &self.0]).status();
        }
    }
}

/// The loop devices backing `image` (`losetup -j`).
fn loops_of(image: &std::path::Path) -> String {
    String::from_utf8_lossy(&run("losetup", &["-j", &image.to_string_lossy()]).stdout).into_owned()
}

/// Mesos's `disk/xfs` on a loopback XFS made by the test. The agent
/// refuses a work dir that is not XFS, and one mounted without `prjquota`,
/// naming why. Where the kernel mounts `prjquota` (CONFIG_XFS_QUOTA), a
/// task given 32 MB of disk that writes 64 MB gets EDQUOT from the kernel
/// and its stderr says "Disk quota exceeded"; its sandbox leaves its
/// project when it ends. The image is unmounted and its loop device gone
/// at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_xfs_gives_sandboxes_project_quotas() {
    if !common::require_root("disk_xfs_gives_sandboxes_project_quotas") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("tepui-xfs-")
        .tempdir()
        .unwrap()
        .keep();
    let image = dir.join("xfs.img");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::create_dir(dir.join("plain")).unwrap();

    // Not XFS at all.
    let log = agent_refuses(
        &dir,
        &dir.join("plain"),
        &["--isolation=cgroups/cpu,cgroups/mem,disk/xfs"],
    );
    assert!(log.contains("is not an XFS filesystem"), "{log}");

    std::fs::File::create(&image)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let made = run("mkfs.xfs", &["-q", &image.to_string_lossy()]);
    assert!(made.status.success(), "{made:?}");
    let image_s = image.to_string_lossy().into_owned();
    let mnt_s = mnt.to_string_lossy().into_owned();
    let _unmount = Unmount(mnt_s.clone());
    let quota = run("mount", &["-o", "loop,prjquota", &image_s, &mnt_s])
        .status
        .success();
    if !quota {
        // This kernel (e.g. one built without CONFIG_XFS_QUOTA: "XFS:
        // quota support not available in this kernel") mounts XFS only
        // without quotas: then disk/xfs must refuse it, naming why.
        let plain = run("mount", &["-o", "loop", &image_s, &mnt_s]);
        assert!(plain.status.success(), "{plain:?}");
        std::fs::create_dir(mnt.join("work")).unwrap();
        let log = agent_refuses(
            &dir,
            &mnt.join("work"),
            &["--isolation=cgroups/cpu,cgroups/mem,disk/xfs"],
        );
        assert!(log.contains("XFS project quotas are not enabled"), "{log}");
        eprintln!(
            "disk_xfs: this kernel cannot mount XFS with prjquota ({}): checked the refusals only",
            String::from_utf8_lossy(&run("dmesg", &[]).stdout)
                .lines()
                .rev()
                .find(|l| l.contains("XFS") && l.contains("quota"))
                .unwrap_or("no kernel message")
        );
    } else {
        let cluster = Cluster::start_with_work_dir(
            "xfs",
            &[
                "--isolation=cgroups/cpu,cgroups/mem,disk/xfs".into(),
                "--enforce_container_disk_quota".into(),
                "--container_disk_watch_interval=200ms".into(),
                "--xfs_project_range=[7000-7001]".into(),
            ],
            Some(mnt.join("work")),
        )
        .await;
        let mut s = JsonScheduler::subscribe(&cluster.base, "xfs").await;
        let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
        let mut filler = command_task(
            "filler",
            &offer["agent_id"],
            "dd if=/dev/zero of=big bs=1M count=64 2>dd.err; cat dd.err >&2; grep -q 'Disk quota exceeded' dd.err && exit 3; exit 0",
        );
        filler["resources"]
            .as_array_mut()
            .unwrap()
            .push(common::json_scheduler::scalar("disk", 32.0));
        let accept = json!({"type": "ACCEPT", "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [filler]}}]}});
        assert_eq!(s.call(accept).await, 202);
        let failed = loop {
            let u = s.update().await;
            if !matches!(
                u["state"].as_str(),
                Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING")
            ) {
                break u;
            }
        };
        assert_eq!(failed["state"], "TASK_FAILED", "{failed}");
        assert!(
            failed["message"]
                .as_str()
                .unwrap_or_default()
                .contains("status 3"),
            "{failed}"
        );
        let sandbox = cluster.sandbox_of(&s.framework_id).await;
        let stderr =
            std::fs::read_to_string(std::path::Path::new(&sandbox).join("stderr")).unwrap();
        assert!(stderr.contains("Disk quota exceeded"), "{stderr}");
        assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
        cluster.await_no_pods().await;
        // The sandbox left its project: the id is free again.
        let deadline = Instant::now() + WAIT;
        loop {
            let lsproj = run("xfs_io", &["-r", "-c", "lsproj", &sandbox]);
            let out = String::from_utf8_lossy(&lsproj.stdout).into_owned();
            if out.contains("projid = 0") {
                break;
            }
            assert!(Instant::now() < deadline, "{out}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(cluster);
    }
    let unmounted = run("umount", &[&mnt_s]);
    assert!(unmounted.status.success(), "{unmounted:?}");
    assert_eq!(loops_of(&image), "", "a loop device is left on the image");
    tepui_containerizer::safe_remove::remove_tree(&dir).unwrap();
}
