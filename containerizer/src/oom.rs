//! What a container's memory cgroup says about OOM kills and peak use, read
//! when its init process is reaped and before the cgroup is removed.
//! (Exit codes and `failcnt` are not reliable OOM signals: DESIGN.md §3.)

use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomInfo {
    pub oom_kills: u64,
    pub peak_memory_bytes: Option<u64>,
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Reads the OOM-kill counter and the peak memory of `cgroup` (a path
/// relative to the cgroup roots), on v1 or v2, whichever has it.
pub fn read(cgroup: &str) -> OomInfo {
    read_under(Path::new(CGROUP_ROOT), cgroup)
}

fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key)).then(|| parts.next()?.parse().ok())?
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn read_under(root: &Path, cgroup: &str) -> OomInfo {
    let rel = cgroup.trim_start_matches('/');
    let v1 = root.join("memory").join(rel);
    if v1.is_dir() {
        return OomInfo {
            oom_kills: std::fs::read_to_string(v1.join("memory.oom_control"))
                .ok()
                .and_then(|t| counter(&t, "oom_kill"))
                .unwrap_or(0),
            peak_memory_bytes: read_u64(&v1.join("memory.max_usage_in_bytes")),
        };
    }
    let v2 = root.join(rel);
    OomInfo {
        oom_kills: std::fs::read_to_string(v2.join("memory.events"))
            .ok()
            .and_then(|t| counter(&t, "oom_kill"))
            .unwrap_or(0),
        peak_memory_bytes: read_u64(&v2.join("memory.peak")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_v2_counters() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("memory/pod/c1");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(v1.join("memory.max_usage_in_bytes"), "33554432\n").unwrap();
        assert_eq!(
            read_under(root.path(), "/pod/c1"),
            OomInfo {
                oom_kills: 2,
                peak_memory_bytes: Some(33_554_432)
            }
        );
        let v2 = root.path().join("pod/c2");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(read_under(root.path(), "pod/c2").oom_kills, 1);
        assert_eq!(read_under(root.path(), "missing"), OomInfo::default());
    }
}
