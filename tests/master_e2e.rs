//! `tepui master` end to end with real processes: a real master, a real
//! agent (real containers and cgroups) and a JSON scheduler written against
//! the v1 HTTP API. The master is SIGKILLed and restarted on its registry;
//! the agent re-registers with its running task, the framework re-subscribes
//! with its id and RECONCILE reports the task.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::json_scheduler::JsonScheduler;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

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

fn master_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    vec![
        "master".into(),
        "--ip=127.0.0.1".into(),
        format!("--port={port}"),
        format!("--work_dir={}", dir.join("master").display()),
        "--allocation_interval=100ms".into(),
    ]
}

async fn slaves(base: &str) -> usize {
    match reqwest::get(format!("{base}/slaves")).await {
        Ok(r) => r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map_or(0, |v| v["slaves"].as_array().map_or(0, Vec::len)),
        Err(_) => 0,
    }
}

async fn wait_agents(base: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    while slaves(base).await != n {
        assert!(Instant::now() < deadline, "{n} agents never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A JSON scheduler: the SUBSCRIBE stream decoded into events.
/// Stops the agent once its pods are gone (an agent stopped by SIGTERM
/// leaves running containers, as Mesos's does), then makes sure nothing of
/// the test is left.
fn stop_agent(mut agent: Child, dir: &std::path::Path, cgroup_root: &str) {
    let run = dir.join("agent/run");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && common::processes_mentioning(&run.to_string_lossy())
            .iter()
            .any(|(pid, _)| *pid != agent.id())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill has no memory preconditions; the pid is our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    common::kill_leftovers(dir, cgroup_root);
}

fn task(id: &str, agent: &Value, command: &str) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": command}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_master_and_agent_run_tasks_and_survive_a_master_sigkill() {
    if !common::require_root("real_master_and_agent_run_tasks_and_survive_a_master_sigkill") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cgroup_root = format!("tepui-e2e-master-{}", std::process::id());
    let mut master = spawn(
        &master_args(port, dir.path()),
        dir.path().join("master.log"),
    );
    let agent = spawn(
        &[
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={}", free_port()),
            format!("--work_dir={}", dir.path().join("agent/work").display()),
            format!("--runtime_dir={}", dir.path().join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
        ],
        dir.path().join("agent.log"),
    );
    wait_agents(&base, 1).await;

    let mut s = JsonScheduler::subscribe_as(&base, "e2e", None).await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [
            task("short", &offer["agent_id"], "echo hello"),
            task("long", &offer["agent_id"], "sleep 1000")]}}]}});
    assert_eq!(s.call(accept).await, 202);
    let mut seen = Vec::new();
    while !(seen.contains(&("short".to_string(), "TASK_FINISHED".to_string()))
        && seen.contains(&("long".to_string(), "TASK_RUNNING".to_string())))
    {
        let u = s.update().await;
        seen.push((
            u["task_id"]["value"].as_str().unwrap().to_string(),
            u["state"].as_str().unwrap().to_string(),
        ));
    }
    let framework_id = s.framework_id.clone();
    drop(s);

    // The CLI finds the task's agent through the master (no --agent).
    let cli = |args: &[&str]| {
        let out = Command::new(common::tepui_bin())
            .args(args)
            .env_remove("TEPUI_AGENT")
            .env("TEPUI_CONFIG", "/dev/null")
            .env("TEPUI_MASTER", format!("127.0.0.1:{port}"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["exec", "long", "--", "echo", "via-master"]);
    assert_eq!((code, out.as_str()), (Some(0), "via-master\n"), "{err}");
    let (code, _, err) = cli(&["inspect", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("knows no such task"), "{err}");

    // SIGKILL, then a new master on the same registry and port.
    master.kill().unwrap();
    master.wait().unwrap();
    master = spawn(
        &master_args(port, dir.path()),
        dir.path().join("master2.log"),
    );
    wait_agents(&base, 1).await;
    let mut s = JsonScheduler::subscribe_as(&base, "e2e", Some(&framework_id)).await;
    assert_eq!(s.framework_id, framework_id);
    assert_eq!(
        s.call(json!({"type": "RECONCILE", "reconcile": {}})).await,
        202
    );
    // "short" may be reported too: when the master died before relaying the
    // acknowledgement of its TASK_FINISHED, the agent re-registers with it.
    let u = loop {
        let u = s.update().await;
        if u["task_id"]["value"] == "short" {
            assert_eq!(u["state"], "TASK_FINISHED");
            continue;
        }
        break u;
    };
    assert_eq!(u["task_id"]["value"], "long");
    assert_eq!(u["state"], "TASK_RUNNING");
    assert_eq!(u["reason"], "REASON_RECONCILIATION");
    assert!(u.get("uuid").is_none());

    // TEARDOWN kills the task on the agent: no process is left in this
    // agent's cgroups (other tests may run `sleep 1000` elsewhere).
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    let deadline = Instant::now() + WAIT;
    while common::sleeping_in(&cgroup_root) {
        assert!(
            Instant::now() < deadline,
            "task still running after TEARDOWN:\n{}",
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_agent(agent, dir.path(), &cgroup_root);
    master.kill().unwrap();
    let _ = master.wait();
    for cgroup in common::cgroups_named(&cgroup_root).iter().rev() {
        let _ = std::fs::remove_dir(cgroup);
    }
}

/// The master among `ports` that serves `/master/state` itself.
async fn leading_port(ports: &[u16]) -> Option<u16> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for &port in ports {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/master/state"))
            .send()
            .await
            && r.status() == 200
        {
            return Some(port);
        }
    }
    None
}

async fn wait_leader(ports: &[u16]) -> u16 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(port) = leading_port(ports).await {
            return port;
        }
        assert!(Instant::now() < deadline, "no leading master");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agent_follows_a_zookeeper_leader_change_with_its_running_task() {
    if !common::require_root("real_agent_follows_a_zookeeper_leader_change_with_its_running_task") {
        return;
    }
    let zk = tepui_proto::zk::testing::ZkServer::start().expect("zookeeper");
    let zk_url = zk.url("/tepui");
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let ha_args = |port: u16| {
        vec![
            "master".to_string(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            "--allocation_interval=100ms".into(),
            format!("--zk={zk_url}"),
            "--quorum=1".into(),
            "--zk_session_timeout=2secs".into(),
        ]
    };
    let mut masters: Vec<(u16, Child)> = ports
        .iter()
        .map(|&p| {
            (
                p,
                spawn(&ha_args(p), dir.path().join(format!("master-{p}.log"))),
            )
        })
        .collect();
    let leader = wait_leader(&ports).await;
    let cgroup_root = format!("tepui-e2e-ha-{}", std::process::id());
    let agent = spawn(
        &[
            "agent".into(),
            format!("--master={zk_url}"),
            "--ip=127.0.0.1".into(),
            format!("--port={}", free_port()),
            format!("--work_dir={}", dir.path().join("agent/work").display()),
            format!("--runtime_dir={}", dir.path().join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
        ],
        dir.path().join("agent.log"),
    );
    let base = format!("http://127.0.0.1:{leader}");
    wait_agents(&base, 1).await;
    let mut s = JsonScheduler::subscribe_as(&base, "e2e", None).await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [task("long", &offer["agent_id"], "sleep 1000")]}}]}});
    assert_eq!(s.call(accept).await, 202);
    while s.update().await["state"] != "TASK_RUNNING" {}
    let framework_id = s.framework_id.clone();
    drop(s);

    // SIGKILL the leader: the other master is elected once ZooKeeper expires
    // the dead one's session, and the agent re-registers with it.
    let index = masters.iter().position(|(p, _)| *p == leader).unwrap();
    let (_, mut dead) = masters.remove(index);
    dead.kill().unwrap();
    dead.wait().unwrap();
    let died = Instant::now();
    let next = wait_leader(&[masters[0].0]).await;
    let base = format!("http://127.0.0.1:{next}");
    wait_agents(&base, 1).await;
    println!(
        "real agent re-registered with the new leader {:.2}s after the leader's SIGKILL",
        died.elapsed().as_secs_f64()
    );
    let mut s = JsonScheduler::subscribe_as(&base, "e2e", Some(&framework_id)).await;
    assert_eq!(
        s.call(json!({"type": "RECONCILE", "reconcile": {}})).await,
        202
    );
    let u = s.update().await;
    assert_eq!(u["task_id"]["value"], "long");
    assert_eq!(u["state"], "TASK_RUNNING");

    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    let deadline = Instant::now() + WAIT;
    while common::sleeping_in(&cgroup_root) {
        assert!(
            Instant::now() < deadline,
            "task still running after TEARDOWN"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_agent(agent, dir.path(), &cgroup_root);
    for (_, mut m) in masters {
        m.kill().unwrap();
        let _ = m.wait();
    }
    for cgroup in common::cgroups_named(&cgroup_root).iter().rev() {
        let _ = std::fs::remove_dir(cgroup);
    }
}

/// Runs `tepui run --master <base> <args>`; (exit code, stdout, stderr).
fn tepui_run(base: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(common::tepui_bin())
        .arg("run")
        .arg(format!("--master={base}"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tepui_run_launches_commands_and_task_groups_like_mesos_execute() {
    if !common::require_root("tepui_run_launches_commands_and_task_groups_like_mesos_execute") {
        return;
    }
    let dir = tempfile::tempdir().unwrap().keep();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cgroup_root = format!("tepui-e2e-run-{}", std::process::id());
    let mut master = spawn(&master_args(port, &dir), dir.join("master.log"));
    let agent = spawn(
        &[
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={}", free_port()),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
        ],
        dir.join("agent.log"),
    );
    wait_agents(&base, 1).await;
    let base2 = base.clone();
    let run = move |args: Vec<String>| {
        let base = base2.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tepui_run(&base, &args)
        })
    };
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // A command task: its updates are printed, FINISHED exits 0.
    let (code, out, err) = run(strings(&["--name", "hello", "--", "echo", "hi"]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("TASK_RUNNING") && out.contains("TASK_FINISHED"),
        "{out}"
    );
    // A failing command exits with its own code, the failure shown.
    let (code, out, _) = run(strings(&["--name", "bad", "--", "exit 3"]))
        .await
        .unwrap();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("TASK_FAILED"), "{out}");

    // The documentation's kind of task group: requests, limits with
    // "Infinity", share_cgroups false; --output json gives one event a line.
    let group = json!({"tasks": [
        {"name": "a", "task_id": {"value": "group-a"},
         "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                       {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
         "limits": {"cpus": "Infinity", "mem": 64},
         "command": {"value": "echo a"},
         "container": {"type": "MESOS", "linux_info": {"share_cgroups": false}}},
        {"name": "b", "task_id": {"value": "group-b"},
         "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                       {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
         "command": {"value": "echo b"},
         "container": {"type": "MESOS", "linux_info": {"share_cgroups": false}}}
    ]});
    let file = dir.join("group.json");
    std::fs::write(&file, group.to_string()).unwrap();
    let (code, out, err) = run(strings(&[
        "--task_group",
        file.to_str().unwrap(),
        "-o",
        "json",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let finished: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["state"] == "TASK_FINISHED")
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(finished.len(), 2, "{out}");

    // A bad file fails before anything launches, naming what is wrong.
    std::fs::write(&file, r#"{"tasks": [{"name": "x", "resources": "lots"}]}"#).unwrap();
    let (code, _, err) = run(strings(&["--task_group", file.to_str().unwrap()]))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(
        err.contains("TaskGroupInfo") && err.contains("resources"),
        "{err}"
    );

    stop_agent(agent, &dir, &cgroup_root);
    master.kill().unwrap();
    let _ = master.wait();
    for cgroup in common::cgroups_named(&cgroup_root).iter().rev() {
        let _ = std::fs::remove_dir(cgroup);
    }
}
