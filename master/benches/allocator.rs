//! Allocator benchmark in the shape of Mesos's
//! `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`: agents
//! `cpus:24;mem:4096;disk:4096;ports:[31000-32000]`, each already running 16
//! cpus worth of a framework's tasks; every round all frameworks decline
//! every offer with a filter that never expires, then one allocation cycle is
//! timed.
//!
//! `cargo bench -p tepui-master --bench allocator` (env `TEPUI_BENCH_ROUNDS`
//! sets rounds per size, default 40; Mesos runs 2 x frameworks rounds, whose
//! cost here does not grow with the filters piled up, see the max column).

use std::time::{Duration, Instant};

use tepui_master::allocator::{Allocator, AllocatorConfig, Grant};
use tepui_proto::resources::parse_resources;

fn main() {
    let rounds: usize = std::env::var("TEPUI_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    println!(
        "{:>7} {:>10} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "agents",
        "frameworks",
        "rounds",
        "first (ms)",
        "mean (ms)",
        "max (ms)",
        "offers/rnd",
        "filters"
    );
    for (agents, frameworks) in [(2_000, 200), (10_000, 1_000), (20_000, 2_000)] {
        run(agents, frameworks, rounds);
    }
}

fn run(agent_count: usize, framework_count: usize, rounds: usize) {
    let mut allocator = Allocator::new(AllocatorConfig::default());
    let ids: Vec<String> = (0..framework_count)
        .map(|i| format!("framework-{i}"))
        .collect();
    for id in &ids {
        allocator.add_framework(id, &["*".to_string()], &[]);
    }
    let total = parse_resources("cpus:24;mem:4096;disk:4096;ports:[31000-32000]", "*")
        .expect("agent resources");
    let mut used = parse_resources("cpus:16;mem:2014;disk:1024", "*").expect("used");
    used.allocate("*");
    for i in 0..agent_count {
        let framework = ids[i % framework_count].clone();
        allocator.add_agent(
            &format!("agent-{i}"),
            total.clone(),
            &[(framework, used.clone())],
        );
    }

    let mut now = Instant::now();
    let mut offers: Vec<Grant> = Vec::new();
    let mut times = Vec::with_capacity(rounds);
    let mut offered = 0usize;
    for _ in 0..rounds {
        for grant in offers.drain(..) {
            allocator.recover(
                &grant.framework_id,
                &grant.agent_id,
                &tepui_proto::resources::Resources::from(grant.resources),
                Some(Duration::from_secs(i32::MAX as u64)),
                now,
            );
        }
        now += Duration::from_secs(1);
        let start = Instant::now();
        offers = allocator.allocate(now);
        times.push(start.elapsed());
        offered += offers.len();
    }
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "{:>7} {:>10} {:>6} {:>12.2} {:>12.2} {:>12.2} {:>10} {:>10}",
        agent_count,
        framework_count,
        rounds,
        times.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        offered / rounds.max(1),
        allocator.filter_count(),
    );
}
