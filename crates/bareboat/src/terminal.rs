//! Text for a terminal. What an image holds (file names, link targets, package fields,
//! history) reaches the text reports, and a control character in it could move the cursor,
//! rewrite a line or hide a finding; so every line of those reports is printed with its
//! control characters (and the bidirectional overrides that reorder text) escaped. JSON
//! output escapes them already.

use std::borrow::Cow;
use std::fmt::Write;

/// Prints a line of a text report, escaped with [`escaped`].
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", $crate::terminal::escaped(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// `text` with each control character, and each character that changes the direction of
/// the text around it, written as `\u{..}`.
pub fn escaped(text: &str) -> Cow<'_, str> {
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_direction_characters_are_escaped() {
        for (text, shown) in [
            ("usr/bin/sh", "usr/bin/sh"),
            ("caf\u{e9} \u{1f600}", "caf\u{e9} \u{1f600}"),
            ("a\u{1b}[2Kb", "a\\u{1b}[2Kb"),
            ("x\rHIGH", "x\\u{d}HIGH"),
            ("one\ntwo", "one\\u{a}two"),
            ("tab\there", "tab\\u{9}here"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("evil\u{202e}txt.sh", "evil\\u{202e}txt.sh"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("del\u{7f}", "del\\u{7f}"),
        ] {
            assert_eq!(escaped(text), shown, "{text:?}");
        }
    }
}
