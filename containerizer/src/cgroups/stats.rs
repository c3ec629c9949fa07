//! Control-file contents -> `ResourceStatistics` fields, as pure functions
//! over text so that every format is unit-tested with samples. The backends
//! only read files and call these. Field choices follow Mesos's cgroups (v1)
//! and cgroups2 isolators so existing dashboards read the same numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use tepui_proto::v1::ResourceStatistics;

use super::fs::flat_keyed;

/// Seconds since the epoch, the `timestamp` Mesos puts in statistics.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// v1 reports "no limit" as the largest page-aligned counter value
/// (`PAGE_COUNTER_MAX * PAGE_SIZE`, 0x7FFFFFFFFFFFF000 on 64-bit); anything
/// that large is not a real limit.
pub(crate) fn v1_limit(value: u64) -> Option<u64> {
    (value < (1u64 << 62)).then_some(value)
}

/// Clock ticks per second for `cpuacct.stat` (USER_HZ, nearly always 100).
pub(crate) fn clock_ticks_per_sec() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// v1 `cpuacct.stat`: `user` and `system` in clock ticks.
pub(crate) fn apply_cpuacct_stat(stats: &mut ResourceStatistics, text: &str, ticks_per_sec: u64) {
    let m = flat_keyed(text);
    let ticks = ticks_per_sec.max(1) as f64;
    if let Some(user) = m.get("user") {
        stats.cpus_user_time_secs = Some(*user as f64 / ticks);
    }
    if let Some(system) = m.get("system") {
        stats.cpus_system_time_secs = Some(*system as f64 / ticks);
    }
}

/// v1 `cpu.stat`: CFS throttling; `throttled_time` is in nanoseconds.
pub(crate) fn apply_v1_cpu_stat(stats: &mut ResourceStatistics, text: &str) {
    let m = flat_keyed(text);
    stats.cpus_nr_periods = m.get("nr_periods").map(|v| saturate_u32(*v));
    stats.cpus_nr_throttled = m.get("nr_throttled").map(|v| saturate_u32(*v));
    stats.cpus_throttled_time_secs = m.get("throttled_time").map(|ns| *ns as f64 / 1e9);
}

/// v2 `cpu.stat`: times in microseconds; throttling keys only with the cpu
/// controller enabled.
pub(crate) fn apply_v2_cpu_stat(stats: &mut ResourceStatistics, text: &str) {
    let m = flat_keyed(text);
    stats.cpus_user_time_secs = m.get("user_usec").map(|us| *us as f64 / 1e6);
    stats.cpus_system_time_secs = m.get("system_usec").map(|us| *us as f64 / 1e6);
    stats.cpus_nr_periods = m.get("nr_periods").map(|v| saturate_u32(*v));
    stats.cpus_nr_throttled = m.get("nr_throttled").map(|v| saturate_u32(*v));
    stats.cpus_throttled_time_secs = m.get("throttled_usec").map(|us| *us as f64 / 1e6);
}

/// v1 `memory.stat`: the hierarchical `total_*` keys (they include child
/// cgroups, which matters for a pod parent). rss excludes page cache; the
/// total is `memory.usage_in_bytes`, read separately.
pub(crate) fn apply_v1_memory_stat(stats: &mut ResourceStatistics, text: &str) {
    let m = flat_keyed(text);
    if let Some(cache) = m.get("total_cache") {
        stats.mem_cache_bytes = Some(*cache);
        stats.mem_file_bytes = Some(*cache);
    }
    if let Some(rss) = m.get("total_rss") {
        stats.mem_rss_bytes = Some(*rss);
        stats.mem_anon_bytes = Some(*rss);
    }
    stats.mem_mapped_file_bytes = m.get("total_mapped_file").copied();
    stats.mem_swap_bytes = m.get("total_swap").copied();
    stats.mem_unevictable_bytes = m.get("total_unevictable").copied();
}

/// v2 `memory.stat` (always hierarchical): `anon` is the rss equivalent,
/// `file` the page cache.
pub(crate) fn apply_v2_memory_stat(stats: &mut ResourceStatistics, text: &str) {
    let m = flat_keyed(text);
    if let Some(anon) = m.get("anon") {
        stats.mem_rss_bytes = Some(*anon);
        stats.mem_anon_bytes = Some(*anon);
    }
    if let Some(file) = m.get("file") {
        stats.mem_cache_bytes = Some(*file);
        stats.mem_file_bytes = Some(*file);
    }
    stats.mem_mapped_file_bytes = m.get("file_mapped").copied();
    stats.mem_unevictable_bytes = m.get("unevictable").copied();
    stats.mem_kmem_usage_bytes = m.get("kernel").copied();
    stats.mem_kmem_tcp_usage_bytes = m.get("sock").copied();
}

/// CPU limit as a number of CPUs from a CFS quota, `None` without quota.
pub(crate) fn cpus_limit(quota_us: Option<u64>, period_us: u64) -> Option<f64> {
    match quota_us {
        Some(q) if period_us > 0 => Some(q as f64 / period_us as f64),
        _ => None,
    }
}

/// The OOM-kill counter: `oom_kill N` in v1 `memory.oom_control` (kernels
/// from 4.13) and in v2 `memory.events`. `None` if the kernel does not
/// report it.
pub fn parse_oom_kill_count(text: &str) -> Option<u64> {
    flat_keyed(text).get("oom_kill").copied()
}

pub(crate) fn saturate_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_cpu() {
        let mut s = ResourceStatistics::default();
        apply_cpuacct_stat(&mut s, "user 250\nsystem 120\n", 100);
        apply_v1_cpu_stat(
            &mut s,
            "nr_periods 40\nnr_throttled 7\nthrottled_time 1500000000\nnr_bursts 0\nburst_time 0\n",
        );
        assert_eq!(s.cpus_user_time_secs, Some(2.5));
        assert_eq!(s.cpus_system_time_secs, Some(1.2));
        assert_eq!(s.cpus_nr_periods, Some(40));
        assert_eq!(s.cpus_nr_throttled, Some(7));
        assert_eq!(s.cpus_throttled_time_secs, Some(1.5));
    }

    #[test]
    fn v2_cpu() {
        let mut s = ResourceStatistics::default();
        apply_v2_cpu_stat(
            &mut s,
            "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\n\
             nr_periods 10\nnr_throttled 2\nthrottled_usec 250000\nnr_bursts 0\nburst_usec 0\n",
        );
        assert_eq!(s.cpus_user_time_secs, Some(2.5));
        assert_eq!(s.cpus_system_time_secs, Some(1.0));
        assert_eq!(s.cpus_nr_periods, Some(10));
        assert_eq!(s.cpus_nr_throttled, Some(2));
        assert_eq!(s.cpus_throttled_time_secs, Some(0.25));
        // Without the cpu controller only the usage keys exist.
        let mut s = ResourceStatistics::default();
        apply_v2_cpu_stat(&mut s, "usage_usec 10\nuser_usec 6\nsystem_usec 4\n");
        assert_eq!(s.cpus_nr_periods, None);
        assert_eq!(s.cpus_user_time_secs, Some(6e-6));
    }

    #[test]
    fn v1_memory() {
        let sample = "cache 4096\nrss 8192\nrss_huge 0\nmapped_file 0\nswap 0\n\
                      total_cache 1048576\ntotal_rss 2097152\ntotal_rss_huge 0\n\
                      total_shmem 0\ntotal_mapped_file 65536\ntotal_dirty 0\n\
                      total_swap 4096\ntotal_unevictable 0\n";
        let mut s = ResourceStatistics::default();
        apply_v1_memory_stat(&mut s, sample);
        assert_eq!(s.mem_cache_bytes, Some(1_048_576));
        assert_eq!(s.mem_file_bytes, Some(1_048_576));
        assert_eq!(s.mem_rss_bytes, Some(2_097_152));
        assert_eq!(s.mem_anon_bytes, Some(2_097_152));
        assert_eq!(s.mem_mapped_file_bytes, Some(65_536));
        assert_eq!(s.mem_swap_bytes, Some(4096));
        assert_eq!(s.mem_unevictable_bytes, Some(0));
    }

    #[test]
    fn v2_memory() {
        let sample = "anon 2097152\nfile 1048576\nkernel 131072\nkernel_stack 16384\n\
                      pagetables 8192\nsock 4096\nshmem 0\nfile_mapped 65536\n\
                      file_dirty 0\nunevictable 0\npgfault 100\n";
        let mut s = ResourceStatistics::default();
        apply_v2_memory_stat(&mut s, sample);
        assert_eq!(s.mem_rss_bytes, Some(2_097_152));
        assert_eq!(s.mem_cache_bytes, Some(1_048_576));
        assert_eq!(s.mem_mapped_file_bytes, Some(65_536));
        assert_eq!(s.mem_kmem_usage_bytes, Some(131_072));
        assert_eq!(s.mem_kmem_tcp_usage_bytes, Some(4096));
        assert_eq!(s.mem_unevictable_bytes, Some(0));
    }

    #[test]
    fn oom_counters() {
        assert_eq!(
            parse_oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        // Older v1 kernels (< 4.13) have no counter.
        assert_eq!(
            parse_oom_kill_count("oom_kill_disable 0\nunder_oom 1\n"),
            None
        );
        assert_eq!(
            parse_oom_kill_count("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
    }

    #[test]
    fn limits_and_helpers() {
        assert_eq!(v1_limit(9_223_372_036_854_771_712), None);
        assert_eq!(v1_limit(1 << 30), Some(1 << 30));
        assert_eq!(cpus_limit(Some(150_000), 100_000), Some(1.5));
        assert_eq!(cpus_limit(None, 100_000), None);
        assert_eq!(saturate_u32(u64::MAX), u32::MAX);
        assert!(clock_ticks_per_sec() > 0);
        assert!(now_secs() > 1.6e9);
    }
}
