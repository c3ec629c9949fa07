//! A container's stdout/stderr: the supervisor reads the pipes the
//! container writes to and appends to the sandbox's `stdout`/`stderr`,
//! rotating them (`stdout` -> `stdout.1` -> ... -> `stdout.<keep>`) so a chatty
//! task cannot fill the disk (Mesos grows them without bound by default).
//! Owning the pipe rather than handing the container the file is also what
//! lets several attachers follow the live output later.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Rotation of a container's `stdout`/`stderr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPolicy {
    /// Rotate once a file would grow past this many bytes; 0 disables
    /// rotation (Mesos's behaviour: the file grows without limit).
    pub max_bytes: u64,
    /// Rotated files kept beside the live one (`stdout.1` is the newest).
    pub keep: u32,
}

impl Default for LogPolicy {
    /// 10 MiB like Mesos's logrotate logger's default `max_stdout_size`,
    /// with two older files: at most 30 MiB per stream.
    fn default() -> Self {
        Self {
            max_bytes: 10 << 20,
            keep: 2,
        }
    }
}

/// One output file with size-bounded rotation.
///
/// A file may have two writers: a command task writes into its command
/// executor's `stdout`/`stderr` (where Mesos puts a command task's output).
/// Each writer follows the other's rotations and counts the other's
/// appends: before writing it re-reads the live file's identity and size.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// (device, inode) of `file`.
    identity: (u64, u64),
    size: u64,
    policy: LogPolicy,
}

impl RotatingFile {
    pub fn open(path: &Path, policy: LogPolicy) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            identity: (meta.dev(), meta.ino()),
            size: meta.len(),
            policy,
        })
    }

    /// Catches up with another writer of the same path: reopens the live
    /// file when it was rotated away, and takes its current size.
    fn follow(&mut self) -> std::io::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                self.size = meta.len();
                Ok(())
            }
            _ => {
                let reopened = Self::open(&self.path, self.policy)?;
                *self = reopened;
                Ok(())
            }
        }
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts `path.(k-1)` to `path.k`, `path` to `path.1`, and starts an
    /// empty `path`. With `keep == 0` the live file is just truncated.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.policy.keep == 0 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.policy.keep).rev() {
                match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let meta = self.file.metadata()?;
            self.identity = (meta.dev(), meta.ino());
        }
        self.size = 0;
        Ok(())
    }

    /// Appends `data`, rotating first when it would not fit. A single chunk
    /// larger than the bound is split across files.
    pub fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let max = self.policy.max_bytes;
        if max > 0 {
            self.follow()?;
        }
        while !data.is_empty() {
            if max > 0 && self.size >= max {
                self.rotate()?;
            }
            let room = if max == 0 {
                data.len()
            } else {
                (max - self.size).min(data.len() as u64) as usize
            };
            self.file.write_all(&data[..room])?;
            self.size += room as u64;
            data = &data[room..];
        }
        Ok(())
    }
}

/// The read end of a container's stdout or stderr pipe and the file it
/// goes to.
#[derive(Debug)]
pub struct OutputPipe {
    pipe: File,
    sink: RotatingFile,
}

/// What a drain saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Everything available was copied; the writer may write more.
    Open,
    /// Every writer closed its end.
    Closed,
}

impl OutputPipe {
    /// `read_end` must be non-blocking.
    pub fn new(read_end: OwnedFd, sink: RotatingFile) -> Self {
        Self {
            pipe: File::from(read_end),
            sink,
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.pipe.as_fd()
    }

    /// Copies what the pipe holds into the file. A full disk loses output
    /// (logged once per drain) rather than stalling the container.
    pub fn drain(&mut self) -> Drained {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) => return Drained::Closed,
                Ok(n) => {
                    if let Err(e) = self.sink.write(&buf[..n]) {
                        tracing::warn!(file = %self.sink.path.display(), "container output lost: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Drained::Open,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Drained::Closed,
            }
        }
    }
}

/// A pipe for one output stream: the container's (blocking) write end and
/// our non-blocking read end, both close-on-exec (libcontainer dup2s the
/// write end onto the container's fd 1 or 2).
pub fn output_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let flags = nix::fcntl::fcntl(read.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(read.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn rotates_at_the_bound_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let policy = LogPolicy {
            max_bytes: 4,
            keep: 2,
        };
        let mut file = RotatingFile::open(&path, policy).unwrap();
        file.write(b"aaaabb").unwrap();
        file.write(b"bbcccc").unwrap();
        file.write(b"d").unwrap();
        assert_eq!(read(&path), "d");
        assert_eq!(read(&dir.path().join("stdout.1")), "cccc");
        assert_eq!(read(&dir.path().join("stdout.2")), "bbbb");
        assert!(!dir.path().join("stdout.3").exists());
    }

    #[test]
    fn zero_bound_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stderr");
        let mut file = RotatingFile::open(
            &path,
            LogPolicy {
                max_bytes: 0,
                keep: 3,
            },
        )
        .unwrap();
        for _ in 0..100 {
            file.write(b"0123456789").unwrap();
        }
        assert_eq!(read(&path).len(), 1000);
        assert!(!dir.path().join("stderr.1").exists());
    }

    #[test]
    fn reopening_continues_the_size_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        std::fs::write(&path, b"xyz").unwrap();
        let policy = LogPolicy {
            max_bytes: 4,
            keep: 1,
        };
        let mut file = RotatingFile::open(&path, policy).unwrap();
        file.write(b"12").unwrap();
        assert_eq!(read(&path), "2");
        assert_eq!(read(&dir.path().join("stdout.1")), "xyz1");
    }

    #[test]
    fn two_writers_of_one_file_share_its_size_and_follow_each_others_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let policy = LogPolicy {
            max_bytes: 4,
            keep: 2,
        };
        let mut executor = RotatingFile::open(&path, policy).unwrap();
        let mut task = RotatingFile::open(&path, policy).unwrap();
        executor.write(b"ab").unwrap();
        task.write(b"cd").unwrap();
        assert_eq!(read(&path), "abcd", "the task counted the executor's bytes");
        task.write(b"ef").unwrap();
        assert_eq!(read(&dir.path().join("stdout.1")), "abcd");
        executor.write(b"gh").unwrap();
        assert_eq!(read(&path), "efgh", "the executor followed the rotation");
        executor.write(b"i").unwrap();
        task.write(b"j").unwrap();
        assert_eq!(read(&path), "ij");
        assert_eq!(read(&dir.path().join("stdout.1")), "efgh");
        assert_eq!(read(&dir.path().join("stdout.2")), "abcd");
    }

    #[test]
    fn a_pipe_is_drained_into_the_file_until_its_writer_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let (read_end, write_end) = output_pipe().unwrap();
        let mut pipe = OutputPipe::new(
            read_end,
            RotatingFile::open(&path, LogPolicy::default()).unwrap(),
        );
        let mut writer = File::from(write_end);
        writer.write_all(b"hello ").unwrap();
        assert_eq!(pipe.drain(), Drained::Open);
        writer.write_all(b"world").unwrap();
        drop(writer);
        assert_eq!(pipe.drain(), Drained::Closed);
        assert_eq!(read(&path), "hello world");
    }
}
