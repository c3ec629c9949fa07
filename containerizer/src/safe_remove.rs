//! Removing directory trees that may have had mounts in them.
//!
//! `remove_dir_all` follows no symlinks but happily descends into mount
//! points, and a bind mount of `/` shares the host's device number, so a
//! leftover rbind under a runtime dir would turn a cleanup into the deletion
//! of the host's filesystem. This happened once on a development machine (a
//! probe rbind-mounted `/` inside a temp dir and the temp dir's drop recursed
//! through it). Every tree the containerizer removes goes through here.

use std::io::{Error, ErrorKind};
use std::path::{Path, PathBuf};

/// Mount points (of the calling process's mount namespace) at or under `dir`.
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|mount| mount.starts_with(&dir))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(code) = u8::from_str_radix(&digits, 8) {
                out.push(code as char);
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Removes `dir` and everything under it, refusing (with an error naming the
/// mount) when anything under it is still a mount point. A missing `dir` is
/// not an error.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mounts = mounts_under(dir)?;
    if let Some(mount) = mounts.first() {
        return Err(Error::new(
            ErrorKind::ResourceBusy,
            format!(
                "refusing to remove {}: {} is still mounted",
                dir.display(),
                mount.display()
            ),
        ));
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_plain_trees_and_tolerates_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("a/b/c");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("f"), b"x").unwrap();
        remove_tree(&dir.path().join("a")).unwrap();
        assert!(!dir.path().join("a").exists());
        remove_tree(&dir.path().join("a")).unwrap();
    }

    #[test]
    fn refuses_a_tree_containing_a_mount_point() {
        // /proc is always a mount point under /.
        let err = remove_tree(Path::new("/")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy);
        assert!(err.to_string().contains("still mounted"), "{err}");
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }
}
