//! A caller on another host (issue 16): without credentials it may read the
//! agent, as Mesos's web UI does from a browser, but not control containers
//! or speak for executors, because it may be a task on another agent. The
//! "other host" is a network namespace joined to this one by a veth pair
//! the test makes (private addresses on that pair only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};

use common::mesos_cluster::{free_port, wait_until};
use serde_json::json;

/// A network namespace with one end of a veth pair; removed on drop.
struct OtherHost {
    netns: String,
    host_if: String,
    host_ip: String,
}

impl OtherHost {
    fn new() -> Self {
        let n = std::process::id() % 200 + 20;
        let netns = format!("tpremote{}", std::process::id());
        let host_if = format!("tprh{}", std::process::id() % 100_000);
        let peer_if = format!("tprp{}", std::process::id() % 100_000);
        let host_ip = format!("10.93.{n}.1");
        let peer_ip = format!("10.93.{n}.2");
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &netns]);
        let other = OtherHost {
            netns: netns.clone(),
            host_if: host_if.clone(),
            host_ip: host_ip.clone(),
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
        ]);
        ip(&["link", "set", &peer_if, "netns", &netns]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{peer_ip}/30"),
            "dev",
            &peer_if,
        ]);
        ip(&["-n", &netns, "link", "set", &peer_if, "up"]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        other
    }

    /// `method target body` against `addr` from inside the other host:
    /// (status, body).
    fn call(&self, addr: &str, method: &str, target: &str, body: &str) -> (u16, String) {
        call_from(Some(&self.netns), addr, method, target, body)
    }
}

/// `method target body` (JSON) against `addr`, from inside `netns` or from
/// this host: (status, body).
fn call_from(
    netns: Option<&str>,
    addr: &str,
    method: &str,
    target: &str,
    body: &str,
) -> (u16, String) {
    {
        let script = r#"
import sys, urllib.request, urllib.error
addr, method, target, body = sys.argv[1:5]
req = urllib.request.Request("http://" + addr + target, method=method,
    data=body.encode() if body else None,
    headers={"Content-Type": "application/json", "Accept": "application/json"})
try:
    r = urllib.request.urlopen(req, timeout=10)
    print(r.status); print(r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode(errors="replace"))
"#;
        let mut command = match netns {
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", netns, "python3"]);
                c
            }
            None => Command::new("python3"),
        };
        let out = command
            .args(["-c", script])
            .args([addr, method, target, body])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
        (
            status.trim().parse().unwrap_or_else(|_| {
                panic!("{target}: {text} {}", String::from_utf8_lossy(&out.stderr))
            }),
            rest.to_string(),
        )
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

fn agent(port: u16, dir: &std::path::Path, cgroups_root: &str, trust: bool) -> Child {
    let mut args = vec![
        "agent".to_string(),
        // No master: the operator API serves without one.
        format!("--master=127.0.0.1:{}", free_port()),
        "--ip=0.0.0.0".into(),
        format!("--port={port}"),
        format!("--work_dir={}", dir.join("work").display()),
        format!("--runtime_dir={}", dir.join("run").display()),
        format!("--cgroups_root={cgroups_root}"),
        "--resources=cpus:2;mem:1024;disk:1024".into(),
    ];
    if trust {
        args.push("--trust_remote_operators".into());
    }
    Command::new(common::tepui_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
        .spawn()
        .unwrap()
}

/// GET_CONTAINERS listing standalone containers too.
const STANDALONE: &str = r#"{"type":"GET_CONTAINERS","get_containers":{"show_standalone":true}}"#;

fn launch(id: &str) -> String {
    json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": id},
        "command": {"value": "sleep 300"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}})
    .to_string()
}

fn container_call(kind: &str, field: &str, id: &str) -> String {
    json!({"type": kind, field: {"container_id": {"value": id}}}).to_string()
}

#[test]
fn a_caller_on_another_host_reads_but_controls_nothing_without_credentials() {
    let test = "a_caller_on_another_host_reads_but_controls_nothing_without_credentials";
    if !common::require_root(test) {
        return;
    }
    let other = OtherHost::new();
    let dir = tempfile::tempdir().unwrap().keep();
    let cgroups_root = format!("tepui-test-remote-{}", std::process::id());
    let _cleanup = Cleanup(dir.clone(), cgroups_root.clone());
    let port = free_port();
    let local = format!("127.0.0.1:{port}");
    let remote = format!("{}:{port}", other.host_ip);
    let mut daemon = agent(port, &dir, &cgroups_root, false);
    wait_until("the agent to serve", || {
        std::net::TcpStream::connect(&local).is_ok()
    });

    // The host's operator starts a container (a stand-in for a tenant's).
    let (status, body) = call_from(None, &local, "POST", "/api/v1", &launch("victim"));
    assert_eq!(status, 200, "{body}");

    // From the other host: reading works, as Mesos's web UI needs.
    let (status, body) = other.call(&remote, "GET", "/state", "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = other.call(&remote, "POST", "/api/v1", STANDALONE);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("victim"), "{body}");

    // Control is refused, saying why and what to do.
    for (what, call) in [
        (
            "KILL_CONTAINER",
            container_call("KILL_CONTAINER", "kill_container", "victim"),
        ),
        (
            "REMOVE_CONTAINER",
            container_call("REMOVE_CONTAINER", "remove_container", "victim"),
        ),
        (
            "LAUNCH_NESTED_CONTAINER_SESSION",
            json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION", "launch_nested_container_session": {
                "container_id": {"value": "shell", "parent": {"value": "victim"}},
                "command": {"value": "id"}}})
            .to_string(),
        ),
        ("LAUNCH_CONTAINER", launch("intruder")),
        (
            "SET_LOGGING_LEVEL",
            json!({"type": "SET_LOGGING_LEVEL", "set_logging_level": {"level": 3, "duration": {"nanoseconds": 1_000_000_000u64}}}).to_string(),
        ),
    ] {
        let (status, body) = other.call(&remote, "POST", "/api/v1", &call);
        assert_eq!(status, 403, "{what}: {body}");
        assert!(body.contains("another host"), "{what}: {body}");
    }
    // Nor may it speak for an executor, or pull images.
    let forged = json!({"type": "UPDATE",
        "framework_id": {"value": "fw"}, "executor_id": {"value": "ex"},
        "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_FINISHED",
                              "source": "SOURCE_EXECUTOR", "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="}}})
    .to_string();
    let (status, body) = other.call(&remote, "POST", "/api/v1/executor", &forged);
    assert_eq!(status, 403, "{body}");
    let (status, body) = other.call(
        &remote,
        "POST",
        "/tepui/v1/images/pull",
        r#"{"reference":"127.0.0.1:1/x:y"}"#,
    );
    assert_eq!(status, 403, "{body}");

    // The victim runs on.
    let (status, containers) = call_from(None, &local, "POST", "/api/v1", STANDALONE);
    assert_eq!(status, 200, "{containers}");
    assert!(containers.contains("victim"), "{containers}");

    // With --trust_remote_operators the same caller is an operator, as in Mesos.
    let (status, body) = call_from(
        None,
        &local,
        "POST",
        "/api/v1",
        &container_call("KILL_CONTAINER", "kill_container", "victim"),
    );
    assert_eq!(status, 200, "{body}");
    for call in [
        container_call("WAIT_CONTAINER", "wait_container", "victim"),
        container_call("REMOVE_CONTAINER", "remove_container", "victim"),
    ] {
        let (status, body) = call_from(None, &local, "POST", "/api/v1", &call);
        assert_eq!(status, 200, "{body}");
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let mut daemon = agent(port, &dir, &cgroups_root, true);
    wait_until("the trusting agent to serve", || {
        std::net::TcpStream::connect(&local).is_ok()
    });
    let (status, body) = other.call(&remote, "POST", "/api/v1", &launch("trusted"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = other.call(
        &remote,
        "POST",
        "/api/v1",
        &container_call("KILL_CONTAINER", "kill_container", "trusted"),
    );
    assert_eq!(status, 200, "{body}");
    for call in [
        container_call("WAIT_CONTAINER", "wait_container", "trusted"),
        container_call("REMOVE_CONTAINER", "remove_container", "trusted"),
    ] {
        let (status, body) = call_from(None, &local, "POST", "/api/v1", &call);
        assert_eq!(status, 200, "{body}");
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Whatever the test left when it ends, even by a failed assertion.
struct Cleanup(std::path::PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        common::kill_leftovers(&self.0, &self.1);
        let _ = tepui_containerizer::safe_remove::remove_tree(&self.0);
    }
}
