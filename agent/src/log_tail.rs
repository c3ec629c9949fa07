//! Follows a container's log file (`stdout`, `stderr`) across the
//! supervisor's rotations: the live file is renamed to `.1` and a new one
//! started, or truncated when no copies are kept. The open file handle
//! keeps the renamed file readable, so nothing written before a rotation is
//! missed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bytes::Bytes;

const CHUNK: usize = 64 * 1024;

pub struct LogTail {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    /// Where the next read starts; `None` until the file is first opened,
    /// then from its end (only new output is followed).
    pos: Option<u64>,
    from_start_once_opened: bool,
}

impl LogTail {
    /// New output only.
    pub fn at_end(path: PathBuf) -> Self {
        let mut tail = Self {
            path,
            file: None,
            inode: 0,
            pos: None,
            from_start_once_opened: false,
        };
        tail.reopen();
        if tail.file.is_none() {
            // Not there yet: whatever it gets once created is new.
            tail.from_start_once_opened = true;
        }
        tail
    }

    /// Opens the live file if it is another file than ours; returns true
    /// when it switched.
    fn reopen(&mut self) -> bool {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return false;
        };
        if self.file.is_some() && meta.ino() == self.inode {
            return false;
        }
        let Ok(file) = File::open(&self.path) else {
            return false;
        };
        let first = self.file.is_none() && self.pos.is_none();
        self.pos = Some(if first && !self.from_start_once_opened {
            meta.len()
        } else {
            0
        });
        self.inode = meta.ino();
        self.file = Some(file);
        true
    }

    /// The next piece of new output, if any.
    pub fn read_new(&mut self) -> Option<Bytes> {
        if let Some(data) = self.read_current() {
            return Some(data);
        }
        // Ours is drained: a rotation may have started a new live file.
        // The writer may have appended to ours between that read and the
        // rename: once the rename is seen, everything written before it is
        // in our (old) file, so drain it once more before switching.
        if self.rotated() {
            if let Some(data) = self.read_current() {
                return Some(data);
            }
            if self.reopen() {
                return self.read_current();
            }
        }
        None
    }

    /// Whether the live path is another file than the one we hold (or we
    /// hold none and it exists now).
    fn rotated(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(meta) => self.file.is_none() || meta.ino() != self.inode,
            Err(_) => false,
        }
    }

    fn read_current(&mut self) -> Option<Bytes> {
        let file = self.file.as_mut()?;
        let len = file.metadata().ok()?.len();
        let mut pos = self.pos.unwrap_or(0);
        if len < pos {
            // Truncated in place (rotation without kept copies).
            pos = 0;
        }
        if len == pos {
            self.pos = Some(pos);
            return None;
        }
        file.seek(SeekFrom::Start(pos)).ok()?;
        let want = usize::try_from(len - pos).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; want];
        let n = file.read(&mut buf).ok()?;
        buf.truncate(n);
        self.pos = Some(pos + n as u64);
        (n > 0).then(|| Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn append(path: &std::path::Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn drain(tail: &mut LogTail) -> String {
        let mut out = String::new();
        while let Some(b) = tail.read_new() {
            out.push_str(&String::from_utf8_lossy(&b));
        }
        out
    }

    #[test]
    fn follows_new_output_across_renames_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        append(&path, "old\n");
        let mut tail = LogTail::at_end(path.clone());
        assert_eq!(drain(&mut tail), "");
        append(&path, "one\n");
        assert_eq!(drain(&mut tail), "one\n");
        // Rotation: the tail of the old file, then the new file.
        append(&path, "two\n");
        std::fs::rename(&path, dir.path().join("stdout.1")).unwrap();
        append(&path, "three\n");
        assert_eq!(drain(&mut tail), "two\nthree\n");
        // Truncation in place.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "four\n");
        assert_eq!(drain(&mut tail), "four\n");
    }

    #[test]
    fn a_file_created_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stderr");
        let mut tail = LogTail::at_end(path.clone());
        assert_eq!(drain(&mut tail), "");
        append(&path, "hello\n");
        assert_eq!(drain(&mut tail), "hello\n");
    }
}
