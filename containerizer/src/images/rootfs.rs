//! A container's root filesystem from image layers: an overlay mount (one
//! lower dir per layer, top first; upper and work dirs per container), or a
//! private copy of the merged layers when overlay cannot be mounted.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags};
use serde::{Deserialize, Serialize};

use super::ImageError;
use super::whiteout::{OPAQUE_XATTR, is_whiteout};
use crate::safe_remove::remove_tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootfsBackend {
    /// overlayfs, falling back to a copy when the mount fails.
    Overlay,
    /// Always copy (slow; for filesystems overlay cannot sit on).
    Copy,
}

/// A provisioned rootfs. `path` goes into `LaunchSpec::rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    pub path: PathBuf,
    pub container_dir: PathBuf,
    pub backend: RootfsBackend,
}

pub(crate) fn provision(
    layers: &[PathBuf],
    container_dir: &Path,
    backend: RootfsBackend,
) -> Result<Rootfs, ImageError> {
    let rootfs = container_dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(ImageError::io("creating", &rootfs))?;
    if backend == RootfsBackend::Overlay {
        match mount_overlay(layers, container_dir, &rootfs) {
            Ok(()) => {
                return Ok(Rootfs {
                    path: rootfs,
                    container_dir: container_dir.to_path_buf(),
                    backend: RootfsBackend::Overlay,
                });
            }
            Err(e) => {
                tracing::warn!(rootfs = %rootfs.display(), error = %e, "overlay mount failed; copying the layers instead");
            }
        }
    }
    for layer in layers {
        copy_layer(layer, &rootfs).map_err(ImageError::io("copying layer", layer))?;
    }
    Ok(Rootfs {
        path: rootfs,
        container_dir: container_dir.to_path_buf(),
        backend: RootfsBackend::Copy,
    })
}

fn mount_overlay(layers: &[PathBuf], container_dir: &Path, rootfs: &Path) -> io::Result<()> {
    let upper = container_dir.join("upper");
    let work = container_dir.join("work");
    std::fs::create_dir_all(&upper)?;
    std::fs::create_dir_all(&work)?;
    let mut lower = Vec::new();
    // overlayfs lists the top layer first.
    for layer in layers.iter().rev() {
        let s = layer.as_os_str().as_bytes();
        if s.iter().any(|b| matches!(b, b':' | b',' | b'\\')) {
            return Err(io::Error::other(format!(
                "layer path '{}' cannot be an overlay option",
                layer.display()
            )));
        }
        lower.push(layer.to_string_lossy().into_owned());
    }
    if lower.is_empty() {
        // An image without layers: an empty lower dir.
        let empty = container_dir.join("empty");
        std::fs::create_dir_all(&empty)?;
        lower.push(empty.to_string_lossy().into_owned());
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| io::Error::other(format!("mount -t overlay on '{}': {e}", rootfs.display())))
}

pub(crate) fn release(rootfs: &Rootfs) -> Result<(), ImageError> {
    if rootfs.backend == RootfsBackend::Overlay {
        match umount2(&rootfs.path, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(nix::errno::Errno::EBUSY) => {
                // Still in use (a lingering process): detach; the kernel
                // frees it when the last user goes.
                umount2(&rootfs.path, MntFlags::MNT_DETACH)
                    .map_err(|e| ImageError::io("unmounting", &rootfs.path)(e.into()))?;
            }
            Err(e) => return Err(ImageError::io("unmounting", &rootfs.path)(e.into())),
        }
    }
    // Refuses if anything below is still mounted.
    remove_tree(&rootfs.container_dir).map_err(ImageError::io("removing", &rootfs.container_dir))
}

/// Merges one layer tree (overlay format: 0:0 char devices are whiteouts,
/// `trusted.overlay.opaque=y` marks opaque dirs) onto `dest`. `dest` only
/// ever holds what earlier layers put there; every existing path is checked
/// with lstat and a symlink is replaced, never followed.
pub(crate) fn copy_layer(layer: &Path, dest: &Path) -> io::Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    copy_dir(layer, dest, &mut links)
}

fn copy_dir(src: &Path, dest: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let mut names: Vec<OsString> = std::fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let s = src.join(&name);
        let d = dest.join(&name);
        let st = std::fs::symlink_metadata(&s)?;
        let existing = std::fs::symlink_metadata(&d).ok();
        if is_whiteout(&st) {
            remove_any(&d, existing.as_ref())?;
            continue;
        }
        let ft = st.file_type();
        if ft.is_dir() {
            let opaque = get_xattr(&s, OPAQUE_XATTR)?.is_some_and(|v| v == b"y");
            match &existing {
                Some(e) if e.is_dir() && !opaque => {}
                other => {
                    remove_any(&d, other.as_ref())?;
                    std::fs::create_dir(&d)?;
                }
            }
            copy_dir(&s, &d, links)?;
            finish_meta(&s, &d, &st)?;
            continue;
        }
        remove_any(&d, existing.as_ref())?;
        if st.nlink() > 1
            && let Some(first) = links.get(&(st.dev(), st.ino()))
        {
            std::fs::hard_link(first, &d)?;
            continue;
        }
        if ft.is_file() {
            let mut from = std::fs::File::open(&s)?;
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&d)?;
            io::copy(&mut from, &mut to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
        } else {
            let kind = if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_fifo() {
                FileType::Fifo
            } else {
                tracing::warn!(path = %s.display(), "skipping socket in image layer");
                continue;
            };
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &d,
                kind,
                Mode::from_raw_mode(st.mode() & 0o7777),
                st.rdev(),
            )?;
        }
        if st.nlink() > 1 {
            links.insert((st.dev(), st.ino()), d.clone());
        }
        finish_meta(&s, &d, &st)?;
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

fn remove_any(path: &Path, existing: Option<&std::fs::Metadata>) -> io::Result<()> {
    match existing {
        None => Ok(()),
        Some(m) if m.is_dir() => remove_tree(path),
        Some(_) => std::fs::remove_file(path),
    }
}

/// Owner, then mode (chown clears set-id bits), xattrs, then times.
fn finish_meta(src: &Path, dest: &Path, st: &std::fs::Metadata) -> io::Result<()> {
    rustix::fs::chownat(
        rustix::fs::CWD,
        dest,
        Some(rustix::fs::Uid::from_raw(st.uid())),
        Some(rustix::fs::Gid::from_raw(st.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !st.file_type().is_symlink() {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(st.mode() & 0o7777))?;
    }
    copy_xattrs(src, dest)?;
    let t = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dest,
        &Timestamps {
            last_access: t(st.atime(), st.atime_nsec()),
            last_modification: t(st.mtime(), st.mtime_nsec()),
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Extended attribute names and values are at most 64 KiB (XATTR_SIZE_MAX).
const XATTR_BUF: usize = 64 * 1024;

fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; XATTR_BUF];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies extended attributes except overlay's own markers.
fn copy_xattrs(src: &Path, dest: &Path) -> io::Result<()> {
    let mut names = vec![0u8; XATTR_BUF];
    let n = match rustix::fs::llistxattr(src, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let shown = name.to_string_lossy();
        if shown.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(value) = get_xattr(src, &shown)?
            && let Err(e) = rustix::fs::lsetxattr(dest, name, &value, XattrFlags::empty())
        {
            tracing::warn!(path = %dest.display(), xattr = %shown, error = %e, "extended attribute not copied");
        }
    }
    Ok(())
}
