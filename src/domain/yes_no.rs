//! The one yes/no parser of the operator's surfaces (CLI flags, console forms).
//!
//! Accepted, in any case and with surrounding blanks ignored: `yes`, `true`, `1` for yes and `no`, `false`, `0`
//! for no. Anything else is not an answer.

/// What the error messages call the accepted answers.
pub const ACCEPTED: &str = "yes or no";

/// Yes, no, or none of the accepted words.
pub fn parse(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_words_in_any_case() {
        for yes in ["yes", "YES", " Yes ", "true", "True", "1"] {
            assert_eq!(parse(yes), Some(true), "{yes:?}");
        }
        for no in ["no", "NO", "false", " FALSE", "0"] {
            assert_eq!(parse(no), Some(false), "{no:?}");
        }
        for other in ["", "y", "n", "2", "on", "off", "yes please"] {
            assert_eq!(parse(other), None, "{other:?}");
        }
    }
}
