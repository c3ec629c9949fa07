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

#[test]
fn reservations_to_a_parent_role_reach_its_children() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus(eng):4;mem(eng):100"), &[]);
    a.add_framework("backend", &roles(&["eng/backend"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(cpus_of(&g, "backend"), 4.0);
    assert_eq!(g[0].role, "eng/backend");
}

#[test]
fn gpus_do_not_count_for_fairness() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("gpu", res("cpus:1;mem:100;gpus:1"), &[]);
    a.add_agent("plain", res("cpus:1;mem:100"), &[]);
    a.add_agent("plain2", res("cpus:1;mem:100"), &[]);
    a.add_framework("f1", &roles(&["x"]), &[]);
    a.add_framework("f2", &roles(&["y"]), &[]);
    let g = a.allocate(Instant::now());
    // Whoever got the GPU agent is not considered richer than one cpu.
    let counts: Vec<usize> = ["f1", "f2"]
        .iter()
        .map(|f| g.iter().filter(|x| x.framework_id == *f).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 3);
    assert!(counts.iter().all(|c| *c >= 1));
}

#[test]
fn min_allocatable_and_offer_cap() {
    let config = AllocatorConfig {
        min_allocatable: vec![Quantities::parse("cpus:1").expect("q")],
        max_offers_per_framework: 2,
        ..AllocatorConfig::default()
    };
    let mut a = Allocator::new(config);
    a.add_agent("tiny", res("cpus:0.5;mem:1000"), &[]);
    for i in 0..4 {
        a.add_agent(&format!("a{i}"), res("cpus:1;mem:100"), &[]);
    }
    a.add_framework("f", &roles(&["r"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(g.len(), 2, "capped at two offers per cycle");
    assert!(g.iter().all(|x| x.agent_id != "tiny"));
    let g = a.allocate(Instant::now());
    assert_eq!(g.len(), 2);
    assert!(a.allocate(Instant::now()).is_empty());
}

#[test]
fn framework_removal_returns_its_share() {
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add_agent("a", res("cpus:2;mem:100"), &[]);
    a.add_framework("f", &roles(&["r"]), &[]);
    let g = a.allocate(Instant::now());
    assert_eq!(g.len(), 1);
    assert!(a.role_share("r") > 0.0);
    a.recover(
        "f",
        "a",
        &Resources::from(g[0].resources.clone()),
        None,
        Instant::now(),
    );
    a.remove_framework("f");
    assert_eq!(a.role_allocated("r").get("cpus"), 0);
    a.add_framework("g", &roles(&["r"]), &[]);
    assert_eq!(cpus_of(&a.allocate(Instant::now()), "g"), 2.0);
}
