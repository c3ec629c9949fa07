//! A pod's rootfs dir (`containers/<pod>/`) as a shared mount point.
//!
//! Why: a pod's supervisor lives in its own mount namespace, made a slave
//! of the agent's when the pod starts. A slave receives only what a
//! *shared* mount propagates. On a host whose `/` is a private mount (a
//! container, a chroot, this project's CI machines) the overlay the agent
//! mounts later for a nested container with an image never reaches the
//! supervisor, which then hands libcontainer an empty directory ("executable
//! '/bin/sh' not found"). So before a pod's supervisor starts, its rootfs dir
//! is bound onto itself and made shared: every overlay mounted below it
//! afterwards (in the agent's namespace) propagates into the supervisor's,
//! and every unmount does too, so no namespace keeps a stale reference.
//! Mesos does the same for its whole work dir, for the same reason
//! (`ensureSharedMount` called from `LinuxFilesystemIsolatorProcess::create`
//! in src/slave/containerizer/mesos/isolators/filesystem/linux.cpp,
//! MESOS-3483); doing it per pod keeps the mount's life the pod's: it goes
//! when the pod is cleaned up, and nothing is left on the host after.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::ImageError;
use crate::safe_remove::{mounts_under, remove_tree};

/// Makes `dir` (created if missing) a shared mount point of its own.
/// Idempotent: an existing bind is only made shared again.
pub(crate) fn share(dir: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(dir).map_err(ImageError::io("creating", dir))?;
    let mounted = mounts_under(dir)
        .map_err(ImageError::io("reading the mount table for", dir))?
        .iter()
        .any(|m| m == &dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
    if !mounted {
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| ImageError::io("bind-mounting", dir)(e.into()))?;
    }
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|e| ImageError::io("making a shared mount of", dir)(e.into()))
}

/// Detaches `dir`'s mount (and whatever is still mounted below it: only
/// for a pod whose containers are all gone) and removes the dir.
pub(crate) fn unshare_and_remove(dir: &Path) -> Result<(), ImageError> {
    if !dir.exists() {
        return Ok(());
    }
    // A bind could be stacked more than once (a crash between two shares):
    // detach until the dir is no mount point.
    for _ in 0..8 {
        match umount2(dir, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(e) => return Err(ImageError::io("unmounting", dir)(e.into())),
        }
    }
    remove_tree(dir).map_err(ImageError::io("removing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    #[test]
    fn share_is_idempotent_and_removal_leaves_nothing() {
        if !is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers").join("pod-1");
        share(&dir).unwrap();
        share(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = table
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
            .expect("the pod dir is a mount point");
        assert!(line.contains("shared:"), "not shared: {line}");
        assert_eq!(
            table
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
                .count(),
            1,
            "sharing twice must not stack binds"
        );
        unshare_and_remove(&dir).unwrap();
        assert!(!dir.exists());
        assert!(mounts_under(tmp.path()).unwrap().is_empty());
    }
}
