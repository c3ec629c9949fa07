//! Shared helpers of the end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod fake_master;
pub mod json_scheduler;
pub mod mesos_cluster;
pub mod pty;

use std::path::{Path, PathBuf};

/// Root-only tests call this first: without root they print why and pass,
/// except under `CI=true`, where skipping would hide a broken suite.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root (real cgroups and namespaces), and CI=true forbids skipping");
    }
    eprintln!("skipping {test}: needs root (real cgroups and namespaces)");
    false
}

pub fn tepui_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tepui"))
}

/// Every cgroup directory (any controller) whose path contains `needle`.
pub fn cgroups_named(needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    fn walk(dir: &Path, needle: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if path.to_string_lossy().contains(needle) {
                    found.push(path.clone());
                }
                walk(&path, needle, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), needle, 0, &mut found);
    found
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push((pid, text));
        }
    }
    found
}

/// Mount points (in this mount namespace) under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().to_string();
    table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// `target/oci-testenv/env.json` from `scripts/oci-testenv.sh up`, when its
/// registries answer. Without it a test prints how to start it and passes,
/// except under CI=true, where it fails.
pub fn oci_testenv(test: &str) -> Option<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oci-testenv/env.json");
    let json: Option<serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let running = json.as_ref().is_some_and(|j| {
        let host = j["registries"]["plain"]["host"].as_str().unwrap_or("");
        std::net::TcpStream::connect(host).is_ok()
    });
    if running {
        return json;
    }
    let msg = format!(
        "{test}: the OCI test registries are not running; start them with `bash scripts/oci-testenv.sh --dir target/oci-testenv up`"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true forbids skipping)");
    }
    eprintln!("skipping {msg}");
    None
}

/// Test teardown after a failure: SIGKILLs every process whose command line
/// mentions `dir` and every process in a cgroup named `cgroup_root`, then
/// removes those cgroups (leaf first) and detaches the mounts under `dir`.
pub fn kill_leftovers(dir: &Path, cgroup_root: &str) {
    for (pid, _) in processes_mentioning(&dir.to_string_lossy()) {
        // SAFETY: signalling a pid just read from /proc.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    for cgroup in cgroups_named(cgroup_root) {
        if let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for cgroup in cgroups_named(cgroup_root).iter().rev() {
        let _ = std::fs::remove_dir(cgroup);
    }
    // What the agent would have unmounted had its pods been removed (image
    // rootfses, each pod's shared image dir): deepest first, detached.
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in mounts {
        let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Whether a `sleep 1000` runs in this test's cgroups (other tests on the
/// machine may run their own).
pub fn sleeping_in(cgroup_root: &str) -> bool {
    cgroups_named(cgroup_root).iter().any(|cgroup| {
        std::fs::read_to_string(cgroup.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .any(|pid| {
                std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
                    .is_ok_and(|c| c.starts_with(b"sleep\x001000"))
            })
    })
}
