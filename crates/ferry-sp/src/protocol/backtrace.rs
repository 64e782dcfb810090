//! The request-id and backtrace header shared by REQ/REP and SURVEYOR/RESPONDENT
//! (sp-wire.md §6.1):
//!
//! ```text
//! | 0 | hop pipe id (31) | 0 | hop pipe id (31) | ... | 1 | request id (31) | body ... |
//! ```
//!
//! Devices push hop words (MSB 0); the last word, with the MSB set, is the end-to-end id.

use crate::error::{Error, Result};
use bytes::Bytes;
use rand::Rng;

/// Splits a received request into `(backtrace, body)`. `Ok(None)`: more hops than `ttl`,
/// drop the message and keep the pipe. `Err`: the backtrace never ends, close the pipe.
pub(crate) fn split(payload: Bytes, ttl: u8) -> Result<Option<(Bytes, Bytes)>> {
    let mut hops = 1u32;
    let mut end = 0;
    loop {
        if hops > u32::from(ttl) {
            return Ok(None);
        }
        hops += 1;
        let word = payload.get(end..end + 4).ok_or(Error::Protocol("request without an end-of-backtrace word"))?;
        end += 4;
        if word[0] & 0x80 != 0 {
            break;
        }
    }
    Ok(Some((payload.slice(..end), payload.slice(end..))))
}

/// Allocates request/survey ids: `0x8000_0000 | n`, counting from a random start so that
/// a restarted process does not reuse its predecessor's ids.
pub(crate) struct IdAlloc(u32);

impl IdAlloc {
    pub(crate) fn new() -> IdAlloc {
        IdAlloc(rand::thread_rng().gen())
    }

    /// The next id for which `in_use` is false.
    pub(crate) fn next(&mut self, in_use: impl Fn(u32) -> bool) -> u32 {
        loop {
            self.0 = self.0.wrapping_add(1);
            let id = 0x8000_0000 | (self.0 & 0x7fff_ffff);
            if !in_use(id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32], body: &[u8]) -> Bytes {
        let mut v: Vec<u8> = ws.iter().flat_map(|w| w.to_be_bytes()).collect();
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn direct_request_and_hops() {
        let (bt, body) = split(words(&[0x8000_0007], b"hi"), 8).unwrap().unwrap();
        assert_eq!(&bt[..], &[0x80, 0, 0, 7]);
        assert_eq!(&body[..], b"hi");
        let (bt, _) = split(words(&[5, 6, 0x8000_0001], b""), 8).unwrap().unwrap();
        assert_eq!(bt.len(), 12);
    }

    #[test]
    fn ttl_counts_every_word() {
        let eight: Vec<u32> = (1..8).chain([0x8000_0001]).collect();
        assert!(split(words(&eight, b"x"), 8).unwrap().is_some());
        let nine: Vec<u32> = (1..9).chain([0x8000_0001]).collect();
        assert!(split(words(&nine, b"x"), 8).unwrap().is_none());
    }

    #[test]
    fn unterminated_backtrace_is_an_error() {
        assert!(split(words(&[1, 2], b""), 8).is_err());
        assert!(split(Bytes::from_static(&[0x80, 0]), 8).is_err());
    }

    #[test]
    fn ids_have_the_top_bit_and_skip_used_ones() {
        let mut a = IdAlloc(0x7fff_fffe);
        assert_eq!(a.next(|_| false), 0xffff_ffff);
        assert_eq!(a.next(|id| id == 0x8000_0000), 0x8000_0001);
    }
}
