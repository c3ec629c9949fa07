//! The /dev/shm of a container with its own IPC namespace: a tmpfs the
//! supervisor mounts in its private mount namespace (so the host never sees
//! it) and binds into the container, so that nested containers sharing the
//! IPC namespace can bind the very same tmpfs (POSIX shared memory lives
//! there, not in the IPC namespace).

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::spec::shm_tmpfs_options;

/// Mounts a fresh tmpfs at `dir` with `shm_tmpfs_options(size_mb)`.
pub fn mount_shm(dir: &Path, size_mb: Option<u32>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in shm_tmpfs_options(size_mb) {
        match option.as_str() {
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "nodev" => flags |= MsFlags::MS_NODEV,
            other => data.push(other.to_string()),
        }
    }
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        flags,
        Some(data.join(",").as_str()),
    )
    .map_err(|e| format!("cannot mount /dev/shm tmpfs at {}: {e}", dir.display()))
}

/// Unmounts it (lazily: a nested container still holding a bind of it keeps
/// the tmpfs alive until it is gone) and removes the empty mount point.
pub fn unmount_shm(dir: &Path) {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!(dir = %dir.display(), "cannot unmount /dev/shm: {e}"),
    }
    let _ = std::fs::remove_dir(dir);
}
