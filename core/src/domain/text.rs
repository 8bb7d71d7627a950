//! The one rule for free text from clients: no control characters. NUL breaks PostgreSQL
//! text columns (500 instead of 422), and the other C0/C1 controls (escape sequences,
//! backspaces, bidi-free but invisible bytes) corrupt logs, terminals and e-mails.

use super::Invalid;

/// Whether a field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, e-mail addresses, passwords: no control character at all.
    Single,
    /// Descriptions, notes, postal addresses: `\n`, `\r` and `\t` are allowed, nothing else.
    Multi,
}

/// Rejects every C0 and C1 control character (NUL and DEL included), except ordinary
/// line breaks and tabs in a multi-line field.
pub fn no_controls(s: &str, lines: Lines) -> Result<(), Invalid> {
    let allowed = |c: char| lines == Lines::Multi && matches!(c, '\n' | '\r' | '\t');
    match s.chars().find(|c| c.is_control() && !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(Invalid(format!(
            "must not contain control characters (found U+{:04X})",
            c as u32
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_rejected_and_line_breaks_only_where_lines_are() {
        assert!(no_controls("Plain text, ünïcode ✓", Lines::Single).is_ok());
        for bad in ["a\u{0}b", "\u{1b}[31m", "x\u{7f}", "x\u{85}", "x\u{9b}y"] {
            assert!(no_controls(bad, Lines::Single).is_err(), "{bad:?}");
            assert!(no_controls(bad, Lines::Multi).is_err(), "{bad:?}");
        }
        assert!(no_controls("line\nnext\r\n\tindented", Lines::Multi).is_ok());
        assert!(no_controls("line\nnext", Lines::Single).is_err());
        assert!(no_controls("a\tb", Lines::Single).is_err());
        let e = no_controls("a\u{0}", Lines::Multi).unwrap_err();
        assert!(e.0.contains("U+0000"), "{e}");
    }
}
