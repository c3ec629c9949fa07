use std::time::{Duration, Instant};

use tepui_proto::resources::parse_resources;

use super::*;

fn res(text: &str) -> Resources {
    parse_resources(text, "*").expect("resources")
}

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

fn cpus_of(grants: &[Grant], framework: &str) -> f64 {
    grants
        .iter()
        .filter(|g| g.framework_id == framework)
        .map(|g| Resources::from(g.resources.clone()).cpus().unwrap_or(0.0))
        .sum()
}

#[test]
fn weights_split_agents_one_to_two() {
    let mut a = Allocator::new(AllocatorConfig::default());
    for i in 0..30 {
        a.add_agent(&format!("a{i}"), res("cpus:1;mem:100"), &[]);
    }
    a.set_weight("two", 2.0);
    a.add_framework("f1", &roles(&["one"]), &[]);
    a.add_framework("f2", &roles(&["two"]), &[]);
    let grants = a.allocate(Instant::now());
    assert_eq!(cpus_of(&grants, "f1"), 10.0);
    assert_eq!(cpus_of(&grants, "f2"), 20.0);
    assert!(grants.iter().all(|g| {
        g.resources
            .iter()
            .all(|r| r.allocation_role() == Some(g.role.as_str()))
    }));
}

#[test]
fn static_reservation_goes_only_to_its_role() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus(baeldung):8;cpus:2;mem:100"), &[]);
    a.add_framework("other", &roles(&["other"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "other"), 2.0);
    a.add_framework("b", &roles(&["baeldung"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "b"), 8.0);
}

#[test]
fn filters_suppress_and_revive() {
    let now = Instant::now();
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus:4;mem:100"), &[]);
    a.add_framework("f", &roles(&["r"]), &[]);
    let g = a.allocate(now);
    assert_eq!(g.len(), 1);
    a.recover(
        "f",
        "a",
        &Resources::from(g[0].resources.clone()),
        Some(Duration::from_secs(5)),
        now,
    );
    assert!(a.allocate(now + Duration::from_secs(1)).is_empty());
    let g = a.allocate(now + Duration::from_secs(6));
    assert_eq!(g.len(), 1);
    a.recover(
        "f",
        "a",
        &Resources::from(g[0].resources.clone()),
        None,
        now,
    );
    a.suppress("f", None);
    assert!(a.allocate(now).is_empty());
    a.revive("f", None);
    assert_eq!(a.allocate(now).len(), 1);
}

#[test]
fn quota_guarantee_is_kept_as_headroom() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus:8;mem:800"), &[]);
    a.add_agent("b", res("cpus:8;mem:800"), &[]);
    a.set_quota(
        "q",
        Some(Quota {
            guarantee: Quantities::parse("cpus:6").expect("q"),
            limit: None,
        }),
    );
    a.add_framework("greedy", &roles(&["g"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "greedy"), 10.0);
    a.add_framework("quota", &roles(&["q"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "quota"), 6.0);
}

#[test]
fn quota_limit_caps_a_role() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus:8;mem:800"), &[]);
    a.set_quota(
        "l",
        Some(Quota {
            guarantee: Quantities::new(),
            limit: Some(Quantities::parse("cpus:3").expect("q")),
        }),
    );
    a.add_framework("f", &roles(&["l"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "f"), 3.0);
}
