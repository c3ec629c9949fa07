//! The CNI exec protocol (containernetworking/cni SPEC.md, "Section 3:
//! Execution Protocol"): the plugin is an executable found in the plugin
//! dirs by its `type`; parameters come in `CNI_*` environment variables,
//! the network config on stdin; the result (or an error object with
//! `code`, `msg`, `details`) on stdout. Every run is bounded by a timeout:
//! a hanging plugin (and whatever it started: it runs in its own process
//! group) is killed, and the launch fails naming it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// One plugin call.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// `ADD`, `DEL`, `CHECK` or `VERSION`.
    pub command: &'static str,
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// `--network_cni_plugins_dir`: one dir or several joined by `:`
    /// (Mesos's flag and `CNI_PATH` take the same form).
    pub plugin_path: &'a str,
    pub timeout: Duration,
}

/// Finds the plugin `kind` in the plugin dirs. Only those: never `$PATH`
/// (Mesos's `os::which(type, plugins_dir)` in `NetworkCniIsolatorProcess::
/// attach`).
pub fn find_plugin(plugin_path: &str, kind: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    plugin_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(kind))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs the plugin `kind` with `config` on stdin. `Ok` holds its stdout
/// as JSON (`Value::Null` when empty, as DEL answers); `Err` a message
/// with the plugin's own error when it gave one.
pub async fn run(kind: &str, config: &Value, call: &Invocation<'_>) -> Result<Value, String> {
    let plugin = find_plugin(call.plugin_path, kind)
        .ok_or_else(|| format!("not found in {}", call.plugin_path))?;
    let mut command = tokio::process::Command::new(&plugin);
    command
        .env_clear()
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", call.plugin_path)
        // Plugins that take `K=V` arguments refuse unknown ones unless
        // told to ignore them; tepui passes its own in the config's
        // `args` (as Mesos does), none here.
        .env("CNI_ARGS", "IgnoreUnknown=1")
        // Plugins run iptables and ip: they need a PATH (Mesos passes the
        // agent's, `NetworkCniIsolatorProcess::attach`).
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", plugin.display()))?;
    let group = child.id().map(|p| p as i32);
    let input = serde_json::to_vec(config).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let talk = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A plugin that exits without reading is judged by its exit.
            let _ = stdin.write_all(&input).await;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(call.timeout, talk).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("cannot run {}: {e}", plugin.display())),
        Err(_) => {
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(group),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(format!("timed out after {:?} (killed)", call.timeout));
        }
    };
    let stdout: Value = if output.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&output.stdout).into_owned()))
    };
    if output.status.success() {
        return match stdout {
            Value::String(text) => Err(format!("answered something not JSON: {text}")),
            other => Ok(other),
        };
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(plugin_error(&stdout, output.status, stderr.trim()))
}

/// The message of a failed run: the CNI error object's `msg` and
/// `details` (and `code`), else whatever the plugin printed.
fn plugin_error(stdout: &Value, status: std::process::ExitStatus, stderr: &str) -> String {
    let mut message = match stdout.get("msg").and_then(Value::as_str) {
        Some(msg) => {
            let mut m = msg.to_string();
            if let Some(details) = stdout.get("details").and_then(Value::as_str)
                && !details.is_empty()
            {
                m.push_str(&format!(" ({details})"));
            }
            if let Some(code) = stdout.get("code").and_then(Value::as_u64) {
                m.push_str(&format!(" [CNI error code {code}]"));
            }
            m
        }
        None => match stdout {
            Value::Null => format!("exited with {status}"),
            Value::String(s) => format!("exited with {status}: {}", s.trim()),
            other => format!("exited with {status}: {other}"),
        },
    };
    if !stderr.is_empty() {
        let tail: String = stderr
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        message.push_str(&format!("; stderr: {tail}"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call<'a>(dir: &'a str, timeout: Duration) -> Invocation<'a> {
        Invocation {
            command: "ADD",
            container_id: "c1",
            netns: Path::new("/run/x/ns"),
            ifname: "eth0",
            plugin_path: dir,
            timeout,
        }
    }

    #[tokio::test]
    async fn the_plugin_gets_the_protocol_environment_and_config_and_its_result_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "echoer",
            r#"in=$(cat); printf '{"cniVersion":"1.0.0","env":"%s %s %s %s %s","in":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_PATH" "$in""#,
        );
        let d = dir.path().to_str().unwrap();
        let out = run(
            "echoer",
            &serde_json::json!({"name": "n"}),
            &call(d, Duration::from_secs(5)),
        )
        .await
        .unwrap();
        assert_eq!(out["env"], format!("ADD c1 /run/x/ns eth0 {d}"));
        assert_eq!(out["in"]["name"], "n");
    }

    #[tokio::test]
    async fn errors_name_the_plugins_message_a_missing_plugin_and_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "fails",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":11,"msg":"no IP addresses available","details":"range full"}'; exit 1"#,
        );
        script(dir.path(), "hangs", "sleep 30 & sleep 30");
        let d = dir.path().to_str().unwrap();
        let err = run("fails", &Value::Null, &call(d, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(
            err.contains("no IP addresses available (range full) [CNI error code 11]"),
            "{err}"
        );
        let err = run("absent", &Value::Null, &call(d, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(err.contains("not found in"), "{err}");
        let started = std::time::Instant::now();
        let err = run("hangs", &Value::Null, &call(d, Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
