//! Role names and the role hierarchy (`eng/backend` is a child of `eng`).
//!
//! The rules are Mesos's (`roles.cpp`), since a role accepted here must be
//! accepted by every Mesos framework and tool that talks to us: role names
//! become path components in the work directory and in quota/weight
//! endpoints, hence the ban on `.`/`..`, slashes at the edges and whitespace.

use super::error::RoleError;

/// The role of unreserved resources and of frameworks without a role.
pub const STAR: &str = "*";

/// Checks a role name. `*` is valid only as the whole name.
///
/// Beyond Mesos, which bans only ASCII whitespace and DEL, any control
/// character or Unicode whitespace is refused too: none can be typed or
/// displayed reliably, and no Mesos cluster can rely on them.
pub fn validate(role: &str) -> Result<(), RoleError> {
    if role == STAR {
        return Ok(());
    }
    if role.is_empty() {
        return Err(RoleError::Empty);
    }
    if role.starts_with('/') {
        return Err(RoleError::LeadingSlash(role.to_string()));
    }
    if role.ends_with('/') {
        return Err(RoleError::TrailingSlash(role.to_string()));
    }
    if role.contains("//") {
        return Err(RoleError::DoubleSlash(role.to_string()));
    }
    for component in role.split('/') {
        if matches!(component, "." | ".." | STAR) {
            return Err(RoleError::ReservedComponent {
                role: role.to_string(),
                component: component.to_string(),
            });
        }
        if component.starts_with('-') {
            return Err(RoleError::LeadingDash(component.to_string()));
        }
        if let Some(c) = component
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
        {
            return Err(RoleError::InvalidCharacter {
                component: component.to_string(),
                what: if c.is_whitespace() {
                    "whitespace"
                } else {
                    "a control character"
                },
            });
        }
    }
    Ok(())
}

/// Parses a comma-separated role list (the master's `--roles`), validating
/// each; empty items are skipped as Mesos's tokenizer does.
pub fn parse_list(text: &str) -> Result<Vec<String>, RoleError> {
    text.split(',')
        .filter(|role| !role.is_empty())
        .map(|role| validate(role).map(|()| role.to_string()))
        .collect()
}

/// `true` if `child` is strictly below `parent` in the hierarchy
/// (`a/b` and `a/b/c` are below `a`; `a` and `ab` are not).
pub fn is_strict_subrole_of(child: &str, parent: &str) -> bool {
    child.len() > parent.len()
        && child.starts_with(parent)
        && child.as_bytes().get(parent.len()) == Some(&b'/')
}

/// `true` if `role` is `ancestor` itself or below it.
pub fn is_in_subtree(role: &str, ancestor: &str) -> bool {
    role == ancestor || is_strict_subrole_of(role, ancestor)
}

/// The ancestors of `role`, nearest first: `a/b/c` gives `a/b`, `a`.
pub fn ancestors(role: &str) -> impl Iterator<Item = &str> {
    role.char_indices()
        .rev()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &role[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mesos_roles() {
        for role in [
            "*",
            "eng",
            "eng/backend",
            "a/b/c",
            "role-1",
            "a.b",
            "x*y",
            "..a",
            "é",
        ] {
            assert_eq!(validate(role), Ok(()), "{role}");
        }
    }

    #[test]
    fn rejects_each_rule() {
        use RoleError::*;
        let cases: Vec<(&str, RoleError)> = vec![
            ("", Empty),
            ("/eng", LeadingSlash("/eng".into())),
            ("/", LeadingSlash("/".into())),
            ("eng/", TrailingSlash("eng/".into())),
            ("a//b", DoubleSlash("a//b".into())),
            (
                ".",
                ReservedComponent {
                    role: ".".into(),
                    component: ".".into(),
                },
            ),
            (
                "..",
                ReservedComponent {
                    role: "..".into(),
                    component: "..".into(),
                },
            ),
            (
                "a/../b",
                ReservedComponent {
                    role: "a/../b".into(),
                    component: "..".into(),
                },
            ),
            (
                "a/./b",
                ReservedComponent {
                    role: "a/./b".into(),
                    component: ".".into(),
                },
            ),
            (
                "a/*",
                ReservedComponent {
                    role: "a/*".into(),
                    component: "*".into(),
                },
            ),
            (
                "*/a",
                ReservedComponent {
                    role: "*/a".into(),
                    component: "*".into(),
                },
            ),
            ("-eng", LeadingDash("-eng".into())),
            ("eng/-x", LeadingDash("-x".into())),
            (
                "a b",
                InvalidCharacter {
                    component: "a b".into(),
                    what: "whitespace",
                },
            ),
            (
                "a\tb",
                InvalidCharacter {
                    component: "a\tb".into(),
                    what: "whitespace",
                },
            ),
            (
                "a\u{7f}",
                InvalidCharacter {
                    component: "a\u{7f}".into(),
                    what: "a control character",
                },
            ),
            (
                "a\0",
                InvalidCharacter {
                    component: "a\0".into(),
                    what: "a control character",
                },
            ),
        ];
        for (role, expected) in cases {
            assert_eq!(validate(role), Err(expected), "{role:?}");
        }
    }

    #[test]
    fn error_messages_name_the_role() {
        let err = validate("a//b").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("role 'a//b' cannot contain two adjacent slashes")
        );
    }

    #[test]
    fn hierarchy() {
        assert!(is_strict_subrole_of("a/b", "a"));
        assert!(is_strict_subrole_of("a/b/c", "a"));
        assert!(!is_strict_subrole_of("a", "a"));
        assert!(!is_strict_subrole_of("ab", "a"));
        assert!(!is_strict_subrole_of("a", "a/b"));
        assert!(is_in_subtree("a", "a"));
        assert!(is_in_subtree("a/b", "a"));
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a/b", "a"]);
        assert_eq!(ancestors("a").count(), 0);
    }

    #[test]
    fn parses_role_lists() {
        assert_eq!(
            parse_list("a,b/c,,d"),
            Ok(vec!["a".into(), "b/c".into(), "d".into()])
        );
        assert_eq!(
            parse_list("a,/b"),
            Err(RoleError::LeadingSlash("/b".into()))
        );
    }
}
