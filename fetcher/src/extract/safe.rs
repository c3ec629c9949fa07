//! A directory handle that creates and removes things strictly beneath itself.
//!
//! Every path is resolved one component at a time with `openat(O_NOFOLLOW)`
//! from the directory's own file descriptor, so neither a symlink created by an
//! earlier archive entry nor one planted in the sandbox can redirect a write
//! elsewhere. Nothing here ever follows a symlink or crosses onto another
//! filesystem when deleting.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

/// Who should own what an extraction creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Leave files owned by the extracting process.
    #[default]
    Current,
    /// Chown everything to this user and group (artifacts fetched for a task
    /// user). Setuid and setgid bits are dropped: the archive's author must not
    /// be able to mint set-id binaries for that user.
    Fixed { uid: u32, gid: u32 },
    /// Keep the archive's numeric owners and every mode bit (image layers,
    /// extracted as root).
    FromArchive,
}

/// Why a path could not be resolved beneath the directory.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// A component is a symlink; resolving through it could leave the tree.
    Symlink(PathBuf),
    /// A component exists but is not a directory.
    NotDir(PathBuf),
    Io(io::Error),
}

/// A directory opened once, under which all operations are confined.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// For operations the handle does not wrap (mknodat, fsetxattr): the fd is
/// the confined directory itself, so `*at` calls relative to it stay inside.
impl AsFd for SafeDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

pub(crate) fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits)
}

fn is_symlink_at(dir: impl AsFd, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
        .unwrap_or(false)
}

pub(crate) fn chown_fd(fd: impl AsFd, ownership: Ownership, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = match ownership {
        Ownership::Current => return Ok(()),
        Ownership::Fixed { uid, gid } => (uid, gid),
        Ownership::FromArchive => (uid, gid),
    };
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(u)),
        Some(rustix::fs::Gid::from_raw(g)),
    )?;
    Ok(())
}

pub(crate) fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl SafeDir {
    /// Opens `path` as the root of confinement. The path itself must be a real
    /// directory: a symlink there is refused rather than followed.
    pub fn open(path: &Path) -> io::Result<SafeDir> {
        let fd = rustix::fs::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| {
            if e == Errno::LOOP || (e == Errno::NOTDIR && path.is_symlink()) {
                io::Error::other("is a symlink; refusing to follow it")
            } else {
                io::Error::from(e)
            }
        })?;
        Ok(SafeDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was opened at (for messages only; never used
    /// to resolve anything).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the directory at `comps` beneath this one, optionally creating
    /// missing components (mode 0755, owned per `ownership`).
    pub(crate) fn walk(
        &self,
        comps: &[&OsStr],
        create: bool,
        ownership: Ownership,
    ) -> Result<OwnedFd, WalkError> {
        let mut cur = rustix::io::dup(&self.fd).map_err(|e| WalkError::Io(e.into()))?;
        let mut so_far = PathBuf::new();
        for comp in comps {
            so_far.push(comp);
            let next = match rustix::fs::openat(&cur, *comp, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *comp, mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io(e.into())),
                    }
                    let fd = rustix::fs::openat(&cur, *comp, DIR_FLAGS, Mode::empty())
                        .map_err(|e| WalkError::Io(e.into()))?;
                    if let Ownership::Fixed { uid, gid } = ownership {
                        chown_fd(&fd, ownership, uid, gid).map_err(WalkError::Io)?;
                    }
                    fd
                }
                Err(e) if e == Errno::LOOP || e == Errno::NOTDIR => {
                    return Err(if is_symlink_at(&cur, comp) {
                        WalkError::Symlink(so_far)
                    } else {
                        WalkError::NotDir(so_far)
                    });
                }
                Err(e) => return Err(WalkError::Io(e.into())),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Opens the directory at the relative path `rel` beneath this one,
    /// creating missing components (mode 0755) when `create` is set. Fails
    /// when a component is a symlink, `..`, or not a directory: callers outside
    /// this crate (image whiteouts) get the same confinement as extraction.
    pub fn open_beneath(&self, rel: &Path, create: bool) -> io::Result<SafeDir> {
        let mut comps = Vec::new();
        for comp in rel.components() {
            match comp {
                std::path::Component::Normal(c) => comps.push(c),
                std::path::Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("'{}' is not a plain relative path", rel.display()),
                    ));
                }
            }
        }
        let fd = self
            .walk(&comps, create, Ownership::Current)
            .map_err(|e| match e {
                WalkError::Symlink(p) => io::Error::other(format!(
                    "'{}' is a symlink; refusing to follow it",
                    p.display()
                )),
                WalkError::NotDir(p) => {
                    io::Error::other(format!("'{}' is not a directory", p.display()))
                }
                WalkError::Io(e) => e,
            })?;
        Ok(SafeDir {
            fd,
            path: self.path.join(rel),
        })
    }

    /// Creates a fresh directory named `name` directly beneath this one and
    /// opens it.
    pub fn create_subdir(&self, name: &OsStr, bits: u32) -> io::Result<SafeDir> {
        rustix::fs::mkdirat(&self.fd, name, mode(bits))?;
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(SafeDir {
            fd,
            path: self.path.join(name),
        })
    }

    /// Removes `name` (recursively if a directory) from beneath this one,
    /// without following symlinks and without descending into other mounts.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        remove_at(&self.fd, name)
    }

    /// Moves every entry of `self` into `dest`, merging directories that exist
    /// on both sides and replacing other existing non-directories, as extracting
    /// over an existing tree would.
    pub fn merge_into(&self, dest: &SafeDir) -> io::Result<()> {
        merge(&self.fd, &dest.fd)
    }

    /// Creates (or truncates by replacing) a regular file at `comps`, creating
    /// parent directories as needed.
    pub(crate) fn create_file(
        &self,
        comps: &[&OsStr],
        ownership: Ownership,
    ) -> Result<File, WalkError> {
        let Some((name, parents)) = comps.split_last() else {
            return Err(WalkError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty path",
            )));
        };
        let parent = self.walk(parents, true, ownership)?;
        create_file_at(&parent, name).map_err(WalkError::Io)
    }
}

/// Creates a new regular file `name` in `parent`, first unlinking whatever
/// non-directory is there. O_EXCL|O_NOFOLLOW guarantee that a symlink planted
/// at the name is replaced, never written through.
pub(crate) fn create_file_at(parent: impl AsFd, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let parent = parent.as_fd();
    match rustix::fs::openat(parent, name, flags, mode(0o600)) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::EXIST) => {
            replace_non_dir(parent, name)?;
            Ok(File::from(rustix::fs::openat(
                parent,
                name,
                flags,
                mode(0o600),
            )?))
        }
        Err(e) => Err(e.into()),
    }
}

/// Unlinks `name` so something else can take its place; a directory is never
/// replaced by a non-directory (tar refuses too, and it keeps cached directory
/// handles valid).
pub(crate) fn replace_non_dir(parent: impl AsFd, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => Err(io::Error::other(
            "a directory already exists there and cannot be replaced by a non-directory",
        )),
        Err(e) => Err(e.into()),
    }
}

fn list(dir: impl AsFd) -> io::Result<Vec<OsString>> {
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    Ok(names)
}

fn remove_at(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let parent_st = rustix::fs::fstat(parent)?;
    if parent_st.st_dev != st.st_dev {
        return Err(io::Error::other(format!(
            "refusing to remove '{}': it is on another filesystem (a mount?)",
            name.to_string_lossy()
        )));
    }
    let dir = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    // Let the owner delete children even if the archive made the dir read-only.
    let _ = rustix::fs::fchmod(&dir, mode(0o700));
    for child in list(&dir)? {
        remove_at(&dir, &child)?;
    }
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn merge(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    for name in list(src)? {
        let s = rustix::fs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let src_is_dir = FileType::from_raw_mode(s.st_mode) == FileType::Directory;
        let dst_type = match rustix::fs::statat(dst, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(d) => Some(FileType::from_raw_mode(d.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e.into()),
        };
        match (src_is_dir, dst_type) {
            (true, Some(FileType::Directory)) => {
                let s_fd = rustix::fs::openat(src, &name, DIR_FLAGS, Mode::empty())?;
                let d_fd = rustix::fs::openat(dst, &name, DIR_FLAGS, Mode::empty())?;
                merge(&s_fd, &d_fd)?;
            }
            (false, Some(FileType::Directory)) => {
                return Err(io::Error::other(format!(
                    "'{}' is a directory in the sandbox and cannot be replaced by a file",
                    name.to_string_lossy()
                )));
            }
            (true, Some(_)) => {
                rustix::fs::unlinkat(dst, &name, AtFlags::empty())?;
                rustix::fs::renameat(src, &name, dst, &name)?;
            }
            // rename(2) atomically replaces an existing non-directory.
            (_, _) => rustix::fs::renameat(src, &name, dst, &name)?,
        }
    }
    Ok(())
}
