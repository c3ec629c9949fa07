//! tepui's own web UI (`/` on the master, webui/) in a real headless
//! Chromium: tests/webui/browser.py drives it with Selenium against a real
//! master and agent and asserts on the rendered DOM (overview counts, a
//! task's state arriving live, a failed task's message, the sandbox and the
//! live log tail, a chart with data points, a task named like markup shown
//! as text, sign-in, the 403 page, "reconnecting" when the master goes
//! away, and under ZooKeeper HA the standbys listed and the page moving to
//! the new leader when its own is SIGKILLed). Screenshots go to
//! target/webui-screens/. Chromium, chromedriver and the Selenium venv come
//! from scripts/deps.sh (`install_webui_browser`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mesos_cluster::{Cluster, free_port, get_json, wait_until};
use serde_json::json;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv scripts/deps.sh makes; `None` (skip, or fail under CI) without it.
fn python(test: &str) -> Option<PathBuf> {
    let python = root().join("target/webui/venv/bin/python");
    let ready = python.exists() && Path::new("/usr/bin/chromedriver").exists();
    if !ready {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{test}: chromium, chromedriver or target/webui/venv missing (scripts/deps.sh install_webui_browser)"
            );
        }
        eprintln!("skipping {test}: run scripts/deps.sh's install_webui_browser first");
        return None;
    }
    Some(python)
}

/// Runs one scenario of browser.py; panics with its output when it fails.
fn browser(python: &Path, scenario: &str, env: &[(&str, String)]) {
    let screens = root().join("target/webui-screens").join(scenario);
    std::fs::create_dir_all(&screens).unwrap();
    let out = Command::new(python)
        .arg(root().join("tests/webui/browser.py"))
        .arg(scenario)
        .env("SCREENS", &screens)
        .env("TEPUI", common::tepui_bin())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // chromedriver's native stack frames say nothing: keep the Python part.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "browser.py {scenario} failed (screenshots in {}):\n{stdout}\n{stderr}",
        screens.display()
    );
    assert!(stdout.contains(&format!("{scenario}: ok")), "{stdout}");
    // What the scenario measured (the HA case: how long the failover took).
    print!("{stdout}");
}

#[test]
fn the_web_ui_shows_the_cluster_live_in_a_browser() {
    let test = "the_web_ui_shows_the_cluster_live_in_a_browser";
    if !common::require_root(test) {
        return;
    }
    let Some(python) = python(test) else { return };
    let cluster = Cluster::start();
    wait_until("the master serving", || {
        std::net::TcpStream::connect(&cluster.master_addr).is_ok()
    });
    wait_until("the agent registered", || {
        get_json(&cluster.master_addr, "/master/slaves")["slaves"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    // Without --zk the master lists itself alone, as the leader.
    let masters = get_json(&cluster.master_addr, "/webui/masters")["masters"].clone();
    assert_eq!(
        masters,
        json!([{"id": masters[0]["id"], "address": cluster.master_addr, "scheme": "http",
            "leader": true, "self": true}]),
    );
    let task = |name: &str, command: &str| {
        json!({"name": name, "task_id": {"value": format!("{name}-task")},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "command": {"value": command}})
    };
    let group = json!({"tasks": [
        task("web", "while true; do echo serving; sleep 1; done"),
        task("db", "sleep 600"),
    ]});
    let group_file = cluster.dir.join("group.json");
    std::fs::write(&group_file, group.to_string()).unwrap();
    browser(
        &python,
        "journey",
        &[
            ("MASTER", cluster.master_addr.clone()),
            ("GROUP", group_file.display().to_string()),
        ],
    );
    // The schedulers browser.py started are gone; Cluster's drop tears
    // their frameworks down and leaves nothing behind.
    std::thread::sleep(Duration::from_millis(200));
}

const CREDENTIALS: &str = r#"{"credentials": [
    {"principal": "ops", "secret": "ops-secret"},
    {"principal": "nobody", "secret": "nobody-secret"}]}"#;

/// `nobody` may view no framework and no task.
const ACLS: &str = r#"{
    "view_frameworks": [{"principals": {"values": ["nobody"]}, "users": {"type": "NONE"}}],
    "view_tasks": [{"principals": {"values": ["nobody"]}, "users": {"type": "NONE"}}]
}"#;

#[test]
fn the_web_ui_asks_for_credentials_and_shows_403_without_view_rights() {
    let test = "the_web_ui_asks_for_credentials_and_shows_403_without_view_rights";
    let Some(python) = python(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.json");
    std::fs::write(&credentials, CREDENTIALS).unwrap();
    let port = free_port();
    let mut master = Command::new(common::tepui_bin())
        .args([
            "master".to_string(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--work_dir={}", dir.path().join("master").display()),
            "--authenticate_http_readonly".into(),
            format!("--credentials=file://{}", credentials.display()),
            format!("--acls={ACLS}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    wait_until("the master serving", || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    let result = std::panic::catch_unwind(|| {
        browser(
            &python,
            "auth",
            &[
                ("MASTER", addr.clone()),
                ("UI_USER", "ops".into()),
                ("SECRET", "ops-secret".into()),
                ("NOBODY", "nobody".into()),
                ("NOBODY_SECRET", "nobody-secret".into()),
                // browser.py kills it to see the page notice.
                ("MASTER_PID", master.id().to_string()),
            ],
        )
    });
    let _ = master.kill();
    let _ = master.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A `tepui master` contending in ZooKeeper on 127.0.0.1:`port`.
fn ha_master(zk: &str, port: u16, dir: &Path, name: &str) -> std::process::Child {
    Command::new(common::tepui_bin())
        .args([
            "master".to_string(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--work_dir={}", dir.join(name).display()),
            format!("--zk={zk}"),
            "--quorum=1".into(),
            "--zk_session_timeout=2secs".into(),
            "--allocation_interval=100ms".into(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap()
}

/// The status of `GET target` (0 when nothing answers).
fn status(addr: &str, target: &str) -> u16 {
    // Checked first so that a master not listening yet panics nowhere.
    if std::net::TcpStream::connect(addr).is_err() {
        return 0;
    }
    std::panic::catch_unwind(|| common::mesos_cluster::http(addr, "GET", target, "").0).unwrap_or(0)
}

/// ZooKeeper HA: the page opened on the leader lists the leader and the
/// standby; when the leader is SIGKILLed the page moves to the other
/// master by itself and is live there again, its agent re-registered
/// (browser.py states the bound: 45 s from the kill to live on the new
/// leader, with a 2 s ZooKeeper session timeout).
#[test]
fn the_web_ui_follows_the_new_leader_when_its_master_dies() {
    let test = "the_web_ui_follows_the_new_leader_when_its_master_dies";
    if !common::require_root(test) {
        return;
    }
    let Some(python) = python(test) else { return };
    let zk = tepui_proto::zk::testing::ZkServer::start()
        .expect("zookeeper (apt-get install libzookeeper-java)");
    let url = zk.url("/tepui");
    let dir = tempfile::tempdir().unwrap().keep();
    let cgroup_root = format!("tepui-test-webui-ha-{}", std::process::id());
    let (a_port, b_port, agent_port) = (free_port(), free_port(), free_port());
    let (a, b) = (format!("127.0.0.1:{a_port}"), format!("127.0.0.1:{b_port}"));
    // The first master leads; the second is its standby.
    let mut first = ha_master(&url, a_port, &dir, "master-a");
    wait_until("the first master leading", || {
        status(&a, "/master/state") == 200
    });
    let mut second = ha_master(&url, b_port, &dir, "master-b");
    wait_until("the standby serving", || status(&b, "/health") == 200);
    let mut agent = Command::new(common::tepui_bin())
        .args([
            "agent".to_string(),
            format!("--master={url}"),
            "--ip=127.0.0.1".into(),
            "--hostname=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:1;mem:512;disk:256".into(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("the agent registered", || {
        get_json(&a, "/master/slaves")["slaves"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    });
    // The standby answers the list itself (the page waits on it there):
    // the leader first, then the standby.
    let listed = get_json(&b, "/webui/masters")["masters"].clone();
    let row = |m: &serde_json::Value| {
        (
            m["address"].as_str().unwrap_or_default().to_string(),
            m["leader"] == true,
            m["self"] == true,
        )
    };
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(row)
            .collect::<Vec<_>>(),
        vec![(a.clone(), true, false), (b.clone(), false, true)],
        "{listed}"
    );
    let result = std::panic::catch_unwind(|| {
        browser(
            &python,
            "ha",
            &[
                ("MASTER", a.clone()),
                ("STANDBY", b.clone()),
                ("LEADER_PID", first.id().to_string()),
            ],
        )
    });
    // SAFETY: kill has no memory preconditions; the pid is our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    for m in [&mut first, &mut second] {
        let _ = m.kill();
        let _ = m.wait();
    }
    common::kill_leftovers(&dir, &cgroup_root);
    for cgroup in common::cgroups_named(&cgroup_root).iter().rev() {
        let _ = std::fs::remove_dir(cgroup);
    }
    if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&dir) {
        eprintln!("leaving {}: {e}", dir.display());
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
