//! `Value.Ranges` as sets of integers: normalization, union, difference,
//! containment.
//!
//! A `Ranges` denotes the set of integers its closed intervals cover; every
//! operation here is defined by that set, whatever the order, overlap or
//! adjacency of the input intervals. Results are always *normalized*: sorted,
//! non-overlapping and non-adjacent (`[1-2],[3-4]` becomes `[1-4]`), which is
//! what Mesos's `coalesce` produces and what resource equality relies on.
//! Inverted intervals (`begin > end`) cover nothing; validation rejects them
//! before they reach a `Resources`, so dropping them here is only about never
//! panicking on unvalidated input.

use std::cmp::Ordering;
use std::fmt;

use super::error::ValidationError;
use crate::v1::value::{Range, Ranges};

/// A closed interval `[begin, end]`.
pub type Interval = (u64, u64);

/// Builds a normalized `Ranges` from intervals in any order.
pub fn from_intervals(intervals: impl IntoIterator<Item = Interval>) -> Ranges {
    Ranges {
        range: coalesce(intervals)
            .into_iter()
            .map(|(begin, end)| Range { begin, end })
            .collect(),
    }
}

/// The normalized intervals of `ranges`.
pub fn intervals(ranges: &Ranges) -> Vec<Interval> {
    coalesce(ranges.range.iter().map(|r| (r.begin, r.end)))
}

/// Sorts and merges overlapping and adjacent intervals, dropping inverted ones.
pub fn coalesce(intervals: impl IntoIterator<Item = Interval>) -> Vec<Interval> {
    let mut sorted: Vec<Interval> = intervals.into_iter().filter(|(b, e)| b <= e).collect();
    sorted.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(sorted.len());
    for (begin, end) in sorted {
        match merged.last_mut() {
            // Saturating: an interval ending at u64::MAX absorbs everything after.
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// The normalized form of `ranges`.
pub fn normalize(ranges: &Ranges) -> Ranges {
    from_intervals(ranges.range.iter().map(|r| (r.begin, r.end)))
}

/// `true` if `ranges` is already sorted, non-overlapping and non-adjacent.
pub fn is_normalized(ranges: &Ranges) -> bool {
    ranges.range.iter().all(|r| r.begin <= r.end)
        && ranges
            .range
            .windows(2)
            .all(|w| w[0].end < u64::MAX && w[0].end + 1 < w[1].begin)
}

/// The union of `a` and `b`.
pub fn add(a: &Ranges, b: &Ranges) -> Ranges {
    from_intervals(a.range.iter().chain(&b.range).map(|r| (r.begin, r.end)))
}

/// The integers of `a` that are not in `b`; intervals of `a` are split where
/// `b` cuts through them.
pub fn subtract(a: &Ranges, b: &Ranges) -> Ranges {
    let left = intervals(a);
    let right = intervals(b);
    let mut out = Vec::with_capacity(left.len());
    let mut first = 0;
    for (mut start, end) in left {
        while first < right.len() && right[first].1 < start {
            first += 1;
        }
        let mut survives = true;
        for &(cut_begin, cut_end) in right[first..].iter().take_while(|(b, _)| *b <= end) {
            if cut_begin > start {
                out.push((start, cut_begin - 1));
            }
            if cut_end >= end {
                survives = false;
                break;
            }
            // cut_end < end <= u64::MAX, so this cannot overflow.
            start = cut_end + 1;
        }
        if survives {
            out.push((start, end));
        }
    }
    Ranges {
        range: out
            .into_iter()
            .map(|(begin, end)| Range { begin, end })
            .collect(),
    }
}

/// `true` if every integer of `inner` is in `outer`.
pub fn contains(outer: &Ranges, inner: &Ranges) -> bool {
    let outer = intervals(outer);
    let mut candidates = outer.iter().peekable();
    for (begin, end) in intervals(inner) {
        // Both lists are sorted, so outer intervals ending before `begin` can
        // never hold a later inner interval either.
        while candidates.next_if(|(_, e)| *e < begin).is_some() {}
        match candidates.peek() {
            Some((b, e)) if *b <= begin && end <= *e => {}
            _ => return false,
        }
    }
    true
}

/// `true` if `a` and `b` cover the same integers.
pub fn equal(a: &Ranges, b: &Ranges) -> bool {
    intervals(a) == intervals(b)
}

/// `true` if `value` is covered by `ranges`.
pub fn contains_value(ranges: &Ranges, value: u64) -> bool {
    ranges
        .range
        .iter()
        .any(|r| r.begin <= value && value <= r.end)
}

/// How many integers `ranges` covers (`u128`: `[0-18446744073709551615]`
/// covers 2^64 of them).
pub fn count(ranges: &Ranges) -> u128 {
    intervals(ranges)
        .iter()
        .map(|(b, e)| u128::from(*e) - u128::from(*b) + 1)
        .sum()
}

/// Checks input ranges as Mesos's resource validation does: no interval may be
/// inverted and no two may share an integer (adjacent ones are fine, they are
/// merged). Unlike Mesos's pairwise check, this also catches an overlap with
/// an *earlier* interval that starts lower.
pub fn check(ranges: &Ranges) -> Result<(), ValidationError> {
    for (index, r) in ranges.range.iter().enumerate() {
        if r.begin > r.end {
            return Err(ValidationError::InvertedRange {
                index,
                begin: r.begin,
                end: r.end,
            });
        }
    }
    let mut order: Vec<usize> = (0..ranges.range.len()).collect();
    order.sort_by_key(|&i| (ranges.range[i].begin, ranges.range[i].end));
    for pair in order.windows(2) {
        let (first, second) = (&ranges.range[pair[0]], &ranges.range[pair[1]]);
        if second.begin <= first.end {
            // Report against the later index so the message reads in input order.
            let (index, other_index) = match pair[0].cmp(&pair[1]) {
                Ordering::Less => (pair[1], pair[0]),
                _ => (pair[0], pair[1]),
            };
            let (r, other) = (&ranges.range[index], &ranges.range[other_index]);
            return Err(ValidationError::OverlappingRanges {
                index,
                begin: r.begin,
                end: r.end,
                other_index,
                other_begin: other.begin,
                other_end: other.end,
            });
        }
    }
    Ok(())
}

/// Formats ranges as Mesos does: `[31000-32000, 33000-34000]`.
#[derive(Debug, Clone, Copy)]
pub struct DisplayRanges<'a>(pub &'a Ranges);

impl fmt::Display for DisplayRanges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, r) in self.0.range.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}-{}", r.begin, r.end)?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn r(pairs: &[Interval]) -> Ranges {
        Ranges {
            range: pairs
                .iter()
                .map(|&(begin, end)| Range { begin, end })
                .collect(),
        }
    }

    fn pairs(ranges: &Ranges) -> Vec<Interval> {
        ranges.range.iter().map(|r| (r.begin, r.end)).collect()
    }

    #[test]
    fn normalize_sorts_and_merges_overlapping_and_adjacent() {
        assert_eq!(
            pairs(&normalize(&r(&[(3, 4), (1, 2)]))),
            vec![(1, 4)],
            "adjacent ranges merge"
        );
        assert_eq!(
            pairs(&normalize(&r(&[(10, 20), (1, 5), (4, 8), (30, 30)]))),
            vec![(1, 8), (10, 20), (30, 30)]
        );
        assert_eq!(
            pairs(&normalize(&r(&[(5, 1)]))),
            vec![],
            "inverted covers nothing"
        );
        assert_eq!(
            pairs(&normalize(&r(&[(0, u64::MAX), (7, 9)]))),
            vec![(0, u64::MAX)]
        );
        assert_eq!(
            pairs(&normalize(&r(&[(u64::MAX, u64::MAX), (0, u64::MAX - 1)]))),
            vec![(0, u64::MAX)]
        );
        assert!(is_normalized(&r(&[(1, 2), (4, 5)])));
        assert!(!is_normalized(&r(&[(1, 2), (3, 5)])));
        assert!(!is_normalized(&r(&[(4, 5), (1, 2)])));
        assert!(!is_normalized(&r(&[(u64::MAX, u64::MAX), (1, 2)])));
    }

    #[test]
    fn subtract_splits() {
        let ports = r(&[(31000, 32000)]);
        assert_eq!(
            pairs(&subtract(&ports, &r(&[(31500, 31600)]))),
            vec![(31000, 31499), (31601, 32000)]
        );
        assert_eq!(pairs(&subtract(&ports, &r(&[(31000, 32000)]))), vec![]);
        assert_eq!(
            pairs(&subtract(&ports, &r(&[(30000, 31000), (32000, 33000)]))),
            vec![(31001, 31999)]
        );
        assert_eq!(
            pairs(&subtract(&r(&[(1, 10), (20, 30)]), &r(&[(5, 25)]))),
            vec![(1, 4), (26, 30)]
        );
        assert_eq!(
            pairs(&subtract(
                &r(&[(0, u64::MAX)]),
                &r(&[(0, 0), (u64::MAX, u64::MAX)])
            )),
            vec![(1, u64::MAX - 1)]
        );
        assert_eq!(pairs(&subtract(&ports, &r(&[]))), vec![(31000, 32000)]);
    }

    #[test]
    fn contains_and_equal_are_about_integers() {
        let a = r(&[(1, 10), (20, 30)]);
        assert!(contains(&a, &r(&[(2, 3), (25, 30)])));
        assert!(contains(&a, &r(&[])));
        assert!(!contains(&a, &r(&[(9, 11)])));
        assert!(!contains(&a, &r(&[(31, 31)])));
        assert!(contains(&r(&[(1, 2), (3, 4)]), &r(&[(2, 3)])));
        assert!(equal(&r(&[(3, 4), (1, 2)]), &r(&[(1, 4)])));
        assert!(!equal(&r(&[(1, 4)]), &r(&[(1, 5)])));
        assert!(contains_value(&a, 20));
        assert!(!contains_value(&a, 15));
        assert_eq!(count(&a), 21);
        assert_eq!(count(&r(&[(0, u64::MAX)])), 1u128 << 64);
    }

    #[test]
    fn check_rejects_inverted_and_overlapping_but_not_adjacent() {
        assert_eq!(check(&r(&[(1, 2), (3, 4)])), Ok(()));
        assert_eq!(
            check(&r(&[(1, 2), (9, 3)])),
            Err(ValidationError::InvertedRange {
                index: 1,
                begin: 9,
                end: 3
            })
        );
        assert_eq!(
            check(&r(&[(5, 10), (1, 6)])),
            Err(ValidationError::OverlappingRanges {
                index: 1,
                begin: 1,
                end: 6,
                other_index: 0,
                other_begin: 5,
                other_end: 10,
            })
        );
        assert!(check(&r(&[(1, 1), (1, 1)])).is_err());
    }

    #[test]
    fn displays_like_mesos() {
        assert_eq!(
            DisplayRanges(&r(&[(31000, 32000), (1, 2)])).to_string(),
            "[31000-32000, 1-2]"
        );
        assert_eq!(DisplayRanges(&r(&[])).to_string(), "[]");
    }

    fn integers(pairs: &[Interval]) -> BTreeSet<u64> {
        pairs.iter().flat_map(|&(b, e)| b..=e).collect()
    }

    fn arbitrary_ranges() -> impl Strategy<Value = Vec<Interval>> {
        prop::collection::vec(
            (0u64..150, 0u64..20).prop_map(|(b, len)| (b, b + len)),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn normalization_is_the_set_of_integers(input in arbitrary_ranges()) {
            let normalized = normalize(&r(&input));
            prop_assert!(is_normalized(&normalized));
            prop_assert_eq!(integers(&pairs(&normalized)), integers(&input));
            prop_assert_eq!(count(&normalized), integers(&input).len() as u128);
        }

        #[test]
        fn operations_match_set_semantics(a in arbitrary_ranges(), b in arbitrary_ranges()) {
            let (ra, rb) = (r(&a), r(&b));
            let (sa, sb) = (integers(&a), integers(&b));

            let union = add(&ra, &rb);
            prop_assert!(is_normalized(&union));
            prop_assert_eq!(integers(&pairs(&union)), &sa | &sb);

            let difference = subtract(&ra, &rb);
            prop_assert!(is_normalized(&difference));
            prop_assert_eq!(integers(&pairs(&difference)), &sa - &sb);

            prop_assert_eq!(contains(&ra, &rb), sb.is_subset(&sa));
            prop_assert_eq!(equal(&ra, &rb), sa == sb);
            prop_assert!(contains(&ra, &difference));
            prop_assert!(contains(&union, &ra));
            prop_assert!(equal(&subtract(&union, &subtract(&rb, &ra)), &ra));
        }
    }
}
