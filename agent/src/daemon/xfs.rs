//! XFS project quotas for sandboxes, like Mesos's `disk/xfs` isolator
//! (src/slave/containerizer/mesos/isolators/xfs/disk.cpp and utils.cpp).
//!
//! With `--isolation=...,disk/xfs` the work dir must be on XFS mounted with
//! `prjquota` (`XfsDiskIsolatorProcess::create` refuses to start
//! otherwise). Each executor's sandbox gets a project id from
//! `--xfs_project_range` (Mesos's default `[5000-10000]`), set with
//! PROJINHERIT on the sandbox and everything already in it
//! (`xfs::setProjectId`), so whatever its tasks write is counted. With
//! `--enforce_container_disk_quota` the project gets a hard block limit
//! equal to the pod's `disk` (`applyProjectQuota`, ENFORCING_PASSIVE): a
//! write past it fails with EDQUOT, the task sees "Disk quota exceeded".
//! Without it the quota only accounts (ACCOUNTING). Usage is the quota's
//! block count (`XfsDiskIsolatorProcess::usage`), shown like `disk/du`'s.
//!
//! Unlike Mesos, which frees a project id only when the sandbox is
//! garbage collected (`scheduleProjectRoot`, `reclaimProjectIds`), the id is
//! freed when the container ends: the sandbox's files are given project 0
//! again (so a kept sandbox no longer counts against anyone) and the quota
//! record is cleared. At recovery, ids of live sandboxes are taken again
//! and those of sandboxes whose container is gone are freed the same way.
//!
//! The kernel calls sit behind [`ProjectQuotas`]: [`Kernel`] is the real one
//! (`FS_IOC_FSGETXATTR`/`FS_IOC_FSSETXATTR`, `quotactl(Q_XSETQLIM,
//! Q_XGETQUOTA, Q_XGETQSTAT)`), and the bookkeeping is tested against an
//! in-memory one, since a kernel built without `CONFIG_XFS_QUOTA` cannot
//! mount `prjquota` at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum XfsError {
    #[error("invalid --xfs_project_range '{0}': {1}")]
    Range(String, String),
    #[error("'{0}' is not an XFS filesystem")]
    NotXfs(String),
    #[error("XFS project quotas are not enabled on '{0}' (mount it with prjquota)")]
    NotEnabled(String),
    #[error("{what} '{path}': {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no XFS project id left in the range")]
    Exhausted,
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> XfsError {
    XfsError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// What `disk/xfs` needs from the kernel.
pub trait ProjectQuotas: Send + Sync {
    /// The path is on XFS with project quotas on.
    fn check(&self, path: &Path) -> Result<(), XfsError>;
    /// The project id of a directory (0: none).
    fn project_id(&self, dir: &Path) -> Result<u32, XfsError>;
    /// Sets the project id (0 clears it) on `dir` and everything below it
    /// on the same filesystem, with PROJINHERIT on directories.
    fn set_project_id(&self, dir: &Path, id: u32) -> Result<(), XfsError>;
    /// Soft and hard block limit of project `id` on `dir`'s filesystem, in
    /// bytes; 0 removes the limit.
    fn set_limit(&self, dir: &Path, id: u32, bytes: u64) -> Result<(), XfsError>;
    /// Bytes project `id` uses on `dir`'s filesystem.
    fn used(&self, dir: &Path, id: u32) -> Result<u64, XfsError>;
}

/// Parses Mesos's ranges value (`[5000-10000]`, `[1-10,20-30]`) into the
/// project ids it holds; 0 is never a project (`xfs::validateProjectIds`).
pub fn parse_range(text: &str) -> Result<BTreeSet<u32>, XfsError> {
    let bad = |why: &str| XfsError::Range(text.to_string(), why.to_string());
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| bad("expected [begin-end,...]"))?;
    let mut ids = BTreeSet::new();
    for part in inner.split(',') {
        let (begin, end) = part
            .split_once('-')
            .ok_or_else(|| bad("expected begin-end"))?;
        let begin: u32 = begin.trim().parse().map_err(|_| bad("not a project id"))?;
        let end: u32 = end.trim().parse().map_err(|_| bad("not a project id"))?;
        if begin == 0 {
            return Err(bad("project id 0 means no project"));
        }
        if begin > end {
            return Err(bad("begin after end"));
        }
        if end - begin > 1 << 20 {
            return Err(bad("more than 2^20 ids"));
        }
        ids.extend(begin..=end);
    }
    Ok(ids)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Assigned {
    id: u32,
    dir: PathBuf,
    limit: u64,
}

/// The project ids of sandboxes: which container holds which.
pub struct XfsDisk {
    quotas: Box<dyn ProjectQuotas>,
    enforce: bool,
    total: BTreeSet<u32>,
    inner: std::sync::Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    free: BTreeSet<u32>,
    by_container: BTreeMap<String, Assigned>,
}

impl XfsDisk {
    /// Checks `work_dir` and takes the range (`XfsDiskIsolatorProcess::create`).
    pub fn new(
        quotas: Box<dyn ProjectQuotas>,
        work_dir: &Path,
        range: &str,
        enforce: bool,
    ) -> Result<Self, XfsError> {
        let total = parse_range(range)?;
        quotas.check(work_dir)?;
        tracing::info!(ids = total.len(), range, "disk/xfs: project ids");
        Ok(Self {
            quotas,
            enforce,
            inner: std::sync::Mutex::new(Inner {
                free: total.clone(),
                by_container: BTreeMap::new(),
            }),
            total,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ids not held by any container.
    pub fn free_ids(&self) -> usize {
        self.lock().free.len()
    }

    /// The project id of a container's sandbox, if it has one.
    pub fn project_of(&self, container: &str) -> Option<u32> {
        self.lock().by_container.get(container).map(|a| a.id)
    }

    /// Gives a new sandbox a project id (`XfsDiskIsolatorProcess::prepare`)
    /// and its limit.
    pub fn assign(&self, container: &str, dir: &Path, limit: u64) -> Result<u32, XfsError> {
        let id = {
            let mut inner = self.lock();
            let id = inner.free.pop_first().ok_or(XfsError::Exhausted)?;
            inner.by_container.insert(
                container.to_string(),
                Assigned {
                    id,
                    dir: dir.to_path_buf(),
                    limit: 0,
                },
            );
            id
        };
        let set = self
            .quotas
            .set_project_id(dir, id)
            .and_then(|()| self.update(container, limit));
        if let Err(e) = set {
            self.release(container);
            return Err(e);
        }
        tracing::info!(container, id, dir = %dir.display(), "disk/xfs: project assigned");
        Ok(id)
    }

    /// Sets the hard limit to the pod's `disk` when it changed (tasks came
    /// or went); only with `--enforce_container_disk_quota`.
    pub fn update(&self, container: &str, limit: u64) -> Result<(), XfsError> {
        if !self.enforce {
            return Ok(());
        }
        let Some(assigned) = self.lock().by_container.get(container).cloned() else {
            return Ok(());
        };
        if assigned.limit == limit {
            return Ok(());
        }
        self.quotas.set_limit(&assigned.dir, assigned.id, limit)?;
        if let Some(a) = self.lock().by_container.get_mut(container) {
            a.limit = limit;
        }
        Ok(())
    }

    /// Bytes the container's project uses.
    pub fn used(&self, container: &str) -> Option<u64> {
        let assigned = self.lock().by_container.get(container).cloned()?;
        match self.quotas.used(&assigned.dir, assigned.id) {
            Ok(used) => Some(used),
            Err(e) => {
                tracing::warn!(container, "disk/xfs: {e}");
                None
            }
        }
    }

    /// The container ended: its sandbox leaves the project, the quota
    /// record goes, the id is free again.
    pub fn release(&self, container: &str) {
        let Some(assigned) = self.lock().by_container.remove(container) else {
            return;
        };
        self.clear(&assigned.dir, assigned.id);
        if self.total.contains(&assigned.id) {
            self.lock().free.insert(assigned.id);
        }
        tracing::info!(container, id = assigned.id, "disk/xfs: project freed");
    }

    fn clear(&self, dir: &Path, id: u32) {
        if let Err(e) = self.quotas.set_project_id(dir, 0) {
            tracing::warn!("disk/xfs: {e}");
        }
        if let Err(e) = self.quotas.set_limit(dir, id, 0) {
            tracing::warn!("disk/xfs: {e}");
        }
    }

    /// After an agent restart (`XfsDiskIsolatorProcess::recover`): live
    /// containers keep their sandbox's id; sandboxes of ended ones still
    /// carrying an id of the range are cleared and their ids freed.
    pub fn recover(&self, live: &[(String, PathBuf, u64)], ended: &[PathBuf]) {
        for (container, dir, limit) in live {
            match self.quotas.project_id(dir) {
                Ok(id) if id != 0 => {
                    let mut inner = self.lock();
                    inner.free.remove(&id);
                    inner.by_container.insert(
                        container.clone(),
                        Assigned {
                            id,
                            dir: dir.clone(),
                            limit: *limit,
                        },
                    );
                }
                // Launched before disk/xfs was on: not tracked (Mesos
                // ignores those containers too).
                Ok(_) => {}
                Err(e) => tracing::warn!(container, "disk/xfs: {e}"),
            }
        }
        for dir in ended {
            if let Ok(id) = self.quotas.project_id(dir)
                && id != 0
                && self.total.contains(&id)
                && self.lock().free.contains(&id)
            {
                self.clear(dir, id);
            }
        }
    }
}

/// The kernel's project quotas.
pub struct Kernel;

/// `struct fsxattr` (linux/fs.h).
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

/// `struct fs_disk_quota` (linux/dqblk_xfs.h).
#[repr(C)]
#[derive(Default)]
struct FsDiskQuota {
    version: i8,
    flags: i8,
    fieldmask: u16,
    id: u32,
    blk_hardlimit: u64,
    blk_softlimit: u64,
    ino_hardlimit: u64,
    ino_softlimit: u64,
    bcount: u64,
    icount: u64,
    itimer: i32,
    btimer: i32,
    iwarns: u16,
    bwarns: u16,
    timer_hi: [i8; 4],
    rtb_hardlimit: u64,
    rtb_softlimit: u64,
    rtbcount: u64,
    rtbtimer: i32,
    rtbwarns: u16,
    padding3: i16,
    padding4: [u8; 8],
}

const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const PRJQUOTA: i32 = 2;
const Q_XGETQUOTA: i32 = 0x5803;
const Q_XSETQLIM: i32 = 0x5804;
const Q_XGETQSTAT: i32 = 0x5805;
const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;
const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;

fn qcmd(cmd: i32) -> i32 {
    (cmd << 8) | PRJQUOTA
}

impl Kernel {
    /// The block device `path` lives on (`xfs::getDeviceForPath`; Mesos
    /// asks libblkid, this reads the mount table).
    fn device(path: &Path) -> Result<std::ffi::CString, XfsError> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(path)
            .map_err(|e| io("cannot stat", path, e))?
            .dev();
        let wanted = format!("{}:{}", libc::major(dev), libc::minor(dev));
        let table = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| io("cannot read", Path::new("/proc/self/mountinfo"), e))?;
        for line in table.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.get(2) != Some(&wanted.as_str()) {
                continue;
            }
            if let Some(dash) = fields.iter().position(|f| *f == "-")
                && let Some(source) = fields.get(dash + 2)
                && source.starts_with('/')
            {
                return std::ffi::CString::new(*source)
                    .map_err(|e| io("bad device name for", path, std::io::Error::other(e)));
            }
        }
        Err(io(
            "no block device for",
            path,
            std::io::Error::from_raw_os_error(libc::ENODEV),
        ))
    }

    fn quotactl(cmd: i32, path: &Path, id: u32, buf: *mut libc::c_char) -> Result<(), XfsError> {
        let device = Self::device(path)?;
        // SAFETY: the device name is NUL-terminated and `buf` points at a
        // struct of the size the command reads or fills.
        let rc = unsafe { libc::quotactl(qcmd(cmd), device.as_ptr(), id as i32, buf) };
        if rc == -1 {
            return Err(io("quotactl on", path, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn set_one(path: &Path, id: u32) -> Result<(), XfsError> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io("cannot open", path, e))?;
        let mut attr = FsXattr::default();
        // SAFETY: FS_IOC_FSGETXATTR fills a `struct fsxattr`.
        if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR, &mut attr) } == -1 {
            return Err(io(
                "cannot read the XFS attributes of",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        attr.projid = id;
        if path.is_dir() && id != 0 {
            attr.xflags |= FS_XFLAG_PROJINHERIT;
        } else {
            attr.xflags &= !FS_XFLAG_PROJINHERIT;
        }
        // SAFETY: FS_IOC_FSSETXATTR reads a `struct fsxattr`.
        if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR, &attr) } == -1 {
            return Err(io(
                "cannot set the project of",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl ProjectQuotas for Kernel {
    fn check(&self, path: &Path) -> Result<(), XfsError> {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| io("bad path", path, std::io::Error::other(e)))?;
        // SAFETY: statfs fills the zeroed struct from a NUL-terminated path.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut fs) } == -1 {
            return Err(io("cannot statfs", path, std::io::Error::last_os_error()));
        }
        if fs.f_type as i64 != XFS_SUPER_MAGIC {
            return Err(XfsError::NotXfs(path.display().to_string()));
        }
        // `struct fs_quota_stat`: qs_flags is the u16 at offset 2.
        let mut stat = [0u8; 128];
        stat[0] = 1;
        Self::quotactl(Q_XGETQSTAT, path, 0, stat.as_mut_ptr().cast())
            .map_err(|_| XfsError::NotEnabled(path.display().to_string()))?;
        let flags = u16::from_ne_bytes([stat[2], stat[3]]);
        if flags & FS_QUOTA_PDQ_ACCT == 0 || flags & FS_QUOTA_PDQ_ENFD == 0 {
            return Err(XfsError::NotEnabled(path.display().to_string()));
        }
        Ok(())
    }

    fn project_id(&self, dir: &Path) -> Result<u32, XfsError> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(dir).map_err(|e| io("cannot open", dir, e))?;
        let mut attr = FsXattr::default();
        // SAFETY: FS_IOC_FSGETXATTR fills a `struct fsxattr`.
        if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR, &mut attr) } == -1 {
            return Err(io(
                "cannot read the XFS attributes of",
                dir,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(attr.projid)
    }

    /// `setProjectIdRecursively`: directories and regular files, links not
    /// followed, other filesystems (volumes, image mounts) skipped.
    fn set_project_id(&self, dir: &Path, id: u32) -> Result<(), XfsError> {
        use std::os::unix::fs::MetadataExt;
        let device = match std::fs::symlink_metadata(dir) {
            Ok(meta) => meta.dev(),
            // Clearing a sandbox already collected: nothing carries the id.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == 0 => return Ok(()),
            Err(e) => return Err(io("cannot stat", dir, e)),
        };
        let mut todo = vec![dir.to_path_buf()];
        while let Some(path) = todo.pop() {
            Self::set_one(&path, id)?;
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.dev() != device {
                    continue;
                }
                if meta.is_dir() {
                    todo.push(entry.path());
                } else if meta.is_file() {
                    Self::set_one(&entry.path(), id)?;
                }
            }
        }
        Ok(())
    }

    fn set_limit(&self, dir: &Path, id: u32, bytes: u64) -> Result<(), XfsError> {
        let blocks = bytes.div_ceil(512);
        let mut quota = FsDiskQuota {
            version: FS_DQUOT_VERSION,
            flags: FS_PROJ_QUOTA,
            fieldmask: FS_DQ_BSOFT | FS_DQ_BHARD,
            id,
            blk_hardlimit: blocks,
            blk_softlimit: blocks,
            ..FsDiskQuota::default()
        };
        Self::quotactl(Q_XSETQLIM, dir, id, (&raw mut quota).cast())
    }

    fn used(&self, dir: &Path, id: u32) -> Result<u64, XfsError> {
        let mut quota = FsDiskQuota {
            version: FS_DQUOT_VERSION,
            flags: FS_PROJ_QUOTA,
            id,
            ..FsDiskQuota::default()
        };
        Self::quotactl(Q_XGETQUOTA, dir, id, (&raw mut quota).cast())?;
        Ok(quota.bcount * 512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Project quotas kept in memory: what the kernel would record.
    #[derive(Default)]
    struct Recorded {
        ids: BTreeMap<PathBuf, u32>,
        limits: BTreeMap<u32, u64>,
        used: BTreeMap<u32, u64>,
    }

    struct InMemory(Arc<Mutex<Recorded>>);

    impl ProjectQuotas for InMemory {
        fn check(&self, path: &Path) -> Result<(), XfsError> {
            if path.ends_with("ext4") {
                return Err(XfsError::NotXfs(path.display().to_string()));
            }
            Ok(())
        }
        fn project_id(&self, dir: &Path) -> Result<u32, XfsError> {
            Ok(self.0.lock().unwrap().ids.get(dir).copied().unwrap_or(0))
        }
        fn set_project_id(&self, dir: &Path, id: u32) -> Result<(), XfsError> {
            if dir.ends_with("unwritable") {
                return Err(io(
                    "cannot set the project of",
                    dir,
                    std::io::Error::from_raw_os_error(libc::EPERM),
                ));
            }
            self.0.lock().unwrap().ids.insert(dir.to_path_buf(), id);
            Ok(())
        }
        fn set_limit(&self, _dir: &Path, id: u32, bytes: u64) -> Result<(), XfsError> {
            let mut r = self.0.lock().unwrap();
            if bytes == 0 {
                r.limits.remove(&id);
            } else {
                r.limits.insert(id, bytes);
            }
            Ok(())
        }
        fn used(&self, _dir: &Path, id: u32) -> Result<u64, XfsError> {
            Ok(self.0.lock().unwrap().used.get(&id).copied().unwrap_or(0))
        }
    }

    fn disk(range: &str, enforce: bool) -> (XfsDisk, Arc<Mutex<Recorded>>) {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let disk = XfsDisk::new(
            Box::new(InMemory(recorded.clone())),
            Path::new("/work"),
            range,
            enforce,
        )
        .unwrap();
        (disk, recorded)
    }

    #[test]
    fn ranges_parse_like_mesos_and_refuse_project_zero() {
        assert_eq!(
            parse_range("[5000-5002]").unwrap(),
            BTreeSet::from([5000, 5001, 5002])
        );
        assert_eq!(parse_range("[1-2,7-7]").unwrap(), BTreeSet::from([1, 2, 7]));
        for bad in [
            "5000-6000",
            "[0-10]",
            "[9-3]",
            "[a-b]",
            "[1-99999999]",
            "[]",
        ] {
            let e = parse_range(bad).unwrap_err().to_string();
            assert!(e.contains("--xfs_project_range"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_work_dir_that_is_not_xfs_is_refused_at_start() {
        let err = XfsDisk::new(
            Box::new(InMemory(Arc::default())),
            Path::new("/srv/ext4"),
            "[5000-10000]",
            true,
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "'/srv/ext4' is not an XFS filesystem");
    }

    #[test]
    fn each_sandbox_gets_its_own_project_and_limit_and_frees_it_when_it_ends() {
        let (disk, recorded) = disk("[5000-5001]", true);
        let a = disk.assign("a", Path::new("/work/a"), 32 << 20).unwrap();
        let b = disk.assign("b", Path::new("/work/b"), 64 << 20).unwrap();
        assert_eq!((a, b), (5000, 5001));
        assert!(matches!(
            disk.assign("c", Path::new("/work/c"), 1),
            Err(XfsError::Exhausted)
        ));
        {
            let r = recorded.lock().unwrap();
            assert_eq!(r.ids[Path::new("/work/a")], 5000);
            assert_eq!(r.limits[&5000], 32 << 20);
            assert_eq!(r.limits[&5001], 64 << 20);
        }
        recorded.lock().unwrap().used.insert(5000, 5 << 20);
        assert_eq!(disk.used("a"), Some(5 << 20));
        // A task joins the pod: the limit grows.
        disk.update("a", 48 << 20).unwrap();
        assert_eq!(recorded.lock().unwrap().limits[&5000], 48 << 20);

        disk.release("a");
        assert_eq!(disk.free_ids(), 1);
        assert_eq!(disk.project_of("a"), None);
        let r = recorded.lock().unwrap();
        assert_eq!(
            r.ids[Path::new("/work/a")],
            0,
            "the sandbox left the project"
        );
        assert!(!r.limits.contains_key(&5000), "the quota record is cleared");
        drop(r);
        assert_eq!(disk.assign("c", Path::new("/work/c"), 1).unwrap(), 5000);
    }

    #[test]
    fn accounting_only_without_enforcement() {
        let (disk, recorded) = disk("[7-7]", false);
        disk.assign("a", Path::new("/work/a"), 32 << 20).unwrap();
        assert!(recorded.lock().unwrap().limits.is_empty());
        recorded.lock().unwrap().used.insert(7, 1 << 20);
        assert_eq!(disk.used("a"), Some(1 << 20));
    }

    #[test]
    fn a_failed_assignment_gives_the_id_back() {
        let (disk, _) = disk("[7-7]", true);
        let err = disk
            .assign("a", Path::new("/work/unwritable"), 1 << 20)
            .unwrap_err();
        assert!(err.to_string().contains("unwritable"), "{err}");
        assert_eq!(disk.free_ids(), 1);
        assert_eq!(disk.project_of("a"), None);
    }

    #[test]
    fn recovery_keeps_live_ids_and_frees_those_of_ended_sandboxes() {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        {
            let mut r = recorded.lock().unwrap();
            r.ids.insert(PathBuf::from("/work/live"), 11);
            r.ids.insert(PathBuf::from("/work/ended"), 12);
            r.limits.insert(11, 5);
            r.limits.insert(12, 5);
        }
        let disk = XfsDisk::new(
            Box::new(InMemory(recorded.clone())),
            Path::new("/work"),
            "[10-12]",
            true,
        )
        .unwrap();
        disk.recover(
            &[("live".into(), PathBuf::from("/work/live"), 5)],
            &[PathBuf::from("/work/ended")],
        );
        assert_eq!(disk.project_of("live"), Some(11));
        assert_eq!(disk.free_ids(), 2);
        let r = recorded.lock().unwrap();
        assert_eq!(r.ids[Path::new("/work/ended")], 0);
        assert!(!r.limits.contains_key(&12));
        assert_eq!(r.limits[&11], 5, "the live sandbox keeps its quota");
        drop(r);
        // The next sandbox never gets the live one's id.
        assert_eq!(disk.assign("new", Path::new("/work/new"), 1).unwrap(), 10);
        assert_eq!(disk.assign("new2", Path::new("/work/new2"), 1).unwrap(), 12);
    }
}
