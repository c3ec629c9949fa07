//! tepui's own web UI (`/` on the master, webui/) in a real headless
//! Chromium: tests/webui/browser.py drives it with Selenium against a real
//! master and agent and asserts on the rendered DOM (overview counts, a
//! task's state arriving live, a failed task's message, the sandbox and the
//! live log tail, a chart with data points, a task named like markup shown
//! as text, sign-in, the 403 page, "reconnecting" when the master goes
//! away). Screenshots go to
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
