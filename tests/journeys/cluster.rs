//! A real `tepui master` and `tepui agent` on free loopback ports, the
//! HTTP server the tasks fetch their archive from, and the agent's files
//! API (how Mesos tools find a task's output).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[String], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(crate::common::tepui_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub struct Cluster {
    pub dir: PathBuf,
    pub cgroup_root: String,
    pub master_port: u16,
    pub agent_port: u16,
    master: Child,
    agent: Option<Child>,
    agent_args: Vec<String>,
}

impl Cluster {
    pub fn start(dir: &Path, cgroup_root: &str, registry: &str) -> Cluster {
        let master_port = free_port();
        let agent_port = free_port();
        let master = spawn(
            &[
                "master".into(),
                "--ip=127.0.0.1".into(),
                format!("--port={master_port}"),
                format!("--work_dir={}", dir.join("master").display()),
                "--allocation_interval=100ms".into(),
            ],
            &dir.join("master.log"),
        );
        let agent_args = vec![
            "agent".into(),
            format!("--master=127.0.0.1:{master_port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            // Every cell of a phase runs at once.
            "--resources=cpus:32;mem:32768;disk:16384".into(),
            "--isolation=filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem".into(),
            "--image_providers=docker".into(),
            format!("--docker_insecure_registries={registry}"),
        ];
        let agent = spawn(&agent_args, &dir.join("agent.log"));
        Cluster {
            dir: dir.to_path_buf(),
            cgroup_root: cgroup_root.to_string(),
            master_port,
            agent_port,
            master,
            agent: Some(agent),
            agent_args,
        }
    }

    pub fn master(&self) -> String {
        format!("127.0.0.1:{}", self.master_port)
    }

    pub fn agent_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.agent_port)
    }

    /// Waits until the master lists one active agent.
    pub async fn wait_registered(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let slaves = get_json(&format!("http://{}/slaves", self.master())).await;
            if slaves.as_ref().is_some_and(|s| {
                s["slaves"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1 && a[0]["active"] == true)
            }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the agent never registered: {}",
                self.log("agent.log")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, then the same agent again (recovering its checkpoints).
    pub fn kill_and_restart_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.kill().unwrap();
            agent.wait().unwrap();
        }
        self.agent = Some(spawn(&self.agent_args, &self.dir.join("agent.log")));
    }

    /// Waits until the restarted agent is registered with the master again
    /// (its own `slave/registered` gauge: a new process starts at 0).
    pub async fn wait_agent_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let metrics = get_json(&format!("{}/metrics/snapshot", self.agent_base())).await;
            if metrics.is_some_and(|m| m["slave/registered"] == 1.0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not come back: {}",
                self.log("agent.log")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The executor's sandbox on this host (one run per executor here).
    pub fn executor_sandbox(
        &self,
        agent_id: &str,
        framework: &str,
        executor: &str,
    ) -> Option<PathBuf> {
        let runs = self
            .dir
            .join("agent/work/slaves")
            .join(agent_id)
            .join("frameworks")
            .join(framework)
            .join("executors")
            .join(executor)
            .join("runs");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(runs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "latest"))
            .collect();
        entries.sort();
        entries.pop()
    }

    /// Stops everything (see the Drop).
    pub fn stop(self) {}
}

/// Also on a panic: the agent once its pods are gone (SIGTERM leaves
/// containers running, as Mesos's does), the master, then whatever of this
/// test is left (processes, cgroups).
impl Drop for Cluster {
    fn drop(&mut self) {
        let run = self.dir.join("agent/run");
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Some(mut agent) = self.agent.take() {
            while Instant::now() < deadline
                && crate::common::processes_mentioning(&run.to_string_lossy())
                    .iter()
                    .any(|(pid, _)| *pid != agent.id())
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: signalling our own child.
            unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
            let _ = agent.wait();
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        crate::common::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in crate::common::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
    }
}

pub async fn get_json(url: &str) -> Option<Value> {
    let resp = reqwest::get(url).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    serde_json::from_slice(&resp.bytes().await.ok()?).ok()
}

/// `/files/read` of a sandbox path through the executor's virtual path
/// (`/frameworks/<fw>/executors/<ex>/runs/latest/...`), as Mesos's CLI and
/// web UI read task output. None when the file is not there.
pub async fn read_sandbox_file(
    agent: &str,
    framework: &str,
    executor: &str,
    rel: &str,
) -> Option<String> {
    let path = format!("/frameworks/{framework}/executors/{executor}/runs/latest/{rel}");
    let v = get_json(&format!(
        "{agent}/files/read?path={path}&offset=0&length=1048576"
    ))
    .await?;
    v["data"].as_str().map(str::to_string)
}

/// `/files/browse` names (last path components) of a sandbox directory.
pub async fn browse_sandbox(
    agent: &str,
    framework: &str,
    executor: &str,
    rel: &str,
) -> Vec<String> {
    let path = format!("/frameworks/{framework}/executors/{executor}/runs/latest/{rel}");
    get_json(&format!("{agent}/files/browse?path={path}"))
        .await
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect()
}

/// Serves `body` for every GET on a loopback port (the tasks' URI), until
/// the process ends. Returns the port.
pub fn serve_file(body: Vec<u8>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

/// A tar.gz holding `journey-payload/hello.txt`, made with tar(1).
pub fn payload_archive(dir: &Path, text: &str) -> Vec<u8> {
    let src = dir.join("payload-src/journey-payload");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), text).unwrap();
    let archive = dir.join("journey-payload.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.join("payload-src"))
        .arg("journey-payload")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

/// Tags, in the plain test registry, an index holding only the manifests of
/// `multi:latest` that are not for this host's architecture: an image
/// without the platform the agent asks for. Returns the tag.
pub async fn push_foreign_index(registry: &str) -> String {
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let tag = "journey-foreign".to_string();
    let client = reqwest::Client::new();
    let index = client
        .get(format!("http://{registry}/v2/multi/manifests/latest"))
        .header("Accept", INDEX)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut index: Value = serde_json::from_slice(&index).unwrap();
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let foreign: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["platform"]["architecture"] != host)
        .cloned()
        .collect();
    assert!(!foreign.is_empty(), "multi:latest has only {host}");
    index["manifests"] = Value::Array(foreign);
    let resp = client
        .put(format!("http://{registry}/v2/multi/manifests/{tag}"))
        .header("Content-Type", INDEX)
        .body(index.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "cannot tag {tag}: {}",
        resp.status()
    );
    tag
}
