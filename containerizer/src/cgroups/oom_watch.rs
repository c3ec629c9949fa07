//! OOM-kill notification for a single-threaded poll loop (the supervisor,
//! DESIGN.md section 2): the watcher exposes one non-blocking fd to poll for
//! readability, and `check()` turns a wake-up into "N more OOM kills".
//!
//! - v1: an eventfd registered through `cgroup.event_control` on
//!   `memory.oom_control`. The kernel signals it when the memcg (or an
//!   ancestor whose limit was hit) *enters* OOM, i.e. before the victim is
//!   killed, and once more when the cgroup is removed. The truth is the
//!   `oom_kill` counter in `memory.oom_control` (kernel >= 4.13), so `check`
//!   reads it, waiting briefly for it to move after a notification.
//! - v2: inotify on `memory.events`, which the kernel marks modified after
//!   each event (low/high/max/oom/oom_kill); `check` compares `oom_kill`.
//!
//! Exit codes and `failcnt` are not reliable OOM signals (DESIGN.md section
//! 3); callers should also read the counter once more when the container's
//! init is reaped, before removing the cgroup.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::error::CgroupError;
use super::fs;
use super::stats::parse_oom_kill_count;

/// How long `check` waits for the v1 counter after an eventfd notification:
/// the notification precedes the kill by the time the OOM killer needs to
/// pick and signal a victim (microseconds to a few ms).
const V1_COUNTER_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomEvent {
    /// Kills since the previous event (or since the watcher was created).
    pub new_kills: u64,
    /// The cgroup's `oom_kill` counter now; `None` on v1 kernels without it
    /// (then the notification itself is taken as one OOM, as Mesos does).
    pub total_kills: Option<u64>,
}

enum Source {
    V1 {
        eventfd: EventFd,
        // The eventfd registration lives as long as this open file.
        _oom_control: File,
    },
    V2 {
        inotify: Inotify,
    },
}

pub struct OomWatcher {
    cgroup: String,
    counter_file: PathBuf,
    source: Source,
    last_count: u64,
}

impl std::fmt::Debug for OomWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OomWatcher")
            .field("cgroup", &self.cgroup)
            .field("counter_file", &self.counter_file)
            .field("fd", &self.as_raw_fd())
            .field("last_count", &self.last_count)
            .finish()
    }
}

impl OomWatcher {
    /// v1: `memory_dir` is the cgroup's directory in the memory hierarchy.
    pub(crate) fn v1(cgroup: &str, memory_dir: &Path) -> Result<Self, CgroupError> {
        let counter_file = memory_dir.join("memory.oom_control");
        let oom_control = File::open(&counter_file).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                CgroupError::MissingFile {
                    cgroup: cgroup.to_owned(),
                    file: counter_file.clone(),
                    controller: "memory".into(),
                }
            } else {
                CgroupError::io(cgroup, &counter_file, "open", e)
            }
        })?;
        let eventfd =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| {
                    CgroupError::io(cgroup, &counter_file, "create an eventfd for", e.into())
                })?;
        let registration = format!(
            "{} {}",
            eventfd.as_fd().as_raw_fd(),
            oom_control.as_raw_fd()
        );
        fs::write(
            cgroup,
            &memory_dir.join("cgroup.event_control"),
            &registration,
        )?;
        let last_count = read_count(cgroup, &counter_file)?.unwrap_or(0);
        Ok(OomWatcher {
            cgroup: cgroup.to_owned(),
            counter_file,
            source: Source::V1 {
                eventfd,
                _oom_control: oom_control,
            },
            last_count,
        })
    }

    /// v2: `dir` is the cgroup's directory.
    pub(crate) fn v2(cgroup: &str, dir: &Path) -> Result<Self, CgroupError> {
        let counter_file = dir.join("memory.events");
        let last_count = match fs::read_opt(cgroup, &counter_file)? {
            Some(text) => parse_oom_kill_count(&text).unwrap_or(0),
            None => {
                return Err(CgroupError::MissingFile {
                    cgroup: cgroup.to_owned(),
                    file: counter_file,
                    controller: "memory".into(),
                });
            }
        };
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|e| {
                CgroupError::io(cgroup, &counter_file, "create an inotify fd for", e.into())
            })?;
        inotify
            .add_watch(&counter_file, AddWatchFlags::IN_MODIFY)
            .map_err(|e| CgroupError::io(cgroup, &counter_file, "watch", e.into()))?;
        Ok(OomWatcher {
            cgroup: cgroup.to_owned(),
            counter_file,
            source: Source::V2 { inotify },
            last_count,
        })
    }

    pub fn cgroup(&self) -> &str {
        &self.cgroup
    }

    /// The `oom_kill` count as of the last `check` (or creation).
    pub fn oom_kills(&self) -> u64 {
        self.last_count
    }

    /// Call when the fd polls readable (calling it spuriously is fine: it
    /// never blocks beyond the short v1 grace wait after a notification).
    /// `Ok(None)`: nothing new, or the cgroup is gone.
    pub fn check(&mut self) -> Result<Option<OomEvent>, CgroupError> {
        let notified = self.drain()?;
        let Some(text) = fs::read_opt(&self.cgroup, &self.counter_file)? else {
            return Ok(None); // cgroup removed (v1 also notifies on removal)
        };
        let count = parse_oom_kill_count(&text);
        if let Some(event) = self.advance(count) {
            return Ok(Some(event));
        }
        if !(notified && matches!(self.source, Source::V1 { .. })) {
            return Ok(None);
        }
        if count.is_none() {
            // Pre-4.13 kernel: no counter, the notification is all we have.
            return Ok(Some(OomEvent {
                new_kills: 1,
                total_kills: None,
            }));
        }
        // v1 notified on entering OOM; give the kill a moment to be counted.
        let mut event = None;
        fs::wait_until(V1_COUNTER_GRACE, || {
            let Some(text) = fs::read_opt(&self.cgroup, &self.counter_file)? else {
                return Ok(true);
            };
            event = self.advance(parse_oom_kill_count(&text));
            Ok(event.is_some())
        })?;
        Ok(event)
    }

    fn advance(&mut self, count: Option<u64>) -> Option<OomEvent> {
        let count = count?;
        if count > self.last_count {
            let new_kills = count - self.last_count;
            self.last_count = count;
            Some(OomEvent {
                new_kills,
                total_kills: Some(count),
            })
        } else {
            None
        }
    }

    /// Empties the fd so that it stops polling readable; returns whether it
    /// had anything.
    fn drain(&self) -> Result<bool, CgroupError> {
        let err = |e: Errno| {
            CgroupError::io(
                &self.cgroup,
                &self.counter_file,
                "read notifications for",
                e.into(),
            )
        };
        match &self.source {
            Source::V1 { eventfd, .. } => match eventfd.read() {
                Ok(n) => Ok(n > 0),
                Err(Errno::EAGAIN) => Ok(false),
                Err(e) => Err(err(e)),
            },
            Source::V2 { inotify } => {
                let mut any = false;
                loop {
                    match inotify.read_events() {
                        Ok(events) if events.is_empty() => return Ok(any),
                        Ok(_) => any = true,
                        Err(Errno::EAGAIN) => return Ok(any),
                        Err(e) => return Err(err(e)),
                    }
                }
            }
        }
    }
}

fn read_count(cgroup: &str, file: &Path) -> Result<Option<u64>, CgroupError> {
    Ok(parse_oom_kill_count(&fs::read(cgroup, file)?))
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::V1 { eventfd, .. } => eventfd.as_fd(),
            Source::V2 { inotify } => inotify.as_fd(),
        }
    }
}

impl AsRawFd for OomWatcher {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    fn readable(w: &OomWatcher, timeout_ms: u16) -> bool {
        let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(timeout_ms)).unwrap() > 0
    }

    #[test]
    fn v1_fake_eventfd() {
        let dir = tempfile::tempdir().unwrap();
        let oom = dir.path().join("memory.oom_control");
        std::fs::write(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        let mut w = OomWatcher::v1("pod/c", dir.path()).unwrap();
        // Registration line: "<eventfd> <oom_control fd>".
        let reg = std::fs::read_to_string(dir.path().join("cgroup.event_control")).unwrap();
        assert_eq!(reg.split(' ').next().unwrap(), w.as_raw_fd().to_string());
        assert!(!readable(&w, 0));
        assert_eq!(w.check().unwrap(), None);

        // The "kernel" counts a kill and signals the eventfd.
        std::fs::write(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        nix::unistd::write(w.as_fd(), &1u64.to_ne_bytes()).unwrap();
        assert!(readable(&w, 0));
        assert_eq!(
            w.check().unwrap(),
            Some(OomEvent {
                new_kills: 2,
                total_kills: Some(2)
            })
        );
        assert!(!readable(&w, 0), "check drains the eventfd");
        assert_eq!(w.oom_kills(), 2);

        // A notification without a counter change (cgroup removal, or OOM
        // resolved by reclaim) is not an OOM kill.
        nix::unistd::write(w.as_fd(), &1u64.to_ne_bytes()).unwrap();
        assert_eq!(w.check().unwrap(), None);

        // Old kernel without the counter: the notification is the OOM.
        std::fs::write(&oom, "oom_kill_disable 0\nunder_oom 1\n").unwrap();
        nix::unistd::write(w.as_fd(), &1u64.to_ne_bytes()).unwrap();
        assert_eq!(
            w.check().unwrap(),
            Some(OomEvent {
                new_kills: 1,
                total_kills: None
            })
        );

        // Cgroup gone: nothing, no error.
        std::fs::remove_file(&oom).unwrap();
        nix::unistd::write(w.as_fd(), &1u64.to_ne_bytes()).unwrap();
        assert_eq!(w.check().unwrap(), None);
    }

    #[test]
    fn v2_fake_inotify() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n").unwrap();
        let mut w = OomWatcher::v2("pod/c", dir.path()).unwrap();
        assert_eq!(w.oom_kills(), 1, "baseline is the count at creation");
        assert!(!readable(&w, 0));

        // A "max" event only: readable, but no OOM kill.
        std::fs::write(&events, "low 0\nhigh 0\nmax 5\noom 0\noom_kill 1\n").unwrap();
        assert!(readable(&w, 1000));
        assert_eq!(w.check().unwrap(), None);
        assert!(!readable(&w, 0));

        std::fs::write(&events, "low 0\nhigh 0\nmax 9\noom 1\noom_kill 2\n").unwrap();
        assert!(readable(&w, 1000));
        assert_eq!(
            w.check().unwrap(),
            Some(OomEvent {
                new_kills: 1,
                total_kills: Some(2)
            })
        );
        assert!(!readable(&w, 0));
    }

    #[test]
    fn missing_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            OomWatcher::v1("c", dir.path()),
            Err(CgroupError::MissingFile { .. })
        ));
        assert!(matches!(
            OomWatcher::v2("c", dir.path()),
            Err(CgroupError::MissingFile { .. })
        ));
    }
}
