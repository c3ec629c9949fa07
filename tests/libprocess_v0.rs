//! Frameworks built on libmesos's drivers, unchanged, against a real
//! `tepui master` (and agent): mesos-go 0.0.6's `api/v0` scheduler driver
//! (the Mesos project's pure-Go libmesos, from Debian's
//! golang-github-mesos-mesos-go-dev, built here offline) over libprocess;
//! a v1 HTTP framework on the same cluster at the same time; the
//! `mesos.scheduler.Call`-over-libprocess path of Mesos 1.x's libmesos as a
//! transcript written from src/sched/sched.cpp; and the bad input the
//! libprocess endpoint must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::json_scheduler::{JsonScheduler, command_task, offered};
use common::mesos_cluster::{Cluster, free_port, get_json, wait_until};
use prost::Message as _;
use serde_json::{Value, json};
use tepui_proto::v0;
use tepui_proto::v1::scheduler::{Call, call};

const WAIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the Go program in tests/libprocess_v0/`name` offline (GOPATH
/// mode against Debian's packages) into target/libprocess_v0/.
fn build_go(name: &str) -> PathBuf {
    let root = root();
    let gopath = root.join("target/libprocess_v0/go");
    let src = gopath.join(format!("src/v0{name}"));
    std::fs::create_dir_all(&src).unwrap();
    for entry in std::fs::read_dir(root.join("tests/libprocess_v0").join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), src.join(entry.file_name())).unwrap();
    }
    let bin = root.join(format!("target/libprocess_v0/v0{name}"));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", root.join("target/libprocess_v0/go-cache"))
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .output()
        .expect("go (golang-go; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "go build {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// The mesos-go v0 scheduler program: commands in, JSON lines out.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    seen: usize,
}

impl Driver {
    fn start(bin: &Path, args: &[&str], log: &Path) -> Driver {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Driver {
            stdin: child.stdin.take(),
            child,
            events,
            seen: 0,
        }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next event (after the last one waited for) that `pred` accepts.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let events = self.events.lock().unwrap();
                if let Some(i) = events[self.seen..].iter().position(&pred) {
                    self.seen += i + 1;
                    return events[self.seen - 1].clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "no {what}; driver events: {:#?}",
                    &events[..]
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Any event so far or to come that `pred` accepts, in whatever order
    /// it arrived relative to the others (the cursor stays).
    async fn saw(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let events = self.events.lock().unwrap();
                if let Some(e) = events.iter().find(|e| pred(e)) {
                    return e.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "no {what}; driver events: {:#?}",
                    &events[..]
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn event(&mut self, kind: &str) -> Value {
        self.wait(kind, |e| e["event"] == kind).await
    }

    async fn status(&mut self, task: &str, state: &str) -> Value {
        self.wait(&format!("{task} {state}"), |e| {
            e["event"] == "status" && e["task_id"] == task && e["state"] == state
        })
        .await
    }

    /// Launches on an offer the driver holds, waiting for one as needed
    /// (what the previous launch left comes back after its 0.2 s filter).
    async fn launch(&mut self, command: &str, task: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.send(command);
            let e = self
                .wait(&format!("launch of {task}"), |e| {
                    (e["event"] == "launched" || e["event"] == "launch_failed")
                        && e["task_id"] == task
                })
                .await;
            if e["event"] == "launched" {
                return;
            }
            assert!(Instant::now() < deadline, "cannot launch {task}: {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the cluster's agent (SIGTERM: its pods live on) and starts it
/// again on the same work directory and address.
fn restart_agent(cluster: &mut Cluster) {
    let mut agent = cluster.agent.take().unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    agent.wait().unwrap();
    let port = cluster.agent_addr.rsplit(':').next().unwrap().to_string();
    let dir = &cluster.dir;
    let agent = Command::new(common::tepui_bin())
        .args([
            "agent".to_string(),
            format!("--master={}", cluster.master_addr),
            "--ip=127.0.0.1".into(),
            "--hostname=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--work_dir={}", dir.join("agent/work").display()),
            format!("--runtime_dir={}", dir.join("agent/run").display()),
            format!("--cgroups_root={}", cluster.cgroup_root),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent-restarted.log")).unwrap())
        .spawn()
        .unwrap();
    cluster.agent = Some(agent);
}

fn framework(master: &str, id: &str) -> Option<Value> {
    get_json(master, "/master/frameworks")["frameworks"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
}

fn role(master: &str, name: &str) -> Value {
    get_json(master, "/master/roles")["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libmesos_scheduler_driver_runs_unchanged_next_to_a_v1_framework() {
    let test = "a_libmesos_scheduler_driver_runs_unchanged_next_to_a_v1_framework";
    if !common::require_root(test) {
        return;
    }
    let sched_bin = build_go("sched");
    let exec_bin = build_go("exec");
    let mut cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the master serves", || TcpStream::connect(&master).is_ok());
    wait_until("the agent registered", || {
        get_json(&master, "/master/slaves")["slaves"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let logs = cluster.dir.clone();

    // Registration: the driver finds the leader through /state, POSTs
    // RegisterFrameworkMessage and hears back from `master@ip:port`.
    let mut d1 = Driver::start(&sched_bin, &[&master], &logs.join("driver1.log"));
    let registered = d1.event("registered").await;
    let fid = registered["framework_id"].as_str().unwrap().to_string();
    assert_eq!(registered["master_pid"], format!("master@{master}"));
    let offer = d1.event("offer").await;
    let agent_id = offer["agent_id"].as_str().unwrap().to_string();
    assert_eq!(offer["cpus"], 2.0);

    // Two command tasks: one ends, one keeps running. Their updates are
    // acknowledged by the driver (StatusUpdateAcknowledgementMessage):
    // the master keeps an ended task as completed only once acknowledged.
    d1.launch("launch t1 0.2 64 echo v0-one", "t1").await;
    d1.status("t1", "TASK_FINISHED").await;
    d1.launch("launch t2 0.2 64 sleep 300", "t2").await;
    let running = d1.status("t2", "TASK_RUNNING").await;
    assert_eq!(running["agent_id"], agent_id.as_str());
    wait_until("t1 acknowledged and completed", || {
        framework(&master, &fid).is_some_and(|f| {
            f["completed_tasks"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["id"] == "t1" && t["state"] == "TASK_FINISHED")
            })
        })
    });

    // Declining (LaunchTasksMessage without tasks).
    loop {
        d1.send("decline");
        if d1.event("declined").await["count"].as_u64() > Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Reconciliation, explicit and implicit: answered by the master.
    d1.send(&format!("reconcile t2 {agent_id}"));
    let r = d1
        .wait("explicit reconciliation", |e| {
            e["task_id"] == "t2" && e["reason"] == "REASON_RECONCILIATION"
        })
        .await;
    assert_eq!(r["state"], "TASK_RUNNING");
    assert_eq!(r["source"], "SOURCE_MASTER");
    d1.send("reconcile");
    d1.wait("implicit reconciliation", |e| {
        e["task_id"] == "t2" && e["reason"] == "REASON_RECONCILIATION"
    })
    .await;

    // A task on a custom executor built on mesos-go's v0 executor driver:
    // it registers with the agent at MESOS_SLAVE_PID over libprocess, gets
    // the task (RunTaskMessage), reports it running (StatusUpdateMessage,
    // acknowledged back to it), and speaks first (ExecutorToFrameworkMessage
    // through the agent and the master).
    d1.launch(&format!("launchexec t3 {}", exec_bin.display()), "t3")
        .await;
    let running = d1.status("t3", "TASK_RUNNING").await;
    assert_eq!(running["executor_id"], "exec-t3");
    assert_eq!(running["source"], "SOURCE_EXECUTOR");
    let hello = d1
        .saw("the executor's message", |e| {
            e["event"] == "message" && e["data"] == "started t3 with hello executor"
        })
        .await;
    assert_eq!(hello["executor_id"], "exec-t3");
    assert_eq!(hello["agent_id"], agent_id.as_str());
    // The scheduler's framework message goes to the agent's pid it learnt
    // from the offer (FrameworkToExecutorMessage), the executor answers.
    d1.send(&format!("message exec-t3 {agent_id} ping 1"));
    d1.saw("the executor's answer", |e| {
        e["event"] == "message" && e["data"] == "pong 1"
    })
    .await;
    // The agent restarts: it asks the recovered executor, at the pid it
    // checkpointed, to re-register (ReconnectExecutorMessage); the executor
    // re-registers (ReregisterExecutorMessage) and talks on.
    restart_agent(&mut cluster);
    wait_until("the executor re-registered", || {
        std::fs::read_to_string(cluster.dir.join("agent-restarted.log"))
            .unwrap_or_default()
            .contains("libprocess executor registered")
    });
    d1.send(&format!("message exec-t3 {agent_id} ping 2"));
    d1.saw("the executor's answer after the agent restart", |e| {
        e["event"] == "message" && e["data"] == "pong 2"
    })
    .await;
    d1.send("kill t3");
    d1.status("t3", "TASK_KILLED").await;
    // The executor dies on its own: ExitedExecutorMessage to the scheduler.
    d1.send(&format!("message exec-t3 {agent_id} exit"));
    let lost = d1
        .saw("the executor's exit", |e| e["event"] == "executor_lost")
        .await;
    assert_eq!(lost["executor_id"], "exec-t3");
    assert_eq!(lost["agent_id"], agent_id.as_str());
    assert_ne!(lost["status"], 0);
    // The agent acknowledged the executor's updates over libprocess
    // (StatusUpdateAcknowledgementMessage; mesos-go logs each one).
    let sandbox_stderr = || {
        let out = Command::new("find")
            .arg(cluster.dir.join("agent/work"))
            .args(["-path", "*/executors/exec-t3/runs/*/stderr"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<String>()
    };
    wait_until("the executor saw both acknowledgements", || {
        sandbox_stderr()
            .matches("Receiving status update acknowledgement")
            .count()
            >= 2
    });

    // A v1 framework on the same master, the same allocator: DRF shares
    // count both.
    let base = format!("http://{master}");
    let mut v1 = JsonScheduler::subscribe(&base, "v1-next-to-v0").await;
    // An offer that fits (what tasks ended left may come in small ones).
    // The v0 driver holds what it was offered: it declines, and DRF
    // offers the freed resources to the v1 framework (share 0) first.
    let o = loop {
        d1.send("decline");
        let offers = v1.next("OFFERS").await;
        let fits = offers["offers"]["offers"].as_array().and_then(|a| {
            a.iter()
                .find(|o| {
                    let (cpus, mem) = offered(&json!([o]));
                    cpus >= 0.2 && mem >= 64.0
                })
                .cloned()
        });
        if let Some(o) = fits {
            break o;
        }
        let ids: Vec<Value> = offers["offers"]["offers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| o["id"].clone())
            .collect();
        let decline = json!({"type": "DECLINE", "decline": {"offer_ids": ids,
            "filters": {"refuse_seconds": 0.1}}});
        assert_eq!(v1.call(decline).await, 202);
    };
    let o = &o;
    let launch = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [o["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
            command_task("v1-t", &o["agent_id"], "sleep 300")]}}]}});
    assert_eq!(v1.call(launch).await, 202);
    v1.await_all(&["v1-t"], "TASK_RUNNING").await;
    wait_until("both roles hold resources and have a share", || {
        let (v0r, v1r) = (role(&master, "v0"), role(&master, "*"));
        v0r["allocated"]["cpus"].as_f64().is_some_and(|c| c >= 0.2)
            && v1r["allocated"]["cpus"].as_f64().is_some_and(|c| c >= 0.2)
            && v0r["share"].as_f64().is_some_and(|s| s > 0.0)
            && v1r["share"].as_f64().is_some_and(|s| s > 0.0)
    });

    // Driver failover: the first driver dies without a word; the master
    // sees its pid go (the framework disconnects, tasks stay); a second
    // driver process re-registers with the framework id within the
    // failover timeout and gets the framework with its running task.
    d1.send("crash");
    d1.event("crashing").await;
    wait_until("the framework disconnected", || {
        framework(&master, &fid).is_some_and(|f| f["active"] == false)
    });
    let mut d2 = Driver::start(&sched_bin, &[&master, &fid], &logs.join("driver2.log"));
    d2.wait("re-registration", |e| {
        e["event"] == "registered" || e["event"] == "reregistered"
    })
    .await;
    wait_until("the framework is back with t2", || {
        framework(&master, &fid).is_some_and(|f| {
            f["active"] == true
                && f["tasks"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["id"] == "t2"))
        })
    });
    d2.send(&format!("reconcile t2 {agent_id}"));
    d2.wait("t2 after failover", |e| {
        e["task_id"] == "t2" && e["state"] == "TASK_RUNNING"
    })
    .await;

    // Kill, then teardown (UnregisterFrameworkMessage).
    d2.send("kill t2");
    d2.status("t2", "TASK_KILLED").await;
    d2.send("stop");
    d2.event("stopped").await;
    wait_until("the framework is torn down", || {
        framework(&master, &fid).is_none()
            && get_json(&master, "/master/frameworks")["completed_frameworks"]
                .as_array()
                .is_some_and(|c| c.iter().any(|f| f["id"] == fid))
    });
    // The v1 framework is untouched.
    assert!(framework(&master, &v1.framework_id).is_some_and(|f| f["active"] == true));
    drop(d1);
    drop(d2);
}

/// A master only (no agent): what the libprocess endpoint refuses.
struct MasterOnly {
    child: Child,
    addr: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl MasterOnly {
    fn start() -> MasterOnly {
        Self::start_with(&[])
    }

    fn start_with(flags: &[&str]) -> MasterOnly {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("master.log");
        let child = Command::new(common::tepui_bin())
            .args([
                "master".to_string(),
                "--ip=127.0.0.1".into(),
                format!("--port={port}"),
                "--allocation_interval=100ms".into(),
            ])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_until("the master serves", || TcpStream::connect(&addr).is_ok());
        MasterOnly {
            child,
            addr,
            log,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn frameworks(&self) -> Vec<Value> {
        get_json(&self.addr, "/master/frameworks")["frameworks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for MasterOnly {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.dir.path();
    }
}

/// The status code of the next response on `s` (bodies are empty).
fn response_code(s: &mut TcpStream) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    s.read_exact(&mut body).ok()?;
    head.split(' ').nth(1)?.parse().ok()
}

/// libmesos's drivers keep one connection to a peer and take its close for
/// the peer's exit (an executor driver then shuts its executor down): a
/// connection that carries libprocess messages is not closed for idling,
/// where any other keep-alive connection is, after `--http_header_timeout`.
#[test]
fn a_libprocess_connection_is_not_closed_for_idling() {
    let m = MasterOnly::start_with(&["--http_header_timeout=1secs"]);
    let message = |s: &mut TcpStream| {
        s.write_all(
            b"POST /master/mesos.internal.ResourceRequestMessage HTTP/1.1\r\nHost: m\r\n\
              Libprocess-From: scheduler(1)@127.0.0.1:1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        response_code(s)
    };
    let mut linked = TcpStream::connect(&m.addr).unwrap();
    linked
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(message(&mut linked), Some(202));
    let mut other = TcpStream::connect(&m.addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: m\r\n\r\n")
        .unwrap();
    assert_eq!(response_code(&mut other), Some(200));
    std::thread::sleep(Duration::from_millis(2500));
    // The idle HTTP connection was closed; the libprocess one still serves.
    let _ = other.write_all(b"GET /health HTTP/1.1\r\nHost: m\r\n\r\n");
    assert_eq!(response_code(&mut other), None);
    assert_eq!(message(&mut linked), Some(202));
}

/// A message as libprocess's `MessageEncoder::encode`
/// (3rdparty/libprocess/src/encoder.hpp) writes it: both sender headers,
/// `Host` the receiver's address, the body in one chunk. Its status code.
fn libprocess_post(addr: &str, from: &str, to: &str, name: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /{to}/{name} HTTP/1.1\r\nUser-Agent: libprocess/{from}\r\n\
         Libprocess-From: {from}\r\nConnection: Keep-Alive\r\nHost: {addr}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&req).unwrap();
    response_code(&mut s).unwrap_or(0)
}

/// One POST: its status code.
fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn register_body(name: &str) -> Vec<u8> {
    v0::RegisterFrameworkMessage {
        framework: tepui_proto::v1::FrameworkInfo {
            user: "root".into(),
            name: name.into(),
            ..Default::default()
        },
    }
    .encode_to_vec()
}

/// A libprocess message received by a fake driver: (path, sender, body).
fn receive(listener: &TcpListener) -> (String, String, Vec<u8>) {
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let path = head.split(' ').nth(1).unwrap().to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let from = header("libprocess-from");
    let mut body = vec![0; header("content-length").parse().unwrap()];
    s.read_exact(&mut body).unwrap();
    s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    (path, from, body)
}

#[test]
fn the_libprocess_endpoint_refuses_what_libprocess_would() {
    let m = MasterOnly::start();
    let me = "scheduler(1)@127.0.0.1:1";
    let from = [("Libprocess-From", me)];
    // Unknown process, unknown message name: 404.
    assert_eq!(
        post(
            &m.addr,
            "/nosuch(1)/mesos.internal.RegisterFrameworkMessage",
            &from,
            &register_body("x")
        ),
        404
    );
    assert_eq!(
        post(&m.addr, "/master/mesos.internal.NoSuchMessage", &from, b""),
        404
    );
    // Not a libprocess message at all (no sender): no such HTTP route.
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &[],
            &register_body("x")
        ),
        404
    );
    // A body that does not decode: 400, nothing registered.
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &from,
            b"\xff\xff\xff"
        ),
        400
    );
    // A sender that does not parse: 400, nothing registered.
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &[("Libprocess-From", "not a pid")],
            &register_body("x")
        ),
        400
    );
    // A sender tepui cannot reach: accepted as libprocess does (202), but
    // not registered, and the log says why.
    let dead = free_port();
    let unreachable = format!("scheduler(1)@127.0.0.1:{dead}");
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &[("Libprocess-From", &unreachable)],
            &register_body("unreachable")
        ),
        202
    );
    wait_until("the log says why", || {
        m.log().contains("its pid cannot be reached")
    });
    assert!(m.frameworks().is_empty(), "{:?}", m.frameworks());
    // The legacy `User-Agent: libprocess/<pid>` form registers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pid = format!("scheduler(1)@{}", listener.local_addr().unwrap());
    let ua = format!("libprocess/{pid}");
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &[("User-Agent", &ua)],
            &register_body("legacy")
        ),
        202
    );
    let (path, sender, body) = receive(&listener);
    assert_eq!(
        path,
        "/scheduler(1)/mesos.internal.FrameworkRegisteredMessage"
    );
    assert_eq!(sender, format!("master@{}", m.addr));
    let reg = v0::FrameworkRegisteredMessage::decode(&body[..]).unwrap();
    assert_eq!(m.frameworks().len(), 1);
    assert_eq!(m.frameworks()[0]["id"], reg.framework_id.value);
}

/// With `--authenticate_frameworks` a libprocess driver would have to
/// authenticate with CRAM-MD5 over libprocess, which tepui does not speak:
/// it is refused with a FrameworkErrorMessage saying so, never let in
/// unauthenticated.
#[test]
fn libprocess_drivers_are_refused_when_frameworks_must_authenticate() {
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        creds.path(),
        r#"{"credentials": [{"principal": "fw", "secret": "s"}]}"#,
    )
    .unwrap();
    let m = MasterOnly::start_with(&[
        "--authenticate_frameworks",
        &format!("--credentials={}", creds.path().display()),
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pid = format!("scheduler(1)@{}", listener.local_addr().unwrap());
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.internal.RegisterFrameworkMessage",
            &[("Libprocess-From", &pid)],
            &register_body("needs-auth")
        ),
        202
    );
    let (path, _, body) = receive(&listener);
    assert_eq!(path, "/scheduler(1)/mesos.internal.FrameworkErrorMessage");
    let err = v0::FrameworkErrorMessage::decode(&body[..]).unwrap();
    assert!(err.message.contains("CRAM-MD5"), "{}", err.message);
    assert!(m.frameworks().is_empty());
}

/// Mesos 1.x's libmesos sends `mesos.scheduler.Call` to the master's pid
/// for everything (src/sched/sched.cpp: `doReliableRegistration` sends
/// SUBSCRIBE, with `force` when failing over; `stop()` TEARDOWN) and takes
/// the master's v0 messages back. This is that exchange, byte for byte as
/// sched.cpp composes it (no libmesos is installable here).
#[test]
fn the_mesos_1x_scheduler_call_path_over_libprocess() {
    let m = MasterOnly::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pid = format!("scheduler(1)@{}", listener.local_addr().unwrap());
    let info = tepui_proto::v1::FrameworkInfo {
        user: "root".into(),
        name: "libmesos-1x".into(),
        failover_timeout: Some(60.0),
        ..Default::default()
    };
    // The v0 `Call` sched.cpp sends: its `Subscribe` has `force` as field
    // 2 and `suppressed_roles` as field 3.
    let subscribe = |info: tepui_proto::v1::FrameworkInfo, force: Option<bool>| v0::SubscribeCall {
        r#type: Some(call::Type::Subscribe as i32),
        framework_id: info.id.clone(),
        subscribe: Some(v0::Subscribe {
            framework_info: info,
            force,
            suppressed_roles: Vec::new(),
        }),
    };
    // SUBSCRIBE exactly as libprocess encodes a message.
    assert_eq!(
        libprocess_post(
            &m.addr,
            &pid,
            "master",
            "mesos.scheduler.Call",
            &subscribe(info.clone(), None).encode_to_vec()
        ),
        202
    );
    let (path, sender, body) = receive(&listener);
    assert_eq!(
        path,
        "/scheduler(1)/mesos.internal.FrameworkRegisteredMessage"
    );
    assert_eq!(sender, format!("master@{}", m.addr));
    let reg = v0::FrameworkRegisteredMessage::decode(&body[..]).unwrap();
    let fid = reg.framework_id.clone();
    assert_eq!(
        reg.master_info.pid.as_deref(),
        Some(format!("master@{}", m.addr).as_str())
    );

    // A call from another pid for this framework is dropped.
    let teardown = Call {
        r#type: Some(call::Type::Teardown as i32),
        framework_id: Some(fid.clone()),
        ..Default::default()
    };
    let other = "scheduler(2)@127.0.0.1:1".to_string();
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.scheduler.Call",
            &[("Libprocess-From", &other)],
            &teardown.encode_to_vec()
        ),
        202
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(m.frameworks().len(), 1);

    // A failover (SUBSCRIBE with the id and `force`) from a new pid.
    let listener2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let pid2 = format!("scheduler(1)@{}", listener2.local_addr().unwrap());
    let mut again = info.clone();
    again.id = Some(fid.clone());
    let bytes = subscribe(again, Some(true)).encode_to_vec();
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.scheduler.Call",
            &[("Libprocess-From", &pid2)],
            &bytes
        ),
        202
    );
    let (path, _, body) = receive(&listener2);
    assert_eq!(
        path,
        "/scheduler(1)/mesos.internal.FrameworkRegisteredMessage"
    );
    assert_eq!(
        v0::FrameworkRegisteredMessage::decode(&body[..])
            .unwrap()
            .framework_id,
        fid
    );
    // The old driver is told (Mesos: `FrameworkErrorMessage` "Framework
    // failed over").
    let (path, _, body) = receive(&listener);
    assert_eq!(path, "/scheduler(1)/mesos.internal.FrameworkErrorMessage");
    let err = v0::FrameworkErrorMessage::decode(&body[..]).unwrap();
    assert!(err.message.contains("failed over"), "{}", err.message);

    // TEARDOWN from the current driver removes the framework.
    assert_eq!(
        post(
            &m.addr,
            "/master/mesos.scheduler.Call",
            &[("Libprocess-From", &pid2)],
            &teardown.encode_to_vec()
        ),
        202
    );
    wait_until("the framework is removed", || m.frameworks().is_empty());
}
