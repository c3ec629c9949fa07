//! A real `tepui master` and `tepui agent` for the operator-tool tests
//! (tests/mesos_cli.rs, tests/webui.rs), plain HTTP helpers to talk to
//! them, and the Mesos CLI from scripts/deps.sh (`install_mesos_cli`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where scripts/deps.sh (`install_mesos_cli`) puts the CLI.
pub fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mesos-cli/venv")
}

/// A master and an agent; on drop nothing of them is left.
pub struct Cluster {
    pub dir: PathBuf,
    pub cgroup_root: String,
    pub master: Child,
    pub agent: Option<Child>,
    pub master_addr: String,
    pub agent_addr: String,
    pub config: PathBuf,
}

impl Cluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        // One name per cluster: the tests of this file run in parallel.
        static CLUSTERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cgroup_root = format!("tepui-test-mesoscli-{}-{n}", std::process::id());
        let (master_port, agent_port) = (free_port(), free_port());
        let spawn = |args: Vec<String>, log: &str| {
            Command::new(super::tepui_bin())
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
                // Mesos's web UI reaches an agent at its `hostname`.
                "--hostname=127.0.0.1".into(),
                format!("--port={agent_port}"),
                format!("--work_dir={}", dir.join("agent/work").display()),
                format!("--runtime_dir={}", dir.join("agent/run").display()),
                format!("--cgroups_root={cgroup_root}"),
                "--resources=cpus:2;mem:2048;disk:1024".into(),
            ],
            "agent.log",
        );
        // The CLI's own config file format (avmesos/cli/config.py), found
        // through MESOS_CLI_CONFIG instead of ~/.mesos/config.toml.
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("[master]\naddress = \"127.0.0.1:{master_port}\"\n\n[agent]\ntimeout = 10\n"),
        )
        .unwrap();
        Cluster {
            dir,
            cgroup_root,
            master,
            agent: Some(agent),
            master_addr: format!("127.0.0.1:{master_port}"),
            agent_addr: format!("127.0.0.1:{agent_port}"),
            config,
        }
    }

    /// `mesos ARGS` with `stdin`: (exit code, stdout, stderr).
    pub fn mesos(&self, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
        let venv = venv();
        let bin = venv.join("bin");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(bin.join("mesos-cli"))
            .args(args)
            .env("PATH", path)
            .env("VIRTUAL_ENV", &venv)
            .env("MESOS_CLI_CONFIG", &self.config)
            .env("HOME", &self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `mesos ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.mesos(args, "");
        assert_eq!(
            code,
            Some(0),
            "mesos {args:?}: {err}{out}\nagent log:\n{}",
            self.log("agent.log")
        );
        out
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // After a failed assertion tasks may still run: tear their
        // frameworks down so that the agent ends their pods cleanly.
        let frameworks = std::panic::catch_unwind(|| {
            get_json(&self.master_addr, "/master/frameworks")["frameworks"].clone()
        });
        for f in frameworks
            .ok()
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let body = format!("frameworkId={}", f["id"].as_str().unwrap_or_default());
            let master = self.master_addr.clone();
            let _ =
                std::panic::catch_unwind(move || http(&master, "POST", "/master/teardown", &body));
        }
        if let Some(mut agent) = self.agent.take() {
            let run = self.dir.join("agent/run");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline
                && super::processes_mentioning(&run.to_string_lossy())
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
        super::kill_leftovers(&self.dir, &self.cgroup_root);
        for cgroup in super::cgroups_named(&self.cgroup_root).iter().rev() {
            let _ = std::fs::remove_dir(cgroup);
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("leaving {}: {e}", self.dir.display());
        }
    }
}

/// One plain HTTP/1.1 exchange: (status, content type, body).
pub fn http(addr: &str, method: &str, target: &str, body: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, header("content-type"), body)
}

pub fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

pub fn get_json(addr: &str, target: &str) -> Value {
    let (status, kind, body) = http(addr, "GET", target, "");
    assert_eq!(status, 200, "GET {target}: {body}");
    assert!(kind.starts_with("application/json"), "GET {target}: {kind}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {target}: {e}: {body}"))
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A default-executor task group: a long-running task to exec into, and a
/// second one that stays up too.
pub fn group() -> Value {
    let task = |name: &str| {
        json!({"name": name, "task_id": {"value": format!("{name}-task")},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "labels": {"labels": [{"key": "journey", "value": "mesos-cli"}]},
            "command": {"value": "while true; do sleep 0.2; done"}})
    };
    json!({"tasks": [task("web"), task("db")]})
}

/// Every table row of `mesos ... list` output whose first column is `id`.
pub fn row<'a>(table: &'a str, id: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
}
