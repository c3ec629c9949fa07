#!/bin/bash
# In-guest cgroup v2 checks for a tepui agent running as the systemd unit
# tepui-agent.service on a cgroup v2 host with systemd as PID 1 (the v2 CI
# stage runs it after installing the package). Asserts:
#  - each pod is its own delegated scope /tepui.slice/tepui-pod-<pod>.scope,
#    outside the agent's unit; its supervisor sits in the scope's @supervisor
#    leaf, its containers below <scope>/pod;
#  - a task reads its own limits in its cgroup namespace (share_cgroups true:
#    the pod's; false: its own), /sys/fs/cgroup is read-only inside, swap is
#    off (memory.swap.max 0), pids.max is the --container_pids_limit;
#  - a fork bomb stops at pids.max and the agent keeps answering;
#  - `systemctl restart tepui-agent` with running pods: no "left-over
#    process" line in the journal, the pods survive and are recovered;
#  - nothing is left once the pods are removed.
#  - with MASTER=<host:port> (the agent registered there) and
#    scripts/demo_scheduler.py beside this script or in DEMO: a task group
#    through the master reads its own limit (share_cgroups false: its 256 MiB
#    limit) or the pod's (true: executor 32 + 2 x 64 MiB = 160 MiB) from
#    /sys/fs/cgroup/memory.max inside.
# Usage: [MASTER=127.0.0.1:5050] checks_cgroups.sh [agent address, default 127.0.0.1:5051]
# Exit status: number of failed checks.
set -u
AGENT=${1:-127.0.0.1:5051}
CG=/sys/fs/cgroup
# Fresh ids each run: a container id's sandbox (and its stdout) is reused.
R=$(date +%s)
A=a$R B=b$R F=f$R S=s$R O=o$R
fail=0
pass() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else bad "$what"; fi; }
api() {
    curl -s -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' \
        "http://$AGENT/api/v1" -d "$1"
}
res() { # cpus mem [mem limit]
    local r="{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":$1}},{\"name\":\"mem\",\"type\":\"SCALAR\",\"scalar\":{\"value\":$2}}"
    echo "[$r]"
}
launch() { # id script cpus mem [parent share_cgroups limits-json]
    local id=$1 script=$2 cpus=$3 mem=$4 parent=${5:-} share=${6:-true} limits=${7:-}
    local cid="{\"value\":\"$id\"}"
    [ -n "$parent" ] && cid="{\"value\":\"$id\",\"parent\":{\"value\":\"$parent\"}}"
    local type=LAUNCH_CONTAINER key=launch_container
    [ -n "$parent" ] && { type=LAUNCH_NESTED_CONTAINER; key=launch_nested_container; }
    local extra=""
    [ -n "$parent" ] && extra=",\"container\":{\"type\":\"MESOS\",\"linux_info\":{\"share_cgroups\":$share}}"
    [ -n "$limits" ] && extra="$extra,\"limits\":$limits"
    api "{\"type\":\"$type\",\"$key\":{\"container_id\":$cid,\"command\":{\"shell\":true,\"value\":\"$script\"},\"resources\":$(res "$cpus" "$mem")$extra}}"
}
remove() { # id [parent]
    local cid="{\"value\":\"$1\"}"
    [ -n "${2:-}" ] && cid="{\"value\":\"$1\",\"parent\":{\"value\":\"$2\"}}"
    api "{\"type\":\"KILL_CONTAINER\",\"kill_container\":{\"container_id\":$cid}}" >/dev/null
    api "{\"type\":\"WAIT_CONTAINER\",\"wait_container\":{\"container_id\":$cid}}" >/dev/null
    api "{\"type\":\"REMOVE_CONTAINER\",\"remove_container\":{\"container_id\":$cid}}" >/dev/null
}
sandbox_out() { # container id (top-level or nested value): its stdout
    find /var/lib/tepui /var/lib/tepui-* -path "*$1*" -name stdout 2>/dev/null | head -1 | xargs -r cat
}
wait_out() { # id word
    for _ in $(seq 100); do sandbox_out "$1" | grep -q "$2" && return 0; sleep 0.2; done
    return 1
}

echo "== layout"
unit_cg=$(systemctl show -p ControlGroup --value tepui-agent)
echo "agent unit cgroup: $unit_cg"
launch $A 'sleep 600' 0.1 32 >/dev/null
scope=$CG/tepui.slice/tepui-pod-$A.scope
check "pod $A is the delegated scope tepui-pod-$A.scope" \
    test "$(systemctl show -p Delegate --value tepui-pod-$A.scope)" = yes
sup=$(cat /run/tepui/pods/$A/supervisor.pid 2>/dev/null)
check "supervisor $sup in the scope's @supervisor leaf" \
    grep -qx "0::/tepui.slice/tepui-pod-$A.scope/@supervisor" "/proc/$sup/cgroup"
check "no pod process in the agent's unit (only the agent)" \
    test "$(find "$CG$unit_cg" -name cgroup.procs -exec cat {} + | wc -l)" = 1
check "the container is below <scope>/pod" test -d "$scope/pod/$A"

# Nested containers launched through the operator API carry no resources of
# their own (Mesos: they run under their parent's limits), so both read the
# pod's limit; a share_cgroups=false task with its own limits comes through a
# scheduler's task group (the v1 suite checks both cases).
echo "== what nested containers read (share_cgroups true and false)"
probe='cat /proc/self/cgroup; echo mem=$(cat /sys/fs/cgroup/memory.max); echo swap=$(cat /sys/fs/cgroup/memory.swap.max); echo pids=$(cat /sys/fs/cgroup/pids.max); echo 1 > /sys/fs/cgroup/memory.max 2>/dev/null && echo write=ok || echo write=refused; echo 1 > /sys/fs/cgroup/pids.max 2>/dev/null && echo pwrite=ok || echo pwrite=refused; mkdir /sys/fs/cgroup/x 2>/dev/null && echo mkdir=ok || echo mkdir=refused; echo done; sleep 600'
launch "$S" "$probe" 0.1 64 $A true >/dev/null
launch $B 'sleep 600' 0.1 32 >/dev/null
launch "$O" "$probe" 0.1 64 $B false >/dev/null
for t in "$S" "$O"; do
    if wait_out "$t" done; then
        out=$(sandbox_out "$t"); echo "$t: $(tr '\n' ' ' <<<"$out")"
        case $t in
            "$S") want=$(cat "$scope/pod/memory.max") ;;
            "$O") want=$(cat "$CG/tepui.slice/tepui-pod-$B.scope/pod/memory.max") ;;
        esac
        check "$t: cgroup namespace root is its own cgroup" grep -qx '0::/' <<<"$out"
        check "$t: memory.max inside = $want" grep -qx "mem=$want" <<<"$out"
        check "$t: swap off (memory.swap.max 0)" grep -qx 'swap=0' <<<"$out"
        check "$t: pids.max 4096" grep -qx 'pids=4096' <<<"$out"
        check "$t: memory.max, pids.max and mkdir refused (read-only cgroupfs)" \
            test "$(grep -cE '^(write|pwrite|mkdir)=refused$' <<<"$out")" = 3
    else
        bad "$t printed nothing: $(sandbox_out "$t")"
    fi
done

echo "== fork bomb (threads count in pids.max: small stacks keep it inside the memory limit)"
bomb='python3 -c \"import threading, time\nthreading.stack_size(65536)\nn = 0\ntry:\n    while True:\n        threading.Thread(target=time.sleep, args=(600,), daemon=True).start(); n += 1\nexcept RuntimeError:\n    print(\\\"started\\\", n, flush=True)\ntime.sleep(600)\"'
launch "$F" "$bomb" 0.2 256 >/dev/null
if wait_out "$F" started; then
    echo "$(sandbox_out "$F")"
    f_cg=$CG/tepui.slice/tepui-pod-$F.scope/pod/$F
    events=$(cat "$f_cg/pids.events")
    echo "pids.current=$(cat "$f_cg/pids.current") pids.events: $events"
    check "the bomb stopped at its own pids.max (4096)" \
        test "$(cat "$f_cg/pids.current")" -ge 4000 -a "$(cat "$f_cg/pids.current")" -le 4096
    check "pids.events counts refused forks" test "${events#max }" != 0
else
    bad "the bomb printed nothing: $(sandbox_out "$F")"
fi
check "agent still answers" curl -sf -o /dev/null "http://$AGENT/health"
check "the host still forks" /bin/true
remove "$F"

echo "== restart with running pods"
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl restart tepui-agent
for _ in $(seq 100); do curl -sf -o /dev/null "http://$AGENT/health" && break; sleep 0.3; done
left=$(journalctl -u tepui-agent --since "$since" --no-pager | grep -i 'left-over')
check "no left-over process lines after the restart" test -z "$left"
[ -n "$left" ] && echo "$left"
check "pods survived the restart (supervisor $sup alive)" kill -0 "$sup"
listed=$(api '{"type":"GET_CONTAINERS","get_containers":{"show_nested":true,"show_standalone":true}}')
check "pods recovered (listed)" grep -q $A <<<"$listed"

if [ -n "${MASTER:-}" ]; then
    echo "== task groups through the master ($MASTER)"
    DEMO=${DEMO:-$(dirname "$0")/../demo_scheduler.py}
    [ -f "$DEMO" ] || DEMO=$(dirname "$0")/demo_scheduler.py
    for share in false true; do
        flag=""; want=$((256 << 20))
        [ $share = true ] && { flag=--share_cgroups; want=$((160 << 20)); }
        since=$(date +%s)
        if timeout 240 python3 "$DEMO" --master "$MASTER" --timeout 200 $flag >/tmp/demo.$share 2>&1; then
            got=$(find / -xdev -path '*/containers/*' -name stdout -newermt "@$since" 2>/dev/null \
                -exec grep -h 'memory limit' {} + | sort -u)
            echo "share_cgroups=$share: $got"
            check "share_cgroups=$share tasks read memory.max $want" \
                test "$got" = "memory limit: $want"
        else
            bad "share_cgroups=$share task group: $(tail -2 /tmp/demo.$share)"
        fi
    done
fi

echo "== cleanup"
remove "$S" "$A"; remove "$O" "$B"; remove $A; remove $B
sleep 2
check "no tepui-pod scope left" test -z "$(systemctl list-units --no-legend 'tepui-pod-*')"
check "no cgroup left under tepui.slice" \
    test "$(find "$CG/tepui.slice" -mindepth 1 -type d 2>/dev/null | wc -l)" = 0
echo "FAILED CHECKS: $fail"
exit "$fail"
