//! The agent's view of containers, end to end: `Containerizer` with real
//! supervisors (`tepui supervise` from a sealed memfd), real libcontainer
//! containers, real cgroups (v1 here). Every test ends by asserting that its
//! pods left no cgroup, mount, process or runtime dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tepui_containerizer::spec::{
    Command, ContainerKind, LaunchSpec, Limit, ResourceRequest, SandboxOf, VolumeMode,
    VolumeSource, VolumeSpec,
};
use tepui_containerizer::supervisor::logs::LogPolicy;
use tepui_containerizer::{ContainerPath, Containerizer, ContainerizerConfig, ContainerizerError};

const MIB: u64 = 1 << 20;

/// One test's containerizer: its own runtime dir, work dir and cgroup root.
struct Env {
    c: Containerizer,
    config: ContainerizerConfig,
    /// Not a TempDir: nothing that may ever hold a mount is removed by a
    /// recursive delete that crosses mounts (see safe_remove).
    dir: PathBuf,
    cgroup_root: String,
}

impl Env {
    fn new(test: &str) -> Self {
        Self::with(test, |_| {})
    }

    fn with(test: &str, tweak: impl FnOnce(&mut ContainerizerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let cgroup_root = format!("tepui-test-{}-{test}", std::process::id());
        let mut config = ContainerizerConfig::new(dir.join("run"));
        config.cgroups_root = cgroup_root.clone();
        config.supervisor_binary = common::tepui_bin();
        tweak(&mut config);
        Self {
            c: Containerizer::new(config.clone()).unwrap(),
            config,
            dir,
            cgroup_root,
        }
    }

    /// A fresh containerizer over the same runtime dir: what an agent
    /// restarted after SIGKILL has (nothing in memory).
    fn restart(&mut self) {
        self.c = Containerizer::new(self.config.clone()).unwrap();
    }

    fn sandbox(&self, id: &ContainerPath) -> PathBuf {
        self.dir.join("sandboxes").join(id.parts().join("."))
    }

    /// A container running `script` under bash on the host filesystem.
    fn spec(&self, id: &ContainerPath, script: &str) -> LaunchSpec {
        let kind = if id.is_nested() {
            ContainerKind::Task
        } else {
            ContainerKind::Executor
        };
        LaunchSpec::new(
            id.clone(),
            kind,
            Command::exec("/bin/bash", vec!["bash".into(), "-c".into(), script.into()]),
            self.sandbox(id),
        )
    }

    fn stdout(&self, id: &ContainerPath) -> String {
        std::fs::read_to_string(self.sandbox(id).join("stdout")).unwrap_or_default()
    }

    /// `<controller>/<cgroup_root>/<rest>/<file>` of the v1 hierarchy.
    fn control(&self, controller: &str, rest: &str, file: &str) -> String {
        let path = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.cgroup_root)
            .join(rest)
            .join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn assert_nothing_left(&self) {
        let cgroups = common::cgroups_named(&self.cgroup_root);
        // A removed pod's supervisor answers, then exits: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut processes = common::processes_mentioning(&self.dir.to_string_lossy());
        while !processes.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            processes = common::processes_mentioning(&self.dir.to_string_lossy());
        }
        let mounts = common::mounts_under(&self.dir);
        let pods: Vec<_> = std::fs::read_dir(self.dir.join("run").join("pods"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            cgroups.iter().all(|c| c.ends_with(&self.cgroup_root)) && processes.is_empty(),
            "left behind: cgroups {cgroups:?}, processes {processes:?}"
        );
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        assert!(pods.is_empty(), "pod dirs left: {pods:?}");
    }
}

impl Drop for Env {
    /// Whatever a failed test left: kill it, remove its cgroups and dirs.
    fn drop(&mut self) {
        common::kill_leftovers(&self.dir, &self.cgroup_root);
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("left {}: {e}", self.dir.display());
        }
    }
}

fn id(parts: &[&str]) -> ContainerPath {
    ContainerPath::new(parts.iter().map(|s| s.to_string()).collect()).unwrap()
}

fn resources(cpus: f64, mem_mb: f64, mem_limit: Option<Limit>) -> ResourceRequest {
    ResourceRequest {
        cpus: Some(cpus),
        cpus_limit: None,
        mem_mb: Some(mem_mb),
        mem_limit_mb: mem_limit,
    }
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn share_cgroups_true_puts_every_limit_on_the_pod_cgroup() {
    if !common::require_root("share_cgroups_true_puts_every_limit_on_the_pod_cgroup") {
        return;
    }
    let env = Env::new("share");
    let top = id(&["podS"]);
    let mut executor = env.spec(&top, "exec sleep 1000");
    executor.resources = resources(0.1, 32.0, None);
    env.c.launch(executor).await.unwrap();
    for (name, mem) in [("a", 64.0), ("b", 128.0)] {
        let mut task = env.spec(&top.child(name).unwrap(), "exec sleep 1000");
        task.resources = resources(0.5, mem, None);
        env.c.launch(task).await.unwrap();
    }
    // Requests summed on the parent; without limits the memory sum is the
    // hard limit (Mesos); the members' own cgroups repeat the pod's hard
    // limit (what a task reads in its cgroup namespace), default shares.
    assert_eq!(env.control("cpu", "podS", "cpu.shares"), "1126"); // 1024 * 1.1
    assert_eq!(
        env.control("memory", "podS", "memory.limit_in_bytes"),
        (224 * MIB).to_string()
    );
    for member in ["podS/podS", "podS/podS.a", "podS/podS.b"] {
        assert_eq!(
            env.control("memory", member, "memory.limit_in_bytes"),
            (224 * MIB).to_string(),
            "{member}"
        );
    }
    assert_eq!(env.control("cpu", "podS/podS.b", "cpu.shares"), "1024");

    // All tasks of one executor use one share_cgroups value.
    let mut odd = env.spec(&top.child("c").unwrap(), "true");
    odd.linux.share_cgroups = false;
    let err = env.c.launch(odd).await.unwrap_err();
    assert!(
        matches!(err, ContainerizerError::ShareCgroupsMismatch { .. }),
        "{err}"
    );

    // Removing a task lowers the pod's limits again.
    env.c
        .destroy(&top.child("b").unwrap(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        env.control("memory", "podS", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    assert_eq!(
        env.control("memory", "podS/podS.a", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn share_cgroups_false_gives_each_task_its_own_limits_and_oom_score() {
    if !common::require_root("share_cgroups_false_gives_each_task_its_own_limits_and_oom_score") {
        return;
    }
    let env = Env::new("own");
    let top = id(&["podO"]);
    let mut executor = env.spec(&top, "exec sleep 1000");
    executor.resources = resources(0.1, 32.0, None);
    env.c.launch(executor).await.unwrap();

    // The issue's example: request 512 MiB, limit 4096 MiB, cpus Infinity.
    let task_id = top.child("t").unwrap();
    let mut task = env.spec(&task_id, "exec sleep 1000");
    task.linux.share_cgroups = false;
    task.resources = ResourceRequest {
        cpus: Some(1.0),
        cpus_limit: Some(Limit::Unlimited),
        mem_mb: Some(512.0),
        mem_limit_mb: Some(Limit::Finite(4096.0)),
    };
    let pid = env.c.launch(task).await.unwrap().pid;

    assert_eq!(
        env.control("memory", "podO/podO.t", "memory.limit_in_bytes"),
        (4096 * MIB).to_string()
    );
    assert_eq!(
        env.control("memory", "podO/podO.t", "memory.soft_limit_in_bytes"),
        (512 * MIB).to_string()
    );
    assert_eq!(env.control("cpu", "podO/podO.t", "cpu.cfs_quota_us"), "-1");
    assert_eq!(env.control("cpu", "podO/podO.t", "cpu.shares"), "1024");
    // The parent keeps the requests as shares and soft limit, no hard limit.
    assert_eq!(env.control("cpu", "podO", "cpu.shares"), "1126");
    assert_eq!(
        env.control("memory", "podO", "memory.soft_limit_in_bytes"),
        (544 * MIB).to_string()
    );

    // Mesos's rule: 1000 - 1000 * request / host memory.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    let expected = 1000 - (1000 * 512 * MIB / (total_kb * 1024)) as i64;
    let written: i64 = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, expected);

    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn live_updates_raise_and_lower_limits_but_never_below_usage() {
    if !common::require_root("live_updates_raise_and_lower_limits_but_never_below_usage") {
        return;
    }
    let env = Env::new("update");
    let top = id(&["podU"]);
    env.c
        .launch(env.spec(&top, "exec sleep 1000"))
        .await
        .unwrap();
    let task_id = top.child("hog").unwrap();
    let ready = env.sandbox(&task_id).join("ready");
    // Holds 48 MiB, then says so.
    let mut task = env.spec(
        &task_id,
        "exec python3 -c 'import time; b = bytearray(48 << 20); b[::4096] = b\"x\" * len(b[::4096]); open(\"ready\", \"w\").close(); time.sleep(1000)'",
    );
    task.linux.share_cgroups = false;
    task.resources = resources(0.5, 128.0, None);
    env.c.launch(task).await.unwrap();
    wait_for_file(&ready).await;
    let limit = |env: &Env| env.control("memory", "podU/podU.hog", "memory.limit_in_bytes");
    assert_eq!(limit(&env), (128 * MIB).to_string());

    // Up.
    let values = env
        .c
        .update(&task_id, resources(2.0, 256.0, None))
        .await
        .unwrap();
    assert_eq!(values.memory_max, Some(256 * MIB));
    assert_eq!(limit(&env), (256 * MIB).to_string());
    assert_eq!(env.control("cpu", "podU/podU.hog", "cpu.shares"), "2048");
    // Below what it uses: refused, nothing changes, the task lives on.
    let err = env
        .c
        .update(&task_id, resources(2.0, 40.0, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to lower the memory limit"), "{err}");
    assert_eq!(limit(&env), (256 * MIB).to_string());
    // Down, above usage.
    env.c
        .update(&task_id, resources(1.0, 96.0, None))
        .await
        .unwrap();
    assert_eq!(limit(&env), (96 * MIB).to_string());
    // A limit below the request is bad input.
    let err = env
        .c
        .update(&task_id, resources(1.0, 96.0, Some(Limit::Finite(64.0))))
        .await
        .unwrap_err();
    assert!(matches!(err, ContainerizerError::Limits { .. }), "{err}");

    let stats = env.c.stats(&task_id).await.unwrap();
    assert!(stats.mem_total_bytes.unwrap() >= 48 * MIB, "{stats:?}");
    assert_eq!(stats.mem_limit_bytes, Some(96 * MIB));
    assert!(stats.processes.unwrap() >= 1);
    assert_eq!(stats.cpus_soft_limit, Some(1.0));

    let t = env.c.destroy(&task_id, Duration::ZERO).await.unwrap();
    assert!(!t.oom_killed, "{t:?}");
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn stats_count_cpu_time_of_the_whole_pod() {
    if !common::require_root("stats_count_cpu_time_of_the_whole_pod") {
        return;
    }
    let env = Env::new("stats");
    let top = id(&["podT"]);
    env.c
        .launch(env.spec(&top, "exec sleep 1000"))
        .await
        .unwrap();
    let busy = top.child("busy").unwrap();
    env.c
        .launch(env.spec(
            &busy,
            // A fixed amount of work, not of wall time: under load a
            // time-boxed loop gets too little CPU to measure.
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 0",
        ))
        .await
        .unwrap();
    let t = env.c.wait(&busy).await.unwrap();
    assert_eq!(t.exit_code, Some(0));
    // The finished task's time stays in the pod's account (Mesos reports
    // an executor container's stats for its whole cgroup tree).
    let pod = env.c.stats(&top).await.unwrap();
    let cpu = pod.cpus_user_time_secs.unwrap() + pod.cpus_system_time_secs.unwrap();
    assert!(cpu > 0.1, "{pod:?}");
    assert!(pod.timestamp > 0.0);
    env.c.remove(&busy).await.unwrap();
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn tasks_share_the_executors_ipc_and_shm_but_not_its_processes() {
    if !common::require_root("tasks_share_the_executors_ipc_and_shm_but_not_its_processes") {
        return;
    }
    let env = Env::new("ipc");
    let top = id(&["podI"]);
    let ready = env.sandbox(&top).join("ready");
    env.c
        .launch(env.spec(
            &top,
            "echo from-executor > /dev/shm/token; touch ready; exec sleep 1000",
        ))
        .await
        .unwrap();
    wait_for_file(&ready).await;
    let task = top.child("reader").unwrap();
    env.c
        .launch(env.spec(
            &task,
            "cat /dev/shm/token; echo pid=$$; ls /proc | grep -c '^[0-9]' ",
        ))
        .await
        .unwrap();
    let t = env.c.wait(&task).await.unwrap();
    let out = env.stdout(&task);
    assert_eq!(t.exit_code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from-executor", "{out}");
    assert_eq!(lines[1], "pid=1", "{out}");
    assert!(lines[2].parse::<u32>().unwrap() <= 4, "{out}");
    // The pod's /dev/shm is not the host's.
    assert!(!Path::new("/dev/shm/token").exists());
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn output_is_rotated_with_a_size_bound() {
    if !common::require_root("output_is_rotated_with_a_size_bound") {
        return;
    }
    let env = Env::with("logs", |c| {
        c.log = LogPolicy {
            max_bytes: MIB,
            keep: 2,
        }
    });
    let top = id(&["podL"]);
    // 4 MiB of output, then a last line.
    env.c
        .launch(env.spec(
            &top,
            "head -c 4194304 /dev/zero | tr '\\0' x; echo; echo the-end",
        ))
        .await
        .unwrap();
    let t = env.c.wait(&top).await.unwrap();
    assert_eq!(t.exit_code, Some(0));
    let sandbox = env.sandbox(&top);
    let size = |name: &str| std::fs::metadata(sandbox.join(name)).map(|m| m.len());
    assert!(env.stdout(&top).ends_with("the-end\n"));
    assert!(size("stdout").unwrap() <= MIB);
    assert_eq!(size("stdout.1").unwrap(), MIB);
    assert_eq!(size("stdout.2").unwrap(), MIB);
    assert!(size("stdout.3").is_err());
    env.c.remove(&top).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn a_restarted_agent_recovers_a_pod_with_three_running_tasks() {
    if !common::require_root("a_restarted_agent_recovers_a_pod_with_three_running_tasks") {
        return;
    }
    let mut env = Env::new("recover");
    let top = id(&["podR"]);
    let mut executor = env.spec(&top, "exec sleep 1000");
    executor.resources = resources(0.1, 32.0, None);
    env.c.launch(executor).await.unwrap();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let mut task = env.spec(
            &top.child(name).unwrap(),
            &format!("trap 'exit {}' TERM; sleep 1000 & wait", 20 + i),
        );
        task.resources = resources(0.1, 32.0, None);
        env.c.launch(task).await.unwrap();
    }

    // Everything the agent held in memory is gone.
    env.restart();
    let found = env.c.recover().await.unwrap();
    let running: Vec<String> = found
        .iter()
        .filter(|c| c.pid.is_some() && c.termination.is_none())
        .map(|c| c.container.to_string())
        .collect();
    assert_eq!(running, ["podR", "podR.a", "podR.b", "podR.c"]);
    assert!(found.iter().all(|c| c.spec.is_some()));

    // It drives the pod as if it had launched it: exits, limits, removal.
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let task = top.child(name).unwrap();
        env.c.signal(&task, libc::SIGTERM).await.unwrap();
        let t = env.c.wait(&task).await.unwrap();
        assert_eq!(t.exit_code, Some(20 + i as i32), "{t:?}");
        env.c.remove(&task).await.unwrap();
    }
    // Only the executor's request is left on the pod.
    assert_eq!(
        env.control("memory", "podR", "memory.limit_in_bytes"),
        (32 * MIB).to_string()
    );
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn a_dead_supervisors_pod_is_reported_and_cleaned_up() {
    if !common::require_root("a_dead_supervisors_pod_is_reported_and_cleaned_up") {
        return;
    }
    let mut env = Env::new("dead");
    let top = id(&["podD"]);
    env.c
        .launch(env.spec(&top, "exec sleep 1000"))
        .await
        .unwrap();
    let task = top.child("t").unwrap();
    env.c.launch(env.spec(&task, "exit 7")).await.unwrap();
    assert_eq!(env.c.wait(&task).await.unwrap().exit_code, Some(7));
    let pid: i32 = std::fs::read_to_string(env.c.runtime_dir().supervisor_pid("podD"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: the supervisor's pid from its pid file.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(200)).await;

    env.restart();
    let found = env.c.recover().await.unwrap();
    let states: Vec<(String, Option<i32>, bool)> = found
        .iter()
        .map(|c| {
            let t = c.termination.as_ref().expect("reported as ended");
            (c.container.to_string(), t.exit_code, t.message.is_some())
        })
        .collect();
    // The task's record survived; the executor, running when its
    // supervisor died, is reported lost and its processes are killed.
    assert_eq!(
        states,
        [
            ("podD".to_string(), None, true),
            ("podD.t".to_string(), Some(7), false)
        ]
    );
    let t = env.c.wait(&top).await.unwrap();
    assert!(t.message.unwrap().contains("lost"));
    env.c.remove(&top).await.unwrap();
    env.assert_nothing_left();
}

#[tokio::test(flavor = "current_thread")]
async fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    if !common::require_root("bad_input_gets_a_clear_error_and_leaves_nothing") {
        return;
    }
    let env = Env::new("bad");
    type Tweak = fn(&mut LaunchSpec);
    let cases: [(&str, Tweak, &str); 6] = [
        (
            "missing executable",
            |s| s.command = Command::exec("/no/such/tool", vec!["tool".into()]),
            "/no/such/tool",
        ),
        (
            "unknown user",
            |s| s.user = Some("no-such-user-here".into()),
            "no-such-user-here",
        ),
        (
            "missing rootfs",
            |s| s.rootfs = Some(PathBuf::from("/no/such/rootfs")),
            "rootfs /no/such/rootfs does not exist",
        ),
        (
            "limit below request",
            |s| s.resources = resources(1.0, 256.0, Some(Limit::Finite(128.0))),
            "limit 128 is below the request 256",
        ),
        (
            "unknown capability",
            |s| s.linux.effective_capabilities = Some(vec!["CAP_FLY".into()]),
            "CAP_FLY",
        ),
        (
            "volume escaping the sandbox",
            |s| {
                s.volumes.push(VolumeSpec {
                    container_path: "data".into(),
                    mode: VolumeMode::Rw,
                    source: VolumeSource::SandboxPath {
                        of: SandboxOf::Own,
                        path: "../../etc".into(),
                    },
                })
            },
            "..",
        ),
    ];
    for (n, (what, tweak, needle)) in cases.iter().enumerate() {
        // Once as a new pod, once as a task of a running pod.
        let top = id(&[&format!("bad{n}")]);
        let mut spec = env.spec(&top, "exit 0");
        tweak(&mut spec);
        let err = env.c.launch(spec).await.unwrap_err().to_string();
        eprintln!("{what}: {err}");
        assert!(err.contains(needle), "{what}: {err}");
        env.assert_nothing_left();

        env.c
            .launch(env.spec(&top, "exec sleep 1000"))
            .await
            .unwrap();
        let mut task = env.spec(&top.child("task").unwrap(), "exit 0");
        tweak(&mut task);
        let err = env.c.launch(task).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{what} (task): {err}");
        let listed = env.c.list().await;
        assert_eq!(listed.len(), 1, "{what}: {listed:?}");
        assert!(
            !env.c
                .runtime_dir()
                .container(&top.child("task").unwrap())
                .exists(),
            "{what}"
        );
        env.c.destroy(&top, Duration::ZERO).await.unwrap();
        env.assert_nothing_left();
    }
}

/// Reads a session pipe until EOF (bounded).
async fn read_to_end(mut r: tokio::net::unix::pipe::Receiver) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out))
        .await
        .expect("the session output never ended")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_sessions_run_inside_the_task_with_pipes_or_a_terminal() {
    if !common::require_root("debug_sessions_run_inside_the_task_with_pipes_or_a_terminal") {
        return;
    }
    use tepui_containerizer::SessionEnds;
    use tepui_containerizer::spec::{Tty, WindowSize};
    use tokio::io::AsyncWriteExt;
    let env = Env::new("session");
    let top = id(&["podX"]);
    env.c
        .launch(env.spec(&top, "exec sleep 1000"))
        .await
        .unwrap();
    let task = top.child("t").unwrap();
    let launched = env
        .c
        .launch(env.spec(&task, "exec sleep 1000"))
        .await
        .unwrap();
    let ns = |kind: &str| {
        std::fs::read_link(format!("/proc/{}/ns/{kind}", launched.pid))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (task_mnt, task_pid_ns) = (ns("mnt"), ns("pid"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Pipes: stdin reaches the process, stdout and stderr come back apart,
    // and it sees the task's mounts and processes.
    let exec = task.child("exec1").unwrap();
    let mut spec = env.spec(
        &exec,
        "cat; readlink /proc/self/ns/mnt /proc/self/ns/pid; cat /proc/1/comm; echo oops >&2; exit 3",
    );
    spec.kind = ContainerKind::Debug;
    spec.sandbox_dir = env.sandbox(&task);
    let (_, ends) = env.c.launch_session(spec).await.unwrap();
    let SessionEnds::Pipes {
        mut stdin,
        stdout,
        stderr,
    } = ends
    else {
        panic!("pipes expected");
    };
    stdin.write_all(b"hello from stdin\n").await.unwrap();
    drop(stdin);
    let (out, err) = tokio::join!(read_to_end(stdout), read_to_end(stderr));
    assert_eq!(
        out,
        format!("hello from stdin\n{task_mnt}\n{task_pid_ns}\nsleep\n")
    );
    assert_eq!(err, "oops\n");
    let t = env.c.wait(&exec).await.unwrap();
    assert_eq!(t.exit_code, Some(3), "{t:?}");
    env.c.remove(&exec).await.unwrap();

    // A terminal: the window size given at launch, a resize, EOT ends it.
    // (libcontainer ignores process.consoleSize: the size is set as soon as
    // the terminal reaches us, so a program that asks at once may see 0 0
    // and then gets SIGWINCH; this one asks after its first input.)
    let exec = task.child("exec2").unwrap();
    let mut spec = env.spec(
        &exec,
        "read first; stty size; read line; stty size; echo got $line; cat",
    );
    spec.kind = ContainerKind::Debug;
    spec.sandbox_dir = env.sandbox(&task);
    spec.tty = Some(Tty {
        window_size: Some(WindowSize {
            rows: 24,
            columns: 80,
        }),
    });
    let (_, ends) = env.c.launch_session(spec).await.unwrap();
    let SessionEnds::Terminal(pty) = ends else {
        panic!("a terminal expected");
    };
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut read_until =
        async |pty: &tepui_containerizer::PtyMaster, want: &str, seen: &mut String| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !seen.contains(want) {
                assert!(Instant::now() < deadline, "never saw {want:?} in {seen:?}");
                let n = tokio::time::timeout(Duration::from_secs(10), pty.read(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "terminal closed before {want:?}: {seen:?}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        };
    pty.write_all(b"go\n").await.unwrap();
    read_until(&pty, "24 80", &mut seen).await;
    pty.resize(WindowSize {
        rows: 50,
        columns: 132,
    })
    .unwrap();
    pty.write_all(b"abc\n").await.unwrap();
    read_until(&pty, "50 132", &mut seen).await;
    read_until(&pty, "got abc", &mut seen).await;
    pty.write_all(b"\x04").await.unwrap();
    let t = env.c.wait(&exec).await.unwrap();
    assert_eq!(t.exit_code, Some(0), "{t:?} {seen:?}");
    drop(pty);
    env.c.remove(&exec).await.unwrap();

    // The task never noticed.
    let listed = env.c.list().await;
    assert!(
        listed
            .iter()
            .any(|c| c.container == task && c.termination.is_none()),
        "{listed:?}"
    );
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

/// What a container may not do to the host: mount, load kernel modules,
/// rename the host, see its processes.
const HOSTILE_SCRIPT: &str = r#"
mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied
hostname evil 2>/dev/null && echo hostname=ok || echo hostname=denied
echo caps=$(grep '^CapEff' /proc/self/status | cut -f2)
echo procs=$(ls /proc | grep -c '^[0-9]')
echo pid=$$
for py in /usr/bin/python3 /usr/local/bin/python3; do
  [ -x $py ] || continue
  $py -c "import ctypes,os;l=ctypes.CDLL(None,use_errno=True);r=l.syscall(175,None,0,b'');print('init_module=%d:%s'%(r,os.strerror(ctypes.get_errno())))"
  break
done
true
"#;

fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Checks a container's HOSTILE_SCRIPT output; `hostname_before` is the
/// host's name before it ran.
fn assert_contained(out: &str, hostname_before: &str) {
    assert_eq!(field(out, "mount"), Some("denied"), "{out}");
    assert_eq!(field(out, "hostname"), Some("denied"), "{out}");
    assert_eq!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        hostname_before,
        "the host was renamed: {out}"
    );
    let caps = u64::from_str_radix(field(out, "caps").unwrap(), 16).unwrap();
    for (bit, name) in [
        (16, "SYS_MODULE"),
        (21, "SYS_ADMIN"),
        (17, "SYS_RAWIO"),
        (19, "SYS_PTRACE"),
    ] {
        assert_eq!(caps & (1 << bit), 0, "CAP_{name} is effective: {out}");
    }
    // Its own pid namespace: it is pid 1's child at most, and sees only
    // its own few processes.
    let procs: u32 = field(out, "procs").unwrap().parse().unwrap();
    assert!(procs <= 4, "sees {procs} processes: {out}");
    let pid: u32 = field(out, "pid").unwrap().parse().unwrap();
    assert!(pid <= 2, "{out}");
    // init_module(2) is refused (no CAP_SYS_MODULE, and seccomp).
    if let Some(r) = field(out, "init_module") {
        assert!(r.starts_with("-1:Operation not permitted"), "{out}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn default_containers_cannot_mount_load_modules_rename_the_host_or_see_its_processes() {
    if !common::require_root(
        "default_containers_cannot_mount_load_modules_rename_the_host_or_see_its_processes",
    ) {
        return;
    }
    let hostname = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let env = Env::new("hostile");
    let top = id(&["podH"]);
    let ready = env.sandbox(&top).join("ready");
    let script = format!("{HOSTILE_SCRIPT}\ntouch ready; exec sleep 1000");
    env.c.launch(env.spec(&top, &script)).await.unwrap();
    wait_for_file(&ready).await;
    let out = env.stdout(&top);
    println!("top-level:\n{out}");
    assert_contained(&out, &hostname);
    // A task nested in it: the same, in a pid namespace of its own.
    let task = top.child("t").unwrap();
    env.c.launch(env.spec(&task, HOSTILE_SCRIPT)).await.unwrap();
    let t = env.c.wait(&task).await.unwrap();
    let out = env.stdout(&task);
    println!("nested:\n{out}");
    assert_eq!(t.exit_code, Some(0), "{out}");
    assert_contained(&out, &hostname);
    assert_eq!(field(&out, "pid"), Some("1"), "{out}");
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}

/// What a task reads in its own cgroup namespace, for `share_cgroups` true
/// and false: its limits, a read-only cgroupfs (a root task can neither
/// rewrite a limit nor create a cgroup), swap limited with memory, pids.
#[tokio::test(flavor = "current_thread")]
async fn tasks_read_their_own_limits_from_a_read_only_cgroupfs() {
    if !common::require_root("tasks_read_their_own_limits_from_a_read_only_cgroupfs") {
        return;
    }
    let script = "cd /sys/fs/cgroup; \
        echo cgroup=$(cat /proc/self/cgroup | grep memory); \
        echo mem=$(cat memory/memory.limit_in_bytes); \
        echo memsw=$(cat memory/memory.memsw.limit_in_bytes); \
        echo pids=$(cat pids/pids.max); \
        echo 1 > memory/memory.limit_in_bytes 2>/dev/null && echo mem_write=ok || echo mem_write=refused; \
        echo 1 > pids/pids.max 2>/dev/null && echo pids_write=ok || echo pids_write=refused; \
        mkdir memory/sub 2>/dev/null && echo mkdir=ok || echo mkdir=refused; \
        echo done; exec sleep 1000";
    for share in [true, false] {
        let env = Env::with(if share { "roshared" } else { "roown" }, |c| {
            c.container_pids_limit = Some(64);
        });
        let top = id(&[if share { "podR" } else { "podQ" }]);
        let mut executor = env.spec(&top, "exec sleep 1000");
        executor.resources = resources(0.1, 32.0, None);
        env.c.launch(executor).await.unwrap();
        let task_id = top.child("t").unwrap();
        let mut task = env.spec(&task_id, script);
        task.linux.share_cgroups = share;
        task.resources = resources(0.5, 96.0, Some(Limit::Finite(160.0)));
        env.c.launch(task).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !env.stdout(&task_id).contains("done") {
            assert!(Instant::now() < deadline, "{}", env.stdout(&task_id));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let out = env.stdout(&task_id);
        // share: the pod's limit (executor 32 + task limit 160); own: 160.
        let limit = if share { 192 * MIB } else { 160 * MIB };
        let own = format!("{}/{}", top.pod(), task_id.parts().join("."));
        assert_eq!(
            env.control("memory", &own, "memory.limit_in_bytes"),
            limit.to_string()
        );
        for want in [
            "cgroup=".to_string(),
            format!("mem={limit}"),
            format!("memsw={limit}"),
            "pids=64".to_string(),
            "mem_write=refused".to_string(),
            "pids_write=refused".to_string(),
            "mkdir=refused".to_string(),
        ] {
            assert!(out.contains(&want), "want {want} in:\n{out}");
        }
        // Its cgroup namespace is rooted at its own cgroup.
        assert!(out.contains(":memory:/\n"), "{out}");
        env.c.destroy(&top, Duration::ZERO).await.unwrap();
        env.assert_nothing_left();
    }
}

/// A fork bomb in a task stops at the container's pids limit; the host
/// keeps forking, and killing the pod leaves nothing.
#[tokio::test(flavor = "current_thread")]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    if !common::require_root("a_fork_bomb_stops_at_the_pids_limit") {
        return;
    }
    let env = Env::with("forkbomb", |c| c.container_pids_limit = Some(50));
    let top = id(&["podF"]);
    let mut executor = env.spec(&top, "exec sleep 1000");
    executor.resources = resources(0.1, 32.0, None);
    env.c.launch(executor).await.unwrap();
    let task_id = top.child("bomb").unwrap();
    let mut task = env.spec(&task_id, "bomb() { bomb | bomb & }; bomb; sleep 1000");
    task.resources = resources(0.2, 64.0, None);
    env.c.launch(task).await.unwrap();
    let own = "podF/podF.bomb";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = env.control("pids", own, "pids.events");
        let current: u64 = env.control("pids", own, "pids.current").parse().unwrap();
        assert!(current <= 50, "pids.current {current}");
        if events.contains("max") && !events.ends_with(" 0") {
            break;
        }
        assert!(Instant::now() < deadline, "never hit the limit: {events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The host still forks.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
    env.c.destroy(&top, Duration::ZERO).await.unwrap();
    env.assert_nothing_left();
}
