//! Plumbing between the async download and the blocking writer/extractor.

use std::fs::File;
use std::io::{self, Read, Write};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

use crate::extract::{Budget, ExtractError};

/// Chunks in flight between the network and the extractor: enough to keep both
/// busy, bounded so a slow disk pushes back on the socket.
pub(crate) const CHANNEL_DEPTH: usize = 64;

pub(crate) type Chunk = io::Result<Bytes>;

/// A blocking `Read` over chunks sent by the download task. An empty chunk
/// marks the end of the body; a channel closed without it (the download
/// failed or the fetch was cancelled) is an error, so a truncated transfer is
/// never mistaken for a complete one.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Bytes,
    done: bool,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Chunk>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
            done: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) if b.is_empty() => self.done = true,
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Err(io::Error::other("download aborted")),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// Passes bytes through while also writing them to a file, charged to the
/// budget: how an archive is kept in the sandbox (as Mesos does) while it is
/// being extracted from the same stream.
pub(crate) struct TeeReader<'b, R> {
    inner: R,
    out: Option<File>,
    out_name: String,
    budget: &'b Budget,
    pub(crate) bytes: u64,
}

impl<'b, R: Read> TeeReader<'b, R> {
    pub(crate) fn new(inner: R, out: Option<File>, out_name: String, budget: &'b Budget) -> Self {
        TeeReader {
            inner,
            out,
            out_name,
            budget,
            bytes: 0,
        }
    }

    /// Reads (and writes) whatever the consumer left unread, e.g. tar padding
    /// after the end-of-archive marker.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }

    pub(crate) fn into_file(self) -> Option<File> {
        self.out
    }
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.bytes += n as u64;
            if let Some(out) = self.out.as_mut() {
                self.budget.charge(n as u64).map_err(io::Error::other)?;
                out.write_all(&buf[..n]).map_err(|cause| {
                    io::Error::other(ExtractError::Write {
                        path: self.out_name.clone(),
                        cause,
                    })
                })?;
            }
        }
        Ok(n)
    }
}
