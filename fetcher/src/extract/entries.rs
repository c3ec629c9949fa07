//! Creates archive entries beneath a [`SafeDir`]; the format readers (tar,
//! zip) only translate their headers into calls here, so the safety rules live
//! in one place.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;

use super::safe::{self, Ownership, SafeDir, WalkError};
use super::{AbsolutePaths, EntryAction, ExtractError, ExtractOptions, Summary};

/// Large enough that per-call overhead vanishes next to decompression.
const COPY_BUF: usize = 256 * 1024;

/// Metadata carried by an entry header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub mode: u32,
    pub mtime: Option<u64>,
    pub uid: u32,
    pub gid: u32,
}

/// An extended attribute from the archive: name, value.
pub(crate) type Xattr = (Vec<u8>, Vec<u8>);

pub(crate) enum Kind<'r> {
    File(&'r mut dyn Read),
    Dir,
    Symlink(OsString),
    /// Target as the archive names it (relative to the archive root).
    HardLink(Vec<u8>),
    Fifo,
    Device {
        block: bool,
        major: u32,
        minor: u32,
    },
}

/// Splits an archive path into safe components; an empty result is the
/// archive root itself.
pub(crate) fn normalize(raw: &[u8], abs: AbsolutePaths) -> Result<Vec<OsString>, ExtractError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let rel = if raw.first() == Some(&b'/') {
        match abs {
            AbsolutePaths::Reject => return Err(ExtractError::Absolute(shown())),
            AbsolutePaths::Strip => {
                let start = raw.iter().position(|b| *b != b'/').unwrap_or(raw.len());
                &raw[start..]
            }
        }
    } else {
        raw
    };
    let mut comps = Vec::new();
    for comp in rel.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(ExtractError::Escapes(shown())),
            c => comps.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(comps)
}

pub(crate) struct Extractor<'t, 'o, 'b> {
    target: &'t SafeDir,
    opts: &'o mut ExtractOptions<'b>,
    summary: Summary,
    deferred_dirs: Vec<(Vec<OsString>, Meta)>,
    /// The last parent directory used; archives list siblings together, so
    /// this spares a component walk per entry. Valid because a directory is
    /// never replaced during extraction (see `safe::replace_non_dir`).
    parent_cache: Option<(Vec<OsString>, OwnedFd)>,
    buf: Vec<u8>,
}

fn display(comps: &[OsString]) -> String {
    let p: PathBuf = comps.iter().collect();
    p.to_string_lossy().into_owned()
}

impl<'t, 'o, 'b> Extractor<'t, 'o, 'b> {
    pub(crate) fn new(target: &'t SafeDir, opts: &'o mut ExtractOptions<'b>) -> Self {
        Extractor {
            target,
            opts,
            summary: Summary::default(),
            deferred_dirs: Vec::new(),
            parent_cache: None,
            buf: vec![0; COPY_BUF],
        }
    }

    fn parent(&mut self, parents: &[OsString], entry: &str) -> Result<&OwnedFd, ExtractError> {
        let hit = matches!(&self.parent_cache, Some((p, _)) if p.as_slice() == parents);
        if !hit {
            let comps: Vec<&OsStr> = parents.iter().map(OsString::as_os_str).collect();
            let fd = self
                .target
                .walk(&comps, true, self.opts.ownership)
                .map_err(|e| walk_error(e, entry))?;
            self.parent_cache = Some((parents.to_vec(), fd));
        }
        match &self.parent_cache {
            Some((_, fd)) => Ok(fd),
            None => Err(ExtractError::Entry {
                entry: entry.to_string(),
                cause: io::Error::other("parent directory unavailable"),
            }),
        }
    }

    /// Whether the reader should collect extended attributes at all.
    pub(crate) fn wants_xattrs(&self) -> bool {
        self.opts.xattrs
    }

    pub(crate) fn entry(
        &mut self,
        raw_path: &[u8],
        kind: Kind<'_>,
        meta: Meta,
        xattrs: &[Xattr],
    ) -> Result<(), ExtractError> {
        let comps = normalize(raw_path, self.opts.absolute_paths)?;
        let Some((name, parents)) = comps.split_last() else {
            // The archive root ("./"): the target already exists.
            return Ok(());
        };
        if self.summary.entries >= self.opts.max_entries {
            return Err(ExtractError::TooManyEntries {
                limit: self.opts.max_entries,
            });
        }
        let shown = display(&comps);
        if let Some(hook) = self.opts.hook.as_deref_mut() {
            let path: PathBuf = comps.iter().collect();
            let action =
                hook.on_entry(self.target, &path)
                    .map_err(|cause| ExtractError::Entry {
                        entry: shown.clone(),
                        cause,
                    })?;
            // The hook may have removed directories we hold handles to.
            self.parent_cache = None;
            if action == EntryAction::Skip {
                return Ok(());
            }
        }
        let ownership = self.opts.ownership;
        let preserve_mtime = self.opts.preserve_mtime;
        let budget = self.opts.budget;
        let io_err = |cause: io::Error| ExtractError::Entry {
            entry: shown.clone(),
            cause,
        };
        // Hard links share their target's inode (and its attributes).
        let is_hardlink = matches!(kind, Kind::HardLink(_));
        match kind {
            Kind::File(reader) => {
                // Taken out so that `parent` can borrow self mutably.
                let mut buf = std::mem::take(&mut self.buf);
                let parent = self.parent(parents, &shown)?;
                let mut file = safe::create_file_at(parent, name).map_err(io_err)?;
                let result = copy_charged(reader, &mut file, &mut buf, budget, &shown);
                self.buf = buf;
                self.summary.bytes += result?;
                apply_meta(&file, meta, ownership, preserve_mtime).map_err(io_err)?;
            }
            Kind::Dir => {
                let parent = self.parent(parents, &shown)?;
                make_dir(parent, name).map_err(io_err)?;
                self.deferred_dirs.push((comps.clone(), meta));
            }
            Kind::Symlink(target) => {
                let parent = self.parent(parents, &shown)?;
                safe::replace_non_dir(parent, name).map_err(io_err)?;
                rustix::fs::symlinkat(&target, parent, name.as_os_str())
                    .map_err(|e| io_err(e.into()))?;
                link_meta(parent, name, meta, ownership, preserve_mtime).map_err(io_err)?;
            }
            Kind::HardLink(raw_target) => {
                let link_escape = || ExtractError::LinkEscapes {
                    entry: shown.clone(),
                    target: String::from_utf8_lossy(&raw_target).into_owned(),
                };
                let tcomps =
                    normalize(&raw_target, self.opts.absolute_paths).map_err(|_| link_escape())?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(link_escape());
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tp: Vec<&OsStr> = tparents.iter().map(OsString::as_os_str).collect();
                let tparent = self
                    .target
                    .walk(&tp, false, ownership)
                    .map_err(|e| match e {
                        WalkError::Symlink(_) => link_escape(),
                        other => walk_error(other, &shown),
                    })?;
                let parent = self.parent(parents, &shown)?;
                safe::replace_non_dir(parent, name).map_err(io_err)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
                // itself, never what it points at.
                rustix::fs::linkat(
                    &tparent,
                    tname.as_os_str(),
                    parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err(e.into()))?;
            }
            Kind::Fifo => {
                let parent = self.parent(parents, &shown)?;
                safe::replace_non_dir(parent, name).map_err(io_err)?;
                rustix::fs::mknodat(
                    parent,
                    name.as_os_str(),
                    FileType::Fifo,
                    safe::mode(meta.mode & 0o777),
                    0,
                )
                .map_err(|e| io_err(e.into()))?;
                link_meta(parent, name, meta, ownership, preserve_mtime).map_err(io_err)?;
            }
            Kind::Device {
                block,
                major,
                minor,
            } => {
                if ownership != Ownership::FromArchive {
                    tracing::warn!(entry = %shown, "skipping device node in artifact archive");
                    return Ok(());
                }
                let parent = self.parent(parents, &shown)?;
                safe::replace_non_dir(parent, name).map_err(io_err)?;
                let ft = if block {
                    FileType::BlockDevice
                } else {
                    FileType::CharacterDevice
                };
                let dev = rustix::fs::makedev(major, minor);
                rustix::fs::mknodat(
                    parent,
                    name.as_os_str(),
                    ft,
                    safe::mode(meta.mode & 0o7777),
                    dev,
                )
                .map_err(|e| io_err(e.into()))?;
                link_meta(parent, name, meta, ownership, preserve_mtime).map_err(io_err)?;
            }
        }
        if self.opts.xattrs && !xattrs.is_empty() && !is_hardlink {
            let parent = self.parent(parents, &shown)?;
            set_xattrs(parent, name, xattrs, &shown)?;
        }
        self.summary.entries += 1;
        if let Some(first) = comps.first() {
            self.summary.top_level.insert(first.clone());
        }
        Ok(())
    }

    /// Applies directory modes and times last, deepest first, so a read-only
    /// directory does not block its own children and child writes do not
    /// disturb restored times.
    pub(crate) fn finish(mut self) -> Result<Summary, ExtractError> {
        self.parent_cache = None;
        let ownership = self.opts.ownership;
        let preserve_mtime = self.opts.preserve_mtime;
        for (comps, meta) in self.deferred_dirs.iter().rev() {
            let shown = display(comps);
            let refs: Vec<&OsStr> = comps.iter().map(OsString::as_os_str).collect();
            let fd = self
                .target
                .walk(&refs, false, ownership)
                .map_err(|e| walk_error(e, &shown))?;
            apply_meta(&fd, *meta, ownership, preserve_mtime).map_err(|cause| {
                ExtractError::Entry {
                    entry: shown,
                    cause,
                }
            })?;
        }
        Ok(self.summary)
    }
}

fn walk_error(e: WalkError, entry: &str) -> ExtractError {
    match e {
        WalkError::Symlink(p) => ExtractError::ThroughSymlink {
            entry: entry.to_string(),
            symlink: p.to_string_lossy().into_owned(),
        },
        WalkError::NotDir(p) => ExtractError::Entry {
            entry: entry.to_string(),
            cause: io::Error::other(format!("'{}' is not a directory", p.to_string_lossy())),
        },
        WalkError::Io(cause) => ExtractError::Entry {
            entry: entry.to_string(),
            cause,
        },
    }
}

/// Sets extended attributes on `name` without following it: the path goes
/// through the parent's descriptor (`/proc/self/fd/N/name`, resolved by the
/// kernel from the already-confined directory) and `lsetxattr` never follows
/// the last component. Attributes this filesystem or kernel refuses (no
/// support, or a namespace the extractor may not write) are logged and
/// skipped, as tar and container runtimes do; other failures fail the entry.
fn set_xattrs(
    parent: &OwnedFd,
    name: &OsStr,
    xattrs: &[Xattr],
    shown: &str,
) -> Result<(), ExtractError> {
    use std::os::fd::AsRawFd;
    let path = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(name);
    for (key, value) in xattrs {
        let key = OsStr::from_bytes(key);
        match rustix::fs::lsetxattr(&path, key, value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if e == Errno::NOTSUP || e == Errno::PERM || e == Errno::ACCESS => {
                tracing::warn!(entry = %shown, xattr = %key.to_string_lossy(), error = %e,
                    "extended attribute not restored");
            }
            Err(e) => {
                return Err(ExtractError::Entry {
                    entry: shown.to_string(),
                    cause: io::Error::other(format!(
                        "setting extended attribute '{}': {e}",
                        key.to_string_lossy()
                    )),
                });
            }
        }
    }
    Ok(())
}

fn make_dir(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match rustix::fs::mkdirat(parent, name, safe::mode(0o700)) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => {
            let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Ok(());
            }
            safe::replace_non_dir(parent, name)?;
            rustix::fs::mkdirat(parent, name, safe::mode(0o700))?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn effective_mode(mode: u32, ownership: Ownership) -> u32 {
    match ownership {
        Ownership::Fixed { .. } => mode & 0o1777,
        Ownership::Current | Ownership::FromArchive => mode & 0o7777,
    }
}

/// Owner first: chown(2) clears set-id bits, so the mode must come after.
fn apply_meta(
    fd: &impl std::os::fd::AsFd,
    meta: Meta,
    ownership: Ownership,
    preserve_mtime: bool,
) -> io::Result<()> {
    safe::chown_fd(fd, ownership, meta.uid, meta.gid)?;
    rustix::fs::fchmod(fd, safe::mode(effective_mode(meta.mode, ownership)))?;
    if let (true, Some(mtime)) = (preserve_mtime, meta.mtime) {
        rustix::fs::futimens(fd, &safe::timestamps(mtime))?;
    }
    Ok(())
}

/// For entries that cannot be opened (symlinks, nodes): act on the name
/// without following it.
fn link_meta(
    parent: &OwnedFd,
    name: &OsStr,
    meta: Meta,
    ownership: Ownership,
    preserve_mtime: bool,
) -> io::Result<()> {
    let ids = match ownership {
        Ownership::Current => None,
        Ownership::Fixed { uid, gid } => Some((uid, gid)),
        Ownership::FromArchive => Some((meta.uid, meta.gid)),
    };
    if let Some((uid, gid)) = ids {
        rustix::fs::chownat(
            parent,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if let (true, Some(mtime)) = (preserve_mtime, meta.mtime) {
        rustix::fs::utimensat(
            parent,
            name,
            &safe::timestamps(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// Copies an entry's contents, charging the budget before each write so a
/// bomb stops within one buffer of the limit.
pub(crate) fn copy_charged(
    reader: &mut dyn Read,
    out: &mut impl Write,
    buf: &mut [u8],
    budget: &super::Budget,
    shown: &str,
) -> Result<u64, ExtractError> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(super::read_error(e)),
        };
        budget.charge(n as u64)?;
        out.write_all(&buf[..n])
            .map_err(|cause| ExtractError::Entry {
                entry: shown.to_string(),
                cause,
            })?;
        total += n as u64;
    }
}
