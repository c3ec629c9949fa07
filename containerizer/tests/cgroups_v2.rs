//! Root integration tests on this host's real cgroup2 mount. On a hybrid
//! host (like the v1 CI machine) the unified mount holds no cpu/memory
//! controllers, so only the structural operations run there: create, move a
//! process in, list, `cgroup.kill`, destroy. On a pure v2 host limits and
//! statistics are checked too. Without root or without a cgroup2 mount the
//! test prints why and passes, except under `CI=true`.

// Helpers outside #[test] fns panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use tepui_containerizer::cgroups::{self, CgroupMode, CgroupMounts, Cgroups, CgroupsV2, Limits};

const MIB: u64 = 1024 * 1024;

fn v2() -> Option<CgroupsV2> {
    let skip = |why: String| {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("cannot run cgroup v2 integration test: {why} (CI=true, not skipping)");
        }
        // Straight to fd 2: the test harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED cgroup v2 integration test: {why}"
        );
        None
    };
    if !nix::unistd::geteuid().is_root() {
        return skip("needs root to create cgroups".into());
    }
    let mounts = match CgroupMounts::from_mountinfo(Path::new(cgroups::PROC_SELF_MOUNTINFO)) {
        Ok(m) => m,
        Err(e) => return skip(e.to_string()),
    };
    match mounts.unified {
        Some(root) => Some(CgroupsV2::new(root)),
        None => skip("no cgroup2 mount".into()),
    }
}

#[test]
fn structure_kill_and_destroy_on_the_unified_mount() {
    let Some(cg) = v2() else { return };
    let full = cg.check_controllers().is_ok();
    eprintln!(
        "cgroup2 at {} ({})",
        cg.root().display(),
        if full {
            "cpu+memory available"
        } else {
            "no cpu/memory: structural checks only"
        }
    );
    let name = format!("tepui-test-{}-v2", std::process::id());
    let pod = format!("{name}/pod");
    let c = format!("{pod}/c");
    let _ = cg.kill_all(&name);
    cg.destroy(&name).unwrap();

    cg.create(&c).unwrap();
    assert!(cg.exists(&c));
    assert_eq!(cg.mode(), CgroupMode::V2);

    if full {
        let limits = Limits::from_mesos(Some(1.0), Some(64.0), Some(2.0), Some(256.0));
        let values = cg.apply(&c, &limits).unwrap();
        assert_eq!(
            cg.read_controls(&c).unwrap(),
            values.as_read_back(CgroupMode::V2)
        );
        let back = cg.read_controls(&c).unwrap();
        assert_eq!(back.cpu_weight, Some(100));
        assert_eq!(back.memory_max, Some(256 * MIB));
        assert_eq!(back.memory_soft, Some(64 * MIB));
    }

    let mut child = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_process(&c, pid).unwrap();
    let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(line.lines().any(|l| l == format!("0::/{c}")), "{line}");
    assert_eq!(cg.processes(&pod).unwrap(), vec![pid]);

    if full {
        let s = cg.stats(&c).unwrap();
        assert_eq!(s.processes, Some(1));
        assert_eq!(s.mem_limit_bytes, Some(256 * MIB));
        assert_eq!(cg.oom_kill_count(&c).unwrap(), Some(0));
    }

    let start = Instant::now();
    cg.kill_all(&pod).unwrap();
    eprintln!("kill_all took {:?}", start.elapsed());
    assert!(cg.processes(&pod).unwrap().is_empty());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));

    cg.destroy(&name).unwrap();
    assert!(!cg.root().join(&name).exists());
    cg.destroy(&name).unwrap();
}
