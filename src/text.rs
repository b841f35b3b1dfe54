//! The text input policy: which characters a string from outside may hold. Every edge applies
//! it to every string that enters (GraphQL arguments and variables in `graphql::limits`, SCIM
//! bodies and filters in `scim`, names in `directory`, the CLI), so a value refused on one
//! edge is refused on all of them, on SQLite and PostgreSQL alike (PostgreSQL cannot store a
//! NUL in text at all; SQLite would store it and compare it wrongly).
//!
//! Refused: NUL and every other C0 control (U+0000–U+001F) except tab, line feed and carriage
//! return where a value may span lines; DEL and the C1 controls (U+007F–U+009F); the bidi
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make a name show
//! as something else in any UI ("Trojan Source", CVE-2021-42574). Lone surrogates cannot occur
//! in a Rust string: the JSON and GraphQL parsers refuse them before this policy runs.

use crate::error::DomainError;
use std::fmt;

/// Lower-cases and trims an address or name for case-insensitive matching.
pub fn match_key(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Where a string may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: no control character at all (names, identifiers, search terms).
    Single,
    /// Free text that may span lines: tab, LF and CR are allowed (a formatted address).
    Multi,
}

/// Why a string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A character the policy refuses, and its position (in characters).
    Character { ch: char, at: usize },
    /// Longer than allowed.
    TooLong { max: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Character { ch, at } => write!(
                f,
                "must not contain {} (U+{:04X}, at character {})",
                describe(*ch),
                *ch as u32,
                at + 1
            ),
            Self::TooLong { max } => write!(f, "must be at most {max} characters"),
        }
    }
}

fn describe(ch: char) -> &'static str {
    if is_bidi_control(ch) {
        "a bidirectional-text control"
    } else {
        "a control character"
    }
}

/// The bidi embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI).
pub fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `ch` is refused in a value of kind `lines`.
pub fn is_refused(ch: char, lines: Lines) -> bool {
    match ch {
        '\t' | '\n' | '\r' => lines == Lines::Single,
        c if c.is_control() => true, // C0, DEL, C1
        c => is_bidi_control(c),
    }
}

/// Checks `value` against the policy.
pub fn check(value: &str, lines: Lines) -> Result<(), Refusal> {
    // Fast path: plain printable ASCII is always allowed.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    match value
        .chars()
        .enumerate()
        .find(|(_, c)| is_refused(*c, lines))
    {
        Some((at, ch)) => Err(Refusal::Character { ch, at }),
        None => Ok(()),
    }
}

/// Checks `value` against the policy and a length cap (in characters).
pub fn check_len(value: &str, lines: Lines, max_chars: usize) -> Result<(), Refusal> {
    // A string of more bytes than 4 × max has more than max characters; count only below that.
    if value.len() > max_chars && value.chars().count() > max_chars {
        return Err(Refusal::TooLong { max: max_chars });
    }
    check(value, lines)
}

/// [`check_len`] as a domain error on `field` (`INVALID_INPUT`).
pub fn require(
    field: &'static str,
    value: &str,
    lines: Lines,
    max_chars: usize,
) -> Result<(), DomainError> {
    check_len(value, lines, max_chars)
        .map_err(|refusal| DomainError::invalid(field, format!("`{field}` {refusal}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_refuses_nul_controls_and_bidi_anywhere() {
        for bad in [
            "a\0b",
            "\u{1}",
            "x\u{7f}",
            "\u{85}",
            "\u{9f}",
            "admin\u{202E}gpj.exe",
            "\u{2066}x",
            "\u{2069}",
            "\u{202A}",
        ] {
            assert!(check(bad, Lines::Multi).is_err(), "{bad:?}");
            assert!(check(bad, Lines::Single).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn check_allows_line_breaks_only_in_multi_line_text() {
        for text in ["a\tb", "street\nline 2", "a\r\nb"] {
            assert!(check(text, Lines::Multi).is_ok());
            assert!(check(text, Lines::Single).is_err());
        }
    }

    #[test]
    fn check_allows_every_script_and_emoji() {
        for text in [
            "Zoë Łukasz",
            "山田 太郎",
            "محمد",
            "שלום",
            "🙂 team",
            "a\u{200F}b",
        ] {
            assert_eq!(check(text, Lines::Single), Ok(()), "{text}");
        }
    }

    #[test]
    fn check_reports_the_character_and_its_position() {
        let refusal = check("ab\u{202E}c", Lines::Single).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Character {
                ch: '\u{202E}',
                at: 2
            }
        );
        assert!(refusal.to_string().contains("U+202E"), "{refusal}");
    }

    #[test]
    fn check_len_counts_characters_not_bytes() {
        assert!(check_len(&"é".repeat(64), Lines::Single, 64).is_ok());
        assert_eq!(
            check_len(&"é".repeat(65), Lines::Single, 64),
            Err(Refusal::TooLong { max: 64 })
        );
    }

    #[test]
    fn require_is_invalid_input_on_the_field() {
        let err = require("name", "a\0", Lines::Single, 10).unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(err.field(), Some("name"));
    }
}
