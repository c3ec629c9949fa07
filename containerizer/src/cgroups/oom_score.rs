//! OOM score adjustment for burstable containers (Mesos's rule, applied on
//! v1 and v2; upstream Mesos forgot it on v2).

use std::io;
use std::path::{Path, PathBuf};

use super::error::CgroupError;

pub const PROC_MEMINFO: &str = "/proc/meminfo";

/// `1000 - 1000 * request_bytes / host_total_bytes`, clamped to
/// `[-1000, 1000]`, integer arithmetic like Mesos's `calculateOOMScoreAdj`.
///
/// The kernel's OOM score is roughly 10 x the percentage of memory a process
/// uses plus `oom_score_adj`; with this adjustment a container using more
/// than its request scores about 1000, so burstable containers that exceed
/// their request are killed first under host memory pressure.
///
/// **When to use it** (the caller decides; DESIGN.md section 3): only when the
/// memory request is below the memory limit, and only for command tasks and
/// nested (task) containers. Executors, debug containers and containers whose
/// request equals their limit keep the default (0). A zero `host_total_bytes`
/// (unknown) gives 0, the kernel default.
pub fn oom_score_adj(request_bytes: u64, host_total_bytes: u64) -> i32 {
    if host_total_bytes == 0 {
        return 0;
    }
    let used_permille = (1000u128 * u128::from(request_bytes)) / u128::from(host_total_bytes);
    let adj = 1000i128 - i128::try_from(used_permille).unwrap_or(i128::MAX);
    adj.clamp(-1000, 1000) as i32
}

/// `MemTotal` from a meminfo file (`/proc/meminfo`), in bytes.
pub fn host_total_memory_bytes(meminfo: &Path) -> Result<u64, CgroupError> {
    let text =
        std::fs::read_to_string(meminfo).map_err(|e| CgroupError::io("-", meminfo, "read", e))?;
    parse_mem_total(&text)
        .ok_or_else(|| CgroupError::parse("-", meminfo, &text, "no 'MemTotal: N kB' line"))
}

fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

/// `<proc_root>/<pid>/oom_score_adj` (`proc_root` is `/proc`, or a temp dir
/// in tests).
pub fn oom_score_adj_path(proc_root: &Path, pid: i32) -> PathBuf {
    proc_root.join(pid.to_string()).join("oom_score_adj")
}

/// Writes `value` to the process's `oom_score_adj`. See `oom_score_adj` for
/// when to call this. Writing a negative value needs CAP_SYS_RESOURCE.
pub fn write_oom_score_adj(proc_root: &Path, pid: i32, value: i32) -> Result<(), CgroupError> {
    let path = oom_score_adj_path(proc_root, pid);
    let value = value.clamp(-1000, 1000);
    // /proc files exist or the process is gone: never create one.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| io::Write::write_all(&mut f, value.to_string().as_bytes()))
        .map_err(|e| CgroupError::io(&format!("pid {pid}"), &path, "write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn formula() {
        // request 512 MiB (limit 4096 MiB, so the rule applies) on a 16 GiB host.
        let total = 16 * 1024 * MIB;
        assert_eq!(
            oom_score_adj(512 * MIB, total),
            1000 - (1000 * 512 * MIB / total) as i32
        );
        assert_eq!(oom_score_adj(512 * MIB, total), 969);
        assert_eq!(oom_score_adj(0, total), 1000);
        assert_eq!(oom_score_adj(total, total), 0);
        assert_eq!(oom_score_adj(2 * total, total), -1000);
        assert_eq!(oom_score_adj(10 * total, total), -1000);
        assert_eq!(oom_score_adj(u64::MAX, 1), -1000);
        assert_eq!(oom_score_adj(1, 0), 0);
    }

    #[test]
    fn this_hosts_memtotal() {
        let total = host_total_memory_bytes(Path::new(PROC_MEMINFO)).unwrap();
        assert!(total > 64 * MIB, "{total}");
        let adj = oom_score_adj(512 * MIB, total);
        let expected = 1000 - ((1000 * u128::from(512 * MIB)) / u128::from(total)) as i32;
        assert_eq!(adj, expected.max(-1000));
        assert!(adj <= 1000);
    }

    #[test]
    fn meminfo_parsing() {
        assert_eq!(
            parse_mem_total("MemTotal:       24684208 kB\nMemFree: 1 kB\n"),
            Some(24_684_208 * 1024)
        );
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total("MemTotal: lots kB\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("meminfo");
        std::fs::write(&bad, "nothing").unwrap();
        assert!(host_total_memory_bytes(&bad).is_err());
    }

    #[test]
    fn writes_into_fake_proc() {
        let proc_root = tempfile::tempdir().unwrap();
        std::fs::create_dir(proc_root.path().join("4242")).unwrap();
        std::fs::write(proc_root.path().join("4242/oom_score_adj"), "0\n").unwrap();
        write_oom_score_adj(proc_root.path(), 4242, 969).unwrap();
        assert_eq!(
            std::fs::read_to_string(oom_score_adj_path(proc_root.path(), 4242)).unwrap(),
            "969"
        );
        // A gone process is an error naming the file.
        let err = write_oom_score_adj(proc_root.path(), 7, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("7/oom_score_adj"), "{err}");
    }
}
