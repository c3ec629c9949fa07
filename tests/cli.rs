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
        "status",
        "agents",
        "frameworks",
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

/// `tepui ARGS` with nothing from the environment or a config file.
fn tepui_clean(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tepui"))
        .args(args)
        .env_remove("TEPUI_AGENT")
        .env_remove("TEPUI_MASTER")
        .env("TEPUI_CONFIG", "/dev/null")
        .output()
        .expect("tepui runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback address nothing listens on.
fn closed_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("its address").to_string();
    drop(listener);
    address
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let nowhere = closed_address();
    // Refused before anything runs: exit 2.
    for args in [
        vec!["top", "--interval", "0"],
        vec!["top", "--interval", "-1"],
        vec!["kill", "--signal", "NOSUCH", "t"],
        vec!["run"],
        vec!["images", "pull", "--master", &nowhere, "busybox"],
        vec!["images", "prune", "--master", &nowhere],
    ] {
        let (code, err) = tepui_clean(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
    // Signal names are taken: the call gets as far as the (absent) agent.
    for signal in ["HUP", "SIGHUP", "term", "15"] {
        let (code, err) = tepui_clean(&["kill", "--signal", signal, "--agent", &nowhere, "t"]);
        assert_eq!(code, Some(1), "{signal}: {err}");
        assert!(err.contains("cannot reach the agent"), "{signal}: {err}");
    }
    // Each cause is said once.
    let (code, err) = tepui_clean(&["ps", "--agent", &nowhere]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    // The cluster verbs need a master that answers.
    for verb in ["status", "agents", "frameworks"] {
        let (code, err) = tepui_clean(&[verb, "--master", &nowhere]);
        assert_eq!(code, Some(1), "{verb}: {err}");
        assert!(err.contains(&nowhere), "{verb}: {err}");
    }
}

#[test]
fn a_config_file_named_by_tepui_config_must_exist() {
    let out = Command::new(env!("CARGO_BIN_EXE_tepui"))
        .args(["ps"])
        .env_remove("TEPUI_AGENT")
        .env("TEPUI_CONFIG", "/nonexistent/tepui.toml")
        .output()
        .expect("tepui runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/tepui.toml"), "{err}");
}
