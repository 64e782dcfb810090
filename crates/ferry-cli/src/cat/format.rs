//! How `ferry cat` prints a received message: byte for byte what nngcat 1.5.2's
//! `printmsg` prints for each `--format`.
//!
//! | Format | Output for the body `a"\n` + 0x80 |
//! |---|---|
//! | `no` (the default) | nothing |
//! | `raw` | the bytes as they are, no separator |
//! | `ascii` | printable ASCII as is, every other byte as `.`, no separator: `a".` + `.` |
//! | `quoted` | a C string and a newline: `"a\"\n\x80"` |
//! | `hex` | every byte as `\xNN` in quotes, and a newline: `"\x61\x22\x0a\x80"` |
//! | `msgpack` | a MessagePack bin8/bin16/bin32 header, then the bytes |
//!
//! "Printable" is C's `isprint` in the C locale: 0x20 (space) to 0x7e (`~`).

use std::io::{self, Write};

/// An output format, as chosen with `--format` or one of its shorthands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// Print nothing (`--format no`, and the default).
    #[default]
    No,
    /// `--raw`
    Raw,
    /// `--ascii`, `-A`
    Ascii,
    /// `--quoted`, `-Q`
    Quoted,
    /// `--hex`
    Hex,
    /// `--msgpack`
    Msgpack,
}

impl Format {
    /// The format for a `--format` value, as nngcat spells them.
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "no" => Format::No,
            "raw" => Format::Raw,
            "ascii" => Format::Ascii,
            "quoted" => Format::Quoted,
            "hex" => Format::Hex,
            "msgpack" => Format::Msgpack,
            _ => return None,
        })
    }
}

/// `isprint` in the C locale.
fn printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

/// Writes `body` to `out` in `format`. The caller flushes.
pub(crate) fn write_message(out: &mut impl Write, format: Format, body: &[u8]) -> io::Result<()> {
    match format {
        Format::No => Ok(()),
        Format::Raw => out.write_all(body),
        Format::Ascii => {
            let text: Vec<u8> = body.iter().map(|&b| if printable(b) { b } else { b'.' }).collect();
            out.write_all(&text)
        }
        Format::Quoted => {
            let mut text = Vec::with_capacity(body.len() + 3);
            text.push(b'"');
            for &b in body {
                match b {
                    b'\n' => text.extend_from_slice(b"\\n"),
                    b'\r' => text.extend_from_slice(b"\\r"),
                    b'\t' => text.extend_from_slice(b"\\t"),
                    b'"' | b'\\' => text.extend_from_slice(&[b'\\', b]),
                    b if printable(b) => text.push(b),
                    b => text.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            text.extend_from_slice(b"\"\n");
            out.write_all(&text)
        }
        Format::Hex => {
            let mut text = String::with_capacity(body.len() * 4 + 3);
            text.push('"');
            for &b in body {
                text.push_str(&format!("\\x{b:02x}"));
            }
            text.push_str("\"\n");
            out.write_all(text.as_bytes())
        }
        Format::Msgpack => {
            let len = u32::try_from(body.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "message too large for a MessagePack bin32")
            })?;
            let mut header = Vec::with_capacity(5);
            rmp::encode::write_bin_len(&mut header, len).map_err(|e| io::Error::other(e.to_string()))?;
            out.write_all(&header)?;
            out.write_all(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_message(&mut out, format, body).unwrap();
        out
    }

    /// The body nngcat 1.5.2 was observed with; the expected outputs below are its outputs.
    const MIXED: &[u8] = b"a\x00\x01\t\n\r\"\\ \x7f\x80\xffz";

    #[test]
    fn no_format_prints_nothing() {
        assert_eq!(render(Format::No, MIXED), b"");
        assert_eq!(Format::default(), Format::No);
    }

    #[test]
    fn raw_is_the_bytes() {
        assert_eq!(render(Format::Raw, MIXED), MIXED);
        assert_eq!(render(Format::Raw, b""), b"");
    }

    #[test]
    fn ascii_replaces_non_printables_and_adds_no_newline() {
        assert_eq!(render(Format::Ascii, MIXED), b"a.....\"\\ ...z");
        assert_eq!(render(Format::Ascii, b"hello world~"), b"hello world~");
    }

    #[test]
    fn quoted_uses_c_escapes() {
        assert_eq!(render(Format::Quoted, MIXED), &b"\"a\\x00\\x01\\t\\n\\r\\\"\\\\ \\x7f\\x80\\xffz\"\n"[..]);
        assert_eq!(render(Format::Quoted, b"hello"), b"\"hello\"\n");
        assert_eq!(render(Format::Quoted, b""), b"\"\"\n");
        assert_eq!(render(Format::Quoted, b"\x0b\x1f"), b"\"\\x0b\\x1f\"\n");
    }

    #[test]
    fn hex_escapes_every_byte_lowercase() {
        assert_eq!(
            render(Format::Hex, MIXED),
            &b"\"\\x61\\x00\\x01\\x09\\x0a\\x0d\\x22\\x5c\\x20\\x7f\\x80\\xff\\x7a\"\n"[..]
        );
        assert_eq!(render(Format::Hex, b"ab"), b"\"\\x61\\x62\"\n");
        assert_eq!(render(Format::Hex, b""), b"\"\"\n");
    }

    #[test]
    fn msgpack_picks_bin8_bin16_bin32() {
        assert_eq!(render(Format::Msgpack, MIXED), [&[0xc4, 13][..], MIXED].concat());
        assert_eq!(render(Format::Msgpack, b""), [0xc4, 0]);
        let b255 = vec![7u8; 255];
        assert_eq!(render(Format::Msgpack, &b255), [&[0xc4, 255][..], &b255].concat());
        let b256 = vec![7u8; 256];
        assert_eq!(render(Format::Msgpack, &b256), [&[0xc5, 1, 0][..], &b256].concat());
        let b65535 = vec![7u8; 65535];
        assert_eq!(render(Format::Msgpack, &b65535)[..3], [0xc5, 0xff, 0xff]);
        let b65536 = vec![7u8; 65536];
        let out = render(Format::Msgpack, &b65536);
        assert_eq!(out[..5], [0xc6, 0, 1, 0, 0]);
        assert_eq!(out.len(), 5 + 65536);
    }

    #[test]
    fn format_names_are_nngcats() {
        for (name, f) in [
            ("no", Format::No),
            ("raw", Format::Raw),
            ("ascii", Format::Ascii),
            ("quoted", Format::Quoted),
            ("hex", Format::Hex),
            ("msgpack", Format::Msgpack),
        ] {
            assert_eq!(Format::from_name(name), Some(f));
        }
        for bad in ["", "Hex", "text", "quote"] {
            assert_eq!(Format::from_name(bad), None, "{bad}");
        }
    }
}
