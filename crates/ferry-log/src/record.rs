//! How one record is laid out on disk, and the checks that make a damaged or torn record
//! impossible to mistake for a good one.
//!
//! ```text
//! offset  size  field
//!      0     4  crc: CRC32C (Castagnoli) of payload ++ bytes 4..24, u32 LE
//!      4     4  len: payload length, u32 LE
//!      8     8  seq: sequence number, u64 LE
//!     16     8  timestamp: milliseconds since the Unix epoch, u64 LE
//!     24   len  payload
//! ```
//!
//! The checksum covers the payload *first* and the header fields after it. That order is
//! deliberate: an appender computes the payload's CRC on its own task, in parallel with every
//! other appender, and the single writer only extends it over the 20 header bytes once it has
//! assigned the sequence number and timestamp. The commit path never reads a payload twice.

use bytes::Bytes;

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 24;

/// A record as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's sequence number: 1 for the first record of a new log, then +1 per record.
    pub seq: u64,
    /// When the writer committed it, in milliseconds since the Unix epoch. Never decreases
    /// along the log, so a log can be searched by time.
    pub timestamp: u64,
    /// Where the record lives, for [`Log::read_at`](crate::Log::read_at).
    pub position: Position,
    /// The bytes the appender gave.
    pub payload: Bytes,
}

/// The place of a record: its segment (named by the segment's first sequence number) and
/// its byte offset there. Cheap to store beside an index entry, and the fastest way back to
/// the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The first sequence number of the segment, which is also its file name.
    pub segment: u64,
    /// Byte offset of the record's header in the segment file.
    pub offset: u64,
}

/// The fixed-size part of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) crc: u32,
    pub(crate) len: u32,
    pub(crate) seq: u64,
    pub(crate) timestamp: u64,
}

impl Header {
    /// Builds the header for a payload whose CRC32C is `payload_crc`.
    pub(crate) fn new(payload_crc: u32, len: u32, seq: u64, timestamp: u64) -> Header {
        let mut h = Header { crc: 0, len, seq, timestamp };
        h.crc = crc32c::crc32c_append(payload_crc, &h.tail_bytes());
        h
    }

    /// Bytes 4..24: the fields the checksum covers after the payload.
    fn tail_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.timestamp.to_le_bytes());
        b
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.crc.to_le_bytes());
        b[4..24].copy_from_slice(&self.tail_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        Header { crc: u32_at(0), len: u32_at(4), seq: u64_at(8), timestamp: u64_at(16) }
    }

    /// Whole record size on disk.
    pub(crate) fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }

    /// Whether `payload` is the one this header was written for.
    pub(crate) fn verifies(&self, payload: &[u8]) -> bool {
        crc32c::crc32c_append(crc32c::crc32c(payload), &self.tail_bytes()) == self.crc
    }
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, verified record of this many bytes.
    Record(Header),
    /// The buffer ends inside a record; `needed` bytes from the start would complete it.
    Incomplete { needed: u64 },
    /// Not a valid record: the reason, for error messages.
    Bad(&'static str),
}

/// Parses the record at the start of `buf`, verifying its checksum. `max_len` bounds the
/// payload length *before* anything is read or allocated for it, so a damaged length field
/// cannot make a reader reserve gigabytes.
pub(crate) fn parse(buf: &[u8], max_len: u32) -> Parsed {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Parsed::Incomplete { needed: HEADER_LEN as u64 };
    };
    let h = Header::decode(head);
    if h.len > max_len {
        return Parsed::Bad("length field exceeds the record size limit");
    }
    let total = h.record_len();
    if (buf.len() as u64) < total {
        return Parsed::Incomplete { needed: total };
    }
    if !h.verifies(&buf[HEADER_LEN..total as usize]) {
        return Parsed::Bad("checksum mismatch");
    }
    Parsed::Record(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(seq: u64, ts: u64, payload: &[u8]) -> Vec<u8> {
        let h = Header::new(crc32c::crc32c(payload), payload.len() as u32, seq, ts);
        let mut v = h.encode().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn layout_matches_the_byte_table() {
        let v = encode(0x0102, 0x0304, b"ab");
        assert_eq!(&v[4..8], &2u32.to_le_bytes());
        assert_eq!(&v[8..16], &0x0102u64.to_le_bytes());
        assert_eq!(&v[16..24], &0x0304u64.to_le_bytes());
        assert_eq!(&v[24..], b"ab");
        let mut covered = b"ab".to_vec();
        covered.extend_from_slice(&v[4..24]);
        assert_eq!(&v[0..4], &crc32c::crc32c(&covered).to_le_bytes());
    }

    #[test]
    fn a_huge_length_is_rejected_before_reading() {
        let mut v = encode(1, 1, b"x");
        v[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&v, 1 << 20), Parsed::Bad("length field exceeds the record size limit"));
    }

    proptest! {
        #[test]
        fn round_trips_and_every_prefix_is_incomplete(seq: u64, ts: u64, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let v = encode(seq, ts, &payload);
            match parse(&v, 1 << 20) {
                Parsed::Record(h) => {
                    prop_assert_eq!(h.seq, seq);
                    prop_assert_eq!(h.timestamp, ts);
                    prop_assert_eq!(h.record_len(), v.len() as u64);
                }
                other => prop_assert!(false, "{:?}", other),
            }
            for cut in 0..v.len() {
                let is_incomplete = matches!(parse(&v[..cut], 1 << 20), Parsed::Incomplete { .. });
                prop_assert!(is_incomplete);
            }
        }

        #[test]
        fn any_flipped_bit_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..100), bit in 0usize..800) {
            let mut v = encode(7, 9, &payload);
            let bit = bit % (v.len() * 8);
            v[bit / 8] ^= 1 << (bit % 8);
            let is_record = matches!(parse(&v, 1 << 20), Parsed::Record(_));
            prop_assert!(!is_record);
        }
    }
}
