//! `tepui agent` end to end: a real agent process (real containers, real
//! cgroups, the built-in executors as real processes) linked over HTTP to
//! a stand-in master that the test drives like a scheduler.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_master::{FakeMaster, command_task, framework, scalar, state_of};
use tepui_proto::link::{MasterEvent, master_event};
use tepui_proto::v1::{
    CommandInfo, ContainerInfo, DurationInfo, ExecutorId, ExecutorInfo, KillPolicy, TaskGroupInfo,
    TaskState, container_info, executor_info,
};

const WAIT: Duration = Duration::from_secs(30);

/// One `tepui agent` process and everything it may leave behind.
struct AgentProc {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    cgroup_root: String,
    master: String,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl AgentProc {
    fn start(test: &str, master: &FakeMaster) -> Self {
        Self::start_with(test, master, &[])
    }

    fn start_with(test: &str, master: &FakeMaster, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut agent = AgentProc {
            child: None,
            dir,
            port: free_port(),
            cgroup_root: format!("tepui-test-{}-{test}", std::process::id()),
            master: master.address.clone(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        let child = Command::new(common::tepui_bin())
            .args(["agent", "--master", &self.master, "--ip", "127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--work_dir={}", self.dir.join("work").display()))
            .arg(format!("--runtime_dir={}", self.dir.join("run").display()))
            .arg(format!("--cgroups_root={}", self.cgroup_root))
            .args(["--resources", "cpus:2;mem:2048;disk:1024"])
            .args(["--executor_reregistration_timeout", "20secs"])
            .args(&self.extra)
            .env("TEPUI_LOG", "info,tepui_agent=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would; containers and supervisors live on.
    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// The executor sandboxes of a framework's executor.
    fn executor_runs(&self, fw: &str, ex: &str) -> Vec<PathBuf> {
        let slaves = self.dir.join("work").join("slaves");
        let mut runs = Vec::new();
        for agent in std::fs::read_dir(&slaves).into_iter().flatten().flatten() {
            let dir = agent
                .path()
                .join("frameworks")
                .join(fw)
                .join("executors")
                .join(ex)
                .join("runs");
            for run in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                runs.push(run.path());
            }
        }
        runs
    }

    /// A command task's stdout (in its executor's sandbox, as in Mesos)
    /// and every nested container's stdout under an executor's sandbox.
    fn task_output(&self, fw: &str, ex: &str) -> String {
        let mut out = String::new();
        for run in self.executor_runs(fw, ex) {
            out.push_str(&std::fs::read_to_string(run.join("stdout")).unwrap_or_default());
            for c in std::fs::read_dir(run.join("containers"))
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push_str(&std::fs::read_to_string(c.path().join("stdout")).unwrap_or_default());
            }
        }
        out
    }

    /// Stops the agent and asserts that no container, supervisor or cgroup
    /// of its pods is left.
    async fn assert_pods_gone(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let run = self.dir.join("run");
        loop {
            let agent_pid = self.child.as_ref().map(|c| c.id());
            let supervisors: Vec<_> = common::processes_mentioning(&run.to_string_lossy())
                .into_iter()
                .filter(|(pid, _)| Some(*pid) != agent_pid)
                .collect();
            let pods: Vec<_> = std::fs::read_dir(run.join("pods"))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            let cgroups: Vec<_> = common::cgroups_named(&self.cgroup_root)
                .into_iter()
                .filter(|c| !c.ends_with(&self.cgroup_root))
                .collect();
            if supervisors.is_empty() && pods.is_empty() && cgroups.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: supervisors {supervisors:?}, pods {pods:?}, cgroups {cgroups:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.sigkill();
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log());
        }
        if std::env::var_os("TEPUI_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.dir.display());
            return;
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("left {}: {e}", self.dir.display());
        }
    }
}

fn states(master: &FakeMaster, task: &str) -> Vec<String> {
    master
        .states()
        .into_iter()
        .filter(|(t, _)| t == task)
        .map(|(_, s)| s)
        .collect()
}

/// Acknowledges every update the master has not acknowledged yet.
fn ack_all(master: &FakeMaster, acked: &mut usize) {
    let updates = master.updates();
    for u in &updates[*acked..] {
        master.acknowledge(u);
    }
    *acked = updates.len();
}

/// Acknowledges updates until at least `n` executors have exited.
async fn executors_exited(master: &FakeMaster, n: usize, acked: &mut usize) {
    master
        .wait_for("the executors to exit", WAIT, |m| {
            ack_all(m, acked);
            (m.exits().len() >= n).then_some(())
        })
        .await;
}

async fn subscribed(master: &FakeMaster, n: usize) {
    master
        .wait_for("the agent to subscribe", WAIT, |m| {
            (m.subscribes() >= n).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_reports_running_then_finished_with_uuids() {
    if !common::require_root("a_command_task_reports_running_then_finished_with_uuids") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("cmd", &master);
    subscribed(&master, 1).await;
    let fw = framework("cmd", true);
    master.run_task(
        &fw,
        command_task("t1", "echo hello from $MESOS_SANDBOX; sleep 0.3"),
        None,
    );

    // Mesos's command executor's sequence: STARTING, RUNNING, FINISHED.
    let starting = master.nth_update(1, WAIT).await;
    assert_eq!(state_of(&starting.status), TaskState::TaskStarting);
    master.acknowledge(&starting);
    let running = master.nth_update(2, WAIT).await;
    assert_eq!(state_of(&running.status), TaskState::TaskRunning);
    assert_eq!(running.status.uuid.as_ref().map(|u| u.len()), Some(16));
    assert_eq!(running.executor_id.as_ref().unwrap().value, "t1");
    // As Mesos's Slave::_statusUpdate completes it: the container, its
    // init pid, and the agent's IP for a container without a network.
    let cs = running
        .status
        .container_status
        .as_ref()
        .expect("container_status");
    assert!(cs.container_id.is_some(), "{cs:?}");
    assert!(cs.executor_pid.is_some_and(|p| p > 1), "{cs:?}");
    assert_eq!(
        cs.network_infos[0].ip_addresses[0].ip_address.as_deref(),
        Some("127.0.0.1"),
        "{cs:?}"
    );
    master.acknowledge(&running);
    let finished = master.nth_update(3, WAIT).await;
    assert_eq!(
        state_of(&finished.status),
        TaskState::TaskFinished,
        "{:?}",
        finished.status
    );
    assert_ne!(finished.status.uuid, running.status.uuid);
    master.acknowledge(&finished);

    // The executor exits once its last update is acknowledged.
    master
        .wait_for("the executor to exit", WAIT, |m| {
            (!m.exits().is_empty()).then_some(())
        })
        .await;
    let out = agent.task_output("cmd-fw", "t1");
    assert!(out.starts_with("hello from /"), "{out}");
    assert_eq!(
        states(&master, "t1"),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    agent.assert_pods_gone().await;
}

fn default_executor(id: &str, fw: &tepui_proto::v1::FrameworkInfo) -> ExecutorInfo {
    ExecutorInfo {
        r#type: Some(executor_info::Type::Default as i32),
        executor_id: ExecutorId { value: id.into() },
        framework_id: fw.id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        container: Some(ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_task_of_a_group_fails_the_other_is_killed_within_its_grace_period() {
    if !common::require_root(
        "when_one_task_of_a_group_fails_the_other_is_killed_within_its_grace_period",
    ) {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("group", &master);
    subscribed(&master, 1).await;
    let fw = framework("group", true);
    let mut failing = command_task("fails", "sleep 1; exit 3");
    failing.agent_id = Default::default();
    // Ignores SIGTERM: only the SIGKILL at the end of its 1 s grace ends it.
    let mut stubborn = command_task("stubborn", "trap '' TERM; while true; do sleep 0.1; done");
    stubborn.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 1_000_000_000,
        }),
    });
    master.send(MasterEvent {
        r#type: Some(master_event::Type::RunTaskGroup as i32),
        run_task_group: Some(master_event::RunTaskGroup {
            framework: fw.clone(),
            executor: default_executor("pod", &fw),
            task_group: TaskGroupInfo {
                tasks: vec![failing, stubborn],
            },
        }),
        ..Default::default()
    });
    let mut acked = 0;
    let failed_at = master
        .wait_for("the failing task to fail", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "fails")
                .contains(&"TASK_FAILED".to_string())
                .then(Instant::now)
        })
        .await;
    let killed_at = master
        .wait_for("the other task to be killed", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "stubborn")
                .contains(&"TASK_KILLED".to_string())
                .then(Instant::now)
        })
        .await;
    let took = killed_at - failed_at;
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "killed {took:?} after the failure (grace 1 s)"
    );
    let failed = master
        .updates()
        .into_iter()
        .find(|u| u.status.task_id.value == "fails" && state_of(&u.status) == TaskState::TaskFailed)
        .unwrap();
    assert!(
        failed.status.message().contains("status 3"),
        "{:?}",
        failed.status
    );
    executors_exited(&master, 1, &mut acked).await;
    // Mesos's task sandbox link exists for both tasks.
    let run = agent.executor_runs("group-fw", "pod").pop().unwrap();
    assert!(run.join("tasks").join("fails").exists());
    agent.assert_pods_gone().await;
}

/// Mesos's `Slave::statusUpdate` gives an ended task's resources back to
/// its executor's container: when one task of a group finishes and the
/// other runs on, the pod's memory limit shrinks by the finished task's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_task_of_a_group_gives_its_share_of_the_pod_back() {
    if !common::require_root("a_finished_task_of_a_group_gives_its_share_of_the_pod_back") {
        return;
    }
    let master = FakeMaster::start().await;
    let agent = AgentProc::start("shrink", &master);
    subscribed(&master, 1).await;
    let fw = framework("shrink", true);
    let mut brief = command_task("brief", "sleep 1");
    brief.agent_id = Default::default();
    let mut long = command_task("long", "exec sleep 600");
    long.agent_id = Default::default();
    master.send(MasterEvent {
        r#type: Some(master_event::Type::RunTaskGroup as i32),
        run_task_group: Some(master_event::RunTaskGroup {
            framework: fw.clone(),
            executor: default_executor("pod", &fw),
            task_group: TaskGroupInfo {
                tasks: vec![brief, long],
            },
        }),
        ..Default::default()
    });
    // The pod's memory cgroup (v1 here; the standalone layout).
    let pod_limit = || -> Option<u64> {
        let root = std::path::Path::new("/sys/fs/cgroup/memory").join(&agent.cgroup_root);
        let pod = std::fs::read_dir(&root)
            .ok()?
            .flatten()
            .find(|e| e.path().is_dir())?;
        std::fs::read_to_string(pod.path().join("memory.limit_in_bytes"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut acked = 0;
    master
        .wait_for("both tasks to run", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "brief").contains(&"TASK_RUNNING".to_string())
                && states(m, "long").contains(&"TASK_RUNNING".to_string()))
            .then_some(())
        })
        .await;
    // Executor 32 MB + two tasks of 64 MB.
    assert_eq!(pod_limit(), Some(160 << 20));
    master
        .wait_for("the brief task to finish", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "brief")
                .contains(&"TASK_FINISHED".to_string())
                .then_some(())
        })
        .await;
    let deadline = Instant::now() + WAIT;
    while pod_limit() != Some(96 << 20) {
        assert!(
            Instant::now() < deadline,
            "the pod kept {:?} after a task finished",
            pod_limit()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(states(&master, "long"), ["TASK_STARTING", "TASK_RUNNING"]);
}

/// `kill -9` of a pod's supervisor while its tasks run: the agent notices,
/// kills every process left in the pod's cgroups (re-parented ones too),
/// removes the cgroups, and only then reports the tasks ended, saying the
/// supervisor died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_takes_its_containers_and_cgroups_with_it() {
    if !common::require_root("a_killed_supervisor_takes_its_containers_and_cgroups_with_it") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("supkill", &master);
    subscribed(&master, 1).await;
    let fw = framework("supkill", true);
    let mut one = command_task("one", "sleep 1000");
    one.agent_id = Default::default();
    let mut two = command_task("two", "sleep 1000 & sleep 1000");
    two.agent_id = Default::default();
    master.send(MasterEvent {
        r#type: Some(master_event::Type::RunTaskGroup as i32),
        run_task_group: Some(master_event::RunTaskGroup {
            framework: fw.clone(),
            executor: default_executor("supkill-pod", &fw),
            task_group: TaskGroupInfo {
                tasks: vec![one, two],
            },
        }),
        ..Default::default()
    });
    let mut acked = 0;
    master
        .wait_for("both tasks to run", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "one").contains(&"TASK_RUNNING".to_string())
                && states(m, "two").contains(&"TASK_RUNNING".to_string()))
            .then_some(())
        })
        .await;
    let run = agent.dir.join("run");
    let supervisors: Vec<(u32, String)> = common::processes_mentioning(&run.to_string_lossy())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("supervise"))
        .collect();
    assert_eq!(supervisors.len(), 1, "{supervisors:?}");
    let sleeps_before = common::sleeping_in(&agent.cgroup_root);
    assert!(sleeps_before, "the tasks' sleeps run in the pod's cgroups");
    // SAFETY: kill has no memory preconditions; the pid is the supervisor's.
    unsafe { libc::kill(supervisors[0].0 as i32, libc::SIGKILL) };

    master
        .wait_for("both tasks to end", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "one").iter().any(|s| s == "TASK_FAILED")
                && states(m, "two").iter().any(|s| s == "TASK_FAILED"))
            .then_some(())
        })
        .await;
    // By the time the tasks are reported, nothing of the pod runs.
    assert!(
        !common::sleeping_in(&agent.cgroup_root),
        "a task's process outlived its supervisor"
    );
    let failed = master
        .updates()
        .into_iter()
        .find(|u| u.status.task_id.value == "one" && state_of(&u.status) == TaskState::TaskFailed)
        .unwrap();
    assert!(
        failed.status.message().contains("supervisor died"),
        "{:?}",
        failed.status
    );
    executors_exited(&master, 1, &mut acked).await;
    agent.assert_pods_gone().await;
}

/// A custom executor written against nothing but Mesos's documented
/// environment and executor HTTP API (JSON), in Python.
const PYTHON_EXECUTOR: &str = r#"
import http.client, json, os, sys, uuid, base64, time, threading

host, port = os.environ["MESOS_AGENT_ENDPOINT"].split(":")
fw = os.environ["MESOS_FRAMEWORK_ID"]
ex = os.environ["MESOS_EXECUTOR_ID"]
assert os.environ["MESOS_DIRECTORY"] == os.environ["MESOS_SANDBOX"]
assert os.environ["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"].endswith("secs")

def call(body):
    c = http.client.HTTPConnection(host, int(port))
    c.request("POST", "/api/v1/executor", json.dumps(body),
              {"Content-Type": "application/json", "Accept": "application/json"})
    r = c.getresponse()
    data = r.read()
    assert r.status == 202, (r.status, data)

def update(task_id, state):
    u = base64.b64encode(uuid.uuid4().bytes).decode()
    call({"type": "UPDATE", "framework_id": {"value": fw}, "executor_id": {"value": ex},
          "update": {"status": {"task_id": task_id, "state": state, "source": "SOURCE_EXECUTOR", "uuid": u}}})
    return u

conn = http.client.HTTPConnection(host, int(port))
conn.request("POST", "/api/v1/executor",
             json.dumps({"type": "SUBSCRIBE", "framework_id": {"value": fw}, "executor_id": {"value": ex},
                         "subscribe": {}}),
             {"Content-Type": "application/json", "Accept": "application/json"})
resp = conn.getresponse()
assert resp.status == 200, resp.status
pending = set()
done = False
while True:
    line = resp.readline()
    if not line:
        break
    size = int(line.strip())
    event = json.loads(resp.read(size))
    kind = event["type"]
    if kind == "LAUNCH":
        task = event["launch"]["task"]
        pending.add(update(task["task_id"], "TASK_RUNNING"))
        print("custom executor ran", task["task_id"]["value"], flush=True)
        pending.add(update(task["task_id"], "TASK_FINISHED"))
        done = True
    elif kind == "ACKNOWLEDGED":
        pending.discard(event["acknowledged"]["uuid"])
    if done and not pending:
        sys.exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_executor_using_only_the_documented_api_works() {
    if !common::require_root("a_custom_executor_using_only_the_documented_api_works") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("custom", &master);
    subscribed(&master, 1).await;
    let script = agent.dir.join("executor.py");
    std::fs::write(&script, PYTHON_EXECUTOR).unwrap();
    let fw = framework("custom", false);
    let executor = ExecutorInfo {
        r#type: Some(executor_info::Type::Custom as i32),
        executor_id: ExecutorId { value: "py".into() },
        framework_id: fw.id.clone(),
        command: Some(CommandInfo {
            value: Some(format!("exec python3 {}", script.display())),
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 64.0)],
        ..Default::default()
    };
    let mut task = command_task("py-task", "unused");
    task.command = None;
    task.executor = Some(executor.clone());
    master.run_task(&fw, task, Some(executor));
    let mut acked = 0;
    master
        .wait_for("TASK_FINISHED from the custom executor", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "py-task") == ["TASK_RUNNING", "TASK_FINISHED"]).then_some(())
        })
        .await;
    executors_exited(&master, 1, &mut acked).await;
    let stdout =
        std::fs::read_to_string(agent.executor_runs("custom-fw", "py")[0].join("stdout")).unwrap();
    assert!(stdout.contains("custom executor ran py-task"), "{stdout}");
    agent.assert_pods_gone().await;
}

/// Distinct updates (by uuid) of a task, in the order first received.
fn distinct_states(master: &FakeMaster, task: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    master
        .updates()
        .into_iter()
        .filter(|u| u.status.task_id.value == task)
        .filter(|u| seen.insert(u.status.uuid.clone()))
        .map(|u| state_of(&u.status).as_str_name().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_survive_agent_sigkills_at_three_points_and_executors_resubscribe() {
    let test = "updates_survive_agent_sigkills_at_three_points_and_executors_resubscribe";
    if !common::require_root(test) {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("crash", &master);
    subscribed(&master, 1).await;
    let fw = framework("crash", true);

    // 1. Mid-launch: the agent dies right after checkpointing the task,
    // while its executor container is being started.
    master.run_task(&fw, command_task("early", "sleep 1"), None);
    let runs = agent
        .dir
        .join("work/meta/frameworks/crash-fw/executors/early/runs");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|run| run.path().join("tasks/early/task.json").exists())
    {
        assert!(Instant::now() < deadline, "the task was never checkpointed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    agent.sigkill();
    agent.spawn();
    subscribed(&master, 2).await;
    let mut acked = 0;
    master
        .wait_for("the early task to end", WAIT, |m| {
            ack_all(m, &mut acked);
            distinct_states(m, "early")
                .last()
                .filter(|s| *s != "TASK_STARTING" && *s != "TASK_RUNNING")
                .cloned()
        })
        .await;
    let early = distinct_states(&master, "early");
    assert!(
        early == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"] || early == ["TASK_LOST"],
        "mid-launch crash gave {early:?}"
    );

    // 2. An update (TASK_STARTING, the first) sent but not acknowledged
    // when the agent dies.
    let before = master.updates().len();
    master.run_task(&fw, command_task("middle", "sleep 2"), None);
    let running = master
        .wait_for("STARTING of the middle task", WAIT, |m| {
            m.updates()[before..]
                .iter()
                .find(|u| u.status.task_id.value == "middle")
                .cloned()
        })
        .await;
    acked = master.updates().len();
    agent.sigkill();
    agent.spawn();
    subscribed(&master, 3).await;
    // The same update (same uuid) comes again from the checkpoint.
    master
        .wait_for("STARTING to be resent", WAIT, |m| {
            m.updates()[acked..]
                .iter()
                .any(|u| u.status.uuid == running.status.uuid)
                .then_some(())
        })
        .await;
    // 3. The task finishes while the agent is down: the executor keeps the
    // update and hands it over when it re-subscribes.
    agent.sigkill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    agent.spawn();
    subscribed(&master, 4).await;
    acked = 0;
    master
        .wait_for("FINISHED of the middle task", WAIT, |m| {
            ack_all(m, &mut acked);
            (distinct_states(m, "middle") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"])
                .then_some(())
        })
        .await;
    let log = agent.log();
    assert!(log.contains("executor subscribed"), "{log}");
    // The early executor never ran (the master learns that from the
    // executor list of the re-registration); the middle one exits.
    master
        .wait_for("the middle executor to exit", WAIT, |m| {
            ack_all(m, &mut acked);
            m.exits()
                .iter()
                .any(|e| e.executor_id.value == "middle")
                .then_some(())
        })
        .await;
    let last = master.last_subscribe().unwrap();
    assert!(
        last.subscribe
            .unwrap()
            .executors
            .iter()
            .all(|e| e.executor_id.value != "early"),
        "a dead executor was re-registered"
    );
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_command_task_reports_task_killed() {
    if !common::require_root("killing_a_command_task_reports_task_killed") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("kill", &master);
    subscribed(&master, 1).await;
    let fw = framework("kill", true);
    master.run_task(&fw, command_task("victim", "sleep 100"), None);
    let mut acked = 0;
    master
        .wait_for("RUNNING", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "victim") == ["TASK_STARTING", "TASK_RUNNING"]).then_some(())
        })
        .await;
    master.kill_task(&fw, "victim");
    master
        .wait_for("TASK_KILLED", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "victim")
                .contains(&"TASK_KILLED".to_string())
                .then_some(())
        })
        .await;
    executors_exited(&master, 1, &mut acked).await;
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_fetched_into_the_sandbox_and_a_bad_uri_fails_the_task() {
    if !common::require_root("artifacts_are_fetched_into_the_sandbox_and_a_bad_uri_fails_the_task")
    {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("fetch", &master);
    subscribed(&master, 1).await;
    // An artifact the way workloads ship them: a tarball with a script.
    let src = agent.dir.join("artifact-src");
    std::fs::create_dir_all(src.join("my-artifact")).unwrap();
    std::fs::write(src.join("my-artifact/run.sh"), "echo artifact ran\n").unwrap();
    let tarball = agent.dir.join("my-artifact.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("my-artifact")
        .status()
        .unwrap();
    assert!(status.success());
    let fw = framework("fetch", true);
    let uri = |value: String| tepui_proto::v1::command_info::Uri {
        value,
        ..Default::default()
    };
    let mut good = command_task("good", "sh ./my-artifact/run.sh");
    good.command
        .as_mut()
        .unwrap()
        .uris
        .push(uri(format!("file://{}", tarball.display())));
    master.run_task(&fw, good, None);
    let missing = format!("http://{}/no/such/artifact.tgz", master.address);
    let mut bad = command_task("bad", "true");
    bad.command
        .as_mut()
        .unwrap()
        .uris
        .push(uri(missing.clone()));
    master.run_task(&fw, bad, None);

    let mut acked = 0;
    master
        .wait_for("both tasks to end", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "good").contains(&"TASK_FINISHED".to_string())
                && states(m, "bad").contains(&"TASK_FAILED".to_string()))
            .then_some(())
        })
        .await;
    assert!(
        agent
            .task_output("fetch-fw", "good")
            .contains("artifact ran")
    );
    let failed = master
        .updates()
        .into_iter()
        .find(|u| u.status.task_id.value == "bad" && state_of(&u.status) == TaskState::TaskFailed)
        .unwrap();
    let message = failed.status.message().to_string();
    assert!(
        message.contains(&missing) && message.contains("404"),
        "{message}"
    );
    assert_eq!(
        failed.status.reason,
        Some(tepui_proto::v1::task_status::Reason::ContainerLaunchFailed as i32)
    );
    executors_exited(&master, 2, &mut acked).await;
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_but_not_its_tasks() {
    if !common::require_root("sigterm_stops_the_agent_but_not_its_tasks") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("term", &master);
    subscribed(&master, 1).await;
    let fw = framework("term", true);
    master.run_task(&fw, command_task("long", "sleep 100"), None);
    let mut acked = 0;
    master
        .wait_for("RUNNING", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "long") == ["TASK_STARTING", "TASK_RUNNING"]).then_some(())
        })
        .await;
    let mut child = agent.child.take().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the agent ignored SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let run = agent.dir.join("run");
    assert!(
        !common::processes_mentioning(&run.to_string_lossy()).is_empty(),
        "the supervisor went away with the agent"
    );
    // A new agent takes over; the task is still there to be killed.
    agent.spawn();
    subscribed(&master, 2).await;
    master
        .wait_for("the executor to re-subscribe", WAIT, |_| {
            (agent.log().matches("executor subscribed").count() >= 2).then_some(())
        })
        .await;
    master.kill_task(&fw, "long");
    master
        .wait_for("TASK_KILLED", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "long")
                .contains(&"TASK_KILLED".to_string())
                .then_some(())
        })
        .await;
    agent.assert_pods_gone().await;
}

/// Calls the agent's operator API with a JSON body; (status, body).
async fn operator(agent: &AgentProc, body: serde_json::Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v1", agent.port))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_in_a_pulled_image_and_its_rootfs_goes_with_it() {
    let test = "a_container_runs_in_a_pulled_image_and_its_rootfs_goes_with_it";
    if !common::require_root(test) {
        return;
    }
    let Some(env) = common::oci_testenv(test) else {
        return;
    };
    let registry = env["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start_with(
        "image",
        &master,
        &["--docker_insecure_registries", &registry],
    );
    subscribed(&master, 1).await;
    let image = |name: &str| serde_json::json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": name}}}});
    let launch = |id: &str, command: &str, container: serde_json::Value| {
        serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
            "container_id": {"value": id},
            "command": {"value": command},
            "container": container,
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}})
    };
    // By tag (OCI) and by digest (Docker schema2).
    let digest = env["registries"]["plain"]["tags"]["busybox:v2s2"]
        .as_str()
        .unwrap();
    for (id, reference) in [
        ("by-tag", format!("{registry}/busybox:latest")),
        ("by-digest", format!("{registry}/busybox@{digest}")),
    ] {
        let (status, body) = operator(
            &agent,
            launch(
                id,
                "head -1 /etc/passwd; pwd; echo sandbox=$MESOS_SANDBOX",
                image(&reference),
            ),
        )
        .await;
        assert_eq!(status, 200, "{reference}: {body}");
        let (status, body) = operator(
            &agent,
            serde_json::json!({"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": id}}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"exit_status\":0"), "{body}");
        let out =
            std::fs::read_to_string(agent.dir.join("work/containers").join(id).join("stdout"))
                .unwrap();
        assert!(out.starts_with("root:"), "{out}");
        // The image's WorkingDir ("/") is the working directory (Mesos's
        // docker runtime rule); the sandbox is mounted where Mesos puts it.
        assert!(out.contains("\n/\nsandbox=/mnt/mesos/sandbox"), "{out}");
        let (status, body) = operator(
            &agent,
            serde_json::json!({"type": "REMOVE_CONTAINER", "remove_container": {"container_id": {"value": id}}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // The overlay mounts went with the containers.
    assert_eq!(common::mounts_under(&agent.dir), Vec::<String>::new());
    // A missing image fails the launch with a message naming it.
    let (status, body) = operator(
        &agent,
        launch(
            "missing",
            "true",
            image(&format!("{registry}/no-such-image:1")),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no-such-image"), "{body}");
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_report_healthy_and_kill_failing_tasks() {
    if !common::require_root("health_checks_report_healthy_and_kill_failing_tasks") {
        return;
    }
    use tepui_proto::v1::{HealthCheck, health_check};
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("health", &master);
    subscribed(&master, 1).await;
    let fw = framework("health", true);
    let fast = |kind: health_check::Type| HealthCheck {
        r#type: Some(kind as i32),
        delay_seconds: Some(0.2),
        interval_seconds: Some(0.3),
        timeout_seconds: Some(2.0),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(2),
        ..Default::default()
    };
    // An HTTP server that passes its HTTP check.
    let port = free_port();
    let mut web = command_task(
        "web",
        &format!("exec python3 -m http.server {port} --bind 127.0.0.1"),
    );
    let mut http = fast(health_check::Type::Http);
    http.http = Some(health_check::HttpCheckInfo {
        port: u32::from(port),
        path: Some("/".into()),
        ..Default::default()
    });
    web.health_check = Some(http);
    master.run_task(&fw, web, None);
    // A task whose COMMAND check always fails: killed after 2 failures.
    let mut sick = command_task("sick", "sleep 100");
    let mut command = fast(health_check::Type::Command);
    command.command = Some(CommandInfo {
        value: Some("test -e /no/such/file".into()),
        ..Default::default()
    });
    sick.health_check = Some(command);
    master.run_task(&fw, sick, None);

    let mut acked = 0;
    let healthy = master
        .wait_for("web to be reported healthy", WAIT, |m| {
            ack_all(m, &mut acked);
            m.updates()
                .into_iter()
                .find(|u| u.status.task_id.value == "web" && u.status.healthy == Some(true))
        })
        .await;
    assert_eq!(state_of(&healthy.status), TaskState::TaskRunning);
    let killed = master
        .wait_for("sick to be killed", WAIT, |m| {
            ack_all(m, &mut acked);
            m.updates().into_iter().find(|u| {
                u.status.task_id.value == "sick" && state_of(&u.status) == TaskState::TaskKilled
            })
        })
        .await;
    assert_eq!(killed.status.healthy, Some(false), "{:?}", killed.status);
    assert_eq!(
        killed.status.reason,
        Some(tepui_proto::v1::task_status::Reason::TaskHealthCheckStatusUpdated as i32)
    );
    assert!(
        killed.status.message().contains("health check failed"),
        "{:?}",
        killed.status
    );
    master.kill_task(&fw, "web");
    executors_exited(&master, 2, &mut acked).await;
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_checkpoints_stop_a_strict_agent_and_are_skipped_otherwise() {
    if !common::require_root("unreadable_checkpoints_stop_a_strict_agent_and_are_skipped_otherwise")
    {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("strict", &master);
    subscribed(&master, 1).await;
    let fw = framework("strict", true);
    master.run_task(&fw, command_task("t", "true"), None);
    let mut acked = 0;
    master
        .wait_for("the task to finish", WAIT, |m| {
            ack_all(m, &mut acked);
            (!m.exits().is_empty()).then_some(())
        })
        .await;
    agent.sigkill();
    let checkpoint = agent
        .dir
        .join("work/meta/frameworks/strict-fw/framework.json");
    std::fs::write(&checkpoint, "{ not json").unwrap();

    agent.spawn();
    let mut child = agent.child.take().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a strict agent started anyway"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(1));
    let log = agent.log();
    assert!(
        log.contains("framework.json") && log.contains("--strict=false"),
        "{log}"
    );

    agent.extra.push("--strict=false".into());
    agent.spawn();
    subscribed(&master, 2).await;
    assert!(
        agent.log().contains("recovery: skipping"),
        "{}",
        agent.log()
    );
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_are_garbage_collected_after_gc_delay() {
    if !common::require_root("finished_runs_are_garbage_collected_after_gc_delay") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start_with("gc", &master, &["--gc_delay=1secs"]);
    subscribed(&master, 1).await;
    let fw = framework("gc", true);
    master.run_task(&fw, command_task("short", "echo bye"), None);
    let mut acked = 0;
    executors_exited(&master, 1, &mut acked).await;
    let runs = agent.executor_runs("gc-fw", "short");
    assert_eq!(runs.len(), 1);
    let meta = agent.dir.join("work/meta/frameworks/gc-fw/executors/short");
    assert!(meta.exists());
    let deadline = Instant::now() + Duration::from_secs(15);
    while runs[0].exists() || meta.exists() {
        assert!(
            Instant::now() < deadline,
            "not collected: sandbox {} {}, meta {}",
            runs[0].display(),
            runs[0].exists(),
            meta.exists()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(agent.log().contains("garbage-collected a finished run"));
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_images_keeps_what_running_containers_use() {
    let test = "prune_images_keeps_what_running_containers_use";
    if !common::require_root(test) {
        return;
    }
    let Some(env) = common::oci_testenv(test) else {
        return;
    };
    let registry = env["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start_with(
        "prune",
        &master,
        &[
            "--docker_insecure_registries",
            &registry,
            "--image_gc_max_size",
            "10GB",
        ],
    );
    subscribed(&master, 1).await;
    let store = agent.dir.join("work/images");
    let count = |dir: &str| std::fs::read_dir(store.join(dir)).unwrap().count();
    let call = |kind: &str, field: &str, id: &str| serde_json::json!({"type": kind, field: {"container_id": {"value": id}}});
    let launch = |id: &str, command: &str, reference: String| {
        serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
            "container_id": {"value": id},
            "command": {"value": command},
            "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": reference}}}},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}})
    };
    let busybox = format!("{registry}/busybox:latest");
    let (status, body) = operator(&agent, launch("running", "sleep 300", busybox.clone())).await;
    assert_eq!(status, 200, "{body}");
    // `layers` = busybox's layer + 2; its container is gone when pruning.
    let (status, body) = operator(
        &agent,
        launch("done", "true", format!("{registry}/layers:latest")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator(&agent, call("WAIT_CONTAINER", "wait_container", "done")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        operator(&agent, call("REMOVE_CONTAINER", "remove_container", "done")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((count("images"), count("layers/sha256")), (2, 3));

    let prune = |excluded: Vec<&str>| {
        let images: Vec<_> = excluded
            .iter()
            .map(|n| serde_json::json!({"type": "DOCKER", "docker": {"name": n}}))
            .collect();
        serde_json::json!({"type": "PRUNE_IMAGES", "prune_images": {"excluded_images": images}})
    };
    let (status, body) = operator(&agent, prune(vec![])).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!((count("images"), count("layers/sha256")), (1, 1));

    let (status, body) =
        operator(&agent, call("KILL_CONTAINER", "kill_container", "running")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        operator(&agent, call("WAIT_CONTAINER", "wait_container", "running")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator(
        &agent,
        call("REMOVE_CONTAINER", "remove_container", "running"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Excluded: stays without a container.
    let (status, _) = operator(&agent, prune(vec![&busybox])).await;
    assert_eq!(status, 200);
    assert_eq!((count("images"), count("layers/sha256")), (1, 1));
    let (status, _) = operator(&agent, prune(vec![])).await;
    assert_eq!(status, 200);
    assert_eq!((count("images"), count("layers/sha256")), (0, 0));
    assert_eq!(common::mounts_under(&agent.dir), Vec::<String>::new());
    agent.assert_pods_gone().await;
}

/// Runs `tepui <args> --agent <agent>`; (exit code, stdout, stderr).
async fn tepui_cli(agent: &AgentProc, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(common::tepui_bin())
        .args(args)
        .arg(format!("--agent=127.0.0.1:{}", agent.port))
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn get_json(agent: &AgentProc, path_and_query: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{}{path_and_query}", agent.port))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_and_read_a_finished_tasks_sandbox_but_nothing_outside() {
    let test = "operators_list_and_read_a_finished_tasks_sandbox_but_nothing_outside";
    if !common::require_root(test) {
        return;
    }
    let master = FakeMaster::start().await;
    let agent = AgentProc::start("files", &master);
    subscribed(&master, 1).await;
    let fw = framework("files", true);
    master.run_task(
        &fw,
        // The task also plants links out of its sandbox.
        command_task(
            "done",
            "printf 'one\\ntwo\\nthree\\n'; ln -s /etc escape; ln -s /etc/passwd pw",
        ),
        None,
    );
    let mut acked = 0;
    master
        .wait_for("TASK_FINISHED", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "done")
                .contains(&"TASK_FINISHED".to_string())
                .then_some(())
        })
        .await;

    let run = agent.executor_runs("files-fw", "done").pop().unwrap();
    let run = run.to_string_lossy().into_owned();
    let (status, body) = operator(
        &agent,
        serde_json::json!({"type": "LIST_FILES", "list_files": {"path": run}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let paths: Vec<&str> = listed["list_files"]["file_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&format!("{run}/stdout").as_str()),
        "{paths:?}"
    );

    // A command task's stdout is its executor's, as in Mesos: size + a slice.
    let stdout = format!("{run}/stdout");
    let (status, body) = operator(
        &agent,
        serde_json::json!({"type": "READ_FILE",
            "read_file": {"path": stdout, "offset": 4, "length": 3}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(read["read_file"]["size"], 14, "{body}");
    // JSON carries bytes as base64: "two".
    assert_eq!(read["read_file"]["data"], "dHdv", "{body}");

    // The virtual Mesos path names the same file.
    let virtual_path = "/frameworks/files-fw/executors/done/runs/latest/stdout";
    let (status, v) = get_json(
        &agent,
        &format!("/files/read?path={virtual_path}&offset=4&length=3"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, serde_json::json!({"data": "two", "offset": 4}));
    let (_, v) = get_json(&agent, &format!("/files/read?path={stdout}&offset=-1")).await;
    assert_eq!(v, serde_json::json!({"data": "", "offset": 14}));
    let (_, v) = get_json(&agent, &format!("/files/read?path={stdout}&offset=8")).await;
    assert_eq!(v, serde_json::json!({"data": "three\n", "offset": 8}));
    let (status, v) = get_json(&agent, &format!("/files/browse?path={run}")).await;
    assert_eq!(status, 200, "{v}");
    let entry = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/stdout"))
        .unwrap()
        .clone();
    assert_eq!(entry["size"], 14);
    assert!(
        entry["mode"].as_str().unwrap().starts_with("-rw"),
        "{entry}"
    );
    let body = reqwest::get(format!(
        "http://127.0.0.1:{}/files/download?path={stdout}",
        agent.port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(body, "one\ntwo\nthree\n");

    // Outside the sandboxes: the agent's own files, a climb out, /etc, and
    // the task's links to /etc (through every file endpoint).
    let log = agent.dir.join("agent.log").to_string_lossy().into_owned();
    let task_dir = run.clone();
    assert!(
        std::fs::symlink_metadata(format!("{task_dir}/escape")).is_ok(),
        "the task made its link"
    );
    for path in [
        format!("{task_dir}/escape"),
        format!("{task_dir}/escape/"),
        format!("{task_dir}/escape/.."),
    ] {
        let (status, body) = operator(
            &agent,
            serde_json::json!({"type": "LIST_FILES", "list_files": {"path": path}}),
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        let (status, v) = get_json(&agent, &format!("/files/browse?path={path}")).await;
        assert_eq!(status, 403, "{path}: {v}");
    }
    for path in [
        log,
        format!("{run}/../../../../../../../../../agent.log"),
        "/etc/passwd".to_string(),
        format!("{task_dir}/escape/passwd"),
        format!("{task_dir}/pw"),
        format!("{task_dir}/escape/../etc/passwd"),
        "/frameworks/files-fw/executors/done/runs/latest/escape/passwd".to_string(),
        "/frameworks/../../../../../../../../../../../../etc/passwd".to_string(),
    ] {
        let response = reqwest::get(format!(
            "http://127.0.0.1:{}/files/download?path={path}",
            agent.port
        ))
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 403, "download {path}");
        let (status, body) = operator(
            &agent,
            serde_json::json!({"type": "READ_FILE", "read_file": {"path": path, "offset": 0}}),
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("outside the agent's sandboxes"), "{body}");
        let (status, _) = get_json(&agent, &format!("/files/read?path={path}&offset=0")).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = operator(
        &agent,
        serde_json::json!({"type": "LIST_FILES", "list_files": {"path": format!("{run}/nope")}}),
    )
    .await;
    assert_eq!(status, 404);

    // A one-message call larger than the body cap: 413, with a reason (the
    // agent answers before the body is all sent and closes: a client may
    // see its pipe break first, so try again then).
    for path in ["/api/v1", "/api/v1/executor"] {
        let mut answered = None;
        for _ in 0..5 {
            let sent = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{}{path}", agent.port))
                .header("content-type", "application/json")
                .body(vec![b' '; 9 << 20])
                .send()
                .await;
            if let Ok(response) = sent {
                answered = Some(response);
                break;
            }
        }
        let response = answered.expect("an answer");
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains("length limit"), "{path}: {text}");
    }

    // `tepui logs --tail 2` on the finished task, once its executor is
    // gone (the agent keeps it only in its history, as Mesos's agent
    // keeps completed executors): the sandbox is found on disk.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, executors) = operator(&agent, serde_json::json!({"type": "GET_EXECUTORS"})).await;
        let v: serde_json::Value = serde_json::from_str(&executors).unwrap();
        let live = v["get_executors"]["executors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["executor_info"]["executor_id"]["value"] == "done");
        if !live {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the executor still runs: {executors}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = tepui_cli(&agent, &["logs", "done", "--tail", "2"]).await;
    assert_eq!(code, Some(0), "{err}{out}");
    assert_eq!(out, "two\nthree\n");

    // The other read-only calls answer.
    for call in [
        "GET_FRAMEWORKS",
        "GET_EXECUTORS",
        "GET_METRICS",
        "GET_LOGGING_LEVEL",
    ] {
        let (status, body) = operator(&agent, serde_json::json!({ "type": call })).await;
        assert_eq!(status, 200, "{call}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_follows_across_rotations_and_kills_running_tasks() {
    let test = "the_cli_shows_follows_across_rotations_and_kills_running_tasks";
    if !common::require_root(test) {
        return;
    }
    let master = FakeMaster::start().await;
    let agent = AgentProc::start_with("cli", &master, &["--container_logs_max_size=1KB"]);
    subscribed(&master, 1).await;
    let fw = framework("cli", true);
    master.run_task(
        &fw,
        command_task(
            "chatty",
            "i=0; while [ $i -lt 150 ]; do echo line-$i-of-a-chatty-task-padding-padding; i=$((i+1)); sleep 0.03; done",
        ),
        None,
    );
    master.run_task(&fw, command_task("victim", "sleep 100"), None);
    let mut acked = 0;
    master
        .wait_for("both RUNNING", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "chatty").contains(&"TASK_RUNNING".to_string())
                && states(m, "victim").contains(&"TASK_RUNNING".to_string()))
            .then_some(())
        })
        .await;

    let follow = tokio::process::Command::new(common::tepui_bin())
        .args(["logs", "chatty", "-f"])
        .arg(format!("--agent=127.0.0.1:{}", agent.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let (code, out, err) = tepui_cli(&agent, &["ps", "--output", "json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let victim = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "victim")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(victim["state"], "TASK_RUNNING", "{victim}");
    assert!(victim["mem_bytes"].as_u64().unwrap() > 0, "{victim}");
    let (code, table, err) = tepui_cli(&agent, &["ps"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("victim"), "{table}");
    let (code, out, err) = tepui_cli(&agent, &["inspect", "victim"]).await;
    assert_eq!(code, Some(0), "{err}");
    let inspected: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspected["task"]["task_id"]["value"], "victim");

    // `-f` ends by itself when the task does, having printed every line
    // from where it started, across the 1KB rotations.
    let followed = tokio::time::timeout(WAIT, follow.wait_with_output())
        .await
        .expect("logs -f did not end with the task")
        .unwrap();
    let text = String::from_utf8_lossy(&followed.stdout).into_owned();
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let numbers: Vec<usize> = text
        .lines()
        .map(|l| l.split('-').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.last(), Some(&149), "{text}");
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap:\n{text}"
    );
    assert!(text.len() > 2048, "did not cross a rotation:\n{text}");
    let rotated = agent
        .executor_runs("cli-fw", "chatty")
        .pop()
        .unwrap()
        .join("stdout.1");
    assert!(rotated.exists(), "no rotation happened");

    let (code, _, err) = tepui_cli(&agent, &["kill", "victim"]).await;
    assert_eq!(code, Some(0), "{err}");
    master
        .wait_for("TASK_KILLED", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "victim")
                .contains(&"TASK_KILLED".to_string())
                .then_some(())
        })
        .await;
    let (code, _, err) = tepui_cli(&agent, &["kill", "no-such-task"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no task or container 'no-such-task'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_a_busy_tasks_cpu_and_memory() {
    if !common::require_root("top_shows_a_busy_tasks_cpu_and_memory") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("top", &master);
    subscribed(&master, 1).await;
    let fw = framework("top", true);
    master.run_task(&fw, command_task("spin", "while :; do :; done"), None);
    let mut acked = 0;
    master
        .wait_for("RUNNING", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "spin") == ["TASK_STARTING", "TASK_RUNNING"]).then_some(())
        })
        .await;
    let out = Command::new(common::tepui_bin())
        .args([
            "top",
            "--iterations",
            "1",
            "--interval",
            "1",
            "--output",
            "json",
        ])
        .arg(format!("--agent=127.0.0.1:{}", agent.port))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let busiest = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["cpu_percent"].as_f64())
        .fold(0.0, f64::max);
    assert!(busiest > 20.0, "no busy container in {rows}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["mem_bytes"].as_u64().unwrap_or(0) > 0),
        "{rows}"
    );
    master.kill_task(&fw, "spin");
    executors_exited(&master, 1, &mut acked).await;
    agent.assert_pods_gone().await;
}

/// A `tepui` CLI process on a pseudo-terminal of `rows` x `cols`, as an
/// operator's shell runs it: its own session with the pty as controlling
/// terminal. The reader thread collects everything it prints.
struct PtyCli {
    child: Child,
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PtyCli {
    fn spawn(args: &[String], rows: u16, cols: u16) -> Self {
        use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
        use std::os::unix::process::CommandExt;
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave = pty.slave.into_raw_fd();
        let mut cmd = Command::new(common::tepui_bin());
        cmd.args(args);
        // SAFETY: the fds are ours; only async-signal-safe calls follow fork.
        unsafe {
            cmd.stdin(Stdio::from_raw_fd(libc::dup(slave)))
                .stdout(Stdio::from_raw_fd(libc::dup(slave)))
                .stderr(Stdio::from_raw_fd(libc::dup(slave)))
                .pre_exec(|| {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
        }
        let child = cmd.spawn().unwrap();
        // SAFETY: closing our copy of the slave, which we own.
        unsafe { libc::close(slave) };
        let master = std::fs::File::from(pty.master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        let _ = master.as_raw_fd();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            master,
            seen,
        }
    }

    fn type_text(&mut self, text: &str) {
        use std::io::Write;
        self.master.write_all(text.as_bytes()).unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on our pty master with a live winsize.
        assert_eq!(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) },
            0
        );
    }

    async fn expect(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.contains(what) {
                return;
            }
            assert!(Instant::now() < deadline, "never saw {what:?} in {seen:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the CLI did not exit: {}",
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PtyCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI with `input` on its stdin; (exit code, stdout, stderr).
async fn tepui_cli_with_input(
    agent: &AgentProc,
    args: &[&str],
    input: &[u8],
) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(common::tepui_bin())
        .args(args)
        .env("TEPUI_AGENT", format!("127.0.0.1:{}", agent.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the CLI hung")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_gives_a_shell_in_a_pty_pipes_stdin_and_propagates_exit_codes() {
    let test = "exec_gives_a_shell_in_a_pty_pipes_stdin_and_propagates_exit_codes";
    if !common::require_root(test) {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("exec", &master);
    subscribed(&master, 1).await;
    let fw = framework("exec", true);
    master.run_task(
        &fw,
        command_task(
            "target",
            "x=$(head -c 30000000 /dev/zero | tr '\\0' a); echo ready > marker; sleep 1000",
        ),
        None,
    );
    let mut acked = 0;
    master
        .wait_for("the target to run", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "target")
                .contains(&"TASK_RUNNING".to_string())
                .then_some(())
        })
        .await;

    // Piped stdin, stdout and stderr apart, the exit code propagates.
    let (code, out, err) =
        tepui_cli_with_input(&agent, &["exec", "-i", "target", "--", "cat"], b"hi\n").await;
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"), "{err}");
    let (code, out, err) = tepui_cli_with_input(
        &agent,
        &[
            "exec",
            "target",
            "--",
            "sh",
            "-c",
            "until [ -s marker ]; do sleep 0.1; done; cat marker; echo oops >&2; exit 7",
        ],
        b"",
    )
    .await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(7), "ready\n", "oops\n")
    );

    // An interactive shell on a terminal: prompt, output, a resize seen by
    // `stty size`, ^D ends it with the last command's status.
    let args = vec![
        "exec".to_string(),
        "-it".to_string(),
        format!("--agent=127.0.0.1:{}", agent.port),
        "target".to_string(),
        "--".to_string(),
        "/bin/sh".to_string(),
    ];
    let mut cli = PtyCli::spawn(&args, 30, 100);
    cli.expect("# ").await;
    cli.type_text("stty size; echo $((6*7))\n");
    cli.expect("30 100").await;
    cli.expect("42").await;
    cli.resize(40, 120);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cli.type_text("stty size\n");
    cli.expect("40 120").await;
    cli.type_text("(exit 3)\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    cli.type_text("\x04");
    assert_eq!(cli.exit_code().await, Some(3));

    // UPDATE_CONTAINER changes the running task's limits; below its use
    // it is refused and nothing changes.
    let target = task_container_id(&agent, "target").await;
    let update = |mem: f64| {
        serde_json::json!({
            "type": "UPDATE_CONTAINER",
            "update_container": {
                "container_id": target,
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.2}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}
                ],
                "limits": {"mem": mem}
            }
        })
    };
    let (status, body) = operator(&agent, update(300.0)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator(&agent, update(0.1)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("usage"), "{body}");

    // Bad targets get clear errors; the task never noticed any of it.
    let (code, _, err) = tepui_cli_with_input(&agent, &["exec", "nope", "--", "true"], b"").await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no task or container 'nope'"), "{err}");
    let (_, tasks) = operator(&agent, serde_json::json!({"type": "GET_TASKS"})).await;
    assert!(tasks.contains("TASK_RUNNING"), "{tasks}");
    master.kill_task(&fw, "target");
    master
        .wait_for("the target to be killed", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "target")
                .contains(&"TASK_KILLED".to_string())
                .then_some(())
        })
        .await;
    let (code, _, err) = tepui_cli_with_input(&agent, &["exec", "target", "--", "true"], b"").await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not running") || err.contains("no task"),
        "{err}"
    );
    agent.assert_pods_gone().await;
}

/// The nested container running `task` (a command task's), by GET_CONTAINERS.
async fn task_container_id(agent: &AgentProc, task: &str) -> serde_json::Value {
    let (_, body) = operator(
        agent,
        serde_json::json!({"type": "GET_CONTAINERS", "get_containers": {"show_nested": true}}),
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    answer["get_containers"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["executor_id"]["value"] == task && c["container_id"]["parent"].is_object())
        .map(|c| c["container_id"].clone())
        .unwrap_or_else(|| panic!("no container for {task}: {body}"))
}

/// Opens a streaming operator call; the response streams RecordIO JSON.
async fn operator_stream(agent: &AgentProc, body: serde_json::Value) -> reqwest::Response {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v1", agent.port))
        .header("Content-Type", "application/json")
        .header("Accept", "application/recordio")
        .header("Message-Accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Collects the STDOUT data of a ProcessIO stream for `how_long`.
async fn stdout_of(response: reqwest::Response, how_long: Duration) -> String {
    use base64::Engine;
    use futures_util::StreamExt;
    let mut decoder = tepui_proto::recordio::Decoder::new();
    let mut out = String::new();
    let mut body = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + how_long;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        for record in decoder.feed(&chunk).unwrap() {
            let io: serde_json::Value = serde_json::from_slice(&record).unwrap();
            if io["type"] == "DATA" {
                assert_ne!(io["data"]["data"], "", "an empty DATA record");
                let data = base64::engine::general_purpose::STANDARD
                    .decode(io["data"]["data"].as_str().unwrap())
                    .unwrap();
                out.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_attachers_see_the_same_output_and_bad_session_input_harms_nothing() {
    let test = "many_attachers_see_the_same_output_and_bad_session_input_harms_nothing";
    if !common::require_root(test) {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("attach", &master);
    subscribed(&master, 1).await;
    let fw = framework("attach", true);
    master.run_task(
        &fw,
        command_task(
            "ticker",
            "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
        ),
        None,
    );
    master.run_task(
        &fw,
        command_task(
            "grower",
            "sleep 2; x=$(head -c 30000000 /dev/zero | tr '\\0' a); sleep 1000",
        ),
        None,
    );
    let mut acked = 0;
    master
        .wait_for("both to run", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "ticker").contains(&"TASK_RUNNING".to_string())
                && states(m, "grower").contains(&"TASK_RUNNING".to_string()))
            .then_some(())
        })
        .await;

    // `ps` sees the grower's memory grow.
    let mem_of = async |agent: &AgentProc| {
        let (code, out, err) = tepui_cli(agent, &["ps", "--output", "json"]).await;
        assert_eq!(code, Some(0), "{err}");
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "grower")
            .unwrap_or_else(|| panic!("no grower in {out}"))["mem_bytes"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = mem_of(&agent).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let now = mem_of(&agent).await;
        if now > before + 20_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory stayed at {now} (from {before})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Two CLI attachers on a task without a session: its live output.
    let attach = || {
        tokio::process::Command::new(common::tepui_bin())
            .args(["attach", "ticker"])
            .arg(format!("--agent=127.0.0.1:{}", agent.port))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (attach(), attach());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let _ = a.start_kill();
    let _ = b.start_kill();
    let lines = |out: std::process::Output| -> std::collections::BTreeSet<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (
        lines(a.wait_with_output().await.unwrap()),
        lines(b.wait_with_output().await.unwrap()),
    );
    let common_lines = a.intersection(&b).count();
    assert!(common_lines >= 5, "a: {a:?}\nb: {b:?}");

    // A session's output reaches its own connection and two attachers.
    let parent = task_container_id(&agent, "ticker").await;
    let session_id = serde_json::json!({"value": "sess", "parent": parent});
    let session = operator_stream(
        &agent,
        serde_json::json!({
            "type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {
                "container_id": session_id,
                "command": {"value": "i=0; while [ $i -lt 30 ]; do echo s-$i; i=$((i+1)); sleep 0.1; done"}
            }
        }),
    )
    .await;
    let attach_call = serde_json::json!({
        "type": "ATTACH_CONTAINER_OUTPUT",
        "attach_container_output": {"container_id": session_id}
    });
    let (x, y) = (
        operator_stream(&agent, attach_call.clone()).await,
        operator_stream(&agent, attach_call).await,
    );
    let (own, x, y) = tokio::join!(
        stdout_of(session, Duration::from_secs(10)),
        stdout_of(x, Duration::from_secs(10)),
        stdout_of(y, Duration::from_secs(10)),
    );
    assert!(own.starts_with("s-0\n") && own.ends_with("s-29\n"), "{own}");
    assert!(x.ends_with("s-29\n") && y.ends_with("s-29\n"), "{x}\n{y}");
    assert!(x.contains("s-20\n") && y.contains("s-20\n"), "{x}\n{y}");
    // WAIT still answers after the session ended.
    let (status, body) = operator(
        &agent,
        serde_json::json!({"type": "WAIT_CONTAINER", "wait_container": {"container_id": session_id}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"exit_status\":0"), "{body}");

    // Bad input: a malformed ProcessIO record, a record cut mid-way, an
    // unknown container, input for a container without a session.
    let dropped_id = serde_json::json!({"value": "dropped", "parent": parent});
    let dropped = operator_stream(
        &agent,
        serde_json::json!({
            "type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {
                "container_id": dropped_id,
                "command": {"value": "cat"}
            }
        }),
    )
    .await;
    let record = |v: serde_json::Value| {
        let text = v.to_string();
        format!("{}\n{text}", text.len())
    };
    let first = record(serde_json::json!({
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "CONTAINER_ID", "container_id": dropped_id}
    }));
    let send_input = async |body: String| {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/v1", agent.port))
            .header("Content-Type", "application/recordio")
            .header("Message-Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, body) = send_input(format!("{first}10\n{{not json}}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Record 2"), "{body}");
    let (status, body) = send_input(format!("{first}100\n{{\"type\"")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("inside a record"), "{body}");
    let unknown = record(serde_json::json!({
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "CONTAINER_ID", "container_id": {"value": "nope", "parent": parent}}
    }));
    let (status, _) = send_input(unknown).await;
    assert_eq!(status, 404);
    let plain = record(serde_json::json!({
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "CONTAINER_ID", "container_id": parent}
    }));
    let (status, body) = send_input(plain).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no session"), "{body}");

    // The session's connection drops: its container is killed, the task
    // runs on.
    drop(dropped);
    let (status, body) = operator(
        &agent,
        serde_json::json!({"type": "WAIT_CONTAINER", "wait_container": {"container_id": dropped_id}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"state\":\"TASK_KILLED\""), "{body}");
    let (_, tasks) = operator(&agent, serde_json::json!({"type": "GET_TASKS"})).await;
    let running = tasks.matches("TASK_RUNNING").count();
    assert!(running >= 2, "{tasks}");
    master.kill_task(&fw, "ticker");
    master.kill_task(&fw, "grower");
    master
        .wait_for("both killed", WAIT, |m| {
            ack_all(m, &mut acked);
            (states(m, "ticker").contains(&"TASK_KILLED".to_string())
                && states(m, "grower").contains(&"TASK_KILLED".to_string()))
            .then_some(())
        })
        .await;
    agent.assert_pods_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pulled_with_progress_listed_and_pruned_through_the_cli() {
    let test = "images_are_pulled_with_progress_listed_and_pruned_through_the_cli";
    if !common::require_root(test) {
        return;
    }
    let Some(env) = common::oci_testenv(test) else {
        return;
    };
    let registry = env["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start_with(
        "images",
        &master,
        &["--docker_insecure_registries", &registry],
    );
    subscribed(&master, 1).await;
    let reference = format!("{registry}/busybox:latest");

    // Per-layer progress as JSON lines, ending with the pulled digest.
    let (code, out, err) = tepui_cli(&agent, &["images", "pull", &reference, "-o", "json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    let layers = last["layers"].as_array().unwrap();
    assert!(!layers.is_empty(), "{out}");
    for layer in layers {
        assert_eq!(layer["bytes"], layer["total"], "{layer}");
    }
    assert!(
        last["pulled"]["manifest_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{last}"
    );
    // The plain form prints a finished bar per layer.
    let (code, out, err) = tepui_cli(&agent, &["pull", &reference]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("100%") && out.contains("pulled "), "{out}");

    let (code, out, err) = tepui_cli(&agent, &["images", "ls", "-o", "json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["reference"], reference.as_str(), "{out}");
    assert_eq!(listed[0]["in_use"], false);
    let (code, table, _) = tepui_cli(&agent, &["images", "ls"]).await;
    assert_eq!(code, Some(0));
    assert!(table.contains("busybox"), "{table}");

    // A missing image is a clear failure.
    let (code, _, err) = tepui_cli(&agent, &["pull", &format!("{registry}/nope:1")]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("nope"), "{err}");

    let (code, out, err) = tepui_cli(&agent, &["images", "prune"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 removed, 0 kept"), "{out}");
    let (_, out, _) = tepui_cli(&agent, &["images", "ls", "-o", "json"]).await;
    assert_eq!(out.trim(), "[]");
    agent.assert_pods_gone().await;
}

/// Entries of `dir` (names only): what a test compares before and after.
fn entries(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Ids that are not one path component, sent straight to the agent (as a
/// master that did not validate them would): every task ends TASK_ERROR
/// (REASON_TASK_INVALID) naming the field, and nothing is written outside
/// the work dir, not even the status update's checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_not_one_path_component_never_reach_the_disk() {
    if !common::require_root("ids_that_are_not_one_path_component_never_reach_the_disk") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start("badids", &master);
    subscribed(&master, 1).await;
    let pid = std::process::id();
    // `<dir>/work/meta/frameworks/../../../x` is `<dir>/x`: outside the work
    // dir; the long climb reaches /tmp.
    let deep = format!("../../../../../../../../../../../../tmp/tepui-escape-{pid}");
    let bad: Vec<String> = vec![
        "../../../escaped".into(),
        deep.clone(),
        "a/b".into(),
        "..".into(),
        "a\0b".into(),
        "x".repeat(256),
    ];
    let outside_before = entries(&agent.dir);
    let root_before = entries(std::path::Path::new("/"));
    // (task id, field named, how many such updates): a bad task id is
    // sent twice, as a command task and in a task group.
    let mut expected: Vec<(String, &str, usize)> = Vec::new();
    for (i, id) in bad.iter().enumerate() {
        // A command task with a bad task id.
        let fw = framework("badids", true);
        master.run_task(&fw, command_task(id, "true"), None);
        expected.push((id.clone(), "task_id", 2));
        // A bad framework id.
        let mut fw = framework("badids", true);
        fw.id = Some(tepui_proto::v1::FrameworkId { value: id.clone() });
        let task = format!("fw-{i}");
        master.run_task(&fw, command_task(&task, "true"), None);
        expected.push((task, "framework_id", 1));
        // A custom executor with a bad executor id.
        let fw = framework("badids", true);
        let task = format!("ex-{i}");
        let mut executor = default_executor(id, &fw);
        executor.r#type = Some(executor_info::Type::Custom as i32);
        executor.command = Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        });
        master.run_task(&fw, command_task(&task, "true"), Some(executor));
        expected.push((task, "executor_id", 1));
        // A task group with one bad task id.
        let mut bad_task = command_task(id, "true");
        bad_task.agent_id = Default::default();
        let mut good_task = command_task(&format!("group-{i}"), "true");
        good_task.agent_id = Default::default();
        master.send(MasterEvent {
            r#type: Some(master_event::Type::RunTaskGroup as i32),
            run_task_group: Some(master_event::RunTaskGroup {
                framework: fw.clone(),
                executor: default_executor(&format!("pod-{i}"), &fw),
                task_group: TaskGroupInfo {
                    tasks: vec![good_task, bad_task],
                },
            }),
            ..Default::default()
        });
        // Its good task ends with it, for the bad one's id.
        expected.push((format!("group-{i}"), "task_id", 1));
    }
    let mut acked = 0;
    for (task, field, count) in &expected {
        let updates = master
            .wait_for(&format!("TASK_ERROR for {task:?}"), WAIT, |m| {
                ack_all(m, &mut acked);
                let mine: Vec<_> = m
                    .updates()
                    .into_iter()
                    .filter(|u| &u.status.task_id.value == task)
                    .collect();
                (mine.len() >= *count).then_some(mine)
            })
            .await;
        assert_eq!(updates.len(), *count, "{task:?}");
        for update in updates {
            let message = update.status.message.clone().unwrap_or_default();
            assert!(
                message.contains(&format!("'{field}'")),
                "{task:?}: {message}"
            );
            assert_eq!(state_of(&update.status), TaskState::TaskError, "{task:?}");
            assert_eq!(
                update.status.reason,
                Some(tepui_proto::v1::task_status::Reason::TaskInvalid as i32),
                "{task:?}"
            );
        }
    }
    // Nothing appeared next to the work dir, at `/` or where the climb
    // would have landed.
    assert_eq!(entries(&agent.dir), outside_before, "{}", agent.log());
    assert_eq!(entries(std::path::Path::new("/")), root_before);
    assert!(!std::path::Path::new(&format!("/tmp/tepui-escape-{pid}")).exists());
    assert!(!agent.dir.join("escaped").exists());
    // No executor was started for any of them.
    assert!(agent.executor_runs("badids-fw", "pod-0").is_empty());

    // The agent keeps serving: a good task runs to the end.
    let fw = framework("badids", true);
    master.run_task(&fw, command_task("good", "true"), None);
    master
        .wait_for("the good task to finish", WAIT, |m| {
            ack_all(m, &mut acked);
            states(m, "good")
                .contains(&"TASK_FINISHED".to_string())
                .then_some(())
        })
        .await;
    agent.assert_pods_gone().await;
}

/// The agent API's smaller hostile inputs, each a 400 naming the field: a
/// signal number kill(2) refuses, a container asking for more than the
/// host has (`mem: 1e308`) or a NaN, and an image reference that cannot
/// name an image. The agent keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_api_refuses_out_of_range_input_naming_the_field() {
    if !common::require_root("the_agent_api_refuses_out_of_range_input_naming_the_field") {
        return;
    }
    let master = FakeMaster::start().await;
    let mut agent = AgentProc::start_with("hostile", &master, &["--image_providers", "docker"]);
    subscribed(&master, 1).await;
    let launch = |id: &str, mem: serde_json::Value| {
        serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
            "container_id": {"value": id},
            "command": {"value": "sleep 300"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]}})
    };
    for mem in [
        serde_json::json!(1e308),
        serde_json::json!(4096),
        serde_json::json!(-1),
    ] {
        let (status, body) = operator(&agent, launch("big", mem.clone())).await;
        assert_eq!(status, 400, "{mem}: {body}");
        assert!(body.contains("'resources' mem"), "{mem}: {body}");
    }
    let (status, body) = operator(&agent, launch("c", serde_json::json!(32))).await;
    assert_eq!(status, 200, "{body}");
    for signal in [0, -5, 1000] {
        let call = serde_json::json!({"type": "KILL_CONTAINER", "kill_container": {
            "container_id": {"value": "c"}, "signal": signal}});
        let (status, body) = operator(&agent, call).await;
        assert_eq!(status, 400, "{signal}: {body}");
        assert!(body.contains("'kill_container.signal'"), "{signal}: {body}");
    }
    // The container is untouched by the refused calls; a real kill works.
    let call = |kind: &str, field: &str| serde_json::json!({"type": kind, field: {"container_id": {"value": "c"}}});
    let (status, body) = operator(&agent, call("KILL_CONTAINER", "kill_container")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator(&agent, call("WAIT_CONTAINER", "wait_container")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator(&agent, call("REMOVE_CONTAINER", "remove_container")).await;
    assert_eq!(status, 200, "{body}");

    for reference in ["a@b", "UPPER/Case", "a b", "a@sha256:zz"] {
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/tepui/v1/images/pull",
                agent.port
            ))
            .body(serde_json::json!({ "reference": reference }).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 400, "{reference}: {body}");
        assert!(
            body.contains("'reference' is invalid"),
            "{reference}: {body}"
        );
    }
    agent.assert_pods_gone().await;
}
