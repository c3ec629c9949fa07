//! The one error type of the cgroups module. Every variant names the cgroup
//! (relative path as the caller gave it), the control file or directory, and
//! the cause, because a bare "Permission denied" from cgroupfs is useless when
//! a pod has five cgroups in five hierarchies.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::LimitsError;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A read, write, mkdir, rmdir, open... failed.
    #[error("cgroup '{cgroup}': cannot {action} {}: {source}", file.display())]
    Io {
        cgroup: String,
        file: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// A control file that should exist does not: its controller is not
    /// mounted (v1) or not enabled in the parent's `cgroup.subtree_control`
    /// (v2). cgroupfs answers EACCES to an O_CREAT of a missing file, which
    /// reads like a permission problem, so this is reported separately.
    #[error(
        "cgroup '{cgroup}': {} does not exist (is the '{controller}' controller mounted / enabled for this cgroup?)",
        file.display()
    )]
    MissingFile {
        cgroup: String,
        file: PathBuf,
        controller: String,
    },

    /// A control file had content we could not understand.
    #[error("cgroup '{cgroup}': cannot parse {}: {reason} (content {content:?})", file.display())]
    Parse {
        cgroup: String,
        file: PathBuf,
        content: String,
        reason: String,
    },

    /// A live update asked for a memory limit below what the cgroup uses now.
    /// Lowering it anyway would make the kernel reclaim and then OOM-kill the
    /// container (v2) or fail with EBUSY after reclaim attempts (v1).
    #[error(
        "cgroup '{cgroup}': refusing to lower the memory limit to {requested_bytes} bytes: current usage is {usage_bytes} bytes ({}); lowering below usage would OOM-kill the container",
        file.display()
    )]
    BelowUsage {
        cgroup: String,
        file: PathBuf,
        usage_bytes: u64,
        requested_bytes: u64,
    },

    /// The limits themselves are inconsistent (e.g. limit below request).
    #[error("cgroup '{cgroup}': invalid limits: {source}")]
    InvalidLimits {
        cgroup: String,
        #[source]
        source: LimitsError,
    },

    /// The relative cgroup path would escape the cgroup root or is empty.
    #[error("invalid cgroup path {cgroup:?}: {reason}")]
    InvalidPath {
        cgroup: String,
        reason: &'static str,
    },

    /// Killing every process did not empty the cgroup in time (typically a
    /// process stuck in uninterruptible sleep).
    #[error(
        "cgroup '{cgroup}': processes {pids:?} still in {} after killing for {waited:?}",
        file.display()
    )]
    StillPopulated {
        cgroup: String,
        file: PathBuf,
        pids: Vec<i32>,
        waited: Duration,
    },

    /// The host's cgroups cannot serve the agent: said at start-up with
    /// what is wrong and how to fix it.
    #[error("{what}: {fix}")]
    Unusable { what: String, fix: String },

    /// `/proc/self/mountinfo` (or the given file) shows no usable cgroups.
    #[error("cannot detect cgroups from {}: {reason}", file.display())]
    Detect { file: PathBuf, reason: String },
}

impl CgroupError {
    pub(crate) fn io(
        cgroup: &str,
        file: impl Into<PathBuf>,
        action: &'static str,
        source: io::Error,
    ) -> Self {
        CgroupError::Io {
            cgroup: cgroup.to_owned(),
            file: file.into(),
            action,
            source,
        }
    }

    pub(crate) fn parse(
        cgroup: &str,
        file: impl Into<PathBuf>,
        content: &str,
        reason: impl Into<String>,
    ) -> Self {
        // Control files are small, but memory.stat is not: keep messages short.
        let mut content = content.trim().to_owned();
        if content.len() > 200 {
            let mut cut = 200;
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            content.truncate(cut);
            content.push_str("...");
        }
        CgroupError::Parse {
            cgroup: cgroup.to_owned(),
            file: file.into(),
            content,
            reason: reason.into(),
        }
    }
}
