//! The journey matrix (issue 14): schedulers tepui did not write — pymesos
//! from PyPI (JSON codec) and mesos-go's api/v1 (protobuf codec) — drive a
//! real `tepui master` and `tepui agent` with real containers and the
//! loopback OCI registry of scripts/oci-testenv.sh. Cells cross LAUNCH and
//! LAUNCH_GROUP, the host filesystem and images (by tag, by digest, Docker
//! schema2), share_cgroups true and false, fetched+extracted URIs, and the
//! outcomes exit 0, exit 3, OOM, framework KILL and agent SIGKILL+restart,
//! plus bad image input. Each cell checks the exact state sequence, the
//! terminal reason and message, the memory limit the task reads from its
//! own cgroup files, the filesystem it sees, its fetched files and where its
//! stdout landed (found through the agent's files API). A table of cells
//! and outcomes is printed.
//!
//! Needs (scripts/deps.sh `install_journey_clients`, run by scripts/test.sh):
//! target/journeys/venv with pymesos, and Debian's golang-go and
//! golang-github-mesos-mesos-go-dev.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "journeys/cells.rs"]
mod cells;
#[path = "journeys/clients.rs"]
mod clients;
#[path = "journeys/cluster.rs"]
mod cluster;
#[path = "journeys/verdict.rs"]
mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cells::{Cell, Client, Env, Launch, Outcome};
use clients::Scheduler;
use cluster::Cluster;

const PHASE_TIMEOUT: Duration = Duration::from_secs(150);

/// A prerequisite is missing: skip with why, except under CI=true.
fn missing(what: &str) {
    let msg =
        format!("journey_matrix: {what} (scripts/deps.sh install_journey_clients installs it)");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; CI=true forbids skipping");
    }
    eprintln!("skipping {msg}");
}

fn scheduler_of(schedulers: &mut [Scheduler], client: Client) -> &mut Scheduler {
    schedulers.iter_mut().find(|s| s.client == client).unwrap()
}

fn has_state(s: &Scheduler, task: &str, state: &str) -> bool {
    s.updates_of(task).iter().any(|u| u["state"] == state)
}

fn ended(s: &Scheduler, task: &str) -> bool {
    s.updates_of(task)
        .iter()
        .any(|u| verdict::TERMINAL.contains(&u["state"].as_str().unwrap_or("")))
}

/// Whether the task is RUNNING and has printed its report.
async fn reported(cluster: &Cluster, s: &Scheduler, cell: &Cell, task: &cells::TaskSpec) -> bool {
    has_state(s, &task.id, "TASK_RUNNING")
        && verdict::task_stdout(&cluster.agent_base(), s, cell, task)
            .await
            .is_some_and(|out| verdict::report_of(&out).contains_key("ready"))
}

fn launch_all(schedulers: &mut [Scheduler], cells: &[Cell], env: &Env) {
    for client in [Client::Pymesos, Client::MesosGo] {
        let mine: Vec<&Cell> = cells.iter().filter(|c| c.client == client).collect();
        if !mine.is_empty() {
            scheduler_of(schedulers, client).launch(&mine, env);
        }
    }
}

/// Lets a task that waits for `journey-go` in its sandbox go on. The file
/// goes into the executor sandbox and under tasks/<id> both, so a command
/// task finds it wherever its sandbox is (control, not an assertion).
fn release(cluster: &Cluster, s: &Scheduler, cell: &Cell, task: &cells::TaskSpec) {
    let Some(agent_id) = s
        .updates_of(&task.id)
        .iter()
        .find_map(|u| u["agent_id"].as_str().map(str::to_string))
    else {
        return;
    };
    let executor = verdict::executor_id(cell, task);
    if let Some(sandbox) = cluster.executor_sandbox(&agent_id, &s.framework_id, &executor) {
        let mut places: Vec<PathBuf> = vec![sandbox.join("tasks").join(&task.id)];
        if cell.launch == Launch::Task {
            places.push(sandbox.clone());
        }
        for place in places.into_iter().filter(|p| p.is_dir()) {
            std::fs::write(place.join("journey-go"), "").unwrap();
        }
    }
}

/// Whether every task of the cell reported itself (or already ended, and
/// never will).
async fn all_reported(cluster: &Cluster, s: &Scheduler, cell: &Cell) -> bool {
    for task in &cell.tasks {
        if !ended(s, &task.id) && !reported(cluster, s, cell, task).await {
            return false;
        }
    }
    true
}

/// Runs until every task of `cells` ended (or the phase times out). Once
/// every task of a cell reported itself, the subject of a KILL cell is
/// killed and a waiting subject (a group's exit 3 or OOM) is let go, so
/// its siblings are never ended while still reporting.
async fn finish(cluster: &Cluster, schedulers: &mut [Scheduler], cells: &[Cell]) {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut acted: Vec<String> = Vec::new();
    loop {
        let mut all_done = true;
        for cell in cells {
            let s = scheduler_of(schedulers, cell.client);
            for task in &cell.tasks {
                if !ended(s, &task.id) {
                    all_done = false;
                }
            }
            let waits = cell.outcome == Outcome::Kill || cell.subject_waits();
            if waits && !acted.contains(&cell.name) && all_reported(cluster, s, cell).await {
                acted.push(cell.name.clone());
                let subject = cell.tasks.iter().find(|t| t.subject).unwrap();
                if cell.outcome == Outcome::Kill {
                    s.kill(&subject.id);
                } else {
                    release(cluster, s, cell, subject);
                }
            }
        }
        if all_done {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("journey_matrix: phase timed out; checking what happened");
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The agent-restart phase: once every task runs and reported itself the
/// agent is SIGKILLed and restarted; once it is back the tasks are let go
/// (journey-go in their sandboxes) and must finish.
async fn restart_phase(
    cluster: &mut Cluster,
    schedulers: &mut [Scheduler],
    cells: &[Cell],
    env: &Env,
) {
    launch_all(schedulers, cells, env);
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let mut all = true;
        for cell in cells {
            if !all_reported(cluster, scheduler_of(schedulers, cell.client), cell).await {
                all = false;
            }
        }
        if all {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("journey_matrix: restart cells never all ran; restarting anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cluster.kill_and_restart_agent();
    cluster.wait_agent_up().await;
    cluster.wait_registered().await;
    for cell in cells {
        let s = scheduler_of(schedulers, cell.client);
        for task in &cell.tasks {
            release(cluster, s, cell, task);
        }
    }
    finish(cluster, schedulers, cells).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_matrix() {
    if !common::require_root("journey_matrix") {
        return;
    }
    let Some(testenv) = common::oci_testenv("journey_matrix") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = clients::venv_python(root);
    if !python.exists() {
        return missing(&format!("{} is missing", python.display()));
    }
    let mesos_go = Path::new("/usr/share/gocode/src/github.com/mesos/mesos-go/api/v1/lib");
    if !mesos_go.is_dir()
        || std::process::Command::new("go")
            .arg("version")
            .output()
            .is_err()
    {
        return missing("go or golang-github-mesos-mesos-go-dev is not installed");
    }
    let gobin = clients::build_mesosgo(root).unwrap();
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("tepui-journeys-")
        .tempdir()
        .unwrap()
        .keep();
    // tepui-test-*: scripts/check-leftovers.sh looks for these.
    let cgroup_root = format!("tepui-test-journeys-{}", std::process::id());
    let registry = testenv["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = cluster::payload_archive(&dir, cells::PAYLOAD_TEXT);
    let payload_port = cluster::serve_file(payload);
    let env = Env {
        registry: registry.clone(),
        busybox_digest: testenv["images"]["busybox"]["oci_digest"]
            .as_str()
            .unwrap()
            .to_string(),
        payload_url: format!("http://127.0.0.1:{payload_port}/journey-payload.tar.gz"),
        closed_port: cluster::free_port(),
        foreign_tag: cluster::push_foreign_index(&registry).await,
    };

    let mut cluster = Cluster::start(&dir, &cgroup_root, &registry);
    cluster.wait_registered().await;
    let script = root.join("tests/journeys/pymesos/journey.py");
    let mut schedulers = vec![
        Scheduler::start(
            Client::Pymesos,
            &[python, script],
            &cluster.master(),
            &dir.join("pymesos.log"),
        ),
        Scheduler::start(
            Client::MesosGo,
            &[gobin],
            &cluster.master(),
            &dir.join("mesosgo.log"),
        ),
    ];

    // JOURNEYS_ONLY=name,name runs only those cells (debugging).
    let only: Option<Vec<String>> = std::env::var("JOURNEYS_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let wanted = |c: &Cell| only.as_ref().is_none_or(|o| o.contains(&c.name));
    let main: Vec<Cell> = cells::main_phase(&env).into_iter().filter(wanted).collect();
    launch_all(&mut schedulers, &main, &env);
    finish(&cluster, &mut schedulers, &main).await;
    println!(
        "main phase done after {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let restart: Vec<Cell> = cells::restart_phase().into_iter().filter(wanted).collect();
    if !restart.is_empty() {
        restart_phase(&mut cluster, &mut schedulers, &restart, &env).await;
    }

    let mut rows = Vec::new();
    for cell in main.iter().chain(&restart) {
        let s = schedulers.iter().find(|s| s.client == cell.client).unwrap();
        rows.push(verdict::check(cell, s, &cluster.agent_base(), &env).await);
    }
    println!(
        "\njourney matrix ({:.0}s):\n",
        started.elapsed().as_secs_f64()
    );
    verdict::print_table(&rows);
    // What a scheduler reported that belongs to no cell (a refused call, a
    // master ERROR event) is a failure too.
    let stray: Vec<String> = schedulers
        .iter()
        .flat_map(|s| {
            s.problems()
                .into_iter()
                .map(move |p| format!("{}: {p}", s.client.name()))
        })
        .filter(|p| !rows.iter().any(|r| p.contains(&r.cell)))
        .collect();
    for p in &stray {
        println!("scheduler problem: {p}");
    }

    for s in schedulers {
        s.teardown();
    }
    let agent_log = cluster.log("agent.log");
    cluster.stop();
    // Nothing of the cluster may outlive it: a mount left under the work
    // dir is a leak (it is detached here so the machine stays clean, and
    // fails the test).
    let leaked = common::mounts_under(&dir);
    for mount in &leaked {
        let path = std::ffi::CString::new(mount.as_str()).unwrap();
        // SAFETY: a NUL-terminated path; detaching has no memory effects.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
    let failed: Vec<&verdict::Row> = rows.iter().filter(|r| !r.failures().is_empty()).collect();
    if failed.is_empty() && leaked.is_empty() && stray.is_empty() {
        tepui_containerizer::safe_remove::remove_tree(&dir).unwrap();
        return;
    }
    let tail: String = agent_log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(40)
        .collect::<Vec<_>>()
        .join("\n");
    panic!(
        "{} of {} journey cells failed, {} scheduler problems, {} mounts left behind {leaked:?} (logs kept in {}); agent warnings:\n{tail}",
        failed.len(),
        rows.len(),
        stray.len(),
        leaked.len(),
        dir.display()
    );
}

/// Mesos's image and volume semantics in one task group through pymesos:
/// `shell: false` with `arguments` and no `value` runs the image's
/// Cmd[0] with the task's arguments after it (`arguments` replace the rest of Cmd;
/// `DockerRuntimeIsolatorProcess::getLaunchCommand`); the task's environment
/// is merged over the image's Env; the image's WorkingDir is the cwd and
/// the sandbox is at `MESOS_SANDBOX` (`/mnt/mesos/sandbox`); a
/// `sandbox_path` PARENT volume is shared by an image task and a host-fs
/// task of the group; a read-only `host_path` volume shows a host
/// directory in the image task and refuses writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_rules_and_volumes_of_a_task_group() {
    if !common::require_root("image_rules_and_volumes_of_a_task_group") {
        return;
    }
    let Some(testenv) = common::oci_testenv("image_rules_and_volumes_of_a_task_group") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = clients::venv_python(root);
    if !python.exists() {
        return missing(&format!("{} is missing", python.display()));
    }
    let registry = testenv["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::Builder::new()
        .prefix("tepui-image-rules-")
        .tempdir()
        .unwrap()
        .keep();
    let host_dir = dir.join("hostdata");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "from the host\n").unwrap();
    let cgroup_root = format!("tepui-test-image-rules-{}", std::process::id());
    let cluster = Cluster::start(&dir, &cgroup_root, &registry);
    cluster.wait_registered().await;
    let script = root.join("tests/journeys/pymesos/journey.py");
    let mut s = Scheduler::start(
        Client::Pymesos,
        &[python, script],
        &cluster.master(),
        &dir.join("pymesos.log"),
    );

    let resources = serde_json::json!([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}
    ]);
    let image = serde_json::json!({"type": "DOCKER", "docker": {"name": format!("{registry}/busybox:latest")}});
    let shared = |container_path: &str| {
        serde_json::json!({"mode": "RW", "container_path": container_path,
            "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "shared"}}})
    };
    let tasks = serde_json::json!([
        {"name": "args", "task_id": {"value": "rules-args"}, "resources": resources,
         // Cmd is ["sh"]: Cmd[0] runs with the arguments after it.
         "command": {"shell": false, "arguments": ["-c", "echo ran from arguments"]},
         "container": {"type": "MESOS", "mesos": {"image": image}}},
        {"name": "image", "task_id": {"value": "rules-image"}, "resources": resources,
         "command": {"value": concat!(
             "echo \"cwd=$(pwd) sandbox=$MESOS_SANDBOX mine=$MINE path=$PATH\"; ",
             "echo shared-by-image > /shared/note; ",
             "cat /hostdata/hello; ",
             "if touch /hostdata/x 2>/dev/null; then echo host-rw; else echo host-ro; fi; ",
             "test -d \"$MESOS_SANDBOX\" && echo sandbox-ok"),
          "environment": {"variables": [{"name": "MINE", "value": "set-by-the-task"}]}},
         "container": {"type": "MESOS", "mesos": {"image": image},
            "volumes": [shared("/shared"),
                        {"mode": "RO", "container_path": "/hostdata",
                         "source": {"type": "HOST_PATH", "host_path": {"path": host_dir.to_str().unwrap()}}}]}},
        {"name": "host", "task_id": {"value": "rules-host"}, "resources": resources,
         "command": {"value": "for i in $(seq 100); do test -s shared/note && break; sleep 0.1; done; echo \"host read: $(cat shared/note)\""},
         "container": {"type": "MESOS", "volumes": [shared("shared")]}}
    ]);
    s.launch_raw(vec![serde_json::json!({
        "cell": "image-rules", "launch": "LAUNCH_GROUP",
        "executor": {"type": "DEFAULT", "executor_id": {"value": "image-rules-executor"},
                     "resources": resources},
        "tasks": tasks,
    })]);

    let ids = ["rules-args", "rules-image", "rules-host"];
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let states = |s: &Scheduler, id: &str| -> Vec<String> {
        s.updates_of(id)
            .iter()
            .filter_map(|u| u["state"].as_str().map(str::to_string))
            .collect()
    };
    while !ids.iter().all(|id| {
        states(&s, id)
            .last()
            .is_some_and(|st| st != "TASK_STARTING" && st != "TASK_RUNNING")
    }) {
        assert!(
            Instant::now() < deadline,
            "the group did not end: {:?}\n{}",
            ids.iter().map(|id| states(&s, id)).collect::<Vec<_>>(),
            cluster.log("agent.log")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in ids {
        assert_eq!(
            states(&s, id),
            ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"],
            "{id}: {:?}",
            ids.iter()
                .map(|id| (id, s.updates_of(id).last().map(|u| u["message"].clone())))
                .collect::<Vec<_>>()
        );
    }
    let agent = cluster.agent_base();
    let read = |task: &str| {
        let agent = agent.clone();
        let fw = s.framework_id.clone();
        let rel = format!("tasks/{task}/stdout");
        async move {
            cluster::read_sandbox_file(&agent, &fw, "image-rules-executor", &rel)
                .await
                .unwrap_or_default()
        }
    };
    let args = read("rules-args").await;
    assert_eq!(args.trim(), "ran from arguments", "{args:?}");
    let image_out = read("rules-image").await;
    for want in [
        // The image's WorkingDir ("/"), the sandbox where Mesos mounts it,
        // the task's variable beside the image's PATH.
        "cwd=/ sandbox=/mnt/mesos/sandbox mine=set-by-the-task path=/usr/local/sbin:",
        "from the host",
        "host-ro",
        "sandbox-ok",
    ] {
        assert!(image_out.contains(want), "{want:?} not in {image_out:?}");
    }
    let host_out = read("rules-host").await;
    assert!(
        host_out.contains("host read: shared-by-image"),
        "{host_out:?}"
    );
    assert!(
        !host_dir.join("x").exists(),
        "a read-only volume was written"
    );
    s.teardown();
    cluster.stop();
    assert!(
        common::mounts_under(&dir).is_empty(),
        "mounts left: {:?}",
        common::mounts_under(&dir)
    );
    let _ = tepui_containerizer::safe_remove::remove_tree(&dir);
}
