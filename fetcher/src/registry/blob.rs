//! The consumer side of a blob download: a blocking `Read` that hashes and
//! counts what passes through, so a layer is verified in the same pass that
//! unpacks it (no temporary tarball).

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::RegistryError;
use crate::stream::ChannelReader;

pub struct BlobReader {
    inner: ChannelReader,
    hasher: Sha256,
    expected_digest: String,
    expected_size: u64,
    seen: u64,
    what: String,
}

impl BlobReader {
    pub(crate) fn new(inner: ChannelReader, digest: String, size: u64, what: String) -> Self {
        BlobReader {
            inner,
            hasher: Sha256::new(),
            expected_digest: digest,
            expected_size: size,
            seen: 0,
            what,
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.seen
    }

    /// Reads what the consumer left (gzip trailer, tar padding) and checks
    /// size and digest. Only after this succeeds may the unpacked layer be
    /// published.
    pub fn finish(mut self) -> Result<u64, RegistryError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(RegistryError::Transfer {
                        url: self.what.clone(),
                        cause: e.to_string(),
                    });
                }
            }
        }
        if self.seen != self.expected_size {
            return Err(RegistryError::SizeMismatch {
                what: self.what,
                expected: self.expected_size,
                actual: self.seen,
            });
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != self.expected_digest {
            return Err(RegistryError::DigestMismatch {
                what: self.what,
                expected: self.expected_digest,
                actual,
            });
        }
        Ok(self.seen)
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.seen += n as u64;
        Ok(n)
    }
}
