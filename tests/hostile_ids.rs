//! Ids that are not one path component, end to end with real processes: a
//! real `tepui master`, a real `tepui agent` and a JSON scheduler. Every id
//! field (the framework id on SUBSCRIBE; task and executor ids in ACCEPT's
//! LAUNCH and LAUNCH_GROUP) with `..`, `/`, NUL and 256 bytes is refused
//! with the field named (400 or TASK_ERROR), nothing appears outside the
//! agent's work dir, and both daemons keep serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::json_scheduler::{JsonScheduler, WAIT, command_task, launch_group, scalar};
use serde_json::{Value, json};

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
    cgroup_root: String,
    master: Child,
    agent: Child,
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

async fn start() -> Cluster {
    let dir = tempfile::Builder::new()
        .prefix("tepui-ids-")
        .tempdir()
        .unwrap()
        .keep();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cgroup_root = format!("tepui-test-ids-{}", std::process::id());
    let master = spawn(
        &[
            "master".into(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            "--allocation_interval=100ms".into(),
        ],
        dir.join("master.log"),
    );
    let agent = spawn(
        &[
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={}", free_port()),
            format!("--work_dir={}", dir.join("work").display()),
            format!("--runtime_dir={}", dir.join("run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:8;mem:8192;disk:1024".into(),
        ],
        dir.join("agent.log"),
    );
    let cluster = Cluster {
        dir,
        base,
        cgroup_root,
        master,
        agent,
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
            return cluster;
        }
        assert!(Instant::now() < deadline, "the agent never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// What a test compares before and after: the test dir next to the work
/// dir, the top of `/`, and `/tmp` entries named like the escape target.
fn outside(dir: &Path, marker: &str) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let tmp = entries(Path::new("/tmp"))
        .into_iter()
        .filter(|e| e.contains(marker))
        .collect();
    (
        entries(dir)
            .into_iter()
            .filter(|e| !e.ends_with(".log"))
            .collect(),
        entries(Path::new("/")),
        tmp,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_not_one_path_component_are_refused_end_to_end() {
    if !common::require_root("ids_that_are_not_one_path_component_are_refused_end_to_end") {
        return;
    }
    let cluster = start().await;
    let marker = format!("tepui-escape-{}", std::process::id());
    // From `<work>/meta/frameworks/<id>`, this climbs to /tmp.
    let climb = format!("../../../../../../../../../../../../tmp/{marker}");
    let bad: Vec<String> = vec![
        climb,
        "../escaped".into(),
        "a/b".into(),
        "..".into(),
        "a\0b".into(),
        "x".repeat(256),
    ];
    let before = outside(&cluster.dir, &marker);
    let client = reqwest::Client::new();

    // SUBSCRIBE: 400 naming the field.
    for id in &bad {
        let call = json!({"type": "SUBSCRIBE", "framework_id": {"value": id},
            "subscribe": {"framework_info": {"user": "root", "name": "bad",
                "id": {"value": id}}}});
        let resp = client
            .post(format!("{}/api/v1/scheduler", cluster.base))
            .header("Content-Type", "application/json")
            .body(call.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 400, "{id:?}: {body}");
        assert!(body.contains("'framework_info.id'"), "{id:?}: {body}");
    }

    // ACCEPT: one offer, every bad task and executor id at once.
    let mut s = JsonScheduler::subscribe(&cluster.base, "ids").await;
    let offers = s.next("OFFERS").await["offers"]["offers"].clone();
    let offer = &offers[0];
    let agent = offer["agent_id"].clone();
    let mut ops = Vec::new();
    let mut expected: Vec<(String, &str)> = Vec::new();
    for (i, id) in bad.iter().enumerate() {
        ops.push(json!({"type": "LAUNCH", "launch": {"task_infos": [
            command_task(id, &agent, "true")]}}));
        expected.push((id.clone(), "'task_id'"));
        let mut custom = command_task(&format!("custom-{i}"), &agent, "true");
        custom.as_object_mut().unwrap().remove("command");
        custom["executor"] = json!({"type": "CUSTOM", "executor_id": {"value": id},
            "command": {"value": "true"},
            "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)]});
        ops.push(json!({"type": "LAUNCH", "launch": {"task_infos": [custom]}}));
        expected.push((format!("custom-{i}"), "'executor.executor_id'"));
        let member = format!("member-{i}");
        ops.push(launch_group(id, &agent, &[(&member, "true", None)]));
        expected.push((member, "'executor.executor_id'"));
        ops.push(launch_group(
            &format!("pod-{i}"),
            &agent,
            &[(id, "true", None)],
        ));
    }
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]], "operations": ops,
        "filters": {"refuse_seconds": 0.0}}});
    assert_eq!(s.call(accept).await, 202);
    // A bad task id comes twice: in LAUNCH and in LAUNCH_GROUP.
    let mut seen: Vec<(String, String)> = Vec::new();
    while seen.len() < expected.len() + bad.len() {
        let u = s.update().await;
        assert_eq!(u["state"], "TASK_ERROR", "{u}");
        seen.push((
            u["task_id"]["value"].as_str().unwrap().to_string(),
            u["message"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (task, field) in &expected {
        let (_, msg) = seen
            .iter()
            .find(|(t, m)| t == task && m.contains(field))
            .unwrap_or_else(|| panic!("no TASK_ERROR naming {field} for {task:?}: {seen:?}"));
        assert!(msg.contains("invalid"), "{msg}");
    }
    for id in &bad {
        let n = seen
            .iter()
            .filter(|(t, m)| t == id && m.contains("'task_id'"))
            .count();
        assert_eq!(n, 2, "{id:?}: {seen:?}");
    }

    // Nothing appeared outside the work dir.
    assert_eq!(outside(&cluster.dir, &marker), before);
    assert!(!cluster.dir.join("work/escaped").exists());

    // Both daemons keep serving: a good task runs to the end.
    let offers = s.next("OFFERS").await["offers"]["offers"].clone();
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offers[0]["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
            command_task("good", &offers[0]["agent_id"], "true")]}}]}});
    assert_eq!(s.call(accept).await, 202);
    s.await_all(&["good"], "TASK_FINISHED").await;
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    // The good task's pod goes before the daemons stop: no supervisor,
    // cgroup or mount left.
    let run = cluster.dir.join("run");
    let deadline = Instant::now() + WAIT;
    loop {
        let supervisors: Vec<_> = common::processes_mentioning(&run.to_string_lossy())
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("supervise"))
            .collect();
        let cgroups: Vec<_> = common::cgroups_named(&cluster.cgroup_root)
            .into_iter()
            .filter(|c| !c.ends_with(&cluster.cgroup_root))
            .collect();
        let mounts = common::mounts_under(&cluster.dir);
        if supervisors.is_empty() && cgroups.is_empty() && mounts.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {supervisors:?} {cgroups:?} {mounts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
