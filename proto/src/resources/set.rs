//! `Value.Set` as a set of strings that remembers insertion order.
//!
//! Order carries no meaning (equality and containment ignore it), but Mesos
//! keeps items in the order they were added, and so do we: offers and
//! endpoints then list a set the way the operator wrote it.

use std::collections::HashSet;
use std::fmt;

use super::error::ValidationError;
use crate::v1::value::Set;

/// The union of `a` and `b`: `a`'s items, then those of `b` not already there.
pub fn add(a: &Set, b: &Set) -> Set {
    let mut seen: HashSet<&str> = HashSet::with_capacity(a.item.len() + b.item.len());
    let item = a
        .item
        .iter()
        .chain(&b.item)
        .filter(|item| seen.insert(item.as_str()))
        .cloned()
        .collect();
    Set { item }
}

/// The items of `a` that are not in `b`. Well defined even if `b` has items
/// `a` lacks: `{1,2} - {2,3} = {1}`.
pub fn subtract(a: &Set, b: &Set) -> Set {
    let remove: HashSet<&str> = b.item.iter().map(String::as_str).collect();
    Set {
        item: a
            .item
            .iter()
            .filter(|item| !remove.contains(item.as_str()))
            .cloned()
            .collect(),
    }
}

/// `true` if every item of `inner` is in `outer`.
pub fn contains(outer: &Set, inner: &Set) -> bool {
    let outer: HashSet<&str> = outer.item.iter().map(String::as_str).collect();
    inner.item.iter().all(|item| outer.contains(item.as_str()))
}

/// `true` if `a` and `b` hold the same items, in any order.
pub fn equal(a: &Set, b: &Set) -> bool {
    contains(a, b) && contains(b, a)
}

/// Rejects duplicated items, as Mesos's resource validation does.
pub fn check(set: &Set) -> Result<(), ValidationError> {
    let mut seen = HashSet::with_capacity(set.item.len());
    for (index, item) in set.item.iter().enumerate() {
        if !seen.insert(item.as_str()) {
            return Err(ValidationError::DuplicateSetItem {
                index,
                item: item.clone(),
            });
        }
    }
    Ok(())
}

/// Formats a set as Mesos does: `{a, b, c}`.
#[derive(Debug, Clone, Copy)]
pub struct DisplaySet<'a>(pub &'a Set);

impl fmt::Display for DisplaySet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, item) in self.0.item.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(item)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Set {
        Set {
            item: items.iter().map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn union_keeps_order_and_drops_duplicates() {
        assert_eq!(add(&s(&["a", "b"]), &s(&["c", "a"])), s(&["a", "b", "c"]));
        assert_eq!(add(&s(&[]), &s(&["x"])), s(&["x"]));
    }

    #[test]
    fn difference_is_well_defined_for_non_subsets() {
        assert_eq!(subtract(&s(&["1", "2"]), &s(&["2", "3"])), s(&["1"]));
        assert_eq!(subtract(&s(&["a"]), &s(&["a"])), s(&[]));
    }

    #[test]
    fn containment_and_equality_ignore_order() {
        assert!(contains(&s(&["a", "b", "c"]), &s(&["c", "a"])));
        assert!(!contains(&s(&["a"]), &s(&["a", "b"])));
        assert!(contains(&s(&["a"]), &s(&[])));
        assert!(equal(&s(&["a", "b"]), &s(&["b", "a"])));
        assert!(!equal(&s(&["a", "b"]), &s(&["a", "c"])));
    }

    #[test]
    fn check_finds_duplicates() {
        assert_eq!(check(&s(&["a", "b"])), Ok(()));
        assert_eq!(
            check(&s(&["a", "b", "a"])),
            Err(ValidationError::DuplicateSetItem {
                index: 2,
                item: "a".into()
            })
        );
    }

    #[test]
    fn displays_like_mesos() {
        assert_eq!(DisplaySet(&s(&["a", "b", "c"])).to_string(), "{a, b, c}");
        assert_eq!(DisplaySet(&s(&[])).to_string(), "{}");
    }
}
