//! The specs `build_spec` writes are valid for real OCI runtimes: a
//! host-filesystem executor and a nested task joining its namespaces run
//! under `runc` and `crun` (whichever are installed).
//!
//! Needs root and `unshare`; every runtime call happens inside a private
//! mount namespace (`unshare -m`) where the host root is rbound for
//! `SpecContext::host_rootfs`, so nothing leaks onto the host. Skips with a
//! printed reason when it cannot run, fails instead under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use tepui_containerizer::spec::{
    Command, ContainerKind, ContainerPath, LaunchSpec, ParentContainer, SandboxOf, SpecContext,
    VolumeMode, VolumeSource, VolumeSpec, build_spec,
};

fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("spec_runs cannot run under CI: {reason}");
    }
    eprintln!("skipping spec_runs: {reason}");
}

fn installed(program: &str) -> bool {
    Process::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The runtimes to try, or why none can run.
fn runtimes() -> Result<Vec<&'static str>, String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("needs root (namespaces, mounts, cgroups)".into());
    }
    if !installed("unshare") {
        return Err("`unshare` (util-linux) is not installed".into());
    }
    let found: Vec<_> = ["runc", "crun"]
        .into_iter()
        .filter(|r| installed(r))
        .collect();
    if found.is_empty() {
        return Err("neither runc nor crun is installed (apt-get install -y runc crun)".into());
    }
    Ok(found)
}

/// Runs `script` (with `$1`.. = `args`) in a private mount namespace where
/// `host_root` shows the host's `/`. The cgroup2 `unified` mount of a
/// hybrid host is unmounted there first: crun refuses hybrid layouts.
fn in_private_mount_ns(host_root: &Path, script: &str, args: &[&str]) -> Output {
    let prelude = r#"set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
mount --rbind / "$HOST_ROOT"
mount --make-rslave "$HOST_ROOT"
"#;
    Process::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{prelude}{script}"))
        .arg("sh")
        .args(args)
        .env("HOST_ROOT", host_root)
        .output()
        .expect("run unshare")
}

struct Env {
    /// `None` once dropped (see `Drop`).
    dir: Option<tempfile::TempDir>,
    runtime: &'static str,
}

/// `hostroot` shows the host's `/` while the runtime runs. It is only ever
/// mounted inside the `unshare -m` child, but a recursive delete through a
/// live bind of `/` would destroy the host, so the temp dir is removed only
/// after `hostroot` itself could be removed with rmdir(2) (which fails on a
/// mount point or a non-empty dir); otherwise it is kept and reported.
impl Drop for Env {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let host_root = dir.path().join("hostroot");
        if let Err(err) = std::fs::remove_dir(&host_root) {
            let kept = dir.keep();
            eprintln!(
                "spec_runs: keeping {} ({} could not be removed safely: {err})",
                kept.display(),
                host_root.display()
            );
        }
    }
}

impl Env {
    fn new(runtime: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in [
            "hostroot",
            "state",
            "shm",
            "sandboxes/pod/tasks/web",
            "sandboxes/pod/shared",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        Self {
            dir: Some(dir),
            runtime,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.path().join(rel),
            None => PathBuf::from("/nonexistent").join(rel),
        }
    }

    fn ctx(&self, cgroup: &str) -> SpecContext {
        SpecContext::new(
            format!("/tepui-spec-test-{}/{cgroup}", std::process::id()),
            self.path("hostroot"),
        )
    }

    fn write_bundle(&self, name: &str, spec: &oci_spec::runtime::Spec) -> PathBuf {
        let bundle = self.path(&format!("bundles/{name}"));
        std::fs::create_dir_all(&bundle).expect("mkdir bundle");
        let json = serde_json::to_string_pretty(spec).expect("serialize spec");
        std::fs::write(bundle.join("config.json"), json).expect("write config.json");
        bundle
    }

    fn runtime_cmd(&self) -> String {
        format!("{} --root {}", self.runtime, self.path("state").display())
    }
}

/// Removes this test process's cgroups (the runtimes remove only the
/// leaves): `/sys/fs/cgroup[/<controller>]/tepui-spec-test-<pid>`.
fn remove_test_cgroups() {
    fn remove(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    let name = format!("tepui-spec-test-{}", std::process::id());
    let root = Path::new("/sys/fs/cgroup");
    remove(&root.join(&name));
    if let Ok(controllers) = std::fs::read_dir(root) {
        for controller in controllers.flatten() {
            remove(&controller.path().join(&name));
        }
    }
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn host_filesystem_container_runs() {
    let runtimes = match runtimes() {
        Ok(r) => r,
        Err(reason) => return skip(&reason),
    };
    for runtime in runtimes {
        let env = Env::new(runtime);
        let sandbox = env.path("sandboxes/pod");
        let launch = LaunchSpec::new(
            ContainerPath::new(vec!["pod".into()]).expect("id"),
            ContainerKind::Executor,
            Command::shell("echo hi > $MESOS_SANDBOX/out"),
            &sandbox,
        );
        let spec = build_spec(&launch, &env.ctx("pod")).expect("build_spec");
        let bundle = env.write_bundle("pod", &spec);
        let id = format!("tepui-spec-{}-{runtime}", std::process::id());
        let output = in_private_mount_ns(
            &env.path("hostroot"),
            &format!(r#"{} run --bundle "$1" "$2""#, env.runtime_cmd()),
            &[bundle.to_str().expect("utf-8"), &id],
        );
        remove_test_cgroups();
        check(&output, &format!("{runtime} run"));
        let out = std::fs::read_to_string(sandbox.join("out")).expect("the container wrote out");
        assert_eq!(out, "hi\n", "{runtime}");
        eprintln!("spec_runs: host-filesystem container ran under {runtime}");
    }
}

#[test]
fn nested_task_joins_its_executor() {
    let runtimes = match runtimes() {
        Ok(r) => r,
        Err(reason) => return skip(&reason),
    };
    for runtime in runtimes {
        let env = Env::new(runtime);
        let pod_sandbox = env.path("sandboxes/pod");
        let task_sandbox = env.path("sandboxes/pod/tasks/web");
        let pid_file = env.path("executor.pid");
        let pod_id = format!("tepui-spec-{}-{runtime}-pod", std::process::id());
        let task_id = format!("tepui-spec-{}-{runtime}-web", std::process::id());

        // The executor: records its hostname, then waits.
        let mut executor = LaunchSpec::new(
            ContainerPath::new(vec!["pod".into()]).expect("id"),
            ContainerKind::Executor,
            Command::shell("hostname > $MESOS_SANDBOX/executor-host; exec sleep 60"),
            &pod_sandbox,
        );
        executor.hostname = Some("pod-host".into());
        let mut ctx = env.ctx("pod");
        ctx.shm_dir = Some(env.path("shm"));
        let spec = build_spec(&executor, &ctx).expect("executor spec");
        let executor_bundle = env.write_bundle("pod", &spec);

        // One mount namespace for the whole scenario: start the executor
        // detached, wait for the test to write the nested spec (it needs the
        // executor's pid), run the task, then tear down.
        let ready = env.path("task-bundle-ready");
        let script = format!(
            r#"rt="{rt}"
$rt run --detach --pid-file "$1" --bundle "$2" "$3" </dev/null >/dev/null 2>&1
i=0; while [ ! -e "$4" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
status=0
$rt run --bundle "$5" "$6" </dev/null || status=$?
$rt kill "$3" KILL 2>/dev/null || true
sleep 0.2
$rt delete --force "$3" 2>/dev/null || true
exit $status
"#,
            rt = env.runtime_cmd()
        );
        let task_bundle = env.path("bundles/web");
        let args = [
            pid_file.to_str().expect("utf-8").to_string(),
            executor_bundle.to_str().expect("utf-8").to_string(),
            pod_id.clone(),
            ready.to_str().expect("utf-8").to_string(),
            task_bundle.to_str().expect("utf-8").to_string(),
            task_id,
        ];
        let host_root = env.path("hostroot");
        let runner = std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            in_private_mount_ns(&host_root, &script, &args)
        });

        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "{runtime}: the executor did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };

        // The task: same hostname (joined UTS), its own pid namespace, a
        // PARENT sandbox volume and a read-only host path (relative targets:
        // on the host filesystem absolute mount points must already exist).
        let mut task = LaunchSpec::new(
            ContainerPath::new(vec!["pod".into(), "web".into()]).expect("id"),
            ContainerKind::Task,
            Command::shell(
                "hostname > shared/task-host && echo $$ > shared/task-pid && \
                 ! touch etc-ro/x 2>/dev/null && echo ok > $MESOS_SANDBOX/done",
            ),
            &task_sandbox,
        );
        task.volumes = vec![
            VolumeSpec {
                container_path: "shared".into(),
                mode: VolumeMode::Rw,
                source: VolumeSource::SandboxPath {
                    of: SandboxOf::Parent,
                    path: "shared".into(),
                },
            },
            VolumeSpec {
                container_path: "etc-ro".into(),
                mode: VolumeMode::Ro,
                source: VolumeSource::HostPath {
                    path: "/etc".into(),
                    propagation: Default::default(),
                },
            },
        ];
        let mut ctx = env.ctx("web");
        ctx.parent = Some(ParentContainer {
            init_pid: pid,
            sandbox_dir: pod_sandbox.clone(),
            shm_dir: Some(env.path("shm")),
            cwd: None,
        });
        let spec = build_spec(&task, &ctx).expect("task spec");
        env.write_bundle("web", &spec);
        std::fs::write(&ready, "").expect("signal");

        let output = runner.join().expect("runner thread");
        remove_test_cgroups();
        check(&output, &format!("{runtime}: nested task"));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            read(&pod_sandbox.join("executor-host")),
            "pod-host\n",
            "{runtime}"
        );
        assert_eq!(
            read(&pod_sandbox.join("shared/task-host")),
            "pod-host\n",
            "{runtime}"
        );
        assert_eq!(
            read(&pod_sandbox.join("shared/task-pid")),
            "1\n",
            "{runtime}"
        );
        assert_eq!(read(&task_sandbox.join("done")), "ok\n", "{runtime}");
        eprintln!("spec_runs: nested task joined its executor under {runtime}");
    }
}
