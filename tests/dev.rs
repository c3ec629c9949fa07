//! `tepui dev` end to end: a real `tepui dev` process runs a command task
//! and a task group for a JSON scheduler, then is stopped with SIGTERM or
//! SIGINT (Ctrl-C); it must destroy its pods (no supervisor, cgroup or
//! mount left) and remove the temporary work dir it made. Its registry
//! flags reach the agent, and a pull from the plain-http test registry
//! without `--docker_insecure_registries` names that flag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::json_scheduler::{JsonScheduler, WAIT, command_task, launch_group};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

/// One `tepui dev` with its temp dir (`TMPDIR`), killed with everything
/// it left if the test fails.
struct Dev {
    child: Option<Child>,
    tmp: PathBuf,
    cgroup_root: String,
    master: String,
    agent: String,
}

impl Dev {
    fn start(tmp: &Path, cgroup_root: &str, extra: &[String]) -> Dev {
        let (master_port, agent_port) = (free_port(), free_port());
        let log = std::fs::File::create(tmp.join(format!("{cgroup_root}.log"))).unwrap();
        let child = Command::new(common::tepui_bin())
            .arg("dev")
            .arg(format!("--master_port={master_port}"))
            .arg(format!("--agent_port={agent_port}"))
            .arg(format!("--cgroups_root={cgroup_root}"))
            .arg("--resources=cpus:2;mem:1024;disk:1024")
            .arg("--allocation_interval=100ms")
            .arg("--executor_shutdown_grace_period=1secs")
            .args(extra)
            .env("TMPDIR", tmp)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Dev {
            child: Some(child),
            tmp: tmp.to_path_buf(),
            cgroup_root: cgroup_root.to_string(),
            master: format!("http://127.0.0.1:{master_port}"),
            agent: format!("127.0.0.1:{agent_port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join(format!("{}.log", self.cgroup_root)))
            .unwrap_or_default()
    }

    /// The work dir `tepui dev` made for itself in `TMPDIR`.
    fn work_dir(&self) -> PathBuf {
        let pid = self.child.as_ref().unwrap().id();
        self.tmp.join(format!("tepui-dev-{pid}"))
    }

    async fn wait_agent(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let n = get_json(&format!("{}/slaves", self.master))
                .await
                .map_or(0, |v| v["slaves"].as_array().map_or(0, Vec::len));
            if n == 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tepui dev never came up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn supervisors(&self, work: &Path) -> Vec<(u32, String)> {
        common::processes_mentioning(&work.to_string_lossy())
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("supervise"))
            .collect()
    }

    /// Sends `signal` and waits for a clean exit.
    fn stop_with(&mut self, signal: i32) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill has no memory preconditions; the pid is our child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tepui dev did not stop:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}:\n{}", self.log());
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

#[test]
fn dev_takes_the_agents_image_flags() {
    let out = Command::new(common::tepui_bin())
        .args(["dev", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--docker_insecure_registries",
        "--docker_config",
        "--docker_registry_ca_file",
        "--docker_registry",
        "--image_providers",
        "--isolation",
        "--resources",
        "--attributes",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    // A CA file that is not there is refused at start, naming the flag.
    let out = Command::new(common::tepui_bin())
        .args([
            "dev",
            "--master_port=1",
            "--agent_port=1",
            "--docker_registry_ca_file=/nonexistent/ca.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--docker_registry_ca_file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_destroys_its_pods_and_temp_work_dir_when_stopped() {
    if !common::require_root("dev_destroys_its_pods_and_temp_work_dir_when_stopped") {
        return;
    }
    let env = common::oci_testenv("dev_destroys_its_pods");
    let plain = env
        .as_ref()
        .and_then(|e| e["registries"]["plain"]["host"].as_str())
        .map(str::to_string);
    let tmp = tempfile::Builder::new()
        .prefix("tepui-devtest-")
        .tempdir()
        .unwrap()
        .keep();
    for (round, signal) in [(0, libc::SIGTERM), (1, libc::SIGINT)] {
        let cgroup_root = format!("tepui-test-dev-{}-{round}", std::process::id());
        // Round 0 knows the plain registry is plain http; round 1 does not.
        let mut extra = vec!["--image_providers=docker".to_string()];
        if let (0, Some(plain)) = (round, &plain) {
            extra.push(format!("--docker_insecure_registries={plain}"));
        }
        let mut dev = Dev::start(&tmp, &cgroup_root, &extra);
        dev.wait_agent().await;
        let work = dev.work_dir();
        assert!(work.is_dir(), "{}", work.display());

        // The registry flags reached the agent.
        let flags = get_json(&format!("http://{}/flags", dev.agent))
            .await
            .unwrap();
        assert_eq!(flags["flags"]["image_providers"], "docker", "{flags}");
        if let Some(plain) = &plain {
            let pull = Command::new(common::tepui_bin())
                .args(["pull", "--agent", &dev.agent])
                .arg(format!("{plain}/busybox:latest"))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&pull.stderr);
            if round == 0 {
                assert_eq!(flags["flags"]["docker_insecure_registries"], *plain);
                assert_eq!(pull.status.code(), Some(0), "{err}");
            } else {
                assert_eq!(pull.status.code(), Some(1), "{err}");
                assert!(
                    err.contains(&format!("add {plain} to --docker_insecure_registries")),
                    "{err}"
                );
            }
        }

        let mut s = JsonScheduler::subscribe(&dev.master, "dev-test").await;
        let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
        let agent = &offer["agent_id"];
        let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [command_task("cmd", agent, "sleep 1000")]}},
            launch_group("exec", agent, &[("a", "sleep 1000", None), ("b", "sleep 1000", None)]),
        ]}});
        assert_eq!(s.call(accept).await, 202);
        s.await_all(&["cmd", "a", "b"], "TASK_RUNNING").await;
        assert_eq!(dev.supervisors(&work).len(), 2, "one per pod");
        assert!(!common::cgroups_named(&cgroup_root).is_empty());
        drop(s);

        dev.stop_with(signal);
        let supervisors = dev.supervisors(&work);
        assert!(supervisors.is_empty(), "{supervisors:?}\n{}", dev.log());
        let left = common::processes_mentioning(&work.to_string_lossy());
        assert!(left.is_empty(), "{left:?}");
        let cgroups = common::cgroups_named(&cgroup_root);
        assert!(cgroups.is_empty(), "{cgroups:?}\n{}", dev.log());
        assert!(common::mounts_under(&tmp).is_empty());
        assert!(!work.exists(), "{} left:\n{}", work.display(), dev.log());
    }
    tepui_containerizer::safe_remove::remove_tree(&tmp).unwrap();
}
