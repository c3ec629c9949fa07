//! Nothing leaks across TEARDOWN, with real processes: a real `tepui master`,
//! a real `tepui agent` (real pods, supervisors and cgroups) and a JSON
//! scheduler. A framework runs a command task and a task group, is torn down
//! (by itself, by the operator API, by `POST /master/teardown`) while they
//! run, or right after its ACCEPT while they launch; then the agent's whole
//! total is offered to the next framework, `/master/state` shows nothing
//! used, and no supervisor or cgroup of the torn-down framework is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::json_scheduler::{
    JsonScheduler, WAIT, agent_used, command_task, launch_group, offered,
};
use serde_json::{Value, json};

const CPUS: f64 = 2.0;
const MEM: f64 = 1024.0;

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

struct Cluster {
    dir: PathBuf,
    base: String,
    agent_url: String,
    cgroup_root: String,
    master: Child,
    agent: Child,
}

impl Cluster {
    async fn start(name: &str, registry: Option<&str>) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("tepui-teardown-")
            .tempdir()
            .unwrap()
            .keep();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        // check-leftovers.sh looks for tepui-test-* cgroups.
        let cgroup_root = format!("tepui-test-{name}-{}", std::process::id());
        let master = spawn(
            &[
                "master".into(),
                "--ip=127.0.0.1".into(),
                format!("--port={port}"),
                "--allocation_interval=100ms".into(),
            ],
            dir.join("master.log"),
        );
        let agent_port = free_port();
        let mut args = vec![
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            format!("--resources=cpus:{CPUS};mem:{MEM};disk:1024"),
            "--executor_shutdown_grace_period=1secs".into(),
        ];
        if let Some(registry) = registry {
            args.push("--image_providers=docker".into());
            args.push(format!("--docker_insecure_registries={registry}"));
        }
        let agent = spawn(&args, dir.join("agent.log"));
        let deadline = Instant::now() + WAIT;
        loop {
            let n = match reqwest::get(format!("{base}/slaves")).await {
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
        Cluster {
            dir,
            base,
            agent_url: format!("http://127.0.0.1:{agent_port}"),
            cgroup_root,
            master,
            agent,
        }
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let mut out = format!(
            "--- agent.log\n{}\n--- master.log\n{}",
            read("agent.log"),
            read("master.log")
        );
        // Pods left behind keep their supervisor's log.
        let pods = self.dir.join("agent/run/pods");
        for pod in std::fs::read_dir(pods).into_iter().flatten().flatten() {
            let log = std::fs::read_to_string(pod.path().join("supervisor.log"));
            out += &format!(
                "\n--- {}/supervisor.log\n{}",
                pod.path().display(),
                log.unwrap_or_default()
            );
        }
        out
    }

    /// `tepui supervise` processes of this agent (their command line names
    /// its runtime dir).
    fn supervisors(&self) -> Vec<(u32, String)> {
        let run = self.dir.join("agent/run");
        common::processes_mentioning(&run.to_string_lossy())
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("supervise"))
            .collect()
    }

    /// Cgroups below the agent's `--cgroups_root` (the root itself aside).
    fn pod_cgroups(&self) -> Vec<PathBuf> {
        common::cgroups_named(&self.cgroup_root)
            .into_iter()
            .filter(|p| !p.ends_with(&self.cgroup_root))
            .collect()
    }

    /// Waits until the agent holds no pod: no supervisor, no pod cgroup,
    /// no image mount.
    async fn await_nothing_left(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let supervisors = self.supervisors();
            let cgroups = self.pod_cgroups();
            let mounts = common::mounts_under(&self.dir);
            if supervisors.is_empty() && cgroups.is_empty() && mounts.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: left behind: supervisors {supervisors:?}, cgroups {cgroups:?}, mounts {mounts:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The agent forgets a framework it shut down once its executors are
    /// gone, with its unacknowledged updates (nobody would acknowledge them).
    async fn await_agent_forgot(&self, framework_id: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let state: Value = match reqwest::get(format!("{}/state", self.agent_url)).await {
                Ok(r) => serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
                Err(e) => panic!("{what}: agent /state: {e}"),
            };
            let known = state["frameworks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["id"] == framework_id);
            if !known {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the agent still has {framework_id}: {state}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new framework is offered exactly the agent's total.
    async fn assert_whole_agent_offered(&self, what: &str) {
        let mut s = JsonScheduler::subscribe(&self.base, "probe").await;
        let offers = s.next("OFFERS").await["offers"]["offers"].clone();
        assert_eq!(offered(&offers), (CPUS, MEM), "{what}: {offers}");
        assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    }

    async fn teardown(&self, s: &JsonScheduler, how: usize) {
        match how % 3 {
            0 => assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202),
            1 => {
                let call = json!({"type": "TEARDOWN",
                    "teardown": {"framework_id": {"value": s.framework_id}}});
                let r = reqwest::Client::new()
                    .post(format!("{}/api/v1", self.base))
                    .header("Content-Type", "application/json")
                    .body(call.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
            _ => {
                let r = reqwest::Client::new()
                    .post(format!("{}/master/teardown", self.base))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(format!("frameworkId={}", s.framework_id))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    }

    /// Stops both daemons and removes everything of the test; also runs
    /// when a failed assertion unwinds, so a failure leaves nothing behind.
    fn stop(self) {
        let dir = self.dir.clone();
        drop(self);
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pids are our children.
        unsafe { libc::kill(self.agent.id() as i32, libc::SIGTERM) };
        let _ = self.agent.wait();
        let _ = self.master.kill();
        let _ = self.master.wait();
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("{} left: {e}", self.dir.display());
        }
    }
}

/// ACCEPTs the first offer with a command task and a task group of two;
/// returns the task ids.
async fn launch_everything(
    s: &mut JsonScheduler,
    round: usize,
    image: Option<&str>,
) -> Vec<String> {
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let agent = &offer["agent_id"];
    let cmd = format!("cmd-{round}");
    let (a, b) = (format!("group-a-{round}"), format!("group-b-{round}"));
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [command_task(&cmd, agent, "sleep 1000")]}},
        launch_group(&format!("exec-{round}"), agent, &[
            (&a, "sleep 1000", None),
            (&b, "sleep 1000", image),
        ]),
    ]}});
    assert_eq!(s.call(accept).await, 202);
    vec![cmd, a, b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_of_running_tasks_gives_the_whole_agent_back_and_leaves_nothing() {
    if !common::require_root("teardown_of_running_tasks_gives_the_whole_agent_back") {
        return;
    }
    let cluster = Cluster::start("teardown-running", None).await;
    for round in 0..3 {
        cluster
            .assert_whole_agent_offered(&format!("before round {round}"))
            .await;
        let mut s = JsonScheduler::subscribe(&cluster.base, "victim").await;
        let ids = launch_everything(&mut s, round, None).await;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        s.await_all(&ids, "TASK_RUNNING").await;
        // The command task, the group's two tasks and its executor.
        let used = agent_used(&cluster.base).await;
        assert!(
            (used.0 - 0.5).abs() < 1e-9 && (used.1 - 160.0).abs() < 1e-9,
            "{used:?}"
        );
        assert!(!cluster.supervisors().is_empty());

        cluster.teardown(&s, round).await;
        assert_eq!(agent_used(&cluster.base).await, (0.0, 0.0), "round {round}");
        cluster
            .assert_whole_agent_offered(&format!("round {round}"))
            .await;
        cluster
            .await_nothing_left(&format!("teardown round {round}"))
            .await;
        cluster
            .await_agent_forgot(&s.framework_id, &format!("teardown round {round}"))
            .await;
    }
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_racing_the_launch_leaves_no_executor_supervisor_cgroup_or_hold() {
    if !common::require_root("teardown_racing_the_launch_leaves_nothing") {
        return;
    }
    // With the test registries, one task's image is pulled while the
    // TEARDOWN comes (big:latest, ~58 MB, so the first pull is in flight).
    let env = common::oci_testenv("teardown_racing_the_launch");
    let registry = env
        .as_ref()
        .and_then(|e| e["registries"]["plain"]["host"].as_str())
        .map(str::to_string);
    let cluster = Cluster::start("teardown-race", registry.as_deref()).await;
    let image = registry.as_ref().map(|r| format!("{r}/big:latest"));
    for round in 0..4 {
        let mut s = JsonScheduler::subscribe(&cluster.base, "victim").await;
        launch_everything(&mut s, round, image.as_deref()).await;
        // Racing at different points: at once, then a little later.
        tokio::time::sleep(Duration::from_millis(150 * round as u64)).await;
        cluster.teardown(&s, round).await;
        assert_eq!(agent_used(&cluster.base).await, (0.0, 0.0), "round {round}");
        cluster
            .assert_whole_agent_offered(&format!("round {round}"))
            .await;
        cluster
            .await_nothing_left(&format!("race round {round}"))
            .await;
        // Nothing comes back later either (a launch finishing after the
        // teardown must destroy itself, not linger).
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster
            .await_nothing_left(&format!("race round {round}, 2s later"))
            .await;
        cluster
            .assert_whole_agent_offered(&format!("round {round}, 2s later"))
            .await;
        cluster
            .await_agent_forgot(&s.framework_id, &format!("race round {round}"))
            .await;
    }
    cluster.stop();
}
