//! End-to-end checks of the `tepui` binary's command tree.

use std::process::Command;

fn tepui(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tepui"))
        .args(args)
        .output()
        .expect("tepui runs")
}

#[test]
fn help_lists_every_public_subcommand_and_hides_internal_ones() {
    let out = tepui(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "master",
        "agent",
        "dev",
        "ps",
        "exec",
        "attach",
        "logs",
        "kill",
        "inspect",
        "top",
        "run",
        "images",
        "pull",
        "completion",
    ] {
        assert!(
            help.contains(&format!("\n  {sub} ")),
            "{sub} missing from:\n{help}"
        );
    }
    for hidden in ["supervise", "executor"] {
        assert!(
            !help.contains(&format!("\n  {hidden} ")),
            "{hidden} shown in:\n{help}"
        );
    }
}

#[test]
fn bad_agent_flags_are_refused_with_the_flag_named() {
    let out = tepui(&["agent", "--executor_registration_timeout=soon"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--executor_registration_timeout"), "{err}");

    let out = tepui(&["agent", "--recover=sometimes"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad enum value is a usage error"
    );
}

#[test]
fn an_executor_outside_an_agent_says_what_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_tepui"))
        .args(["executor", "command"])
        .env_remove("MESOS_AGENT_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MESOS_AGENT_ENDPOINT"), "{err}");
}

#[test]
fn completion_scripts_are_generated() {
    let out = tepui(&["completion", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tepui"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = tepui(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn master_serves_http_until_killed() {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    /// Kills the master even when an assertion fails first.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_tepui"))
            .args(["master", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .env("MESOS_ALLOCATION_INTERVAL", "100ms")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tepui master starts"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let body = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "master never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(child);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"version\":\"1.11.0\""), "{body}");
}
