//! How bytes a client chose appear in log lines: [`escaped`] wraps them so they display as one
//! quoted, printable token. A MNT path, a file name or an AUTH_SYS machine name can hold a
//! newline, a carriage return or terminal escapes; printed raw, an unlisted client could write a
//! fake "mounted" line into the log or hide a line on an operator's terminal.
//!
//! It is a module of its own, beside every layer, because it depends on nothing. Today MOUNT
//! paths go through it (mountd, and the server's mount log line); any other layer that logs
//! client-chosen bytes must use it too.

use std::fmt;

/// Displays bytes as a double-quoted string: printable ASCII and printable non-ASCII UTF-8 as
/// they are; `"` and `\` backslash-escaped; `\n`, `\r`, `\t` as such; other control bytes and
/// bytes that are not UTF-8 as `\xNN`; Unicode controls, line and paragraph separators and
/// bidirectional overrides as `\u{NNNN}`, so nothing can break a line or reorder what follows.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

/// [`Escaped`] for `bytes` (anything byte-like: `&[u8]`, `&str`, `Bytes`, `Vec<u8>`).
pub fn escaped<T: AsRef<[u8]> + ?Sized>(bytes: &T) -> Escaped<'_> {
    Escaped(bytes.as_ref())
}

/// Whether `c` must be escaped although it is valid UTF-8: controls (C0, DEL, C1), and the
/// format characters that move text (line/paragraph separators, bidirectional embeddings,
/// overrides and isolates, the byte-order mark).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        f.write_char('"')?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if c.is_ascii_control() => write!(f, "\\x{:02x}", c as u32)?,
                    c if invisible(c) => write!(f, "\\u{{{:04x}}}", c as u32)?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_char('"')
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(b: &[u8]) -> String {
        escaped(b).to_string()
    }

    #[test]
    fn plain_names_pass_quoted() {
        assert_eq!(show(b"/srv/share"), r#""/srv/share""#);
        assert_eq!(show("dossier é".as_bytes()), "\"dossier é\"");
        assert_eq!(show(b""), r#""""#);
    }

    #[test]
    fn line_breaks_quotes_and_controls_are_escaped() {
        assert_eq!(show(b"/x\nrnfsd: mounted"), r#""/x\nrnfsd: mounted""#);
        assert_eq!(show(b"a\r\tb"), r#""a\r\tb""#);
        assert_eq!(show(b"say \"hi\" \\ there"), r#""say \"hi\" \\ there""#);
        assert_eq!(show(b"\x1b[2J\x00\x7f"), r#""\x1b[2J\x00\x7f""#);
        assert_eq!(show("\u{85}".as_bytes()), r#""\u{0085}""#);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_hex() {
        assert_eq!(show(b"a\xffb\xc3"), r#""a\xffb\xc3""#);
    }

    #[test]
    fn text_reordering_characters_are_escaped() {
        assert_eq!(show("a\u{202e}b\u{2028}c".as_bytes()), r#""a\u{202e}b\u{2028}c""#);
    }

    #[test]
    fn no_output_ever_holds_a_line_break_or_control() {
        for b in 0u8..=255 {
            let s = show(&[b'x', b, b'y']);
            assert!(!s.chars().any(invisible), "{b:#x}: {s:?}");
        }
    }
}
