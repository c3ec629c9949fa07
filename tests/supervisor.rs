//! The per-pod supervisor end to end: a real `tepui supervise` process started
//! from a sealed memfd, real libcontainer containers, real cgroups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use tepui_containerizer::spec::{
    Command, ContainerKind, LaunchSpec, Limit, ResourceRequest, SpecContext,
};
use tepui_containerizer::supervisor::client::{self, SupervisorExe};
use tepui_containerizer::supervisor::logs::LogPolicy;
use tepui_containerizer::supervisor::protocol::LaunchRequest;
use tepui_containerizer::{ContainerPath, RuntimeDir};

struct Pod {
    rt: RuntimeDir,
    _dir: tempfile::TempDir,
    cgroup_root: String,
    sandbox: std::path::PathBuf,
}

impl Pod {
    fn new(test: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir_all(&sandbox).unwrap();
        Self {
            rt: RuntimeDir::new(dir.path().join("run")),
            _dir: dir,
            cgroup_root: format!("tepui-test-{}-{test}", std::process::id()),
            sandbox,
        }
    }

    /// A host-filesystem container running `script` under bash; the
    /// supervisor builds its bundle (nested ones join their parent's
    /// network, IPC and UTS namespaces).
    fn write_bundle(&self, id: &ContainerPath, script: &str) -> LaunchRequest {
        let kind = if id.is_nested() {
            ContainerKind::Task
        } else {
            ContainerKind::Executor
        };
        let command = Command::exec("/bin/bash", vec!["bash".into(), "-c".into(), script.into()]);
        let spec = LaunchSpec::new(id.clone(), kind, command, self.sandbox.clone());
        let cgroup = format!(
            "/{}/{}/{}",
            self.cgroup_root,
            id.pod(),
            id.parts().join(".")
        );
        let mut context = SpecContext::new(cgroup.clone(), std::path::PathBuf::new());
        context.host_memory_bytes = Some(1 << 40);
        LaunchRequest {
            container: id.clone(),
            stdout: self
                .sandbox
                .join(format!("{}.stdout", id.parts().join("."))),
            stderr: self
                .sandbox
                .join(format!("{}.stderr", id.parts().join("."))),
            cgroup: Some(cgroup),
            spec: Some(Box::new(spec)),
            context: Some(Box::new(context)),
            log: LogPolicy::default(),
            session: None,
        }
    }

    /// Nothing of the pod may be left: cgroups, mounts, supervisor, runtime dir.
    fn assert_nothing_left(&self, pod: &str) {
        // The pod's parent cgroups are the agent's to remove; do that here.
        for dir in common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(dir.join(pod));
            let _ = std::fs::remove_dir(dir);
        }
        assert_eq!(
            common::cgroups_named(&self.cgroup_root),
            Vec::<std::path::PathBuf>::new()
        );
        assert_eq!(common::mounts_under(self.rt.root()), Vec::<String>::new());
        let supervisors = common::processes_mentioning(&self.rt.root().to_string_lossy());
        assert!(supervisors.is_empty(), "left running: {supervisors:?}");
        assert!(
            !self.rt.pod(pod).exists(),
            "pod dir left: {}",
            self.rt.pod(pod).display()
        );
    }
}

impl Drop for Pod {
    /// A failed assertion must not leave supervisors, containers or cgroups
    /// on the machine: kill whatever is left of this test's pod.
    fn drop(&mut self) {
        common::kill_leftovers(self.rt.root(), &self.cgroup_root);
    }
}

fn id(parts: &[&str]) -> ContainerPath {
    ContainerPath::new(parts.iter().map(|s| s.to_string()).collect()).unwrap()
}

/// Waits until the pod's supervisor process has exited (its socket and dir
/// go first, so those alone are not enough).
async fn wait_gone(rt: &RuntimeDir, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let root = rt.root().to_string_lossy().to_string();
    while rt.supervisor_socket(pod).exists() || !common::processes_mentioning(&root).is_empty() {
        assert!(
            Instant::now() < deadline,
            "supervisor of {pod} did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_container_runs_to_its_exit_code_and_leaves_nothing() {
    if !common::require_root("a_container_runs_to_its_exit_code_and_leaves_nothing") {
        return;
    }
    let pod = Pod::new("exit");
    let exe = SupervisorExe::sealed_copy_of(&common::tepui_bin()).unwrap();
    let sup = client::spawn(&exe, &pod.rt, "pod1", None, |_| Ok(()))
        .await
        .unwrap();
    let c = id(&["pod1"]);
    let req = pod.write_bundle(&c, "echo hello from $$; echo oops >&2; exit 3");
    let stdout = req.stdout.clone();
    let pid = sup.launch(req).await.unwrap();
    assert!(pid > 0);

    let t = sup.wait(&c).await.unwrap();
    assert_eq!((t.exit_code, t.signal, t.status), (Some(3), None, 3 << 8));
    assert!(!t.oom_killed && !t.killed_by_request);
    assert!(t.finished_at >= t.started_at);
    // PID 1 of its own pid namespace, output in the sandbox file.
    assert_eq!(std::fs::read_to_string(&stdout).unwrap(), "hello from 1\n");
    // The record is on disk, and WAIT answers again from it.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pod.rt.termination(&c)).unwrap()).unwrap();
    assert_eq!(on_disk["exit_code"], 3);
    assert_eq!(sup.wait(&c).await.unwrap(), t);

    sup.remove(&c).await.unwrap();
    wait_gone(&pod.rt, "pod1").await;
    pod.assert_nothing_left("pod1");
}

#[tokio::test(flavor = "current_thread")]
async fn kill_escalates_to_sigkill_for_a_pid1_that_ignores_sigterm() {
    if !common::require_root("kill_escalates_to_sigkill_for_a_pid1_that_ignores_sigterm") {
        return;
    }
    let pod = Pod::new("kill");
    let exe = SupervisorExe::Path(common::tepui_bin());
    let sup = client::spawn(&exe, &pod.rt, "pod2", None, |_| Ok(()))
        .await
        .unwrap();
    let c = id(&["pod2"]);
    // The shell ignores TERM, and so does its child.
    sup.launch(pod.write_bundle(&c, "trap '' TERM; echo ready; sleep 1000"))
        .await
        .unwrap();
    let started = Instant::now();
    sup.kill(&c, Duration::from_millis(500)).await.unwrap();
    let t = sup.wait(&c).await.unwrap();
    let took = started.elapsed();
    assert_eq!(t.signal, Some(libc::SIGKILL), "{t:?}");
    assert!(t.killed_by_request);
    assert!(
        took >= Duration::from_millis(450),
        "SIGKILL came before the grace period: {took:?}"
    );
    sup.remove(&c).await.unwrap();
    wait_gone(&pod.rt, "pod2").await;
    pod.assert_nothing_left("pod2");
}

#[tokio::test(flavor = "current_thread")]
async fn bad_requests_get_clear_errors_and_leave_nothing() {
    if !common::require_root("bad_requests_get_clear_errors_and_leave_nothing") {
        return;
    }
    let pod = Pod::new("bad");
    let exe = SupervisorExe::Path(common::tepui_bin());
    let sup = client::spawn(&exe, &pod.rt, "pod3", None, |_| Ok(()))
        .await
        .unwrap();
    let top = id(&["pod3"]);

    // A nested container without a running parent.
    let err = sup
        .launch(pod.write_bundle(&id(&["pod3", "task"]), "true"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("parent pod3 is not running"), "{err}");

    let err = sup
        .wait(&id(&["pod3", "nope"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown container pod3.nope"), "{err}");
    let err = sup
        .launch(pod.write_bundle(&id(&["other"]), "true"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not belong to pod pod3"), "{err}");

    // A missing executable fails the launch with a message naming it, and
    // a pod whose top-level container never started ends its supervisor.
    let mut req = pod.write_bundle(&top, "true");
    if let Some(spec) = req.spec.as_mut() {
        spec.command = Command::exec("/no/such/binary", vec!["binary".into()]);
    }
    let err = sup.launch(req).await.unwrap_err().to_string();
    assert!(err.contains("/no/such/binary"), "{err}");
    wait_gone(&pod.rt, "pod3").await;
    pod.assert_nothing_left("pod3");
}

#[tokio::test(flavor = "current_thread")]
async fn nested_containers_share_the_pod_network_but_see_only_their_own_processes() {
    let test = "nested_containers_share_the_pod_network_but_see_only_their_own_processes";
    if !common::require_root(test) {
        return;
    }
    let pod = Pod::new("nested");
    let exe = SupervisorExe::Path(common::tepui_bin());
    let sup = client::spawn(&exe, &pod.rt, "pod4", None, |_| Ok(()))
        .await
        .unwrap();
    let top = id(&["pod4"]);
    // The executor container listens on loopback, which must be up.
    let listener = "exec python3 -c 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", 7777))\ns.listen()\nwhile True:\n c,_=s.accept(); c.sendall(b\"hello-from-executor\\n\"); c.close()'";
    sup.launch(pod.write_bundle(&top, listener)).await.unwrap();

    let task = id(&["pod4", "task"]);
    let script = "for i in $(seq 100); do exec 3<>/dev/tcp/127.0.0.1/7777 && break; sleep 0.05; done 2>/dev/null; \
                  read line <&3; echo \"$line\"; echo pid=$$; \
                  echo procs=$(ls /proc | grep -c '^[0-9][0-9]*$'); \
                  echo python=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'pyth[o]n3')";
    let req = pod.write_bundle(&task, script);
    let stdout = req.stdout.clone();
    sup.launch(req).await.unwrap();
    let t = sup.wait(&task).await.unwrap();
    let out = std::fs::read_to_string(&stdout).unwrap();
    assert_eq!(t.exit_code, Some(0), "{t:?} {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello-from-executor", "{out}");
    assert_eq!(lines[1], "pid=1", "{out}");
    let procs: u32 = lines[2].trim_start_matches("procs=").parse().unwrap();
    assert!(procs <= 4, "the task sees other processes: {out}");
    assert_eq!(
        lines[3], "python=0",
        "the executor's process is visible: {out}"
    );

    // Killing the executor container ends the pod. python as PID 1 has no
    // SIGTERM handler, so the kernel ignores SIGTERM: SIGKILL after the grace.
    sup.kill(&top, Duration::from_millis(300)).await.unwrap();
    let t = sup.wait(&top).await.unwrap();
    assert_eq!(t.signal, Some(libc::SIGKILL), "{t:?}");
    sup.remove(&top).await.unwrap();
    wait_gone(&pod.rt, "pod4").await;
    pod.assert_nothing_left("pod4");
}

/// A hard memory limit on the task's own cgroup (share_cgroups=false).
fn limit_memory(req: &mut LaunchRequest, mib: f64) {
    let spec = req.spec.as_mut().unwrap();
    spec.linux.share_cgroups = false;
    spec.resources = ResourceRequest {
        mem_mb: Some(mib),
        mem_limit_mb: Some(Limit::Finite(mib)),
        ..ResourceRequest::default()
    };
}

#[tokio::test(flavor = "current_thread")]
async fn a_memory_hog_is_reported_as_an_oom_of_its_container_as_pid1_or_as_a_child() {
    let test = "a_memory_hog_is_reported_as_an_oom_of_its_container_as_pid1_or_as_a_child";
    if !common::require_root(test) {
        return;
    }
    let pod = Pod::new("oom");
    let exe = SupervisorExe::Path(common::tepui_bin());
    let sup = client::spawn(&exe, &pod.rt, "pod5", None, |_| Ok(()))
        .await
        .unwrap();
    let top = id(&["pod5"]);
    sup.launch(pod.write_bundle(&top, "exec sleep 1000"))
        .await
        .unwrap();

    let hog =
        "python3 -c 'import time; b = [bytearray(1 << 20) for _ in range(256)]; time.sleep(60)'";
    let cases = [
        ("pid1", format!("exec {hog}")),
        // The shell survives the kill of its child; the container must not.
        ("child", format!("{hog}; echo survived; sleep 60")),
    ];
    for (name, script) in cases {
        let c = top.child(name).unwrap();
        let mut req = pod.write_bundle(&c, &script);
        limit_memory(&mut req, 32.0);
        let stdout = req.stdout.clone();
        let started = Instant::now();
        sup.launch(req).await.unwrap();
        let t = sup.wait(&c).await.unwrap();
        assert!(t.oom_killed, "{name}: {t:?}");
        assert!(!t.killed_by_request, "{name}: {t:?}");
        assert_eq!(t.container, c);
        assert!(
            t.peak_memory_bytes.is_some_and(|p| p <= 33 << 20),
            "{name}: {t:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: not destroyed at the OOM"
        );
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        assert!(
            !out.contains("survived") || t.signal == Some(libc::SIGKILL),
            "{name}: {out}"
        );
        sup.remove(&c).await.unwrap();
    }
    // The executor container is untouched by its tasks' OOMs.
    let listed = sup.list().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.container == top && c.termination.is_none())
    );

    sup.kill(&top, Duration::ZERO).await.unwrap();
    sup.wait(&top).await.unwrap();
    sup.remove(&top).await.unwrap();
    wait_gone(&pod.rt, "pod5").await;
    pod.assert_nothing_left("pod5");
}

#[tokio::test(flavor = "current_thread")]
async fn a_fresh_agent_recovers_a_pod_with_three_running_nested_containers() {
    let test = "a_fresh_agent_recovers_a_pod_with_three_running_nested_containers";
    if !common::require_root(test) {
        return;
    }
    let pod = Pod::new("recover");
    let top = id(&["pod6"]);
    {
        // The "agent" that launches the pod, then goes away with all its memory.
        let exe = SupervisorExe::Path(common::tepui_bin());
        let sup = client::spawn(&exe, &pod.rt, "pod6", None, |_| Ok(()))
            .await
            .unwrap();
        sup.launch(pod.write_bundle(&top, "exec sleep 1000"))
            .await
            .unwrap();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let script = format!("trap 'exit {}' TERM; sleep 1000 & wait", 10 + i);
            let c = top.child(name).unwrap();
            sup.launch(pod.write_bundle(&c, &script)).await.unwrap();
        }
    }

    // A new agent knows nothing but the runtime dir.
    let pods = client::recover(&pod.rt).await.unwrap();
    assert_eq!(pods.len(), 1);
    let recovered = &pods[0];
    assert_eq!(recovered.pod, "pod6");
    let running: Vec<String> = recovered
        .containers
        .iter()
        .filter(|c| c.termination.is_none() && c.pid.is_some())
        .map(|c| c.container.to_string())
        .collect();
    assert_eq!(running, ["pod6", "pod6.a", "pod6.b", "pod6.c"]);

    // It drives the pod as if it had launched it, and learns each exit.
    let sup = recovered.client.clone().expect("the supervisor answers");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let c = top.child(name).unwrap();
        sup.signal(&c, libc::SIGTERM).await.unwrap();
        let t = sup.wait(&c).await.unwrap();
        assert_eq!(t.exit_code, Some(10 + i as i32), "{t:?}");
        assert!(!t.killed_by_request);
    }
    sup.kill(&top, Duration::ZERO).await.unwrap();
    sup.wait(&top).await.unwrap();

    // Records on disk survive even a lost supervisor: SIGKILL it, and a
    // later recovery still reports the finished containers from disk.
    let pid: i32 = std::fs::read_to_string(pod.rt.supervisor_pid("pod6"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the pid from the supervisor's pid file.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::processes_mentioning(&pod.rt.root().to_string_lossy())
        .iter()
        .any(|(p, _)| *p as i32 == pid)
    {
        assert!(Instant::now() < deadline, "supervisor survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pods = client::recover(&pod.rt).await.unwrap();
    assert!(pods[0].client.is_none());
    let exits: Vec<(String, Option<i32>)> = pods[0]
        .containers
        .iter()
        .map(|c| {
            let t = c.termination.as_ref().expect("terminated");
            (c.container.to_string(), t.exit_code)
        })
        .collect();
    assert_eq!(
        exits,
        [
            ("pod6".to_string(), None),
            ("pod6.a".to_string(), Some(10)),
            ("pod6.b".to_string(), Some(11)),
            ("pod6.c".to_string(), Some(12)),
        ]
    );
    // The agent cleans up a dead supervisor's pod (its mounts died with it).
    assert!(common::mounts_under(pod.rt.root()).is_empty());
    tepui_containerizer::safe_remove::remove_tree(&pod.rt.pod("pod6")).unwrap();
    pod.assert_nothing_left("pod6");
}
