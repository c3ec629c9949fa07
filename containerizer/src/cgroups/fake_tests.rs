//! V1 and V2 backends against a fake cgroupfs: plain files in a temp dir,
//! no root needed. The fake holds what the kernel would show (usage, stats,
//! counters) as files the test writes; the backends' writes land as files
//! the test reads.

use std::path::{Path, PathBuf};

use super::*;

const MIB: u64 = 1024 * 1024;

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn put(path: impl AsRef<Path>, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn request_only() -> Limits {
    Limits::from_mesos(Some(0.5), Some(256.0), None, None)
}

fn burstable() -> Limits {
    Limits::from_mesos(Some(1.0), Some(512.0), Some(2.0), Some(4096.0))
}

fn infinite() -> Limits {
    Limits::from_mesos(
        Some(1.0),
        Some(128.0),
        Some(f64::INFINITY),
        Some(f64::INFINITY),
    )
}

mod v1 {
    use super::*;

    struct Fake {
        _dir: tempfile::TempDir,
        root: PathBuf,
        cg: CgroupsV1,
    }

    fn fake() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let cg = CgroupsV1::under_root(&root);
        Fake {
            _dir: dir,
            root,
            cg,
        }
    }

    impl Fake {
        fn file(&self, controller: &str, cgroup: &str, name: &str) -> PathBuf {
            self.root.join(controller).join(cgroup).join(name)
        }
    }

    #[test]
    fn create_in_every_managed_hierarchy() {
        let f = fake();
        assert!(!f.cg.exists("tepui/pod/c1"));
        f.cg.create("tepui/pod/c1").unwrap();
        f.cg.create("tepui/pod/c1").unwrap(); // idempotent
        for c in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
            assert!(f.root.join(c).join("tepui/pod/c1").is_dir(), "{c}");
        }
        assert!(f.cg.exists("/tepui/pod/c1"));
        assert_eq!(f.cg.mode(), CgroupMode::V1);
        assert!(f.cg.create("tepui/../etc").is_err());
    }

    #[test]
    fn request_only_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let v = f.cg.apply("pod/c", &request_only()).unwrap();
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.shares")), "512");
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_period_us")), "100000");
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_quota_us")), "-1");
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            (256 * MIB).to_string()
        );
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.soft_limit_in_bytes")),
            "-1"
        );
        assert_eq!(read(f.file("pids", "pod/c", "pids.max")), "max");
        assert_eq!(
            f.cg.read_controls("pod/c").unwrap(),
            v.as_read_back(CgroupMode::V1)
        );
    }

    #[test]
    fn burstable_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let mut limits = burstable();
        limits.pids_limit = Some(100);
        let v = f.cg.apply("pod/c", &limits).unwrap();
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.shares")), "1024");
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_quota_us")), "200000");
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            (4096 * MIB).to_string()
        );
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.soft_limit_in_bytes")),
            (512 * MIB).to_string()
        );
        assert_eq!(read(f.file("pids", "pod/c", "pids.max")), "100");
        assert_eq!(
            f.cg.read_controls("pod/c").unwrap(),
            v.as_read_back(CgroupMode::V1)
        );
    }

    #[test]
    fn infinite_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let v = f.cg.apply("pod/c", &infinite()).unwrap();
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_quota_us")), "-1");
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            "-1"
        );
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.soft_limit_in_bytes")),
            (128 * MIB).to_string()
        );
        let back = f.cg.read_controls("pod/c").unwrap();
        assert_eq!(back.memory_max, None);
        assert_eq!(back.cfs_quota_us, None);
        assert_eq!(back, v.as_read_back(CgroupMode::V1));
        // The kernel's way of showing "unlimited" reads as unlimited too.
        put(
            f.file("memory", "pod/c", "memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        assert_eq!(f.cg.read_controls("pod/c").unwrap().memory_max, None);
    }

    #[test]
    fn share_cgroups_layout() {
        let f = fake();
        let exec = Limits::from_mesos(Some(0.1), Some(32.0), None, None);
        let task = burstable();
        let pod = pod_limits(&exec, &[task], true);
        f.cg.create("tepui/p").unwrap();
        f.cg.create("tepui/p/exec").unwrap();
        f.cg.create("tepui/p/t1").unwrap();
        f.cg.apply("tepui/p", &pod.parent).unwrap();
        f.cg.apply("tepui/p/exec", &pod.executor).unwrap();
        f.cg.apply("tepui/p/t1", &pod.tasks[0]).unwrap();
        // Parent: requests 1.1 cpu / 544 MiB, limits 2.1 cpu / 4128 MiB.
        assert_eq!(read(f.file("cpu", "tepui/p", "cpu.shares")), "1126");
        assert_eq!(read(f.file("cpu", "tepui/p", "cpu.cfs_quota_us")), "210000");
        assert_eq!(
            read(f.file("memory", "tepui/p", "memory.limit_in_bytes")),
            (4128 * MIB).to_string()
        );
        assert_eq!(
            read(f.file("memory", "tepui/p", "memory.soft_limit_in_bytes")),
            (544 * MIB).to_string()
        );
        // Members: no limits of their own.
        assert_eq!(
            read(f.file("memory", "tepui/p/t1", "memory.limit_in_bytes")),
            "-1"
        );
        assert_eq!(read(f.file("cpu", "tepui/p/t1", "cpu.cfs_quota_us")), "-1");
        assert_eq!(read(f.file("cpu", "tepui/p/t1", "cpu.shares")), "1024");

        // share_cgroups=false: the member carries its limits, the parent its
        // summed requests and no hard limits.
        let pod = pod_limits(&exec, &[task], false);
        f.cg.apply("tepui/p", &pod.parent).unwrap();
        f.cg.apply("tepui/p/t1", &pod.tasks[0]).unwrap();
        assert_eq!(
            read(f.file("memory", "tepui/p", "memory.limit_in_bytes")),
            "-1"
        );
        assert_eq!(read(f.file("cpu", "tepui/p", "cpu.cfs_quota_us")), "-1");
        assert_eq!(read(f.file("cpu", "tepui/p", "cpu.shares")), "1126");
        assert_eq!(
            read(f.file("memory", "tepui/p/t1", "memory.limit_in_bytes")),
            (4096 * MIB).to_string()
        );
        assert_eq!(
            read(f.file("cpu", "tepui/p/t1", "cpu.cfs_quota_us")),
            "200000"
        );
    }

    #[test]
    fn update_refuses_below_usage() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        f.cg.apply("pod/c", &burstable()).unwrap();
        put(
            f.file("memory", "pod/c", "memory.usage_in_bytes"),
            &(300 * MIB).to_string(),
        );
        let lower = Limits::from_mesos(Some(1.0), Some(128.0), Some(2.0), Some(256.0));
        let err = f.cg.update("pod/c", &lower).unwrap_err();
        match &err {
            CgroupError::BelowUsage {
                usage_bytes,
                requested_bytes,
                ..
            } => {
                assert_eq!(*usage_bytes, 300 * MIB);
                assert_eq!(*requested_bytes, 256 * MIB);
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("314572800") && msg.contains("268435456") && msg.contains("pod/c"),
            "{msg}"
        );
        // Nothing was written.
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            (4096 * MIB).to_string()
        );
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_quota_us")), "200000");

        // Lowering above usage, raising, and cpu changes all work.
        let lower_ok = Limits::from_mesos(Some(0.5), Some(128.0), Some(1.0), Some(512.0));
        f.cg.update("pod/c", &lower_ok).unwrap();
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            (512 * MIB).to_string()
        );
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.cfs_quota_us")), "100000");
        assert_eq!(read(f.file("cpu", "pod/c", "cpu.shares")), "512");
        f.cg.update("pod/c", &infinite()).unwrap();
        assert_eq!(
            read(f.file("memory", "pod/c", "memory.limit_in_bytes")),
            "-1"
        );
        // Invalid limits are refused before anything is read or written.
        let invalid = Limits::from_mesos(Some(2.0), None, Some(1.0), None);
        assert!(matches!(
            f.cg.update("pod/c", &invalid),
            Err(CgroupError::InvalidLimits { .. })
        ));
    }

    #[test]
    fn stats_from_files() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        f.cg.apply("pod/c", &burstable()).unwrap();
        put(
            f.file("cpuacct", "pod/c", "cpuacct.stat"),
            "user 250\nsystem 120\n",
        );
        put(
            f.file("cpu", "pod/c", "cpu.stat"),
            "nr_periods 40\nnr_throttled 7\nthrottled_time 1500000000\n",
        );
        put(
            f.file("memory", "pod/c", "memory.usage_in_bytes"),
            "10485760\n",
        );
        put(
            f.file("memory", "pod/c", "memory.max_usage_in_bytes"),
            "20971520\n",
        );
        put(
            f.file("memory", "pod/c", "memory.stat"),
            "cache 1\nrss 2\ntotal_cache 4194304\ntotal_rss 6291456\ntotal_mapped_file 0\ntotal_swap 0\ntotal_unevictable 0\n",
        );
        put(f.file("memory", "pod/c", "cgroup.procs"), "100\n101\n");
        put(f.file("memory", "pod/c", "tasks"), "100\n101\n102\n");
        let s = f.cg.stats("pod/c").unwrap();
        let ticks = stats::clock_ticks_per_sec() as f64;
        assert_eq!(s.cpus_user_time_secs, Some(250.0 / ticks));
        assert_eq!(s.cpus_system_time_secs, Some(120.0 / ticks));
        assert_eq!(s.cpus_nr_periods, Some(40));
        assert_eq!(s.cpus_nr_throttled, Some(7));
        assert_eq!(s.cpus_throttled_time_secs, Some(1.5));
        assert_eq!(s.cpus_limit, Some(2.0));
        assert_eq!(s.mem_total_bytes, Some(10_485_760));
        assert_eq!(s.mem_rss_bytes, Some(6_291_456));
        assert_eq!(s.mem_cache_bytes, Some(4_194_304));
        assert_eq!(s.mem_limit_bytes, Some(4096 * MIB));
        assert_eq!(s.mem_soft_limit_bytes, Some(512 * MIB));
        assert_eq!(s.processes, Some(2));
        assert_eq!(s.threads, Some(3));
        assert!(s.timestamp > 0.0);
        assert_eq!(f.cg.peak_memory_bytes("pod/c").unwrap(), Some(20_971_520));
        assert_eq!(f.cg.memory_usage_bytes("pod/c").unwrap(), 10_485_760);
        assert_eq!(f.cg.processes("pod/c").unwrap(), vec![100, 101]);
    }

    #[test]
    fn oom_counter_and_watcher() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        put(
            f.file("memory", "pod/c", "memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        );
        assert_eq!(f.cg.oom_kill_count("pod/c").unwrap(), Some(3));
        let w = f.cg.oom_watcher("pod/c").unwrap();
        assert_eq!(w.oom_kills(), 3);
        assert_eq!(w.cgroup(), "pod/c");
        assert!(!read(f.file("memory", "pod/c", "cgroup.event_control")).is_empty());
    }

    #[test]
    fn add_process_kill_and_destroy() {
        let f = fake();
        f.cg.create("tepui/pod/c").unwrap();
        f.cg.add_process("tepui/pod/c", 4242).unwrap();
        for c in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
            assert_eq!(
                read(f.file(c, "tepui/pod/c", "cgroup.procs")),
                "4242",
                "{c}"
            );
        }
        // The fake kernel "moves" nothing, so empty the files before killing.
        for c in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
            put(f.file(c, "tepui/pod/c", "cgroup.procs"), "");
        }
        f.cg.kill_all("tepui/pod").unwrap();
        assert_eq!(
            read(f.file("freezer", "tepui/pod", "freezer.state")),
            "THAWED"
        );
        f.cg.destroy("tepui/pod").unwrap();
        for c in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
            assert!(!f.root.join(c).join("tepui/pod").exists(), "{c}");
            assert!(f.root.join(c).join("tepui").is_dir(), "{c}: the root stays");
        }
        f.cg.destroy("tepui/pod").unwrap(); // missing is fine
        f.cg.kill_all("tepui/pod").unwrap();
        assert!(f.cg.destroy("").is_err());
    }
}

mod v2 {
    use super::*;

    struct Fake {
        _dir: tempfile::TempDir,
        root: PathBuf,
        cg: CgroupsV2,
    }

    fn fake() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        put(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        let cg = CgroupsV2::new(&root);
        Fake {
            _dir: dir,
            root,
            cg,
        }
    }

    impl Fake {
        fn file(&self, cgroup: &str, name: &str) -> PathBuf {
            self.root.join(cgroup).join(name)
        }
    }

    #[test]
    fn create_enables_controllers_down_the_tree() {
        let f = fake();
        f.cg.check_controllers().unwrap();
        f.cg.create("tepui/pod/c1").unwrap();
        assert!(f.root.join("tepui/pod/c1").is_dir());
        assert_eq!(
            read(f.root.join("cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert_eq!(
            read(f.file("tepui", "cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert_eq!(
            read(f.file("tepui/pod", "cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert!(
            !f.file("tepui/pod/c1", "cgroup.subtree_control").exists(),
            "leaf"
        );
        // Already enabled (kernel format lists names without '+'): untouched.
        put(
            f.root.join("cgroup.subtree_control"),
            "cpu memory pids io\n",
        );
        f.cg.create("tepui/pod/c2").unwrap();
        assert_eq!(
            read(f.root.join("cgroup.subtree_control")),
            "cpu memory pids io"
        );
        // Only what is available is enabled.
        put(f.root.join("cgroup.controllers"), "memory\n");
        put(f.root.join("cgroup.subtree_control"), "");
        f.cg.create("other/c").unwrap();
        assert_eq!(read(f.root.join("cgroup.subtree_control")), "+memory");
        assert!(f.cg.check_controllers().is_err());
        assert_eq!(f.cg.mode(), CgroupMode::V2);
    }

    #[test]
    fn request_only_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let v = f.cg.apply("pod/c", &request_only()).unwrap();
        assert_eq!(read(f.file("pod/c", "cpu.weight")), "59");
        assert_eq!(read(f.file("pod/c", "cpu.max")), "max 100000");
        assert_eq!(read(f.file("pod/c", "memory.max")), (256 * MIB).to_string());
        assert_eq!(read(f.file("pod/c", "memory.low")), "0");
        assert!(
            !f.file("pod/c", "pids.max").exists(),
            "no pids limit, no pids file: untouched"
        );
        // With the pids file present the reset is written.
        put(f.file("pod/c", "pids.max"), "10");
        f.cg.apply("pod/c", &request_only()).unwrap();
        assert_eq!(read(f.file("pod/c", "pids.max")), "max");
        assert_eq!(
            f.cg.read_controls("pod/c").unwrap(),
            v.as_read_back(CgroupMode::V2)
        );
    }

    #[test]
    fn burstable_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let mut limits = burstable();
        limits.pids_limit = Some(64);
        let v = f.cg.apply("pod/c", &limits).unwrap();
        assert_eq!(read(f.file("pod/c", "cpu.weight")), "100");
        assert_eq!(read(f.file("pod/c", "cpu.max")), "200000 100000");
        assert_eq!(
            read(f.file("pod/c", "memory.max")),
            (4096 * MIB).to_string()
        );
        assert_eq!(read(f.file("pod/c", "memory.low")), (512 * MIB).to_string());
        assert_eq!(read(f.file("pod/c", "pids.max")), "64");
        assert_eq!(
            f.cg.read_controls("pod/c").unwrap(),
            v.as_read_back(CgroupMode::V2)
        );
    }

    #[test]
    fn infinite_limits() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        let v = f.cg.apply("pod/c", &infinite()).unwrap();
        assert_eq!(read(f.file("pod/c", "cpu.max")), "max 100000");
        assert_eq!(read(f.file("pod/c", "memory.max")), "max");
        assert_eq!(read(f.file("pod/c", "memory.low")), (128 * MIB).to_string());
        assert_eq!(
            f.cg.read_controls("pod/c").unwrap(),
            v.as_read_back(CgroupMode::V2)
        );
    }

    #[test]
    fn cpu_weight_points_on_disk() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        for (cpus, weight) in [(0.001, "1"), (1.0, "100"), (256.0, "10000")] {
            let limits = Limits::from_mesos(Some(cpus), None, None, None);
            f.cg.apply("pod/c", &limits).unwrap();
            assert_eq!(read(f.file("pod/c", "cpu.weight")), weight, "{cpus} cpus");
        }
    }

    #[test]
    fn update_refuses_below_usage() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        f.cg.apply("pod/c", &burstable()).unwrap();
        put(f.file("pod/c", "memory.current"), &(300 * MIB).to_string());
        let lower = Limits::from_mesos(Some(1.0), Some(128.0), Some(2.0), Some(256.0));
        let err = f.cg.update("pod/c", &lower).unwrap_err();
        assert!(
            matches!(err, CgroupError::BelowUsage { usage_bytes, requested_bytes, .. }
            if usage_bytes == 300 * MIB && requested_bytes == 256 * MIB)
        );
        assert!(err.to_string().contains("memory.current"), "{err}");
        assert_eq!(
            read(f.file("pod/c", "memory.max")),
            (4096 * MIB).to_string()
        );
        // Request-only below usage: the request is the hard limit, refused too.
        let req = Limits::from_mesos(Some(1.0), Some(200.0), None, None);
        assert!(f.cg.update("pod/c", &req).is_err());
        // Above usage and raising work.
        let ok = Limits::from_mesos(Some(2.0), Some(128.0), Some(4.0), Some(1024.0));
        f.cg.update("pod/c", &ok).unwrap();
        assert_eq!(
            read(f.file("pod/c", "memory.max")),
            (1024 * MIB).to_string()
        );
        assert_eq!(read(f.file("pod/c", "cpu.max")), "400000 100000");
        assert_eq!(read(f.file("pod/c", "cpu.weight")), "174");
        f.cg.update("pod/c", &infinite()).unwrap();
        assert_eq!(read(f.file("pod/c", "memory.max")), "max");
    }

    #[test]
    fn stats_from_files() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        f.cg.apply("pod/c", &burstable()).unwrap();
        put(
            f.file("pod/c", "cpu.stat"),
            "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 250000\n",
        );
        put(f.file("pod/c", "memory.current"), "10485760\n");
        put(f.file("pod/c", "memory.peak"), "20971520\n");
        put(
            f.file("pod/c", "memory.stat"),
            "anon 6291456\nfile 4194304\nkernel 65536\nsock 0\nfile_mapped 8192\nunevictable 0\n",
        );
        put(f.file("pod/c", "memory.swap.current"), "0\n");
        put(f.file("pod/c", "cgroup.procs"), "100\n");
        put(f.file("pod/c", "cgroup.threads"), "100\n103\n");
        let s = f.cg.stats("pod/c").unwrap();
        assert_eq!(s.cpus_user_time_secs, Some(2.5));
        assert_eq!(s.cpus_system_time_secs, Some(1.0));
        assert_eq!(s.cpus_nr_periods, Some(10));
        assert_eq!(s.cpus_nr_throttled, Some(2));
        assert_eq!(s.cpus_throttled_time_secs, Some(0.25));
        assert_eq!(s.cpus_limit, Some(2.0));
        assert_eq!(s.mem_total_bytes, Some(10_485_760));
        assert_eq!(s.mem_rss_bytes, Some(6_291_456));
        assert_eq!(s.mem_cache_bytes, Some(4_194_304));
        assert_eq!(s.mem_mapped_file_bytes, Some(8192));
        assert_eq!(s.mem_limit_bytes, Some(4096 * MIB));
        assert_eq!(s.mem_soft_limit_bytes, Some(512 * MIB));
        assert_eq!(s.mem_swap_bytes, Some(0));
        assert_eq!(s.processes, Some(1));
        assert_eq!(s.threads, Some(2));
        assert_eq!(f.cg.peak_memory_bytes("pod/c").unwrap(), Some(20_971_520));
        std::fs::remove_file(f.file("pod/c", "memory.peak")).unwrap();
        assert_eq!(
            f.cg.peak_memory_bytes("pod/c").unwrap(),
            None,
            "kernel < 5.19"
        );
    }

    #[test]
    fn oom_counter() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        put(
            f.file("pod/c", "memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        assert_eq!(f.cg.oom_kill_count("pod/c").unwrap(), Some(1));
        assert_eq!(f.cg.oom_watcher("pod/c").unwrap().oom_kills(), 1);
    }

    #[test]
    fn kill_with_cgroup_kill_then_destroy() {
        let f = fake();
        f.cg.create("tepui/pod/c").unwrap();
        f.cg.add_process("tepui/pod/c", 4242).unwrap();
        assert_eq!(read(f.file("tepui/pod/c", "cgroup.procs")), "4242");
        put(f.file("tepui/pod/c", "cgroup.procs"), "");
        put(f.file("tepui/pod", "cgroup.kill"), "");
        f.cg.kill_all("tepui/pod").unwrap();
        assert_eq!(read(f.file("tepui/pod", "cgroup.kill")), "1");
        f.cg.destroy("tepui/pod").unwrap();
        assert!(!f.root.join("tepui/pod").exists());
        assert!(f.root.join("tepui").is_dir());
        f.cg.destroy("tepui/pod").unwrap();
        f.cg.kill_all("tepui/pod").unwrap();
    }

    #[test]
    fn kill_by_freezing_without_cgroup_kill() {
        let f = fake();
        f.cg.create("pod/c").unwrap();
        put(f.file("pod", "cgroup.freeze"), "0");
        put(f.file("pod", "cgroup.events"), "populated 0\nfrozen 1\n");
        f.cg.kill_all("pod").unwrap();
        assert_eq!(read(f.file("pod", "cgroup.freeze")), "0", "thawed again");
    }
}

#[test]
fn open_from_sample_mountinfo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let v1_info = format!(
        "32 31 0:29 / {0}/cpu rw - cgroup cgroup rw,cpu\n\
         33 31 0:30 / {0}/cpuacct rw - cgroup cgroup rw,cpuacct\n\
         35 31 0:32 / {0}/memory rw - cgroup cgroup rw,memory\n\
         41 31 0:38 / {0}/unified rw - cgroup2 cgroup2 rw\n",
        root.display()
    );
    let file = root.join("mountinfo");
    put(&file, &v1_info);
    let cg = open_from(&file, None).unwrap();
    assert_eq!(cg.mode(), CgroupMode::V1);
    assert_eq!(
        open_from(&file, Some(CgroupMode::V2)).unwrap().mode(),
        CgroupMode::V2
    );
    // v1 without a memory hierarchy cannot be driven.
    put(
        &file,
        &format!(
            "32 31 0:29 / {}/cpu rw - cgroup cgroup rw,cpu\n",
            root.display()
        ),
    );
    assert!(open_from(&file, None).is_err());
    put(
        &file,
        &format!("29 23 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display()),
    );
    assert_eq!(open_from(&file, None).unwrap().mode(), CgroupMode::V2);
    assert!(open_from(&root.join("missing"), None).is_err());
}

#[test]
fn layout_paths() {
    assert_eq!(pod_cgroup("/tepui/", "pod1").unwrap(), "tepui/pod1");
    assert_eq!(
        container_cgroup("tepui", "pod1", "c1").unwrap(),
        "tepui/pod1/c1"
    );
    assert!(container_cgroup("tepui", "pod1", "../x").is_err());
    assert!(container_cgroup("tepui", "", "c").is_err());
    assert!(pod_cgroup("tepui", "..").is_err());
}

#[test]
fn trait_is_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn Cgroups>();
    let boxed: Box<dyn Cgroups> = Box::new(CgroupsV2::new("/nonexistent"));
    assert_eq!(boxed.mode(), CgroupMode::V2);
}

// ---- bad hosts: refused at start with the controller and the fix ----------

#[test]
fn a_missing_controller_is_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path().join("cgroup.controllers"), "cpu pids");
    let err = CgroupsV2::new(dir.path())
        .check_controllers()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'memory' is not available") && err.contains("cgroup_disable=memory"),
        "{err}"
    );
    let mounts = CgroupMounts::parse(
        "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n\
         31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpuacct\n",
    );
    let err = CgroupsV1::from_mounts(&mounts).unwrap_err().to_string();
    assert!(
        err.contains("'memory' is not mounted") && err.contains("mount -t cgroup -o memory"),
        "{err}"
    );
}

/// A read-only cgroupfs (a container's default) is refused at start, not
/// at every launch. Root only: it mounts a read-only tmpfs as the fake.
#[test]
fn a_read_only_cgroupfs_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cg");
    std::fs::create_dir(&root).unwrap();
    mount(
        Some("tmpfs"),
        &root,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    put(root.join("cgroup.controllers"), "cpu memory pids");
    let remount = mount(
        None::<&str>,
        &root,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    );
    let result = CgroupsV2::new(&root).check_controllers();
    umount2(&root, MntFlags::MNT_DETACH).unwrap();
    remount.unwrap();
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("mounted read-only") && err.contains("remount it read-write"),
        "{err}"
    );
}
