use super::*;
use crate::resources::reservation::dynamic_reservation;
use crate::resources::{ValidationError, parse_resources, ranges};
use crate::v1::resource::disk_info::source::{Mount, Type as SourceType};
use crate::v1::resource::disk_info::{Persistence, Source};
use crate::v1::resource::{DiskInfo, RevocableInfo, SharedInfo};
use crate::v1::value::Range;

fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: Type::Scalar as i32,
        scalar: Some(Scalar { value }),
        ..Default::default()
    }
}

fn ports(pairs: &[(u64, u64)]) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: Type::Ranges as i32,
        ranges: Some(Ranges {
            range: pairs
                .iter()
                .map(|&(begin, end)| Range { begin, end })
                .collect(),
        }),
        ..Default::default()
    }
}

fn bugs(items: &[&str]) -> Resource {
    Resource {
        name: "bugs".into(),
        r#type: Type::Set as i32,
        set: Some(Set {
            item: items.iter().map(|i| i.to_string()).collect(),
        }),
        ..Default::default()
    }
}

fn reserved(r: Resource, role: &str) -> Resource {
    Resource {
        reservations: vec![static_reservation(role)],
        ..r
    }
}

fn volume(id: &str, size: f64) -> Resource {
    Resource {
        disk: Some(DiskInfo {
            persistence: Some(Persistence {
                id: id.into(),
                principal: None,
            }),
            ..Default::default()
        }),
        ..reserved(scalar("disk", size), "a")
    }
}

fn shared(r: Resource) -> Resource {
    Resource {
        shared: Some(SharedInfo {}),
        ..r
    }
}

fn parse(text: &str) -> Resources {
    match parse_resources(text, "*") {
        Ok(r) => r,
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn addition_merges_equal_identities_only() {
    let mut r = Resources::new();
    r += scalar("cpus", 1.0);
    r += scalar("cpus", 2.5);
    r += reserved(scalar("cpus", 4.0), "a");
    r += scalar("mem", 512.0);
    assert_eq!(r.len(), 3);
    assert_eq!(r.as_slice()[0], scalar("cpus", 3.5));
    assert_eq!(r.as_slice()[1], reserved(scalar("cpus", 4.0), "a"));
    assert_eq!(r.cpus(), Some(7.5));
    assert_eq!(
        r.to_string(),
        "cpus:3.5; cpus(reservations: [(STATIC,a)]):4; mem:512"
    );
}

#[test]
fn fixed_point_sums() {
    let r = Resources::from(vec![scalar("cpus", 0.1), scalar("cpus", 0.2)]);
    assert_eq!(r, Resources::from(scalar("cpus", 0.3)));
    assert_eq!(r.cpus(), Some(0.3));
    let less = &r - &Resources::from(scalar("cpus", 0.1));
    assert_eq!(less.cpus(), Some(0.2));
}

#[test]
fn empty_and_invalid_resources_are_dropped() {
    let r = Resources::from(vec![
        scalar("cpus", 0.0),
        scalar("mem", 0.0004),
        ports(&[]),
        bugs(&[]),
        scalar("cpus", -1.0),
        scalar("", 1.0),
        ports(&[(5, 1)]),
        scalar("gpus", 1.0),
    ]);
    assert_eq!(r.as_slice(), &[scalar("gpus", 1.0)]);

    let mut strict = Resources::new();
    assert_eq!(
        strict.try_add(scalar("cpus", -1.0)),
        Err(ValidationError::NegativeScalar(-1.0))
    );
    assert!(strict.is_empty());
    assert_eq!(
        Resources::try_from_resources(vec![scalar("cpus", 1.0), scalar("mem", f64::NAN)])
            .map_err(|e| e.to_string())
            .err()
            .map(|m| m.starts_with("resource 'mem:nan' is invalid: field 'scalar.value'")),
        Some(true)
    );
}

#[test]
#[allow(deprecated)]
fn legacy_format_is_converted_on_the_way_in() {
    let legacy = Resource {
        role: Some("a".into()),
        ..scalar("cpus", 1.0)
    };
    let r = Resources::from(legacy);
    assert_eq!(r.as_slice(), &[reserved(scalar("cpus", 1.0), "a")]);
    let star = Resource {
        role: Some("*".into()),
        ..scalar("cpus", 1.0)
    };
    assert_eq!(Resources::from(star).as_slice(), &[scalar("cpus", 1.0)]);
}

#[test]
fn quantities_are_stored_canonically() {
    let r = Resources::from(vec![scalar("cpus", 1.23456), ports(&[(5, 9), (1, 4)])]);
    assert_eq!(r.as_slice(), &[scalar("cpus", 1.235), ports(&[(1, 9)])]);
}

#[test]
fn subtraction() {
    let total = parse("cpus:4;mem:1024;ports:[31000-32000];bugs:{a,b,c}");
    let used = parse("cpus:1.5;ports:[31500-31600];bugs:{b}");
    let left = &total - &used;
    assert_eq!(
        left.to_string(),
        "cpus:2.5; mem:1024; ports:[31000-31499, 31601-32000]; bugs:{a, c}"
    );
    assert_eq!(&left + &used, total);

    // Taking more than there is removes the resource rather than going negative.
    let mut r = parse("cpus:1;mem:10");
    r -= scalar("cpus", 2.0);
    assert_eq!(r, parse("mem:10"));
    // Subtracting what is not there changes nothing.
    r -= reserved(scalar("mem", 10.0), "a");
    assert_eq!(r, parse("mem:10"));
    // Invalid input is ignored.
    r -= scalar("mem", -5.0);
    assert_eq!(r, parse("mem:10"));
}

#[test]
fn containment() {
    let total = parse("cpus:4;mem:1024;ports:[31000-32000];bugs:{a,b}");
    assert!(total.contains(&parse("cpus:4;ports:[31000-31000]")));
    assert!(total.contains(&parse("cpus:0.001;bugs:{b}")));
    assert!(!total.contains(&parse("cpus:4.001")));
    assert!(!total.contains(&parse("ports:[30999-31000]")));
    assert!(!total.contains(&parse("bugs:{c}")));
    assert!(!total.contains(&parse("gpus:1")));
    assert!(!total.contains(&parse_resources("cpus:1", "a").unwrap_or_default()));
    assert!(total.contains_resource(&scalar("cpus", 3.0)));
    assert!(!total.contains_resource(&scalar("cpus", -1.0)));
    assert!(total.contains_resource(&scalar("cpus", 0.0)));
}

#[test]
fn equality_ignores_order() {
    assert_eq!(parse("cpus:1;mem:2"), parse("mem:2;cpus:1"));
    assert_ne!(parse("cpus:1;mem:2"), parse("cpus:1"));
    assert_eq!(
        parse("ports:[1-2];ports:[3-4]"),
        Resources::from(ports(&[(1, 4)]))
    );
}

#[test]
fn filters() {
    let revocable = Resource {
        revocable: Some(RevocableInfo {}),
        ..scalar("cpus", 1.0)
    };
    let refined = Resource {
        reservations: vec![
            static_reservation("a"),
            dynamic_reservation("a/b", Some("p")),
        ],
        ..scalar("cpus", 2.0)
    };
    let r = Resources::from(vec![
        scalar("cpus", 4.0),
        reserved(scalar("cpus", 8.0), "a"),
        refined.clone(),
        reserved(scalar("mem", 1.0), "c"),
        revocable.clone(),
        volume("v1", 10.0),
    ]);
    assert_eq!(
        r.unreserved(),
        Resources::from(vec![scalar("cpus", 4.0), revocable.clone()])
    );
    assert_eq!(r.reserved(None).len(), 4);
    assert_eq!(
        r.reserved(Some("a")),
        Resources::from(vec![reserved(scalar("cpus", 8.0), "a"), volume("v1", 10.0)])
    );
    assert_eq!(r.reserved(Some("a/b")), Resources::from(refined.clone()));
    assert_eq!(r.reserved_to_role_subtree("a").len(), 3);
    assert_eq!(r.allocatable_to("a").len(), 4);
    assert_eq!(r.allocatable_to("a/b").len(), 5);
    assert_eq!(r.allocatable_to("c").len(), 3);
    assert_eq!(r.revocable(), Resources::from(revocable.clone()));
    assert_eq!(r.non_revocable().len(), 5);
    assert_eq!(r.persistent_volumes(), Resources::from(volume("v1", 10.0)));
    assert!(r.shared().is_empty());
    assert_eq!(r.non_shared().len(), 6);
    assert_eq!(r.get("mem").len(), 1);
    assert_eq!(r.scalars().len(), 6);
    assert_eq!(r.filter(|x| x.name == "disk").len(), 1);

    let groups = r.reservations();
    assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["a", "a/b", "c"]);
    assert_eq!(groups.get("a").map(Resources::len), Some(2));
}

#[test]
fn allocation() {
    let mut r = parse("cpus:4;mem:16");
    assert!(r.allocations().is_empty());
    r.allocate("eng");
    assert!(r.iter().all(|x| x.allocation_role() == Some("eng")));
    assert_eq!(
        r.to_string(),
        "cpus(allocated: eng):4; mem(allocated: eng):16"
    );
    assert_eq!(r.allocated_to("eng").len(), 2);
    assert!(r.allocated_to("eng/x").is_empty());
    assert_eq!(r.allocated_to_role_subtree("eng").len(), 2);

    let mut other = parse("cpus:1");
    other.allocate("eng/web");
    let mut both = &r + &other;
    assert_eq!(both.len(), 3, "different allocations stay apart");
    assert_eq!(both.allocated_to_role_subtree("eng").len(), 3);
    assert_eq!(both.allocations().len(), 2);
    both.unallocate();
    assert_eq!(
        both.as_slice(),
        parse("cpus:5;mem:16").as_slice(),
        "merged again"
    );
}

#[test]
fn reservation_push_pop_flatten() {
    let r = parse("cpus:4;mem:16");
    let reserved_a = r.push_reservation(&dynamic_reservation("a", Some("ops")));
    let Ok(reserved_a) = reserved_a else {
        panic!("{reserved_a:?}")
    };
    assert!(reserved_a.iter().all(ResourceExt::is_dynamically_reserved));
    let refined = reserved_a.push_reservation(&dynamic_reservation("a/b", None));
    assert!(
        refined
            .as_ref()
            .is_ok_and(|x| x.reserved(Some("a/b")).len() == 2)
    );
    // A refinement must go down the role tree.
    assert!(matches!(
        reserved_a.push_reservation(&dynamic_reservation("b", None)),
        Err(ResourcesError::InvalidResource {
            source: ValidationError::NotARefinement { .. },
            ..
        })
    ));
    assert_eq!(reserved_a.pop_reservation(), Ok(r.clone()));
    assert_eq!(
        r.pop_reservation(),
        Err(ResourcesError::NotReserved("cpus:4".into()))
    );

    let mixed = &parse_resources("cpus:1", "a").unwrap_or_default() + &parse("cpus:2");
    assert_eq!(mixed.len(), 2);
    assert_eq!(mixed.to_unreserved().as_slice(), &[scalar("cpus", 3.0)]);
    let flat = mixed.flatten("z");
    assert_eq!(
        flat.map(|f| f.into_vec()),
        Ok(vec![reserved(scalar("cpus", 3.0), "z")])
    );
    assert_eq!(mixed.flatten("*"), Ok(parse("cpus:3")));
    assert!(matches!(
        mixed.flatten("/z"),
        Err(ResourcesError::Role { .. })
    ));
}

#[test]
fn quantities_by_name() {
    let r = parse(
        "cpus:2;cpus(a):1.5;gpus:1;mem:1024;disk:4096;ports:[1-2];ports(a):[3-4,9-9];bugs:{x};bugs(a):{y,x}",
    );
    assert_eq!(r.cpus(), Some(3.5));
    assert_eq!(r.gpus(), Some(1.0));
    assert_eq!(r.mem(), Some(1024.0));
    assert_eq!(r.disk(), Some(4096.0));
    assert_eq!(r.scalar("nope"), None);
    assert_eq!(
        r.ports().map(|p| ranges::intervals(&p)),
        Some(vec![(1, 4), (9, 9)])
    );
    assert_eq!(r.ephemeral_ports(), None);
    assert_eq!(
        r.set("bugs").map(|s| s.item),
        Some(vec!["x".to_string(), "y".to_string()])
    );
    assert_eq!(r.ranges("cpus"), None, "wrong type");
    assert_eq!(
        r.names().into_iter().collect::<Vec<_>>(),
        vec!["bugs", "cpus", "disk", "gpus", "mem", "ports"]
    );
    assert_eq!(r.types().get("ports"), Some(&Type::Ranges));
    assert_eq!(
        r.stripped_scalar_quantity().to_string(),
        "cpus:3.5; gpus:1; mem:1024; disk:4096"
    );
}

#[test]
fn persistent_volumes_are_unique() {
    let mut r = Resources::new();
    r += volume("v1", 10.0);
    r += volume("v2", 10.0);
    r += volume("v1", 10.0);
    assert_eq!(r.len(), 3, "volumes never merge");
    assert!(r.contains(&Resources::from(vec![
        volume("v1", 10.0),
        volume("v2", 10.0)
    ])));
    assert!(
        !r.contains_resource(&volume("v1", 5.0)),
        "volumes are indivisible"
    );
    r -= volume("v1", 10.0);
    assert_eq!(r.len(), 2);
    r -= volume("v1", 5.0);
    assert_eq!(r.len(), 2, "only an identical volume cancels one");
}

#[test]
fn mount_disks_are_indivisible() {
    let mount = Resource {
        disk: Some(DiskInfo {
            source: Some(Source {
                r#type: SourceType::Mount as i32,
                mount: Some(Mount {
                    root: Some("/mnt/1".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..scalar("disk", 100.0)
    };
    let r = Resources::from(mount.clone());
    let half = Resource {
        scalar: Some(Scalar { value: 50.0 }),
        ..mount.clone()
    };
    assert!(r.contains_resource(&mount));
    assert!(!r.contains_resource(&half));
    assert_eq!(&r - &Resources::from(half), r);
    assert!((&r - &Resources::from(mount)).is_empty());
}

#[test]
fn shared_resources_are_counted() {
    let v = shared(volume("v", 10.0));
    let mut r = Resources::new();
    r += v.clone();
    r += v.clone();
    assert_eq!(r.len(), 2);
    assert_eq!(r.count(&v), 2);
    assert_eq!(r.count(&volume("v", 10.0)), 0);
    assert_eq!(
        r.to_string(),
        "disk(reservations: [(STATIC,a)])[v]<SHARED>:10<2>"
    );
    let one = Resources::from(v.clone());
    let three = &r + &one;
    assert!(r.contains(&one) && r.contains(&r) && !r.contains(&three));
    assert_eq!(&three - &one, r);
    r -= v.clone();
    assert_eq!(r.count(&v), 1);
    assert_eq!(r, one);
    let vec: Vec<Resource> = three.clone().into();
    assert_eq!(
        Resources::from(vec).count(&v),
        3,
        "counts survive a round trip"
    );
}

#[test]
fn display() {
    assert_eq!(Resources::new().to_string(), "{}");
    assert_eq!(
        parse("cpus:4;mem:2048;ports:[31000-32000]").to_string(),
        "cpus:4; mem:2048; ports:[31000-32000]"
    );
}

#[test]
fn conversions() {
    let r = parse("cpus:1;mem:2");
    let v: Vec<Resource> = r.clone().into();
    assert_eq!(v, vec![scalar("cpus", 1.0), scalar("mem", 2.0)]);
    assert_eq!(r.iter().count(), 2);
    assert_eq!((&r).into_iter().count(), 2);
    assert_eq!(r.as_ref().len(), 2);
    let collected: Resources = v.into_iter().collect();
    assert_eq!(collected, r);
    let mut extended = Resources::new();
    extended.extend(vec![scalar("cpus", 1.0), scalar("cpus", 1.0)]);
    assert_eq!(extended.as_slice(), &[scalar("cpus", 2.0)]);
    assert_eq!(r.clone() + scalar("cpus", 1.0), parse("cpus:2;mem:2"));
    assert_eq!(&r - &scalar("mem", 2.0), parse("cpus:1"));
    assert_eq!(r.clone() - parse("cpus:1"), parse("mem:2"));
}
