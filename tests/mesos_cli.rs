//! The Mesos CLI (`avmesos-cli` 1.3.0, the maintained fork of Mesos's
//! `cli_new`), unchanged, against a real `tepui master` and `tepui agent`,
//! through a config file as its users write one; and the libprocess
//! behaviour it and other Mesos tools rely on (routing, JSONP, `/tasks`
//! paging), each checked on the real processes against the Mesos function
//! it follows. The CLI's venv is made by scripts/deps.sh
//! (`install_mesos_cli`, called by scripts/test.sh); this test installs
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::mesos_cluster::{Cluster, get_json, group, http, row, venv, wait_until};

use serde_json::{Value, json};

#[test]
fn the_mesos_cli_works_unchanged_against_tepui() {
    let test = "the_mesos_cli_works_unchanged_against_tepui";
    if !common::require_root(test) {
        return;
    }
    assert!(
        venv().join("bin/mesos-cli").exists(),
        "{}: no Mesos CLI; run `. scripts/deps.sh; install_mesos_cli` (scripts/test.sh does)",
        venv().display()
    );
    let cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["active"] == true)
    });
    let agent_id = get_json(&master, "/master/slaves")["slaves"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // `mesos agent list`: GET /slaves (id, hostname, active).
    let out = cluster.ok(&["agent", "list"]);
    let line = row(&out, &agent_id).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("True"), "{out}");
    assert!(out.starts_with("Agent ID"), "{out}");

    let file = cluster.dir.join("group.json");
    std::fs::write(&file, group().to_string()).unwrap();
    let mut run = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--task_group"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("both tasks to run", || {
        let tasks = get_json(&master, "/master/tasks")["tasks"].clone();
        tasks
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "TASK_RUNNING"))
    });
    let framework_id = get_json(&master, "/master/frameworks")["frameworks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // `mesos framework list` (-a): GET /master/frameworks/ (a trailing `/`).
    for args in [&["framework", "list"][..], &["framework", "list", "-a"]] {
        let out = cluster.ok(args);
        let line = row(&out, &framework_id).unwrap_or_else(|| panic!("{args:?}: {out}"));
        assert!(line.contains("True") && line.contains("tepui-run"), "{out}");
    }
    // `mesos framework inspect ID`: the framework's JSON without its tasks.
    let out = cluster.ok(&["framework", "inspect", &framework_id]);
    let fw: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(fw["id"], json!(framework_id), "{fw}");
    assert_eq!(fw["active"], json!(true), "{fw}");
    assert!(fw.get("tasks").is_none(), "{fw}");

    // `mesos task list`: GET /tasks?order=asc&limit=-1, the running ones.
    let out = cluster.ok(&["task", "list"]);
    for id in ["web-task", "db-task"] {
        let line = row(&out, id).unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.contains("TASK_RUNNING") && line.contains(&framework_id),
            "{out}"
        );
    }

    // `mesos task inspect ID`: the task's model JSON; its statuses name
    // its container (a nested container of the executor's).
    let out = cluster.ok(&["task", "inspect", "web-task"]);
    let task: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(task["id"], "web-task", "{task}");
    assert_eq!(task["slave_id"], json!(agent_id), "{task}");
    let status = &task["statuses"][0];
    let container = &status["container_status"]["container_id"];
    assert!(container["value"].is_string(), "{task}");
    assert!(container["parent"]["value"].is_string(), "{task}");
    assert!(
        status.get("healthy").is_none_or(Value::is_boolean),
        "{task}"
    );
    assert_eq!(task["labels"][0]["key"], "journey", "{task}");
    assert!(
        task.as_object().unwrap().values().all(|v| !v.is_null()),
        "{task}"
    );

    // `mesos task exec`: LAUNCH_NESTED_CONTAINER_SESSION below the task's
    // container, then WAIT_CONTAINER for the exit code.
    let (code, out, err) = cluster.mesos(&["task", "exec", "web-task", "echo", "hi"], "");
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"), "{err}");
    // -i: stdin piped through ATTACH_CONTAINER_INPUT.
    let (code, out, err) = cluster.mesos(
        &["task", "exec", "-i", "web-task", "cat"],
        "piped line one\nline two\n",
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "piped line one\nline two\n"),
        "{err}"
    );
    // The command's exit code is the CLI's.
    let (code, _, err) = cluster.mesos(&["task", "exec", "db-task", "sh", "-c", "exit 7"], "");
    assert_eq!(code, Some(7), "{err}");
    // TEARDOWN (v0, as the web UI and scripts send it): the framework is
    // done, its tasks are history.
    let (status, _, body) = http(
        &master,
        "POST",
        "/master/teardown",
        &format!("frameworkId={framework_id}"),
    );
    assert_eq!(status, 200, "{body}");
    wait_until("the tasks to be killed", || {
        get_json(&master, "/tasks?limit=-1")["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "TASK_KILLED"))
    });
    let _ = run.kill();
    let _ = run.wait();
    let out = cluster.ok(&["task", "list", "-a"]);
    for id in ["web-task", "db-task"] {
        let line = row(&out, id).unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains("TASK_KILLED"), "{out}");
    }
    let out = cluster.ok(&["task", "list"]);
    assert!(row(&out, "web-task").is_none(), "{out}");
    // A completed framework is not among `frameworks`, as in Mesos.
    let out = cluster.ok(&["framework", "list", "-a"]);
    assert!(row(&out, &framework_id).is_none(), "{out}");
    let completed = get_json(&master, "/master/frameworks/")["completed_frameworks"].clone();
    assert_eq!(completed[0]["id"], json!(framework_id), "{completed}");
}

/// libprocess's path resolution on both daemons (3rdparty/libprocess/src/
/// process.cpp, `ProcessBase::consume`: the trailing `/` is trimmed, the
/// longest registered prefix answers; `ProcessManager::handle`: a path
/// under no process goes to the delegate, `master` or `slave(1)`), and
/// JSONP (3rdparty/libprocess/src/http.cpp, `OK::OK(json, jsonp)`).
#[test]
fn libprocess_routing_and_jsonp_on_both_daemons() {
    let test = "libprocess_routing_and_jsonp_on_both_daemons";
    if !common::require_root(test) {
        return;
    }
    let cluster = Cluster::start();
    let (master, agent) = (cluster.master_addr.clone(), cluster.agent_addr.clone());
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });

    // Master: trailing `/`, longest prefix, delegate.
    for path in [
        "/master/frameworks/",
        "/frameworks/",
        "/master/state/",
        "/master/state/not/a/route",
        "/master/tasks/",
        "/slaves/",
        "/metrics/snapshot/",
        "/master/flags/",
    ] {
        get_json(&master, path);
    }
    assert!(get_json(&master, "/master/flags")["flags"].is_object());
    assert!(get_json(&master, "/master/state/x")["slaves"].is_array());
    assert_eq!(http(&master, "GET", "/no/such/route", "").0, 404);
    // The v1 APIs are routes of the `master` process too.
    let (status, _, body) = http(
        &master,
        "POST",
        "/master/api/v1",
        "{\"type\":\"GET_HEALTH\"}",
    );
    assert!(status == 200 || status == 415, "{status} {body}");

    // Agent: every route also under `/slave(1)/`.
    for path in [
        "/slave(1)/state",
        "/slave(1)/state/",
        "/slave(1)/state.json",
        "/slave(1)/flags",
        "/slave(1)/monitor/statistics",
        "/slave(1)/monitor/statistics.json",
        "/slave(1)/containers",
        "/state/",
        "/flags/",
        "/containers/",
        "/monitor/statistics/",
    ] {
        get_json(&agent, path);
    }
    assert_eq!(http(&agent, "GET", "/slave(1)/health", "").0, 200);
    assert_eq!(http(&agent, "GET", "/health/", "").0, 200);
    assert_eq!(http(&agent, "GET", "/slave(1)/nothing", "").0, 404);

    // JSONP on both daemons' JSON endpoints.
    for (addr, path) in [
        (&master, "/master/state"),
        (&master, "/master/state-summary"),
        (&master, "/master/roles"),
        (&master, "/metrics/snapshot"),
        (&master, "/master/frameworks/"),
        (&agent, "/slave(1)/state"),
        (&agent, "/metrics/snapshot"),
    ] {
        for callback in ["cb", "angular.callbacks._0"] {
            let (status, kind, body) = http(addr, "GET", &format!("{path}?jsonp={callback}"), "");
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(kind, "text/javascript", "{path}");
            let json = body
                .strip_prefix(&format!("{callback}("))
                .and_then(|b| b.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{path}: {body}"));
            serde_json::from_str::<Value>(json).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        // Reflected into a script: anything but an identifier is refused.
        for bad in ["alert(1)//", "a%3Bb", "%3Cscript%3E", "1x"] {
            let (status, _, _) = http(addr, "GET", &format!("{path}?jsonp={bad}"), "");
            assert_eq!(status, 400, "{path}?jsonp={bad}");
        }
    }
}

/// `/tasks` paging as Mesos reads it (src/master/readonly_handler.cpp,
/// `ReadOnlyHandler::tasks`): `numify<int>` of `limit` and `offset`; what
/// does not parse is the default (100, 0); a negative limit is no limit.
#[test]
fn tasks_paging_follows_mesos() {
    let test = "tasks_paging_follows_mesos";
    if !common::require_root(test) {
        return;
    }
    let cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });
    let file = cluster.dir.join("group.json");
    std::fs::write(&file, group().to_string()).unwrap();
    let mut run = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--task_group"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("both tasks to run", || {
        get_json(&master, "/master/tasks")["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "TASK_RUNNING"))
    });
    let count = |q: &str| {
        get_json(&master, &format!("/master/tasks?{q}"))["tasks"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("limit=-1"), 2);
    assert_eq!(count("limit=1"), 1);
    assert_eq!(count("limit=abc"), 2);
    assert_eq!(count("offset=1"), 1);
    assert_eq!(count("offset=zz"), 2);
    assert_eq!(count("offset=-1"), 0);
    assert_eq!(count("unknown=1"), 2);
    // Ordered by status time: ascending is the reverse of the default.
    let ids = |q: &str| -> Vec<Value> {
        get_json(&master, &format!("/master/tasks?{q}"))["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].clone())
            .collect()
    };
    let mut asc = ids("order=asc");
    asc.reverse();
    let time = |t: &Value| t["statuses"][0]["timestamp"].as_f64().unwrap();
    let tasks = get_json(&master, "/master/tasks")["tasks"].clone();
    let tasks = tasks.as_array().unwrap();
    assert!(time(&tasks[0]) >= time(&tasks[1]), "{tasks:?}");
    if time(&tasks[0]) > time(&tasks[1]) {
        assert_eq!(asc, ids(""));
    }
    let framework_id = tasks[0]["framework_id"].as_str().unwrap().to_string();
    let body = format!("frameworkId={framework_id}");
    assert_eq!(http(&master, "POST", "/master/teardown", &body).0, 200);
    let _ = run.kill();
    let _ = run.wait();
}

/// `mesos task attach` to tasks launched with a terminal
/// (`ContainerInfo.tty_info`), under the command executor and the default
/// executor: the CLI attaches its terminal (ATTACH_CONTAINER_OUTPUT, then
/// ATTACH_CONTAINER_INPUT with the window size), a typed command runs in the
/// task's shell and its output comes back, and Ctrl-P Ctrl-Q detaches
/// (avmesos/cli/mesos.py, `TaskIO.attach`), leaving the task running.
/// Mesos's I/O switchboard holds such a terminal
/// (src/slave/containerizer/mesos/io/switchboard.cpp).
#[test]
fn task_attach_to_tty_tasks() {
    let test = "task_attach_to_tty_tasks";
    if !common::require_root(test) {
        return;
    }
    assert!(
        venv().join("bin/mesos-cli").exists(),
        "{}: no Mesos CLI; run `. scripts/deps.sh; install_mesos_cli` (scripts/test.sh does)",
        venv().display()
    );
    let cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["active"] == true)
    });
    let tty_task = |id: &str| {
        json!({"name": id, "task_id": {"value": id},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "container": {"type": "MESOS",
                          "tty_info": {"window_size": {"rows": 24, "columns": 80}}},
            "command": {"value": "sh"}})
    };
    // The command executor's task (`--task`) and a task group's.
    let task_file = cluster.dir.join("tty-task.json");
    std::fs::write(&task_file, tty_task("tty-cmd").to_string()).unwrap();
    let group_file = cluster.dir.join("tty-group.json");
    std::fs::write(
        &group_file,
        json!({"tasks": [tty_task("tty-pod")]}).to_string(),
    )
    .unwrap();
    let mut runs: Vec<std::process::Child> =
        [("--task", &task_file), ("--task_group", &group_file)]
            .into_iter()
            .map(|(flag, file)| {
                Command::new(common::tepui_bin())
                    .args(["run", &format!("--master={master}"), flag])
                    .arg(file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
    wait_until("both terminal tasks to run", || {
        let tasks = get_json(&master, "/master/tasks")["tasks"].clone();
        tasks
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "TASK_RUNNING"))
    });
    let bin = venv().join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let venv_dir = venv().display().to_string();
    let config = cluster.config.display().to_string();
    let home = cluster.dir.display().to_string();
    for (task, word) in [("tty-cmd", "cmd"), ("tty-pod", "pod")] {
        let mut cli = common::pty::PtyCli::spawn_program(
            &bin.join("mesos-cli"),
            &["task".into(), "attach".into(), task.into()],
            &[
                ("PATH", &path),
                ("VIRTUAL_ENV", &venv_dir),
                ("MESOS_CLI_CONFIG", &config),
                ("HOME", &home),
            ],
            24,
            80,
        );
        // The shell echoes what is typed; only its output has the sum.
        let expected = format!("{word}-{}", 6 * 7);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cli.seen().contains(&expected) {
            assert!(
                std::time::Instant::now() < deadline,
                "{task}: no output: {}\nagent log:\n{}",
                cli.seen(),
                cluster.log("agent.log")
            );
            cli.type_text(&format!("echo {word}-$((6*7))\r"));
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        // Ctrl-P Ctrl-Q: the CLI's exit sequence detaches.
        cli.type_text("\x10\x11");
        assert_eq!(
            cli.exit_code(std::time::Duration::from_secs(20)),
            Some(0),
            "{task}"
        );
        let state = get_json(&master, "/master/tasks")["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task)
            .map(|t| t["state"].clone());
        assert_eq!(state, Some(json!("TASK_RUNNING")), "{task}");
    }
    // What the terminals showed is in the tasks' `stdout` logs, as the
    // switchboard logs a TTY container's output.
    fn logs(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                logs(&path, out);
            } else if kind.is_file() && path.file_name().is_some_and(|n| n == "stdout") {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut logged = String::new();
    logs(&cluster.dir.join("agent/work"), &mut logged);
    assert!(
        logged.contains("cmd-42") && logged.contains("pod-42"),
        "{logged}"
    );
    for framework in get_json(&master, "/master/frameworks")["frameworks"]
        .as_array()
        .unwrap()
    {
        let body = format!("frameworkId={}", framework["id"].as_str().unwrap());
        assert_eq!(http(&master, "POST", "/master/teardown", &body).0, 200);
    }
    for run in &mut runs {
        let _ = run.kill();
        let _ = run.wait();
    }
}
