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
    Ok(end(&payload, usize::from(ttl))?.map(|end| (payload.slice(..end), payload.slice(end..))))
}

/// Splits a received reply into `(backtrace, body)` with no hop limit, as raw REQ and raw
/// SURVEYOR do: the hops were counted on the way out. `Err`: the backtrace never ends.
pub(crate) fn split_reply(payload: Bytes) -> Result<(Bytes, Bytes)> {
    let end = end(&payload, usize::MAX)?.ok_or(Error::Protocol("backtrace too long"))?;
    Ok((payload.slice(..end), payload.slice(end..)))
}

/// The length of the backtrace at the start of `payload`: up to and including the first
/// word with the top bit set. `Ok(None)` when that would take more than `max_words` words.
fn end(payload: &[u8], max_words: usize) -> Result<Option<usize>> {
    let mut words = 0;
    loop {
        if words == max_words {
            return Ok(None);
        }
        let at = words * 4;
        let word = payload.get(at..at + 4).ok_or(Error::Protocol("request without an end-of-backtrace word"))?;
        words += 1;
        if word[0] & 0x80 != 0 {
            return Ok(Some(at + 4));
        }
    }
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
    fn replies_have_no_hop_limit() {
        let many: Vec<u32> = (1..40).chain([0x8000_0001]).collect();
        let (bt, body) = split_reply(words(&many, b"ok")).unwrap();
        assert_eq!((bt.len(), &body[..]), (160, &b"ok"[..]));
        assert!(split_reply(words(&[1, 2], b"")).is_err());
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
