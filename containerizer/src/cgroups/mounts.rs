//! Where the cgroup hierarchies are mounted, from `/proc/self/mountinfo`,
//! and which cgroup version to drive.
//!
//! Decision rule: if a v1 hierarchy carries `cpu` or `memory`, the host is v1
//! ("legacy", or "hybrid" where the cgroup2 mount exists but holds no useful
//! controller, since a controller can be bound to only one hierarchy). Else a
//! cgroup2 mount means v2. This needs no file reads, so it is exact on a
//! sample mountinfo. An explicit `CgroupMode` (the agent flag) overrides it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::CgroupError;

pub const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    V1,
    V2,
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
        })
    }
}

impl FromStr for CgroupMode {
    type Err = String;

    /// Accepts `v1`/`1`/`legacy` and `v2`/`2`/`unified` (flag values).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" | "legacy" => Ok(CgroupMode::V1),
            "v2" | "2" | "unified" => Ok(CgroupMode::V2),
            other => Err(format!("unknown cgroup mode {other:?} (expected v1 or v2)")),
        }
    }
}

/// The cgroup mounts of this mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// v1 controller name (`cpu`, `memory`, `name=systemd`...) -> mount point.
    /// Co-mounted controllers (`cpu,cpuacct`) map to the same mount point.
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 (unified) mount point, if any.
    pub unified: Option<PathBuf>,
}

impl CgroupMounts {
    /// Reads and parses a mountinfo file (`/proc/self/mountinfo` in
    /// production, a sample in tests).
    pub fn from_mountinfo(path: &Path) -> Result<Self, CgroupError> {
        let text = std::fs::read_to_string(path).map_err(|e| CgroupError::Detect {
            file: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self::parse(&text))
    }

    /// Parses mountinfo text (see proc(5)): `id parent maj:min root
    /// mountpoint options [optional fields...] - fstype source superoptions`.
    /// Unparsable lines are skipped. When a hierarchy is mounted twice (bind
    /// mounts, container runtimes), the mount of its root (`root` field `/`)
    /// is preferred, then the first one.
    pub fn parse(text: &str) -> Self {
        let mut mounts = CgroupMounts::default();
        let mut v1_is_full: BTreeMap<String, bool> = BTreeMap::new();
        let mut unified_is_full = false;
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(mount_point), Some(fstype)) =
                (left.get(3), left.get(4), right.first())
            else {
                continue;
            };
            let full = *root == "/";
            let mount_point = PathBuf::from(unescape(mount_point));
            match *fstype {
                "cgroup2" if mounts.unified.is_none() || (full && !unified_is_full) => {
                    mounts.unified = Some(mount_point);
                    unified_is_full = full;
                }
                "cgroup" => {
                    let super_options = right.get(2).copied().unwrap_or("");
                    for controller in super_options.split(',').filter(|o| is_controller(o)) {
                        let better = match v1_is_full.get(controller) {
                            None => true,
                            Some(was_full) => full && !was_full,
                        };
                        if better {
                            mounts.v1.insert(controller.to_owned(), mount_point.clone());
                            v1_is_full.insert(controller.to_owned(), full);
                        }
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// The mode this host should run in, or an error naming what is missing.
    pub fn detect_mode(&self) -> Option<CgroupMode> {
        if self.v1.contains_key("cpu") || self.v1.contains_key("memory") {
            Some(CgroupMode::V1)
        } else if self.unified.is_some() {
            Some(CgroupMode::V2)
        } else {
            None
        }
    }

    /// `detect_mode` unless `forced` is given; errors if the chosen mode has
    /// no mounts at all.
    pub fn choose_mode(
        &self,
        forced: Option<CgroupMode>,
        source: &Path,
    ) -> Result<CgroupMode, CgroupError> {
        let mode = match forced {
            Some(mode) => mode,
            None => self.detect_mode().ok_or_else(|| CgroupError::Detect {
                file: source.to_owned(),
                reason: "no cgroup v1 cpu/memory hierarchy and no cgroup2 mount".into(),
            })?,
        };
        let present = match mode {
            CgroupMode::V1 => !self.v1.is_empty(),
            CgroupMode::V2 => self.unified.is_some(),
        };
        if present {
            Ok(mode)
        } else {
            Err(CgroupError::Detect {
                file: source.to_owned(),
                reason: format!("cgroup {mode} requested but no {mode} hierarchy is mounted"),
            })
        }
    }
}

/// v1 super options mix mount flags (`rw`, `relatime`...) with controller
/// names; flags are filtered out. Named hierarchies (`name=systemd`) are kept
/// under their full name since they hold no resources but still hold cgroups.
fn is_controller(option: &str) -> bool {
    const FLAGS: &[&str] = &[
        "rw",
        "ro",
        "relatime",
        "noatime",
        "nosuid",
        "nodev",
        "noexec",
        "clone_children",
        "noprefix",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
    ];
    !option.is_empty() && !FLAGS.contains(&option) && !option.starts_with("release_agent=")
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(oct) = bytes.get(i + 1..i + 4)
            && let Ok(oct) = std::str::from_utf8(oct)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout (Debian-style hybrid, separate cpu and cpuacct).
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// systemd hybrid with co-mounted cpu,cpuacct and optional fields.
    const SYSTEMD_HYBRID: &str = "\
25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
";

    const PURE_V2: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_is_v1() {
        let m = CgroupMounts::parse(HYBRID);
        assert_eq!(m.detect_mode(), Some(CgroupMode::V1));
        assert_eq!(m.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m.v1["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpuacct"));
        assert_eq!(m.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m.v1["freezer"], PathBuf::from("/sys/fs/cgroup/freezer"));
        assert_eq!(m.v1["pids"], PathBuf::from("/sys/fs/cgroup/pids"));
        assert!(m.v1.contains_key("name=systemd"));
        assert!(!m.v1.contains_key("rw"));
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        // The flag can still force v2 (it is mounted), not v1 on pure v2.
        let src = Path::new("sample");
        assert_eq!(
            m.choose_mode(Some(CgroupMode::V2), src).unwrap(),
            CgroupMode::V2
        );
    }

    #[test]
    fn systemd_hybrid_co_mounted() {
        let m = CgroupMounts::parse(SYSTEMD_HYBRID);
        assert_eq!(m.detect_mode(), Some(CgroupMode::V1));
        assert_eq!(m.v1["cpu"], m.v1["cpuacct"]);
        assert_eq!(m.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(!m.v1.contains_key("xattr"));
    }

    #[test]
    fn pure_v2() {
        let m = CgroupMounts::parse(PURE_V2);
        assert_eq!(m.detect_mode(), Some(CgroupMode::V2));
        assert!(m.v1.is_empty());
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup")));
        let src = Path::new("sample");
        assert!(m.choose_mode(Some(CgroupMode::V1), src).is_err());
        assert_eq!(m.choose_mode(None, src).unwrap(), CgroupMode::V2);
    }

    #[test]
    fn nothing_mounted() {
        let m = CgroupMounts::parse("22 1 259:2 / / rw - ext4 /dev/root rw\ngarbage\n");
        assert_eq!(m.detect_mode(), None);
        assert!(m.choose_mode(None, Path::new("x")).is_err());
    }

    #[test]
    fn prefers_full_mounts_and_unescapes() {
        let text = "\
50 1 0:40 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw
51 1 0:40 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw
";
        let m = CgroupMounts::parse(text);
        assert_eq!(m.unified, Some(PathBuf::from("/mnt/my cgroups")));
    }

    #[test]
    fn mode_from_str() {
        assert_eq!("v1".parse::<CgroupMode>().unwrap(), CgroupMode::V1);
        assert_eq!("V2".parse::<CgroupMode>().unwrap(), CgroupMode::V2);
        assert!("v3".parse::<CgroupMode>().is_err());
        assert_eq!(CgroupMode::V2.to_string(), "v2");
    }

    #[test]
    fn reads_this_hosts_mountinfo() {
        // Whatever this host is, parsing its mountinfo must not fail.
        let m = CgroupMounts::from_mountinfo(Path::new(PROC_SELF_MOUNTINFO)).unwrap();
        assert!(m.detect_mode().is_some());
    }
}
