//! RecordIO framing, as Mesos uses it for streaming requests and responses
//! (`docs/recordio.md`): every record is its length in bytes as ASCII decimal,
//! a `\n`, then exactly that many bytes.
//!
//! ```text
//! 20\n{"type":"HEARTBEAT"}0\n
//! ```
//!
//! There is no stream header or trailer, and a zero-length record is legal on
//! the wire (Mesos's decoder returns it, so this one does too).
//!
//! [`RecordIoCodec`] plugs into `tokio_util::codec`; [`Decoder`] is the same
//! state machine for callers without tokio that receive arbitrary chunks.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

/// Default bound on one record. Mesos's largest messages (a big cluster's
/// GET_STATE or SUBSCRIBED) are a few MiB; anything far beyond that is more
/// likely a corrupt or hostile length than a real record.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 16 * 1024 * 1024;

/// `u64::MAX` has 20 decimal digits; a longer header can only be garbage, and
/// bounding it keeps a stream of digits from being read forever.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a RecordIO stream could not be decoded. Every variant but `Io` carries
/// the byte offset, counted from the start of the stream, where it went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordIoError {
    #[error(
        "RecordIO: byte {byte:#04x} at offset {offset} is not a decimal digit in a length header"
    )]
    InvalidLengthByte { offset: u64, byte: u8 },
    #[error("RecordIO: empty length header at offset {offset}")]
    EmptyLength { offset: u64 },
    #[error(
        "RecordIO: length header starting at offset {offset} is longer than {MAX_HEADER_DIGITS} digits"
    )]
    LengthTooLong { offset: u64 },
    #[error("RecordIO: length header starting at offset {offset} overflows a 64-bit integer")]
    LengthOverflow { offset: u64 },
    #[error(
        "RecordIO: record at offset {offset} claims {length} bytes, above the limit of {max} bytes"
    )]
    RecordTooLarge {
        offset: u64,
        length: u64,
        max: usize,
    },
    #[error("RecordIO: stream ended at offset {offset} inside a length header")]
    EofInHeader { offset: u64 },
    #[error(
        "RecordIO: stream ended at offset {offset} inside a {length}-byte record, {missing} bytes short"
    )]
    EofInRecord {
        offset: u64,
        length: usize,
        missing: usize,
    },
    /// Reading the underlying stream failed (only through `tokio_util`'s
    /// framed readers, whose `Decoder` trait requires this conversion).
    /// `Arc` keeps the enum `Clone` so a failed decoder can repeat its error.
    #[error("RecordIO: reading the stream failed: {0}")]
    Io(#[source] Arc<std::io::Error>),
}

impl From<std::io::Error> for RecordIoError {
    fn from(e: std::io::Error) -> Self {
        RecordIoError::Io(Arc::new(e))
    }
}

impl RecordIoError {
    /// The stream offset of the fault (`None` for I/O errors).
    pub fn offset(&self) -> Option<u64> {
        match self {
            RecordIoError::InvalidLengthByte { offset, .. }
            | RecordIoError::EmptyLength { offset }
            | RecordIoError::LengthTooLong { offset }
            | RecordIoError::LengthOverflow { offset }
            | RecordIoError::RecordTooLarge { offset, .. }
            | RecordIoError::EofInHeader { offset }
            | RecordIoError::EofInRecord { offset, .. } => Some(*offset),
            RecordIoError::Io(_) => None,
        }
    }
}

/// Appends the `<length>\n` header for a record of `len` bytes.
pub fn encode_header(len: usize, dst: &mut BytesMut) {
    // Formatted by hand: no allocation, and `fmt::Write` would hand back a
    // `Result` that can never be an error.
    let mut digits = [0u8; MAX_HEADER_DIGITS];
    let mut start = digits.len();
    let mut n = len;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[start..]);
    dst.extend_from_slice(b"\n");
}

/// Appends `record`, framed, to `dst`.
pub fn encode(record: &[u8], dst: &mut BytesMut) {
    dst.reserve(MAX_HEADER_DIGITS + 1 + record.len());
    encode_header(record.len(), dst);
    dst.extend_from_slice(record);
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a length header that began at stream offset `start`. Header
    /// bytes are consumed as they arrive, so only these counters are kept.
    Header {
        start: u64,
        digits: usize,
        value: u64,
    },
    /// Waiting for `length` record bytes.
    Record { length: usize },
}

/// The RecordIO codec for `tokio_util::codec::{FramedRead, FramedWrite}`.
///
/// Decoding yields each record's bytes (sharing the read buffer, no copy).
/// After an error the codec is failed for good and repeats that error: past
/// a bad header there is no way to find the next record boundary.
#[derive(Debug, Clone)]
pub struct RecordIoCodec {
    max_record_size: usize,
    state: State,
    /// Stream offset of the first byte not yet consumed.
    offset: u64,
    failed: Option<RecordIoError>,
}

impl Default for RecordIoCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordIoCodec {
    /// A codec accepting records up to [`DEFAULT_MAX_RECORD_SIZE`].
    pub fn new() -> Self {
        Self::with_max_record_size(DEFAULT_MAX_RECORD_SIZE)
    }

    /// A codec rejecting any record longer than `max_record_size` bytes.
    pub fn with_max_record_size(max_record_size: usize) -> Self {
        RecordIoCodec {
            max_record_size,
            state: State::Header {
                start: 0,
                digits: 0,
                value: 0,
            },
            offset: 0,
            failed: None,
        }
    }

    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Decodes the next record from the front of `buf`, consuming what it
    /// uses; `Ok(None)` means more bytes are needed.
    fn next_record(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.step(buf);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        loop {
            match self.state {
                State::Header {
                    start,
                    mut digits,
                    mut value,
                } => {
                    let mut used = 0;
                    let mut complete = false;
                    for &byte in buf.iter() {
                        let at = self.offset + used as u64;
                        used += 1;
                        match byte {
                            b'\n' => {
                                complete = true;
                                break;
                            }
                            b'0'..=b'9' => {
                                if digits == MAX_HEADER_DIGITS {
                                    return Err(RecordIoError::LengthTooLong { offset: start });
                                }
                                digits += 1;
                                value = value
                                    .checked_mul(10)
                                    .and_then(|v| v.checked_add(u64::from(byte - b'0')))
                                    .ok_or(RecordIoError::LengthOverflow { offset: start })?;
                            }
                            _ => return Err(RecordIoError::InvalidLengthByte { offset: at, byte }),
                        }
                    }
                    buf.advance(used);
                    self.offset += used as u64;
                    if !complete {
                        self.state = State::Header {
                            start,
                            digits,
                            value,
                        };
                        return Ok(None);
                    }
                    if digits == 0 {
                        return Err(RecordIoError::EmptyLength { offset: start });
                    }
                    let too_large = RecordIoError::RecordTooLarge {
                        offset: start,
                        length: value,
                        max: self.max_record_size,
                    };
                    let length = usize::try_from(value).map_err(|_| too_large.clone())?;
                    if length > self.max_record_size {
                        return Err(too_large);
                    }
                    // Loop on: a zero-length record is complete right away.
                    self.state = State::Record { length };
                }
                State::Record { length } => {
                    if buf.len() < length {
                        return Ok(None);
                    }
                    let record = buf.split_to(length).freeze();
                    self.offset += length as u64;
                    self.state = State::Header {
                        start: self.offset,
                        digits: 0,
                        value: 0,
                    };
                    return Ok(Some(record));
                }
            }
        }
    }

    /// The error for a stream ending now with `buffered` unconsumed bytes,
    /// if it ends inside a record. Records already decodable must have been
    /// taken out first.
    fn check_eof(&mut self, buffered: usize) -> Result<(), RecordIoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let error = match self.state {
            State::Header { digits: 0, .. } => return Ok(()),
            State::Header { .. } => RecordIoError::EofInHeader {
                offset: self.offset,
            },
            State::Record { length } => RecordIoError::EofInRecord {
                offset: self.offset + buffered as u64,
                length,
                missing: length - buffered,
            },
        };
        self.failed = Some(error.clone());
        Err(error)
    }
}

impl tokio_util::codec::Decoder for RecordIoCodec {
    type Item = Bytes;
    type Error = RecordIoError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        self.next_record(buf)
    }

    // The default would miss a stream cut inside a header: header bytes are
    // consumed as they arrive, so the buffer is empty there.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        match self.next_record(buf)? {
            Some(record) => Ok(Some(record)),
            None => self.check_eof(buf.len()).map(|()| None),
        }
    }
}

impl tokio_util::codec::Encoder<Bytes> for RecordIoCodec {
    type Error = RecordIoError;

    fn encode(&mut self, record: Bytes, dst: &mut BytesMut) -> Result<(), RecordIoError> {
        encode(&record, dst);
        Ok(())
    }
}

/// A push decoder for callers without tokio: feed it chunks as they arrive,
/// split anywhere, and it returns the records they complete.
///
/// ```
/// use tepui_proto::recordio::Decoder;
/// let mut decoder = Decoder::new();
/// assert!(decoder.feed(b"5\nhel").unwrap().is_empty());
/// assert_eq!(decoder.feed(b"lo0\n").unwrap(), vec!["hello", ""]);
/// decoder.finish().unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    codec: RecordIoCodec,
    /// Bytes of the record in progress (header bytes never wait here).
    buffer: BytesMut,
}

impl Decoder {
    /// A decoder accepting records up to [`DEFAULT_MAX_RECORD_SIZE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder rejecting any record longer than `max_record_size` bytes.
    pub fn with_max_record_size(max_record_size: usize) -> Self {
        Decoder {
            codec: RecordIoCodec::with_max_record_size(max_record_size),
            buffer: BytesMut::new(),
        }
    }

    /// Decodes `chunk` and returns the records it completes, in order.
    ///
    /// If the chunk also holds a fault, the records before it are returned
    /// now and the error on the next call (to `feed` or `finish`); once
    /// failed, the decoder only repeats that error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
        if let Some(e) = &self.codec.failed {
            return Err(e.clone());
        }
        self.buffer.extend_from_slice(chunk);
        let mut records = Vec::new();
        loop {
            match self.codec.next_record(&mut self.buffer) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => return Ok(records),
                Err(e) if records.is_empty() => return Err(e),
                // The codec keeps the error for the next call.
                Err(_) => return Ok(records),
            }
        }
    }

    /// Declares the end of the stream: an error if it stopped inside a
    /// record (or an earlier fault is still unreported).
    pub fn finish(&mut self) -> Result<(), RecordIoError> {
        self.codec.check_eof(self.buffer.len())
    }

    /// Bytes consumed so far, i.e. the stream offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.codec.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder as _, Encoder as _};

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for r in records {
            encode(r, &mut buf);
        }
        buf.to_vec()
    }

    /// Feeds `input` in one chunk and returns the records and the error
    /// (from `feed`, or left over for `finish`), if any.
    fn decode_all(input: &[u8], max: usize) -> (Vec<Bytes>, Option<RecordIoError>) {
        let mut d = Decoder::with_max_record_size(max);
        match d.feed(input) {
            Ok(records) => (records, d.finish().err()),
            Err(e) => (Vec::new(), Some(e)),
        }
    }

    fn error_of(input: &[u8]) -> RecordIoError {
        match decode_all(input, 100) {
            (_, Some(e)) => e,
            (records, None) => panic!("expected an error, decoded {records:?}"),
        }
    }

    #[test]
    fn encodes_mesos_framing() {
        assert_eq!(framed(&[b"hello", b"world!"]), b"5\nhello6\nworld!");
        assert_eq!(framed(&[b""]), b"0\n");
        let mut buf = BytesMut::new();
        encode_header(usize::MAX, &mut buf);
        assert_eq!(&buf[..], format!("{}\n", usize::MAX).as_bytes());
    }

    #[test]
    fn decodes_the_docs_example_and_zero_length_records() {
        let event = br#"{"type":"HEARTBEAT"}"#;
        let mut input = format!("{}\n", event.len()).into_bytes();
        input.extend_from_slice(event);
        input.extend_from_slice(b"0\n0\n3\nabc");
        let (records, err) = decode_all(&input, 100);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(records, vec![&event[..], b"", b"", b"abc"]);
    }

    #[test]
    fn leading_zeros_are_a_length() {
        let (records, err) = decode_all(b"003\nabc", 100);
        assert!(err.is_none());
        assert_eq!(records, vec![&b"abc"[..]]);
    }

    #[test]
    fn non_digit_names_the_byte_and_its_offset() {
        match error_of(b"3\nabc1x\n") {
            RecordIoError::InvalidLengthByte {
                offset: 6,
                byte: b'x',
            } => {}
            e => panic!("{e:?}"),
        }
        // A CRLF line ending or a sign is not Mesos's format either.
        assert!(matches!(
            error_of(b"3\r\nabc"),
            RecordIoError::InvalidLengthByte {
                offset: 1,
                byte: b'\r'
            }
        ));
        assert!(matches!(
            error_of(b"+3\nabc"),
            RecordIoError::InvalidLengthByte {
                offset: 0,
                byte: b'+'
            }
        ));
        let msg = error_of(b"1\naz").to_string();
        assert!(msg.contains("0x7a") && msg.contains("offset 3"), "{msg}");
    }

    #[test]
    fn empty_length_line_is_an_error() {
        assert!(matches!(
            error_of(b"\n"),
            RecordIoError::EmptyLength { offset: 0 }
        ));
        assert!(matches!(
            error_of(b"2\nab\n2\nab"),
            RecordIoError::EmptyLength { offset: 4 }
        ));
    }

    #[test]
    fn header_longer_than_twenty_digits_is_an_error() {
        // Twenty zeros still fit; the 21st digit does not, whatever its value.
        let (records, err) = decode_all(b"00000000000000000000\n", 100);
        assert!(err.is_none());
        assert_eq!(records, vec![Bytes::new()]);
        assert!(matches!(
            error_of(b"1\nx000000000000000000000\n"),
            RecordIoError::LengthTooLong { offset: 3 }
        ));
        let msg = error_of(b"123456789012345678901").to_string();
        assert!(msg.contains("20 digits"), "{msg}");
        // An endless run of digits fails without waiting for a newline.
        let mut d = Decoder::new();
        assert!(matches!(
            d.feed(&[b'1'; 4096]),
            Err(RecordIoError::LengthTooLong { offset: 0 })
        ));
    }

    #[test]
    fn header_overflowing_u64_is_an_error() {
        let max = u64::MAX.to_string();
        assert!(matches!(
            error_of(format!("{max}\n").as_bytes()),
            RecordIoError::RecordTooLarge {
                length: u64::MAX,
                ..
            }
        ));
        assert!(matches!(
            error_of(b"18446744073709551616\n"),
            RecordIoError::LengthOverflow { offset: 0 }
        ));
        assert!(matches!(
            error_of(b"0\n99999999999999999999\n"),
            RecordIoError::LengthOverflow { offset: 2 }
        ));
    }

    #[test]
    fn record_above_the_limit_names_length_and_limit() {
        let e = error_of(b"3\nabc101\n");
        assert!(matches!(
            e,
            RecordIoError::RecordTooLarge {
                offset: 5,
                length: 101,
                max: 100
            }
        ));
        let msg = e.to_string();
        assert!(msg.contains("101") && msg.contains("100"), "{msg}");
        // Exactly the limit is fine.
        let (records, err) = decode_all(&framed(&[&[7u8; 100]]), 100);
        assert!(err.is_none());
        assert_eq!(records[0].len(), 100);
        assert_eq!(
            Decoder::new().codec.max_record_size(),
            DEFAULT_MAX_RECORD_SIZE
        );
    }

    #[test]
    fn huge_claimed_length_allocates_only_what_arrived() {
        let mut d = Decoder::with_max_record_size(usize::MAX);
        assert!(d.feed(b"1000000000000\nabc").unwrap().is_empty());
        assert!(d.buffer.capacity() < 1 << 20, "{}", d.buffer.capacity());
    }

    #[test]
    fn stream_ending_mid_record_is_an_error() {
        assert!(matches!(
            error_of(b"5\nab"),
            RecordIoError::EofInRecord {
                offset: 4,
                length: 5,
                missing: 3
            }
        ));
        assert!(matches!(
            error_of(b"2\nab1"),
            RecordIoError::EofInHeader { offset: 5 }
        ));
        assert!(matches!(
            error_of(b"2\nab1\n"),
            RecordIoError::EofInRecord { offset: 6, .. }
        ));
        // Ending between records, or before any, is a clean end.
        assert!(Decoder::new().finish().is_ok());
        assert!(decode_all(b"2\nab", 100).1.is_none());
    }

    #[test]
    fn records_before_a_fault_come_first_then_the_error_sticks() {
        let mut d = Decoder::new();
        let records = d.feed(b"1\na1\nbx\n").unwrap();
        assert_eq!(records, vec![&b"a"[..], b"b"]);
        let e = d.feed(b"1\nc").unwrap_err();
        assert!(matches!(
            e,
            RecordIoError::InvalidLengthByte { offset: 6, .. }
        ));
        assert_eq!(e.offset(), Some(6));
        assert!(matches!(
            d.finish(),
            Err(RecordIoError::InvalidLengthByte { offset: 6, .. })
        ));
    }

    #[test]
    fn tokio_codec_decodes_and_detects_eof_inside_a_header() {
        let mut codec = RecordIoCodec::new();
        let mut buf = BytesMut::from(&b"3\nabc0\n1"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "abc");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "");
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty(), "header bytes are consumed");
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(RecordIoError::EofInHeader { offset: 8 })
        ));

        let mut codec = RecordIoCodec::new();
        let mut buf = BytesMut::from(&b"2\nxy"[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), "xy");
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());

        let io: RecordIoError = std::io::Error::other("reset").into();
        assert_eq!(io.offset(), None);
        assert!(io.to_string().contains("reset"));
    }

    #[test]
    fn tokio_codec_encodes() {
        let mut codec = RecordIoCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(Bytes::from_static(b"abc"), &mut buf).unwrap();
        codec.encode(Bytes::new(), &mut buf).unwrap();
        assert_eq!(&buf[..], b"3\nabc0\n");
    }

    /// Cuts `input` at the given points (taken modulo its length).
    fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for c in cuts {
            out.push(&input[start..c]);
            start = c;
        }
        out.push(&input[start..]);
        out
    }

    /// Runs the sync decoder over the chunks; stops at the first error.
    fn feed_chunks(chunks: &[&[u8]], max: usize) -> (Vec<Bytes>, Option<RecordIoError>) {
        let mut d = Decoder::with_max_record_size(max);
        let mut records = Vec::new();
        for chunk in chunks {
            match d.feed(chunk) {
                Ok(r) => records.extend(r),
                Err(e) => return (records, Some(e)),
            }
        }
        (records, d.finish().err())
    }

    /// Runs the tokio codec over the chunks as a framed reader would.
    fn codec_chunks(chunks: &[&[u8]], max: usize) -> (Vec<Bytes>, Option<RecordIoError>) {
        let mut codec = RecordIoCodec::with_max_record_size(max);
        let mut buf = BytesMut::new();
        let mut records = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(r)) => records.push(r),
                    Ok(None) => break,
                    Err(e) => return (records, Some(e)),
                }
            }
        }
        loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(r)) => records.push(r),
                Ok(None) => return (records, None),
                Err(e) => return (records, Some(e)),
            }
        }
    }

    fn summary(r: &(Vec<Bytes>, Option<RecordIoError>)) -> (Vec<Bytes>, Option<String>) {
        (r.0.clone(), r.1.as_ref().map(|e| e.to_string()))
    }

    proptest! {
        #[test]
        fn round_trips_in_any_chunking(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let input = framed(&refs);
            let parts = chunks(&input, &cuts);
            for (decoded, err) in [feed_chunks(&parts, 64), codec_chunks(&parts, 64)] {
                prop_assert!(err.is_none(), "{err:?}");
                prop_assert_eq!(&decoded, &records);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
            input in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), b'0'..=b'9'], 0..256),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
            max in 0usize..40,
        ) {
            let whole = feed_chunks(&[&input], max);
            let parts = chunks(&input, &cuts);
            prop_assert_eq!(summary(&feed_chunks(&parts, max)), summary(&whole));
            prop_assert_eq!(summary(&codec_chunks(&parts, max)), summary(&whole));
        }
    }
}
