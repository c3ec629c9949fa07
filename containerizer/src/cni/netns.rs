//! The pod's network namespace, kept by a bind mount of its nsfs file (as
//! `ip netns add` does, and Mesos's CNI isolator with its per-container
//! `ns` file, `NetworkCniIsolatorProcess::isolate` in
//! isolators/network/cni/cni.cpp): plugins get it as `CNI_NETNS`, the
//! pod's containers join it by path, and a restarted agent finds it for
//! the DEL of a pod that died meanwhile.
//!
//! It is made by a short-lived thread of its own: `unshare(CLONE_NEWNET)`
//! moves only the calling thread, which brings `lo` up inside, binds its
//! namespace to the file and exits, so no thread of the agent is ever left
//! in a pod's namespace.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::CniError;

/// Creates a network namespace bound at `path` (an empty file is made),
/// with `lo` up.
pub fn create(path: &Path) -> Result<(), CniError> {
    let err = |message: String| CniError::Netns {
        path: path.to_path_buf(),
        message,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| err(format!("cannot create the file: {e}")))?;
    let target = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("tepui-netns".into())
        .spawn(move || -> Result<(), String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            crate::supervisor::loopback::set_lo_up()?;
            let own = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
            mount(
                Some(own.as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("bind-mounting {own}: {e}"))
        })
        .map_err(|e| err(format!("cannot start a thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err("the netns thread panicked".to_string()));
    if let Err(message) = made {
        let _ = std::fs::remove_file(path);
        return Err(err(message));
    }
    Ok(())
}

/// Whether `path` is a bound network namespace (not the plain file it is
/// before the bind or after a crash between the two).
pub fn is_bound(path: &Path) -> bool {
    // nsfs files have their own filesystem magic; a plain file on the
    // runtime dir's tmpfs does not.
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Unbinds and removes the file. Idempotent. Copies of the bind in other
/// mount namespaces (supervisors started meanwhile) go with the unlink.
pub fn remove(path: &Path) -> Result<(), CniError> {
    for _ in 0..4 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(_) => break,
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CniError::io("cannot remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_made_bound_and_removed() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: network namespaces need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        create(&path).unwrap();
        assert!(is_bound(&path));
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap();
        let theirs = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(ours.ino(), theirs.ino(), "a new namespace, not ours");
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }
}
