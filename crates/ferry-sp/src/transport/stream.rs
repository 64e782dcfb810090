//! The SP connection header and message framing over a byte stream (sp-wire.md §2, §3).
//!
//! Connection header, sent by both sides at once, then read from the peer:
//!
//! ```text
//! +------+------+------+------+---------------+------+------+
//! | 0x00 | 'S'  | 'P'  | 0x00 | protocol u16  | 0x00 | 0x00 |
//! +------+------+------+------+---------------+------+------+
//! ```
//!
//! Then each message, in both directions:
//!
//! ```text
//! tcp, inproc:        +------------------+---------------------------+
//!                     | size: u64 BE     | payload (header ++ body)  |
//!                     +------------------+---------------------------+
//! ipc:    +-----------+------------------+---------------------------+
//!         | 0x01 (u8) | size: u64 BE     | payload (header ++ body)  |
//!         +-----------+------------------+---------------------------+
//! ```

use crate::error::{Error, Result};
use crate::message::Message;
use bytes::{Buf, Bytes, BytesMut};
use std::io::{self, IoSlice};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// NNG's handshake timeout.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a transport frames messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// u64 length, then payload (tcp, tls, inproc).
    Length,
    /// 0x01 type byte, u64 length, then payload (ipc).
    TypedLength,
}

impl Framing {
    fn prefix_len(self) -> usize {
        match self {
            Framing::Length => 8,
            Framing::TypedLength => 9,
        }
    }
}

/// The 8-byte connection header announcing `proto`.
pub(crate) fn header_for(proto: u16) -> [u8; 8] {
    let p = proto.to_be_bytes();
    [0x00, b'S', b'P', 0x00, p[0], p[1], 0x00, 0x00]
}

/// Validates a peer's connection header and returns its protocol number.
pub(crate) fn parse_header(h: &[u8; 8]) -> Result<u16> {
    if h[0..4] != [0x00, b'S', b'P', 0x00] || h[6..8] != [0, 0] {
        return Err(Error::Protocol("bad SP connection header"));
    }
    Ok(u16::from_be_bytes([h[4], h[5]]))
}

/// Sends our header first (waiting for the peer first would deadlock two ferry peers),
/// then reads and validates the peer's. Bounded by [`HANDSHAKE_TIMEOUT`].
pub(crate) async fn handshake(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    writer: &mut (dyn AsyncWrite + Send + Unpin),
    proto: u16,
) -> Result<u16> {
    let exchange = async {
        writer.write_all(&header_for(proto)).await?;
        writer.flush().await?;
        let mut peer = [0u8; 8];
        reader.read_exact(&mut peer).await?;
        parse_header(&peer)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await.map_err(|_| Error::Timeout)?
}

/// How much the reader asks the OS for at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The most a frame's announced size makes the reader reserve ahead of the data arriving,
/// so that a bogus size cannot make it allocate memory it never fills.
const MAX_RESERVE: usize = 1 << 20;

enum Parsed {
    Frame(Bytes),
    /// This many more bytes are needed at least.
    Need(usize),
}

/// Reads frames and hands out each payload as a slice of the read buffer.
pub(crate) struct FrameReader {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    buf: BytesMut,
    framing: Framing,
    max: usize,
}

impl FrameReader {
    /// `max` is `recv-size-max`; 0 is unlimited.
    pub(crate) fn new(inner: Box<dyn AsyncRead + Send + Unpin>, framing: Framing, max: usize) -> FrameReader {
        FrameReader { inner, buf: BytesMut::with_capacity(READ_CHUNK), framing, max }
    }

    /// The next payload. Errors close the pipe: end of stream, I/O, an oversized frame
    /// (checked before allocating), an unknown IPC message type.
    pub(crate) async fn read_frame(&mut self) -> Result<Bytes> {
        loop {
            match self.parse()? {
                Parsed::Frame(f) => return Ok(f),
                Parsed::Need(more) => {
                    if self.buf.capacity() - self.buf.len() < more {
                        self.buf.reserve(more.clamp(READ_CHUNK, MAX_RESERVE));
                    }
                }
            }
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// A payload that is already complete in the buffer, without reading; lets the pipe
    /// hand a whole batch to the protocol at once.
    pub(crate) fn next_buffered(&mut self) -> Result<Option<Bytes>> {
        match self.parse()? {
            Parsed::Frame(f) => Ok(Some(f)),
            Parsed::Need(_) => Ok(None),
        }
    }

    fn parse(&mut self) -> Result<Parsed> {
        let prefix = self.framing.prefix_len();
        if self.buf.len() < prefix {
            return Ok(Parsed::Need(prefix - self.buf.len()));
        }
        if self.framing == Framing::TypedLength && self.buf[0] != 0x01 {
            return Err(Error::Protocol("unknown IPC message type"));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&self.buf[prefix - 8..prefix]);
        let size = u64::from_be_bytes(len);
        if self.max != 0 && size > self.max as u64 {
            return Err(Error::MessageTooLarge { size, max: self.max });
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= isize::MAX as usize - prefix)
            .ok_or(Error::MessageTooLarge { size, max: self.max })?;
        let have = self.buf.len() - prefix;
        if have < size {
            return Ok(Parsed::Need(size - have));
        }
        let mut frame = self.buf.split_to(prefix + size);
        frame.advance(prefix);
        Ok(Parsed::Frame(frame.freeze()))
    }
}

/// Bodies up to this size are copied into the write buffer; larger ones are written
/// from their own memory with a vectored write.
const COPY_LIMIT: usize = 16 * 1024;
/// The write buffer is flushed once it holds this much.
const FLUSH_AT: usize = 256 * 1024;

/// Writes batches of messages with as few system calls as possible.
pub(crate) struct FrameWriter {
    inner: Box<dyn AsyncWrite + Send + Unpin>,
    framing: Framing,
    out: Vec<u8>,
}

impl FrameWriter {
    pub(crate) fn new(inner: Box<dyn AsyncWrite + Send + Unpin>, framing: Framing) -> FrameWriter {
        FrameWriter { inner, framing, out: Vec::with_capacity(READ_CHUNK) }
    }

    /// Writes every message of `batch`, framed, in order.
    pub(crate) async fn write_batch(&mut self, batch: &[Message]) -> io::Result<()> {
        self.out.clear();
        for m in batch {
            if self.framing == Framing::TypedLength {
                self.out.push(0x01);
            }
            self.out.extend_from_slice(&(m.len() as u64).to_be_bytes());
            self.out.extend_from_slice(&m.header);
            if m.body.len() <= COPY_LIMIT {
                self.out.extend_from_slice(&m.body);
                if self.out.len() >= FLUSH_AT {
                    self.inner.write_all(&self.out).await?;
                    self.out.clear();
                }
            } else {
                write_all_vectored(&mut *self.inner, &self.out, &m.body).await?;
                self.out.clear();
            }
        }
        if !self.out.is_empty() {
            self.inner.write_all(&self.out).await?;
        }
        self.inner.flush().await
    }
}

/// Writes `a` then `b`, in as few calls as the stream allows.
async fn write_all_vectored(w: &mut (dyn AsyncWrite + Send + Unpin), mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Arbitrary bytes from a peer yield frames or an error, never a panic or a hang,
        /// and never a frame over the limit.
        #[test]
        fn arbitrary_streams_give_frames_or_errors(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            typed in proptest::prelude::any::<bool>(),
        ) {
            let framing = if typed { Framing::TypedLength } else { Framing::Length };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (mut a, b) = tokio::io::duplex(4096);
                a.write_all(&bytes).await.unwrap();
                drop(a);
                let mut r = FrameReader::new(Box::new(b), framing, 512);
                for _ in 0..bytes.len() + 1 {
                    match r.read_frame().await {
                        Ok(f) => assert!(f.len() <= 512),
                        Err(_) => break,
                    }
                }
            });
        }
    }

    #[test]
    fn header_bytes_match_the_wire() {
        assert_eq!(header_for(0x31), [0, 0x53, 0x50, 0, 0, 0x31, 0, 0]);
        assert_eq!(parse_header(&header_for(0x70)).unwrap(), 0x70);
        assert!(parse_header(&[0, b'S', b'P', 1, 0, 0x30, 0, 0]).is_err());
        assert!(parse_header(&[0, b'S', b'P', 0, 0, 0x30, 0, 1]).is_err());
    }

    async fn roundtrip(framing: Framing, msgs: Vec<Message>) -> Vec<Bytes> {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_ra, wa) = tokio::io::split(a);
        let (rb, _wb) = tokio::io::split(b);
        let mut w = FrameWriter::new(Box::new(wa), framing);
        let mut r = FrameReader::new(Box::new(rb), framing, 0);
        let n = msgs.len();
        let writer = tokio::spawn(async move { w.write_batch(&msgs).await.map(|_| w) });
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(r.read_frame().await.unwrap());
        }
        writer.await.unwrap().unwrap();
        got
    }

    #[tokio::test]
    async fn frames_round_trip_in_both_framings() {
        for framing in [Framing::Length, Framing::TypedLength] {
            let big = Bytes::from(vec![7u8; 100_000]);
            let msgs = vec![
                Message::with_header(Bytes::from_static(&[0x80, 0, 0, 1]), Bytes::from_static(b"hi")),
                Message::new(Bytes::new()),
                Message::new(big.clone()),
            ];
            let got = roundtrip(framing, msgs).await;
            assert_eq!(&got[0][..], &[0x80, 0, 0, 1, b'h', b'i']);
            assert!(got[1].is_empty());
            assert_eq!(got[2], big);
        }
    }

    #[tokio::test]
    async fn oversized_and_mistyped_frames_are_rejected_before_reading_them() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&u64::MAX.to_be_bytes()).await.unwrap();
        let mut r = FrameReader::new(Box::new(b), Framing::Length, 1024);
        assert!(matches!(r.read_frame().await, Err(Error::MessageTooLarge { .. })));

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[2, 0, 0, 0, 0, 0, 0, 0, 1, b'x']).await.unwrap();
        let mut r = FrameReader::new(Box::new(b), Framing::TypedLength, 0);
        assert!(matches!(r.read_frame().await, Err(Error::Protocol(_))));

        // Unlimited size: a huge announced size waits for data instead of allocating it.
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&(1u64 << 40).to_be_bytes()).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(Box::new(b), Framing::Length, 0);
        assert!(matches!(r.read_frame().await, Err(Error::Io(_))));
    }
}
