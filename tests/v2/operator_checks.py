#!/usr/bin/env python3
"""tepui on cgroup v2: operator-API checks against a running agent, with the
cgroup files as evidence. Runs inside the v2 guest (scripts/v2/ci.sh), as
root, against the agent of tepui-agent.service on 127.0.0.1:5051.

Each check prints `CHECK PASS|FAIL <name>` and its evidence; the exit status
is the number of failed checks. Where a pod's cgroups are is found, not
assumed: the container's own cgroup is the deepest directory named after its
id, and the pod's (the one holding the pod's limits) is its parent. That holds
for `<cgroups_root>/<pod>/<pod>` (standalone, v1) and for systemd scopes
(`tepui.slice/tepui-pod-<pod>.scope/pod/<pod>`).
"""
import glob
import json
import os
import sys
import time
import urllib.error
import urllib.request

AGENT = os.environ.get("AGENT", "http://127.0.0.1:5051")
WORK_DIR = os.environ.get("WORK_DIR", "/var/lib/tepui")
CG = "/sys/fs/cgroup"
MiB = 1 << 20
results = []


def call(body, timeout=120):
    req = urllib.request.Request(AGENT + "/api/v1", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check(name, ok, evidence):
    results.append((name, bool(ok)))
    print(f"CHECK {'PASS' if ok else 'FAIL'} {name}\n      {evidence}", flush=True)


def scalar(name, v):
    return {"name": name, "type": "SCALAR", "scalar": {"value": v}}


def launch(cid, cmd, cpus=0.1, mem=64, mem_limit=128, cpu_limit=None):
    limits = {"mem": {"value": mem_limit}} if mem_limit is not None else {}
    if cpu_limit is not None:
        limits["cpus"] = {"value": cpu_limit}
    return call({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": cid},
        "command": {"shell": True, "value": cmd},
        "resources": [scalar("cpus", cpus), scalar("mem", mem)],
        "limits": limits}})


def wait(cid):
    return call({"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": cid}}},
                timeout=300)


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"<{e.strerror}>"


def cgroups_named(cid):
    """Every cgroup directory named cid or after it (a pod's scope), shallowest first."""
    found = []
    for root, dirs, _ in os.walk(CG):
        for d in dirs:
            if d == cid or d == f"tepui-pod-{cid}.scope":
                found.append(os.path.join(root, d))
    return sorted(found, key=lambda p: p.count("/"))


def own_and_pod(cid):
    """The container's own cgroup and the pod's (its parent)."""
    own = [d for d in cgroups_named(cid) if os.path.basename(d) == cid]
    if not own:
        return "<none>", "<none>"
    return own[-1], os.path.dirname(own[-1])


def dump(d):
    files = ["cgroup.procs", "memory.max", "memory.low", "memory.high", "memory.swap.max",
             "cpu.max", "cpu.weight", "pids.max", "memory.current"]
    return {f: read(os.path.join(d, f)) for f in files}


def sandbox_file(cid, name):
    hits = [p for p in glob.glob(f"{WORK_DIR}/**/{name}", recursive=True) if cid in p]
    return read(hits[0]) if hits else "<no sandbox file>"


print("== kernel", read("/proc/sys/kernel/osrelease"), "| root controllers:",
      read(f"{CG}/cgroup.controllers"), "| root subtree_control:", read(f"{CG}/cgroup.subtree_control"))

st, body = call({"type": "GET_HEALTH"})
check("agent healthy (GET_HEALTH)", st == 200 and body and body.get("get_health", {}).get("healthy"),
      f"HTTP {st} {body}")

# 1. cpus 0.1 mem 64 requested, mem 128 limit: where the limits land.
cid = "v2c1"
st, body = launch(cid, "echo hello-from-v2; echo memory.max=$(cat /sys/fs/cgroup/memory.max 2>&1); sleep 4")
check("LAUNCH_CONTAINER cpus 0.1 mem 64, limit mem 128", st == 200, f"HTTP {st} {body}")
time.sleep(1.5)
own, pod = own_and_pod(cid)
v, lv = dump(pod), dump(own)
print(f"      pod cgroup {pod}: {json.dumps(v)}\n      container cgroup {own}: {json.dumps(lv)}")
check("the container's process is in its own leaf cgroup; the pod cgroup holds no process",
      own != "<none>" and lv["cgroup.procs"] and not lv["cgroup.procs"].startswith("<")
      and v["cgroup.procs"] == "", f"leaf procs={lv['cgroup.procs']!r} pod procs={v['cgroup.procs']!r}")
check("pod cgroup memory.max = 128 MiB (limit)", v["memory.max"] == str(128 * MiB),
      f"memory.max={v['memory.max']}")
check("pod cgroup memory.low = 64 MiB (request)", v["memory.low"] == str(64 * MiB),
      f"memory.low={v['memory.low']}")
check("pod cgroup cpu.weight = 17 (cpus 0.1 -> shares 102), cpu.max unlimited",
      v["cpu.weight"] == "17" and v["cpu.max"].startswith("max"),
      f"cpu.weight={v['cpu.weight']} cpu.max={v['cpu.max']}")
check("the container's own cgroup memory.max = 128 MiB (what a runtime reading its cgroup sees)",
      lv["memory.max"] == str(128 * MiB), f"{own}/memory.max={lv['memory.max']}")
st, body = wait(cid)
wc = body.get("wait_container", {}) if isinstance(body, dict) else {}
check("WAIT_CONTAINER exit 0", st == 200 and wc.get("exit_status") == 0, f"HTTP {st} {body}")
out = sandbox_file(cid, "stdout")
check("stdout captured in the sandbox", "hello-from-v2" in out, repr(out[:200]))
check("inside the task, /sys/fs/cgroup/memory.max = 128 MiB (its own limit, cgroup namespace)",
      f"memory.max={128 * MiB}" in out, repr(out[:300]))

# 2. OOM: 300 MB under a 128 MiB limit.
cid = "v2oom"
st, body = launch(cid, "python3 -c 'b=bytearray(300*1024*1024); print(len(b))'", mem=64, mem_limit=128)
check("LAUNCH_CONTAINER (300 MB alloc, limit 128)", st == 200, f"HTTP {st} {body}")
st, body = wait(cid)
wc = body.get("wait_container", {}) if isinstance(body, dict) else {}
check("OOM: WAIT_CONTAINER reason REASON_CONTAINER_LIMITATION_MEMORY, state TASK_FAILED",
      st == 200 and wc.get("reason") == "REASON_CONTAINER_LIMITATION_MEMORY"
      and wc.get("state") == "TASK_FAILED", f"HTTP {st} {body}")
print("      dmesg:", os.popen("dmesg | grep -iE 'oom-kill|Killed process' | tail -2").read().strip()
      .replace("\n", " | "))

# 3. Statistics of a running container, and the default limit.
cid = "v2stats"
launch(cid, "python3 -c 'import time; b=bytearray(40*1024*1024); time.sleep(30)'", cpus=0.5, mem=64,
       mem_limit=None)
time.sleep(3)
st, body = call({"type": "GET_CONTAINERS", "get_containers": {"show_nested": True, "show_standalone": True}})
conts = body.get("get_containers", {}).get("containers", []) if isinstance(body, dict) else []
mine = [c for c in conts if c.get("container_id", {}).get("value") == cid]
stats = mine[0].get("resource_statistics", {}) if mine else {}
check("GET_CONTAINERS statistics (mem_total_bytes > 40 MB)",
      stats.get("mem_total_bytes", 0) > 40e6, json.dumps(stats)[:400])
_, pod = own_and_pod(cid)
v = dump(pod)
# Mesos: a missing limit defaults to the request (mem 64 -> memory.max 64 MiB).
check("no mem limit -> pod memory.max = request (64 MiB); cpus 0.5 -> cpu.weight 59",
      v["memory.max"] == str(64 * MiB) and v["cpu.weight"] == "59",
      f"memory.max={v['memory.max']} cpu.weight={v['cpu.weight']}")

# 4. Live update (tepui's UPDATE_CONTAINER, Call type 1001).
st, body = call({"type": 1001, "update_container": {"container_id": {"value": cid},
                 "resources": [scalar("cpus", 0.5), scalar("mem", 32)], "limits": {"mem": {"value": 32}}}})
check("UPDATE_CONTAINER below usage refused (409)", st == 409, f"HTTP {st} {str(body)[:200]}")
st, body = call({"type": 1001, "update_container": {"container_id": {"value": cid},
                 "resources": [scalar("cpus", 0.5), scalar("mem", 64)],
                 "limits": {"mem": {"value": 256}, "cpus": {"value": 1}}}})
v = dump(pod)
check("UPDATE_CONTAINER limit 256 MiB / cpus 1 applied (memory.max, cpu.max 100000 100000)",
      st == 200 and v["memory.max"] == str(256 * MiB) and v["cpu.max"] == "100000 100000",
      f"HTTP {st} memory.max={v['memory.max']} cpu.max={v['cpu.max']}")

# 5. Kill, remove: the cgroups go.
st, body = call({"type": "KILL_CONTAINER", "kill_container": {"container_id": {"value": cid}}})
check("KILL_CONTAINER", st == 200, f"HTTP {st} {body}")
st, body = wait(cid)
check("WAIT after KILL", st == 200, f"HTTP {st} {body}")
for c in ("v2c1", "v2oom", cid):
    st, body = call({"type": "REMOVE_CONTAINER", "remove_container": {"container_id": {"value": c}}})
    print(f"      REMOVE {c}: HTTP {st} {body}")
time.sleep(1)
left = [d for c in ("v2c1", "v2oom", cid) for d in cgroups_named(c)]
check("cgroups removed after REMOVE_CONTAINER", not left, f"left: {left}")

failed = sum(1 for _, ok in results if not ok)
print(f"== {len(results) - failed}/{len(results)} operator checks passed")
sys.exit(failed)
