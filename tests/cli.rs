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
fn unbuilt_subcommands_say_so_and_exit_non_zero() {
    for args in [
        &["master"][..],
        &["exec", "-it", "task", "--", "sh"][..],
        &["logs", "task"][..],
    ] {
        let out = tepui(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not built yet"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
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
