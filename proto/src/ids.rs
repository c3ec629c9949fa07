//! The one validation of ids that become paths or cgroup names (framework,
//! agent, executor, task, container, operation ids): the master applies it
//! to every call that introduces one and the agent again before anything
//! touches its disk, so both daemons share this module.
//!
//! The rules are Mesos's (`common/validation.cpp`, `validateID`): not empty,
//! at most `NAME_MAX` (255) bytes so it fits one path component, not `.` or
//! `..`, no control character (`iscntrl` in the C locale: 0x00-0x1f and
//! 0x7f) and no `/` or `\`.

use std::fmt;

/// Longest id, in bytes: one path component (`NAME_MAX`).
pub const MAX_ID_BYTES: usize = 255;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} bytes long; at most {MAX_ID_BYTES} are allowed")]
    TooLong(usize),
    #[error("must not be '.' or '..'")]
    Dots,
    #[error(
        "contains an invalid character {0:?} (control characters, '/' and '\\' are not allowed)"
    )]
    InvalidCharacter(char),
}

fn invalid_character(c: char) -> bool {
    c.is_ascii_control() || c == '/' || c == '\\'
}

/// Checks one id against Mesos's rules.
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(id.len()));
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots);
    }
    if let Some(c) = id.chars().find(|c| invalid_character(*c)) {
        return Err(IdError::InvalidCharacter(c));
    }
    Ok(())
}

/// True when `id` may be used as a path component or cgroup name.
pub fn is_valid(id: &str) -> bool {
    validate(id).is_ok()
}

/// An id quoted for a message: escaped, and cut short so a 10,000-byte id
/// does not become a 10,000-byte error.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let mut chars = self.0.chars();
        let head: String = chars.by_ref().take(SHOWN).collect();
        write!(f, "'{}", head.escape_debug())?;
        if chars.next().is_some() {
            write!(f, "...")?;
        }
        write!(f, "'")
    }
}

/// Validates `id` and, when it is refused, says which field held it:
/// `'task_id' 'a/b' is invalid: contains an invalid character '/' ...`.
pub fn check(field: &str, id: &str) -> Result<(), String> {
    validate(id).map_err(|e| format!("'{field}' {} is invalid: it {e}", Shown(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for ok in [
            "task-1",
            "a.b_c:d@e",
            "...",
            ".hidden",
            "é-ü",
            "with space",
            "0b3c6a5e-8f0e-4a4e-9a1f-1b2c3d4e5f60-0001",
            &"x".repeat(255),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn mesos_rules_refuse_what_could_leave_a_directory() {
        assert_eq!(validate(""), Err(IdError::Empty));
        assert_eq!(validate("."), Err(IdError::Dots));
        assert_eq!(validate(".."), Err(IdError::Dots));
        assert_eq!(validate("a/b"), Err(IdError::InvalidCharacter('/')));
        assert_eq!(
            validate("../../../../../tmp/x"),
            Err(IdError::InvalidCharacter('/'))
        );
        assert_eq!(validate("a\\b"), Err(IdError::InvalidCharacter('\\')));
        assert_eq!(validate("a\0b"), Err(IdError::InvalidCharacter('\0')));
        assert_eq!(validate("a\nb"), Err(IdError::InvalidCharacter('\n')));
        assert_eq!(validate("\x1f"), Err(IdError::InvalidCharacter('\x1f')));
        assert_eq!(validate("a\x7f"), Err(IdError::InvalidCharacter('\x7f')));
        assert_eq!(validate(&"x".repeat(256)), Err(IdError::TooLong(256)));
        assert_eq!(validate(&"x".repeat(10_000)), Err(IdError::TooLong(10_000)));
        // The limit is in bytes, as NAME_MAX is: 128 two-byte characters.
        assert_eq!(validate(&"é".repeat(128)), Err(IdError::TooLong(256)));
    }

    #[test]
    fn messages_name_the_field_and_stay_short() {
        let e = check("framework_id", "a/b").unwrap_err();
        assert!(e.starts_with("'framework_id' 'a/b' is invalid"), "{e}");
        let e = check("task_id", "a\0").unwrap_err();
        assert!(e.contains("'a\\0'"), "{e}");
        let e = check("executor_id", &"x".repeat(10_000)).unwrap_err();
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("10000 bytes"), "{e}");
    }

    #[test]
    fn a_valid_id_is_one_component_right_under_its_parent() {
        let root = std::path::Path::new("/w/containers");
        for id in ["a", "...", "a b", "x.y"] {
            assert!(is_valid(id));
            assert_eq!(root.join(id).parent(), Some(root));
        }
    }
}
