//! The two third-party schedulers as child processes: pymesos (JSON) and a
//! mesos-go api/v1 program (protobuf). Each reads commands on stdin and
//! reports events as JSON lines on stdout, collected here.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cells::{Cell, Client, Env};

/// Where scripts/deps.sh (`install_journey_clients`) puts the venv.
pub fn venv_python(root: &Path) -> PathBuf {
    root.join("target/journeys/venv/bin/python")
}

/// Builds the mesos-go program offline (GOPATH mode against Debian's
/// golang-github-mesos-mesos-go-dev) into target/journeys/.
pub fn build_mesosgo(root: &Path) -> Result<PathBuf, String> {
    let gopath = root.join("target/journeys/go");
    let src = gopath.join("src/tepuijourney");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    for entry in
        std::fs::read_dir(root.join("tests/journeys/mesosgo")).map_err(|e| e.to_string())?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        std::fs::copy(entry.path(), src.join(entry.file_name())).map_err(|e| e.to_string())?;
    }
    let bin = root.join("target/journeys/mesosgo-journey");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", root.join("target/journeys/go-cache"))
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .output()
        .map_err(|e| format!("go: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

pub struct Scheduler {
    pub client: Client,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    pub framework_id: String,
}

impl Scheduler {
    pub fn start(client: Client, program: &[PathBuf], master: &str, log: &Path) -> Scheduler {
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .arg(master)
            .arg(format!("journeys-{}", client.name()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let t0 = Instant::now();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let mut event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "garbage", "line": line}));
                // When the scheduler reported it (ms since it started).
                event["received_ms"] = json!(t0.elapsed().as_millis() as u64);
                sink.lock().unwrap().push(event);
            }
        });
        let stdin = child.stdin.take();
        let mut s = Scheduler {
            client,
            child,
            stdin,
            events,
            framework_id: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = s.events().into_iter().find(|e| e["type"] == "subscribed") {
                s.framework_id = e["framework_id"].as_str().unwrap().to_string();
                assert_eq!(e["codec"], client.codec());
                break;
            }
            if let Some(e) = s.events().into_iter().find(|e| e["type"] == "fatal") {
                panic!("{} failed: {e}", client.name());
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "{} exited ({status}) before subscribing: {}",
                    client.name(),
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} never subscribed: {}",
                client.name(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("scheduler stdin");
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn launch(&mut self, cells: &[&Cell], env: &Env) {
        let cells: Vec<Value> = cells
            .iter()
            .map(|c| {
                let mut v = json!({
                    "cell": c.name,
                    "launch": match c.launch {
                        super::cells::Launch::Task => "LAUNCH",
                        super::cells::Launch::Group => "LAUNCH_GROUP",
                    },
                    "tasks": c.task_infos(env),
                });
                if c.launch == super::cells::Launch::Group {
                    v["executor"] = c.executor_info();
                }
                v
            })
            .collect();
        self.send(json!({"op": "launch", "cells": cells}));
    }

    /// Launches cells given as the driver's JSON (`{"cell", "launch",
    /// "tasks", "executor"}`), for tasks the matrix does not generate.
    pub fn launch_raw(&mut self, cells: Vec<Value>) {
        self.send(json!({"op": "launch", "cells": cells}));
    }

    pub fn kill(&mut self, task: &str) {
        self.send(json!({"op": "kill", "task_id": task}));
    }

    /// The states the scheduler saw for `task`, in order, and the last
    /// update.
    pub fn updates_of(&self, task: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == "update" && e["task_id"] == task)
            .collect()
    }

    /// When the scheduler put the cell's operation into an ACCEPT (ms since
    /// it started).
    pub fn launched_ms(&self, cell: &str) -> Option<u64> {
        self.events()
            .iter()
            .find(|e| e["type"] == "launched" && e["cell"] == cell)
            .and_then(|e| e["received_ms"].as_u64())
    }

    /// Problems the scheduler reported (call errors, cells it could not
    /// encode, master errors).
    pub fn problems(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| {
                ["call_error", "cell_error", "error", "fatal", "garbage"]
                    .contains(&e["type"].as_str().unwrap_or(""))
            })
            .collect()
    }

    /// TEARDOWN, then waits for the process to exit.
    pub fn teardown(mut self) {
        if self.stdin.is_some() {
            self.send(json!({"op": "teardown"}));
            drop(self.stdin.take());
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A scheduler left running (a panic) is ended with the test.
impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
