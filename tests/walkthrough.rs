//! README's walkthrough, step by step, on the same files: `tepui dev` with
//! the local registry, `tepui run` of a command, `tepui run --task_group
//! examples/task-group.json` (an image task beside a host-fs task), `ps`,
//! `logs`, `exec`, `status`, `kill` of one task ending the group, `ps -a`
//! and `logs` of an ended task, then dev stopped with nothing left. The
//! CLI finds everything through `TEPUI_MASTER`, as the walkthrough says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// The registry the walkthrough starts (`OCI_TESTENV_PORT_PLAIN=5000`).
const WALKTHROUGH_REGISTRY: &str = "127.0.0.1:5000";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tepui dev` as the walkthrough starts it; on drop (also after a failed
/// assertion) nothing of it is left.
struct Dev {
    child: Option<Child>,
    tmp: PathBuf,
    cgroup_root: String,
    master: String,
}

impl Dev {
    fn start(tmp: &Path, registry: &str) -> Dev {
        let cgroup_root = format!("tepui-test-walkthrough-{}", std::process::id());
        let (master_port, agent_port) = (free_port(), free_port());
        let log = std::fs::File::create(tmp.join("dev.log")).unwrap();
        let child = Command::new(common::tepui_bin())
            .arg("dev")
            .arg(format!("--docker_insecure_registries={registry}"))
            .arg(format!("--master_port={master_port}"))
            .arg(format!("--agent_port={agent_port}"))
            .arg(format!("--cgroups_root={cgroup_root}"))
            .arg("--resources=cpus:2;mem:1024;disk:1024")
            .arg("--allocation_interval=100ms")
            .env("TMPDIR", tmp)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Dev {
            child: Some(child),
            tmp: tmp.to_path_buf(),
            cgroup_root,
            master: format!("127.0.0.1:{master_port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("dev.log")).unwrap_or_default()
    }

    /// A `tepui` CLI command with `TEPUI_MASTER` set, as in the walkthrough.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::tepui_bin());
        cmd.args(args)
            .env("TEPUI_MASTER", &self.master)
            .env_remove("TEPUI_AGENT")
            .env("TEPUI_CONFIG", "/dev/null");
        cmd
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let Output {
            status,
            stdout,
            stderr,
        } = self.cli(args).output().unwrap();
        (
            status.code(),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }

    /// Retries `check` on `ps -a -o json` until it holds.
    fn wait_ps(&self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, out, err) = self.run(&["ps", "-a", "-o", "json"]);
            let rows: Vec<Value> = if code == Some(0) {
                serde_json::from_str(&out).unwrap_or_default()
            } else {
                Vec::new()
            };
            if check(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {out}{err}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        common::kill_leftovers(&self.tmp, &self.cgroup_root);
        for cgroup in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
    }
}

fn state_of<'a>(rows: &'a [Value], id: &str) -> Option<&'a str> {
    rows.iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["state"].as_str())
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    if !common::require_root("the_readme_walkthrough_runs_as_written") {
        return;
    }
    let Some(env) = common::oci_testenv("the_readme_walkthrough_runs_as_written") else {
        return;
    };
    let registry = env["registries"]["plain"]["host"].as_str().unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("tepui-walkthrough-")
        .tempdir()
        .unwrap()
        .keep();
    // The example file as committed, pointed at this run's registry.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/task-group.json");
    let text = std::fs::read_to_string(&example).unwrap();
    assert!(text.contains(WALKTHROUGH_REGISTRY), "{text}");
    let group_file = tmp.join("task-group.json");
    std::fs::write(&group_file, text.replace(WALKTHROUGH_REGISTRY, registry)).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for step in [
        "tepui dev --docker_insecure_registries 127.0.0.1:5000",
        "tepui run --task_group examples/task-group.json",
        "tepui logs -f app",
        "tepui exec -it app -- sh",
        "tepui kill app",
    ] {
        assert!(readme.contains(step), "README lost the step {step:?}");
    }

    let mut dev = Dev::start(&tmp, registry);

    // 3. A command task; its exit code is tepui's.
    let deadline = Instant::now() + WAIT;
    let (code, out, err) = loop {
        let (code, out, err) = dev.run(&["run", "--", "echo hello from $(hostname)"]);
        // Until dev's agent has registered, the master has nothing to offer.
        if code == Some(0) || Instant::now() > deadline {
            break (code, out, err);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(code, Some(0), "{out}{err}\n{}", dev.log());
    assert!(out.contains("TASK_FINISHED"), "{out}");

    // 4. The task group, in the background.
    let mut group = dev
        .cli(&["run", "--task_group", group_file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rows = dev.wait_ps("both tasks to run", |rows| {
        state_of(rows, "app") == Some("TASK_RUNNING")
            && state_of(rows, "sidecar") == Some("TASK_RUNNING")
    });
    // `ps`: the app task's own 64 MiB limit, the sidecar's 32 MiB request
    // as its hard limit.
    let app = rows.iter().find(|r| r["id"] == "app").unwrap();
    assert_eq!(app["mem_limit_bytes"], 64 * 1024 * 1024, "{app}");
    let (code, table, err) = dev.run(&["ps"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        table.contains("app") && table.contains("sidecar") && table.contains("64.0MiB"),
        "{table}"
    );

    // `logs`: what app printed, its limit read from its own cgroup.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, out, err) = dev.run(&["logs", "app"]);
        if code == Some(0)
            && out.contains("oci-testenv busybox")
            && out.contains("memory limit 67108864")
            && out.contains("app tick 1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "logs app: {out}{err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, _) = dev.run(&["logs", "sidecar"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("sidecar on the host's filesystem: Debian"),
        "{out}"
    );

    // `exec` (the walkthrough's -it is driven in a pseudo-terminal by
    // tests/cli_cluster.rs): inside app's image, not the host.
    let (code, out, err) = dev.run(&["exec", "app", "--", "cat", "/etc/os-release"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("oci-testenv busybox"), "{out}");

    // `status`.
    let (code, out, err) = dev.run(&["status", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["tasks"]["TASK_RUNNING"], 2, "{status}");
    assert_eq!(status["agents"]["active"], 1, "{status}");

    // `kill app` ends the group; `tepui run` reports it and fails.
    let (code, _, err) = dev.run(&["kill", "app"]);
    assert_eq!(code, Some(0), "{err}");
    let rows = dev.wait_ps("the group to end", |rows| {
        state_of(rows, "app") == Some("TASK_KILLED")
            && state_of(rows, "sidecar") == Some("TASK_KILLED")
    });
    let tasks = rows.iter().filter(|r| r["kind"] == "task").count();
    assert_eq!(tasks, 3, "the command task, app and sidecar: {rows:?}");
    let deadline = Instant::now() + WAIT;
    let run_status = loop {
        if let Some(status) = group.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tepui run did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run_status.code(), Some(1));

    // An ended task's output stays readable.
    let (code, out, err) = dev.run(&["logs", "app", "--tail", "50"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("app tick"), "{out}");

    // Stopping dev removes every container it started.
    let mut child = dev.child.take().unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "tepui dev did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        common::cgroups_named(&dev.cgroup_root).is_empty(),
        "cgroups left: {:?}",
        common::cgroups_named(&dev.cgroup_root)
    );
    assert!(
        common::processes_mentioning(&tmp.to_string_lossy()).is_empty(),
        "processes left"
    );
    assert!(common::mounts_under(&tmp).is_empty(), "mounts left");
    let _ = tepui_containerizer::safe_remove::remove_tree(&tmp);
}
