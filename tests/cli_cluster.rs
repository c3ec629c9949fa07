//! The operator CLI against a real cluster (a `tepui master` and a `tepui
//! agent` process, real containers and cgroups, the loopback OCI registry):
//! a task group of two tasks, one in an image, launched with `tepui run
//! --task_group`. Every task verb acts on *that task's* container; `ps`
//! has a row per task with its own usage and limits; ended tasks are seen
//! through the master; `kill` of one task ends the group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A master and an agent; on drop (also after a failed assertion) nothing
/// of them is left: processes, cgroups, the work dirs.
struct Cluster {
    dir: PathBuf,
    cgroup_root: String,
    master: Child,
    agent: Option<Child>,
    master_addr: String,
    agent_addr: String,
}

impl Cluster {
    fn start(registry: &str) -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let cgroup_root = format!("tepui-test-cli-{}", std::process::id());
        let (master_port, agent_port) = (free_port(), free_port());
        let spawn = |args: Vec<String>, log: &str| {
            Command::new(common::tepui_bin())
                .args(args)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(log)).unwrap())
                .spawn()
                .unwrap()
        };
        let master = spawn(
            vec![
                "master".into(),
                "--ip=127.0.0.1".into(),
                format!("--port={master_port}"),
                format!("--work_dir={}", dir.join("master").display()),
                "--allocation_interval=100ms".into(),
            ],
            "master.log",
        );
        let agent = spawn(
            vec![
                "agent".into(),
                format!("--master=127.0.0.1:{master_port}"),
                "--ip=127.0.0.1".into(),
                format!("--port={agent_port}"),
                format!("--work_dir={}", dir.join("agent/work").display()),
                format!("--runtime_dir={}", dir.join("agent/run").display()),
                format!("--cgroups_root={cgroup_root}"),
                "--resources=cpus:2;mem:2048;disk:1024".into(),
                "--image_providers=docker".into(),
                format!("--docker_insecure_registries={registry}"),
            ],
            "agent.log",
        );
        Cluster {
            dir,
            cgroup_root,
            master,
            agent: Some(agent),
            master_addr: format!("127.0.0.1:{master_port}"),
            agent_addr: format!("127.0.0.1:{agent_port}"),
        }
    }

    /// `tepui ARGS` with no agent or master from the environment or a
    /// config file; (exit code, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(common::tepui_bin())
            .args(args)
            .env_remove("TEPUI_AGENT")
            .env_remove("TEPUI_MASTER")
            .env("TEPUI_CONFIG", "/dev/null")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `tepui ARGS --master M`, which must succeed; its stdout.
    fn via_master(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--master", &self.master_addr]);
        let (code, out, err) = self.cli(&all);
        assert_eq!(code, Some(0), "tepui {args:?}: {err}{out}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.via_master(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            // Its pods end with their executors; wait for them first.
            let run = self.dir.join("agent/run");
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
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("leaving {}: {e}", self.dir.display());
        }
    }
}

/// `tepui run` in the background; its `-o json` events arrive on a channel.
struct Run {
    child: Child,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Run {
    fn start(cluster: &Cluster, args: &[&str]) -> Self {
        let mut child = Command::new(common::tepui_bin())
            .arg("run")
            .arg(format!("--master={}", cluster.master_addr))
            .args(["-o", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && tx.send(event).is_err()
                {
                    return;
                }
            }
        });
        Run {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits until `task` reported `state`.
    fn wait_for(&mut self, task: &str, state: &str) {
        let deadline = Instant::now() + WAIT;
        while !self
            .seen
            .iter()
            .any(|e| e["task"] == task && e["state"] == state)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.seen.push(event),
                Err(_) => panic!("{task} never reached {state}: {:?}", self.seen),
            }
        }
    }

    fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "tepui run did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn group(image: &str) -> Value {
    let task = |name: &str, mem: f64, limits: Value| {
        json!({"name": name, "task_id": {"value": format!("{name}-task")},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}],
            "limits": limits,
            // The shell stays PID 1 (no exec of a last command).
            "command": {"value": format!("echo {name}-out; while true; do sleep 0.2; echo {name}-tick; done")},
            "container": {"type": "MESOS", "linux_info": {"share_cgroups": false}}})
    };
    let web = task("web", 32.0, json!({"cpus": 0.5, "mem": 64}));
    let mut img = task("img", 48.0, json!({"cpus": "Infinity"}));
    img["container"]["mesos"] = json!({"image": {"type": "DOCKER", "docker": {"name": image}}});
    json!({"tasks": [web, img]})
}

fn row<'a>(rows: &'a Value, id: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

#[test]
fn the_cli_acts_on_each_task_of_a_group_and_sees_the_cluster_through_the_master() {
    let test = "the_cli_acts_on_each_task_of_a_group_and_sees_the_cluster_through_the_master";
    if !common::require_root(test) {
        return;
    }
    let Some(env) = common::oci_testenv(test) else {
        return;
    };
    let registry = env["registries"]["plain"]["host"].as_str().unwrap();
    let cluster = Cluster::start(registry);
    let (master, agent) = (&cluster.master_addr, &cluster.agent_addr);
    wait_until("the agent to register", || {
        let (code, out, _) = cluster.cli(&["agents", "--master", master, "-o", "json"]);
        code == Some(0) && serde_json::from_str::<Value>(&out).is_ok_and(|v| v[0]["active"] == true)
    });

    let file = cluster.dir.join("group.json");
    std::fs::write(
        &file,
        group(&format!("{registry}/busybox:latest")).to_string(),
    )
    .unwrap();
    let mut run = Run::start(&cluster, &["--task_group", file.to_str().unwrap()]);
    run.wait_for("web-task", "TASK_RUNNING");
    run.wait_for("img-task", "TASK_RUNNING");

    // ps: a row per task, with its name, agent, framework, its own usage
    // and its own limits; the executor's container is no row of its own.
    let rows = cluster.json(&["ps", "-o", "json"]);
    for (id, name, mem_limit, cpus_limit) in [
        ("web-task", "web", json!(64 << 20), json!(0.5)),
        ("img-task", "img", json!(48 << 20), Value::Null),
    ] {
        let r = row(&rows, id);
        assert_eq!(
            (&r["name"], &r["state"], &r["agent"], &r["framework"]),
            (
                &json!(name),
                &json!("TASK_RUNNING"),
                &json!(agent),
                &json!("tepui-run")
            ),
            "{r}"
        );
        assert_eq!(
            (&r["mem_limit_bytes"], &r["cpus_limit"]),
            (&mem_limit, &cpus_limit),
            "{r}"
        );
        assert!(r["mem_bytes"].as_u64().unwrap() > 0, "{r}");
        assert!(r["container_id"].as_str().unwrap().contains('.'), "{r}");
    }
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert_ne!(
        row(&rows, "web-task")["container_id"],
        row(&rows, "img-task")["container_id"]
    );
    let table = cluster.via_master(&["ps"]);
    assert!(!table.contains(" 0B"), "{table}");
    let img_line = table.lines().find(|l| l.starts_with("img-task")).unwrap();
    assert!(
        img_line.contains(" - ") && img_line.contains("48.0MiB"),
        "{table}"
    );
    // The same through the agent alone.
    let (code, out, err) = cluster.cli(&["ps", "--agent", agent, "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let local: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(row(&local, "img-task")["mem_limit_bytes"], json!(48 << 20));

    // exec lands in each task's own container (its PID 1 is the task's
    // shell, not `tepui executor`); the image task sees its image.
    for (id, marker) in [("web-task", "web-out"), ("img-task", "img-out")] {
        let (code, out, err) = cluster.cli(&[
            "exec",
            "--master",
            master,
            id,
            "--",
            "cat",
            "/proc/1/cmdline",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.contains(marker) && !out.contains("executor"),
            "{id}: {out:?}"
        );
    }
    let (code, out, err) = cluster.cli(&[
        "exec",
        "--agent",
        agent,
        "img-task",
        "--",
        "cat",
        "/etc/os-release",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ID=oci-testenv"), "{out}");
    let (code, out, err) = cluster.cli(&[
        "exec",
        "--agent",
        agent,
        "web-task",
        "--",
        "cat",
        "/etc/os-release",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("oci-testenv"),
        "the host-fs task sees the image: {out}"
    );

    // exec -it in a pseudo-terminal, into each task: a shell with the
    // caller's TERM and window size; its exit code is ours.
    for (id, code) in [("web-task", 5), ("img-task", 6)] {
        let args: Vec<String> = ["exec", "-it", "--master", master, id, "--", "/bin/sh"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut pty = common::pty::PtyCli::spawn(
            &args,
            &[("TERM", "vt100"), ("TEPUI_CONFIG", "/dev/null")],
            30,
            100,
        );
        pty.expect("# ", WAIT);
        pty.type_text("echo term=$TERM; stty size; cat /proc/1/cmdline\n");
        pty.expect("term=vt100", WAIT);
        pty.expect("30 100", WAIT);
        pty.expect(&format!("{}-out", id.trim_end_matches("-task")), WAIT);
        pty.type_text(&format!("exit {code}\n"));
        assert_eq!(pty.exit_code(WAIT), Some(code));
    }

    // attach streams each task's own output.
    for id in ["web-task", "img-task"] {
        let mut attach = Command::new(common::tepui_bin())
            .args(["attach", "--master", master, id])
            .env("TEPUI_CONFIG", "/dev/null")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(attach.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = attach.kill();
        let _ = attach.wait();
        let tick = format!("{}-tick\n", id.trim_end_matches("-task"));
        assert_eq!(line, tick, "{id}");
    }

    // top names each task's container.
    let top = cluster.json(&[
        "top",
        "--iterations",
        "1",
        "--interval",
        "0.2",
        "-o",
        "json",
    ]);
    for id in ["web-task", "img-task"] {
        assert!(
            top.as_array().unwrap().iter().any(|r| r["task"] == id),
            "{top}"
        );
    }

    // The cluster view.
    let status = cluster.json(&["status", "-o", "json"]);
    assert_eq!(
        status["agents"],
        json!({"total": 1, "active": 1}),
        "{status}"
    );
    assert_eq!(status["tasks"]["TASK_RUNNING"], 2, "{status}");
    assert_eq!(status["frameworks"]["active"], 1, "{status}");
    assert_eq!(status["resources"]["cpus"]["total"], 2.0, "{status}");
    assert!(
        status["resources"]["mem"]["used"].as_f64().unwrap() >= 80.0,
        "{status}"
    );
    assert_eq!(status["leader"]["address"], json!(master), "{status}");
    let agents = cluster.json(&["agents", "-o", "json"]);
    assert_eq!(
        (&agents[0]["address"], &agents[0]["tasks"]),
        (&json!(agent), &json!(2)),
        "{agents}"
    );
    let frameworks = cluster.json(&["frameworks", "-o", "json"]);
    let fw = frameworks
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["active"] == true)
        .unwrap();
    assert_eq!(
        (&fw["name"], &fw["tasks"]),
        (&json!("tepui-run"), &json!(2)),
        "{frameworks}"
    );
    let images = cluster.json(&["images", "ls", "-o", "json"]);
    assert!(
        images
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["agent"] == json!(agent)
                && i["reference"].as_str().unwrap().contains("busybox")),
        "{images}"
    );
    let text = cluster.via_master(&["status"]);
    assert!(text.contains("TASK_RUNNING 2"), "{text}");

    // An unknown task: exit 1, the id named.
    for args in [
        vec!["inspect", "--master", master, "no-such-task"],
        vec!["exec", "--agent", agent, "no-such-task", "--", "true"],
        vec!["logs", "--master", master, "no-such-task"],
    ] {
        let (code, _, err) = cluster.cli(&args);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(err.contains("no-such-task"), "{args:?}: {err}");
    }

    // kill of one task ends the group: the default executor kills the other.
    let (code, _, err) = cluster.cli(&["kill", "--master", master, "web-task"]);
    assert_eq!(code, Some(0), "{err}");
    run.wait_for("web-task", "TASK_KILLED");
    run.wait_for("img-task", "TASK_KILLED");
    assert_eq!(run.exit_code(), Some(1));

    // Ended tasks: gone from ps, in ps -a; once their executor has ended
    // (the agent keeps them only in its history of completed executors, as
    // Mesos's agent does), inspect and logs find them through the master.
    wait_until("the group's executor to end", || {
        cluster.json(&["ps", "-o", "json"]) == json!([])
    });
    let rows = cluster.json(&["ps", "-a", "-o", "json"]);
    for id in ["web-task", "img-task"] {
        let r = row(&rows, id);
        assert_eq!(
            (&r["state"], &r["mem_limit_bytes"]),
            (&json!("TASK_KILLED"), &Value::Null),
            "{r}"
        );
    }
    let table = cluster.via_master(&["ps", "-a"]);
    assert!(!table.contains(" 0B"), "{table}");
    let inspected = cluster.json(&["inspect", "web-task"]);
    assert_eq!(inspected["task"]["state"], "TASK_KILLED", "{inspected}");
    assert!(
        inspected["sandbox"]
            .as_str()
            .unwrap()
            .ends_with("/tasks/web-task"),
        "{inspected}"
    );
    for (id, name) in [("web-task", "web"), ("img-task", "img")] {
        let out = cluster.via_master(&["logs", id]);
        assert!(
            out.starts_with(&format!("{name}-out\n{name}-tick\n")),
            "{id}: {out}"
        );
        let tail = cluster.via_master(&["logs", "--tail", "1", id]);
        assert_eq!(tail, format!("{name}-tick\n"), "{id}");
    }

    // `tepui run` passes a failed command's exit code through; the
    // command task's output is in its executor's sandbox.
    let (code, out, err) = cluster.cli(&[
        "run",
        "--master",
        master,
        "--name",
        "cmd",
        "--",
        "echo cmd-out; exit 3",
    ]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.contains("Command exited with status 3"), "{out}");
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("cmd-"))
        .unwrap_or_else(|| panic!("no task id in {out}"));
    assert_eq!(cluster.via_master(&["logs", id]), "cmd-out\n");
    let inspected = cluster.json(&["inspect", id]);
    assert_eq!(inspected["task"]["state"], "TASK_FAILED", "{inspected}");

    // The daemons' logs are files: no colour codes in them.
    for log in ["master.log", "agent.log"] {
        let text = cluster.log(log);
        assert!(!text.is_empty() && !text.contains('\x1b'), "{log}: {text}");
    }
}
