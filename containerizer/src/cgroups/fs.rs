//! File-level helpers shared by the v1 and v2 backends: read/write control
//! files with errors that name the cgroup and the file, parse the few file
//! formats cgroupfs uses, walk a cgroup subtree, and remove directories.
//!
//! Everything here works on a real cgroupfs and on a fake one (plain files in
//! a temp dir), which is what lets the backends be unit-tested without root.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::error::CgroupError;

/// Checks that `cgroup` is a relative path below a cgroup root and returns it
/// without leading/trailing slashes. A leading `/` is accepted because OCI's
/// `linux.cgroupsPath` is written that way; `..`, `.` and empty components are
/// refused so that no caller can reach outside the root (or the root itself).
pub(crate) fn validate(cgroup: &str) -> Result<&str, CgroupError> {
    let rel = cgroup.trim_matches('/');
    let invalid = |reason| CgroupError::InvalidPath {
        cgroup: cgroup.to_owned(),
        reason,
    };
    if rel.is_empty() {
        return Err(invalid("the cgroup root itself cannot be managed"));
    }
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(invalid(
                "empty, '.' or '..' path components are not allowed",
            ));
        }
    }
    // Belt and braces: Path parsing agrees there is nothing but names.
    if !Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(invalid("only plain path components are allowed"));
    }
    Ok(rel)
}

/// The controller a control file belongs to, from its name (`memory.max` ->
/// `memory`, `cgroup.procs` -> `cgroup`), for "missing file" messages.
fn controller_of(file: &Path) -> String {
    file.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or("?")
        .to_owned()
}

pub(crate) fn read(cgroup: &str, file: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(file).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            missing(cgroup, file, "read", e)
        } else {
            CgroupError::io(cgroup, file, "read", e)
        }
    })
}

/// A control file that is not there: `MissingFile` when its cgroup exists
/// (controller absent), else the plain I/O error (the cgroup itself is gone
/// or was never created), so that the hint in the message is not misleading.
fn missing(cgroup: &str, file: &Path, action: &'static str, e: io::Error) -> CgroupError {
    if file.parent().is_some_and(Path::is_dir) {
        CgroupError::MissingFile {
            cgroup: cgroup.to_owned(),
            file: file.to_owned(),
            controller: controller_of(file),
        }
    } else {
        CgroupError::io(cgroup, file, action, e)
    }
}

/// Like `read`, but a missing file is `None` (optional kernel features such
/// as `memory.peak` or `cgroup.kill`).
pub(crate) fn read_opt(cgroup: &str, file: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(file) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io(cgroup, file, "read", e)),
    }
}

/// Writes `value` to a control file in one `write(2)` (cgroupfs parses each
/// write separately). `O_CREAT` is harmless on cgroupfs for existing files and
/// makes the same code work on a fake cgroupfs; cgroupfs answers EACCES for a
/// file that does not exist, which is turned into `MissingFile`.
pub(crate) fn write(cgroup: &str, file: &Path, value: &str) -> Result<(), CgroupError> {
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(file)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|e| {
        if file.exists() {
            CgroupError::io(cgroup, file, "write", e)
        } else {
            missing(cgroup, file, "write", e)
        }
    })
}

/// Parses a single unsigned number; `max` (v2) is `None`.
pub(crate) fn parse_limit(
    cgroup: &str,
    file: &Path,
    text: &str,
) -> Result<Option<u64>, CgroupError> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse::<u64>()
        .map(Some)
        .map_err(|e| CgroupError::parse(cgroup, file, text, e.to_string()))
}

pub(crate) fn read_u64(cgroup: &str, file: &Path) -> Result<u64, CgroupError> {
    let text = read(cgroup, file)?;
    text.trim()
        .parse::<u64>()
        .map_err(|e| CgroupError::parse(cgroup, file, &text, e.to_string()))
}

/// Parses "flat keyed" files (`key value` per line: memory.stat, cpu.stat,
/// cpuacct.stat, memory.events, memory.oom_control). Lines whose value is
/// not a number are skipped: newer kernels add keys, never remove them.
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key, value))
        })
        .collect()
}

/// Parses `cgroup.procs` / `tasks` / `cgroup.threads`: one id per line.
pub(crate) fn parse_pids(cgroup: &str, file: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    text.split_whitespace()
        .map(|t| {
            t.parse::<i32>()
                .map_err(|e| CgroupError::parse(cgroup, file, text, e.to_string()))
        })
        .collect()
}

/// `dir` and every cgroup below it, children before parents (the order
/// rmdir needs). Missing `dir` gives an empty list.
pub(crate) fn subtree_leaf_first(cgroup: &str, dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    collect(cgroup, dir, &mut out)?;
    Ok(out)
}

fn collect(cgroup: &str, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io(cgroup, dir, "list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io(cgroup, dir, "list", e))?;
        // file_type() does not follow symlinks: cgroup children are real dirs.
        let is_dir = entry
            .file_type()
            .map_err(|e| CgroupError::io(cgroup, entry.path(), "stat", e))?
            .is_dir();
        if is_dir {
            collect(cgroup, &entry.path(), out)?;
        }
    }
    out.push(dir.to_owned());
    Ok(())
}

/// How often and how long `remove_dir` retries EBUSY. The kernel keeps a
/// cgroup busy for a moment after its last process exits (the exit is still
/// being accounted), so a first rmdir right after a kill can fail.
const RMDIR_ATTEMPTS: u32 = 8;
const RMDIR_FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// Removes one (empty of children) cgroup directory; missing is fine.
pub(crate) fn remove_dir(cgroup: &str, dir: &Path) -> Result<(), CgroupError> {
    let mut backoff = RMDIR_FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // A plain directory with files in it: only a fake cgroupfs (tests)
            // has those; cgroupfs directories are removable with their control
            // files. Never delete files on a real cgroupfs.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(dir) => {
                return remove_plain_files_then_dir(cgroup, dir);
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_ATTEMPTS => {
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => return Err(CgroupError::io(cgroup, dir, "remove", e)),
        }
    }
}

fn remove_plain_files_then_dir(cgroup: &str, dir: &Path) -> Result<(), CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CgroupError::io(cgroup, dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io(cgroup, dir, "list", e))?;
        let path = entry.path();
        if !path.is_dir() {
            std::fs::remove_file(&path).map_err(|e| CgroupError::io(cgroup, &path, "remove", e))?;
        }
    }
    std::fs::remove_dir(dir).map_err(|e| CgroupError::io(cgroup, dir, "remove", e))
}

/// Whether `path` lives on a cgroup (v1) or cgroup2 filesystem.
pub(crate) fn is_cgroupfs(path: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match nix::sys::statfs::statfs(path) {
        Ok(st) => {
            #[allow(clippy::unnecessary_cast)] // the type differs between libcs
            let magic = st.filesystem_type().0 as i64;
            magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC
        }
        Err(_) => false,
    }
}

/// Sleeps with a growing backoff until `done()` or `timeout`; returns whether
/// `done()` became true. Used for freezer state and "cgroup emptied" waits.
pub(crate) fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = std::time::Instant::now();
    let mut backoff = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(50));
    }
}

/// SIGKILLs `pid`; a process that is already gone is not an error.
pub(crate) fn sigkill(cgroup: &str, procs_file: &Path, pid: i32) -> Result<(), CgroupError> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if pid <= 0 {
        // Never signal a process group / every process by accident.
        return Ok(());
    }
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(CgroupError::io(
            cgroup,
            procs_file,
            "SIGKILL a process listed in",
            io::Error::from(e),
        )),
    }
}

/// Refuses a cgroup hierarchy mounted read-only (a container's default
/// /sys/fs/cgroup, a hardened host): every pod would fail to launch.
pub(crate) fn check_writable(root: &Path) -> Result<(), CgroupError> {
    let stat = nix::sys::statvfs::statvfs(root)
        .map_err(|e| CgroupError::io("/", root, "statfs", std::io::Error::from(e)))?;
    if stat.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Err(CgroupError::Unusable {
            what: format!(
                "the cgroup filesystem at {} is mounted read-only",
                root.display()
            ),
            fix: format!(
                "remount it read-write (`mount -o remount,rw {}`); in a container, run the agent with a writable, delegated cgroup tree (e.g. docker's --cgroupns=private with a rw /sys/fs/cgroup, or on the host)",
                root.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_paths() {
        assert_eq!(validate("tepui/pod/c1").unwrap(), "tepui/pod/c1");
        assert_eq!(validate("/tepui/pod/").unwrap(), "tepui/pod");
        for bad in ["", "/", "a/../b", "..", "a//b", "./a"] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flat_keyed_skips_garbage() {
        let m = flat_keyed("user 12\nsystem 7\nweird\nsome x\n\n");
        assert_eq!(m.get("user"), Some(&12));
        assert_eq!(m.get("system"), Some(&7));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn limits_and_pids() {
        let f = Path::new("memory.max");
        assert_eq!(parse_limit("c", f, "max\n").unwrap(), None);
        assert_eq!(parse_limit("c", f, "1024\n").unwrap(), Some(1024));
        assert!(parse_limit("c", f, "lots").is_err());
        assert_eq!(parse_pids("c", f, "1\n22\n").unwrap(), vec![1, 22]);
        assert_eq!(parse_pids("c", f, "").unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // A control file missing from an existing cgroup: the controller.
        let file = dir.path().join("memory.max");
        let err = read("pod/c", &file).unwrap_err();
        match &err {
            CgroupError::MissingFile { controller, .. } => assert_eq!(controller, "memory"),
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("pod/c") && msg.contains("memory.max"), "{msg}");
        // A cgroup that does not exist: a plain I/O error.
        let file = dir.path().join("nope/memory.max");
        match write("pod/c", &file, "1") {
            Err(CgroupError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn subtree_is_leaf_first_and_removable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pod");
        std::fs::create_dir_all(root.join("a/x")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join("a/x/cgroup.procs"), "").unwrap();
        let list = subtree_leaf_first("pod", &root).unwrap();
        assert_eq!(list.last().unwrap(), &root);
        let pos = |p: &Path| list.iter().position(|q| q == p).unwrap();
        assert!(pos(&root.join("a/x")) < pos(&root.join("a")));
        for d in &list {
            remove_dir("pod", d).unwrap();
        }
        assert!(!root.exists());
        // Missing is fine, twice.
        remove_dir("pod", &root).unwrap();
        assert!(subtree_leaf_first("pod", &root).unwrap().is_empty());
        assert!(!is_cgroupfs(dir.path()));
    }
}
