//! Property tests: the algebra of `Resources` and the parsers' robustness.

use proptest::prelude::*;

use super::resource::{ResourceExt, addable};
use super::*;
use crate::v1::Resource;
use crate::v1::resource::{AllocationInfo, RevocableInfo};
use crate::v1::value::{Scalar, Set, Type};

/// Every `Resources` invariant, checked after each operation under test.
fn assert_normalized(resources: &Resources) -> Result<(), TestCaseError> {
    let all = resources.as_slice();
    for (i, r) in all.iter().enumerate() {
        prop_assert_eq!(validate(r), Ok(()), "{:?}", r);
        prop_assert!(!r.is_empty(), "empty element {:?}", r);
        #[allow(deprecated)]
        let legacy = r.role.is_some() || r.reservation.is_some();
        prop_assert!(!legacy, "legacy fields in {:?}", r);
        for other in &all[i + 1..] {
            prop_assert!(!addable(r, other), "{:?} and {:?} not merged", r, other);
        }
    }
    Ok(())
}

fn quantity() -> impl Strategy<Value = f64> {
    // Multiples of a thousandth, as Mesos can represent exactly.
    (0u32..10_000_000).prop_map(|milli| f64::from(milli) / 1000.0)
}

fn ranges_value() -> impl Strategy<Value = crate::v1::value::Ranges> {
    prop::collection::vec((0u64..300, 0u64..30), 0..5).prop_map(|pairs| {
        super::ranges::from_intervals(pairs.into_iter().map(|(b, len)| (b, b + len)))
    })
}

fn set_value() -> impl Strategy<Value = Set> {
    prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c", "d", "e"]), 0..5).prop_map(
        |items| Set {
            item: items.into_iter().map(str::to_string).collect(),
        },
    )
}

/// A resource of a realistic name/type pairing, without identity decorations.
fn plain_resource() -> impl Strategy<Value = Resource> {
    let scalar = (
        prop::sample::select(vec!["cpus", "mem", "gpus"]),
        quantity(),
    )
        .prop_map(|(name, value)| Resource {
            name: name.into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value }),
            ..Default::default()
        });
    let ranges = ranges_value().prop_map(|ranges| Resource {
        name: "ports".into(),
        r#type: Type::Ranges as i32,
        ranges: Some(ranges),
        ..Default::default()
    });
    let set = set_value().prop_map(|set| Resource {
        name: "bugs".into(),
        r#type: Type::Set as i32,
        set: Some(set),
        ..Default::default()
    });
    prop_oneof![3 => scalar, 1 => ranges, 1 => set]
}

/// A resource with an arbitrary (valid) reservation stack, allocation and
/// revocability, so that identities collide often but not always.
fn resource() -> impl Strategy<Value = Resource> {
    (plain_resource(), 0usize..3, any::<bool>(), any::<bool>()).prop_map(
        |(mut r, depth, allocated, revocable)| {
            let stack = [
                static_reservation("a"),
                dynamic_reservation("a/b", Some("ops")),
            ];
            r.reservations = stack[..depth].to_vec();
            if allocated {
                r.allocation_info = Some(AllocationInfo {
                    role: Some("a".into()),
                });
            }
            if revocable {
                r.revocable = Some(RevocableInfo {});
            }
            r
        },
    )
}

fn resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource(), 0..6).prop_map(Resources::from)
}

fn unreserved_resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(plain_resource(), 0..6).prop_map(Resources::from)
}

/// Text in the alphabet of the `--resources` and `--attributes` grammars, so
/// the parsers get past their first check more often than with random text.
fn grammar_text() -> impl Strategy<Value = String> {
    "[a-c0-9():;,\\[\\]{}*/. \\-xe+\n]{0,40}"
}

proptest! {
    #[test]
    fn collections_are_normalized(a in resources(), b in resources()) {
        assert_normalized(&a)?;
        assert_normalized(&(&a + &b))?;
        assert_normalized(&(&a - &b))?;
        let mut allocated = a.clone();
        allocated.allocate("x");
        assert_normalized(&allocated)?;
        allocated.unallocate();
        assert_normalized(&allocated)?;
        assert_normalized(&a.to_unreserved())?;
    }

    #[test]
    fn adding_then_subtracting_disjoint_resources_is_identity(a in resources(), b in resources()) {
        // `b - a` shares no integer or item with `a`, so it can be taken back out.
        let disjoint = &b - &a;
        prop_assert_eq!(&(&(&a + &disjoint) - &disjoint), &a);
    }

    #[test]
    fn addition_is_commutative_and_grows(a in resources(), b in resources()) {
        let sum = &a + &b;
        prop_assert_eq!(&sum, &(&b + &a));
        prop_assert!(a.contains(&a));
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
        prop_assert!(Resources::new().contains(&Resources::new()));
        prop_assert!(a.contains(&Resources::new()));
    }

    #[test]
    fn subtraction_shrinks_and_restores(a in resources(), c in resources()) {
        prop_assert!(a.contains(&(&a - &c)));
        // `part` is contained in `a`, so removing and re-adding it is lossless.
        let part = &a - &c;
        prop_assert!(a.contains(&part));
        prop_assert_eq!(&(&(&a - &part) + &part), &a);
        prop_assert!((&a - &a).is_empty());
    }

    #[test]
    fn contains_each_element(a in resources()) {
        for r in &a {
            prop_assert!(a.contains_resource(r));
        }
    }

    #[test]
    fn vec_round_trip_is_exact(a in resources()) {
        let vec: Vec<Resource> = a.clone().into();
        let back = Resources::from(vec.clone());
        prop_assert_eq!(back.as_slice(), vec.as_slice());
        prop_assert_eq!(back, a);
    }

    #[test]
    fn text_form_of_unreserved_resources_parses_back(a in unreserved_resources()) {
        // An empty collection prints as `{}`, which is not flag syntax.
        let text = if a.is_empty() { String::new() } else { a.to_string() };
        prop_assert_eq!(parse_resources(&text, "*"), Ok(a), "{}", text);
    }

    #[test]
    fn parsed_resources_are_valid(text in grammar_text()) {
        if let Ok(parsed) = parse_resources(&text, "*") {
            assert_normalized(&parsed)?;
        }
    }

    #[test]
    fn resources_parser_never_panics(text in any::<String>()) {
        let _ = parse_resources(&text, "*");
        let _ = parse_resources(&text, "eng");
    }

    #[test]
    fn resources_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_resources(&String::from_utf8_lossy(&bytes), "*");
    }

    #[test]
    fn resources_parser_never_panics_on_grammar_text(text in grammar_text(), role in "[a-z*/.\\- ]{0,6}") {
        let _ = parse_resources(&text, &role);
        let _ = parse_resources(&format!("[{text}"), "*");
    }

    #[test]
    fn attributes_parser_never_panics(text in any::<String>()) {
        let _ = parse_attributes(&text);
    }

    #[test]
    fn attributes_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_attributes(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn attributes_parser_never_panics_on_grammar_text(text in grammar_text()) {
        if let Ok(attributes) = parse_attributes(&text) {
            for a in &attributes {
                prop_assert!(!a.name.is_empty());
                let ty = Type::try_from(a.r#type);
                prop_assert!(matches!(ty, Ok(Type::Scalar | Type::Ranges | Type::Text)));
            }
        }
    }

    #[test]
    fn role_validation_never_panics(role in any::<String>()) {
        let _ = role::validate(&role);
        let _ = role::parse_list(&role);
    }
}
