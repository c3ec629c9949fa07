#!/usr/bin/env bash
# tests/v2/guest.sh: tepui's real-v2 test set. Runs inside the Debian 12 guest
# of scripts/v2/rig.sh (cgroup v2 only, systemd as PID 1), as root, started by
# scripts/v2/ci.sh with the share at /mnt/host holding:
#   tepui_*.deb, tests/v2/*, scripts/demo_scheduler.py, oci/ (an OCI image
#   layout with busybox), optionally scripts/v2/checks_cgroups.sh.
# It installs the package with dpkg -i, runs both daemons as systemd units and
# checks: the package, readiness and the watchdog, the operator API on v2
# (limits, OOM, live update), the Running Workloads task group and an image task
# through the master, `systemctl restart` and `stop` with running tasks,
# nothing left behind, and removing the package.
#
# Every check prints `CHECK PASS|FAIL <name>`; the table at the end lists them
# (written to /mnt/host/results/checks.txt too). Exit status: failed checks.
set -uo pipefail
H=${V2_SHARE:-/mnt/host}
RES=$H/results
mkdir -p "$RES"
: > "$RES/checks.txt"
AGENT=http://127.0.0.1:5051
MASTER=127.0.0.1:5050
export TEPUI_MASTER=$MASTER

check() { # name status(0 = pass) [evidence]
    local name=$1 st=$2 ev=${3:-}
    if [ "$st" = 0 ]; then echo "CHECK PASS $name"; else echo "CHECK FAIL $name"; fi
    [ -n "$ev" ] && printf '      %s\n' "$ev" | cut -c1-400
    printf '%s\t%s\n' "$([ "$st" = 0 ] && echo PASS || echo FAIL)" "$name" >> "$RES/checks.txt"
}
section() { echo; echo "######## $* ($(date +%T))"; SECTION_T0=$(date +%s.%N); }
section_time() { awk -v a="$SECTION_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
timings=()
end_section() { timings+=("$1: $(section_time) s"); }
api() { curl -s -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' "$AGENT/api/v1" -d "$1"; }
# Imports a sub-test's `CHECK PASS|FAIL name` (or `PASS: name`) lines into the table.
import_checks() {
    grep -E '^(CHECK )?(PASS|FAIL):? ' "$1" | sed -E 's/^(CHECK )?(PASS|FAIL):? /\2\t/' >> "$RES/checks.txt"
}
wait_for() { # seconds, command...: until the command succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.5
    done
}
# A task's stdout: tasks/<id> is a link to the task's container sandbox.
task_stdout() { cat /var/lib/tepui/slaves/*/frameworks/*/executors/*/runs/*/tasks/"$1"/stdout 2>/dev/null; }
sleep_pids() { pgrep -x sleep -a | awk '$3 == "600" {print $1}' | sort -n | tr '\n' ' '; }

# ----------------------------------------------------------------------------
section "host"
fs=$(stat -fc %T /sys/fs/cgroup) pid1=$(readlink /proc/1/exe)
check "cgroup v2 only (cgroup2fs) with systemd as PID 1" \
    "$([ "$fs" = cgroup2fs ] && [ "$pid1" = /usr/lib/systemd/systemd ]; echo $?)" \
    "kernel $(uname -r), /sys/fs/cgroup: $fs, PID 1: $pid1, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
end_section host

# ----------------------------------------------------------------------------
section "package: dpkg -i"
deb=$(ls "$H"/tepui_*.deb | head -1)
dpkg -i "$deb" > "$RES/dpkg-install.log" 2>&1
check "dpkg -i $(basename "$deb")" $? "$(tail -3 "$RES/dpkg-install.log" | tr '\n' ' ')"
exec_path=$(systemctl show -p ExecStart --value tepui-agent | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
master_exec=$(systemctl show -p ExecStart --value tepui-master | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
check "both units installed, ExecStart is the installed binary (/usr/bin/tepui)" \
    "$([ "$exec_path" = /usr/bin/tepui ] && [ "$master_exec" = /usr/bin/tepui ] && [ -x /usr/bin/tepui ]; echo $?)" \
    "agent ExecStart $exec_path, master ExecStart $master_exec; $(dpkg -L tepui | grep -c .) files"
conff=$(dpkg-query -W -f='${Conffiles}' tepui | awk '{print $1}' | tr '\n' ' ')
check "/etc/default/tepui-agent and tepui-master are conffiles" \
    "$(grep -q /etc/default/tepui-agent <<<"$conff" && grep -q /etc/default/tepui-master <<<"$conff"; echo $?)" "$conff"
modes=$(stat -c '%a %n' /var/lib/tepui /var/lib/tepui-master 2>&1 | tr '\n' ' ')
check "work dirs created 0700" "$([ "$(stat -c %a /var/lib/tepui)" = 700 ] && [ "$(stat -c %a /var/lib/tepui-master)" = 700 ]; echo $?)" "$modes"
states="agent $(systemctl is-enabled tepui-agent 2>&1)/$(systemctl is-active tepui-agent 2>&1), master $(systemctl is-enabled tepui-master 2>&1)/$(systemctl is-active tepui-master 2>&1)"
check "a fresh install neither enables nor starts a unit" \
    "$([ "$(systemctl is-active tepui-agent)" = inactive ] && [ "$(systemctl is-enabled tepui-agent)" = disabled ] && [ "$(systemctl is-active tepui-master)" = inactive ]; echo $?)" "$states"
verify=$(systemd-analyze verify --man=no /lib/systemd/system/tepui-agent.service /lib/systemd/system/tepui-master.service 2>&1 | grep -i tepui)
check "systemd-analyze verify: both units clean" "$([ -z "$verify" ]; echo $?)" "${verify:-no warning}"
man=$(zcat /usr/share/man/man8/tepui-agent.8.gz 2>/dev/null | grep -c -- '--work_dir')
check "man pages and --help docs installed (tepui-agent(8) documents --work_dir)" \
    "$([ "${man:-0}" -ge 1 ] && [ -s /usr/share/doc/tepui/tepui-agent.txt ]; echo $?)" \
    "$(ls /usr/share/man/man8 | grep tepui | tr '\n' ' ')"
end_section "package install"

# ----------------------------------------------------------------------------
section "systemd: start both units (Type=notify), watchdog"
cat >> /etc/default/tepui-agent <<'EOF'
MESOS_MASTER=127.0.0.1:5050
MESOS_IP=127.0.0.1
MESOS_IMAGE_PROVIDERS=docker
MESOS_DOCKER_INSECURE_REGISTRIES=127.0.0.1:5000
EOF
echo MESOS_IP=127.0.0.1 >> /etc/default/tepui-master
# A short watchdog on the master proves the heartbeats: without WATCHDOG=1
# every 3 s systemd would kill it within 6 s.
mkdir -p /etc/systemd/system/tepui-master.service.d
printf '[Service]\nWatchdogSec=6s\n' > /etc/systemd/system/tepui-master.service.d/ci-watchdog.conf
systemctl daemon-reload
t0=$(date +%s.%N)
timeout 120 systemctl start tepui-master
rc_m=$?
timeout 180 systemctl start tepui-agent
rc_a=$?
started=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
check "systemctl start tepui-master tepui-agent: both active (start returns after READY=1)" \
    "$([ $rc_m = 0 ] && [ $rc_a = 0 ] && [ "$(systemctl is-active tepui-agent)" = active ] && [ "$(systemctl is-active tepui-master)" = active ]; echo $?)" \
    "in ${started}s; agent cgroup $(systemctl show -p ControlGroup --value tepui-agent)"
st_a=$(systemctl show -p StatusText --value tepui-agent) st_m=$(systemctl show -p StatusText --value tepui-master)
check "sd_notify STATUS from both daemons (\"serving\")" "$([ "$st_a" = serving ] && [ "$st_m" = serving ]; echo $?)" \
    "agent '$st_a', master '$st_m'"
wd1=$(systemctl show -p WatchdogTimestampMonotonic --value tepui-master)
pid1=$(systemctl show -p MainPID --value tepui-master)
sleep 8
wd2=$(systemctl show -p WatchdogTimestampMonotonic --value tepui-master)
pid2=$(systemctl show -p MainPID --value tepui-master)
check "watchdog: WATCHDOG=1 keeps a 6 s WatchdogSec master alive (8 s, same PID, pings advance)" \
    "$([ "$pid1" = "$pid2" ] && [ "$(systemctl is-active tepui-master)" = active ] && [ "${wd2:-0}" -gt "${wd1:-0}" ]; echo $?)" \
    "MainPID $pid1 -> $pid2, last ping ${wd1}us -> ${wd2}us, NRestarts $(systemctl show -p NRestarts --value tepui-master)"
agent_wd=$(systemctl show -p WatchdogUSec --value tepui-agent)
check "agent unit runs with a watchdog (WatchdogUSec set)" "$([ -n "$agent_wd" ] && [ "$agent_wd" != 0 ] && [ "$agent_wd" != infinity ]; echo $?)" "WatchdogUSec=$agent_wd"
registered() { curl -sf "http://$MASTER/master/state" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("activated_slaves", 0) >= 1 else 1)'; }
wait_for 60 registered
check "the agent registered with the master" $? "$(curl -sf "http://$MASTER/master/state" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("activated agents:", s.get("activated_slaves"))' 2>&1)"
end_section "units start"

# ----------------------------------------------------------------------------
section "operator API on cgroup v2 (tests/v2/operator_checks.py)"
python3 "$H/tests/v2/operator_checks.py" 2>&1 | tee "$RES/operator_checks.log"
import_checks "$RES/operator_checks.log"
end_section "operator checks"

if [ -f "$H/scripts/v2/checks_cgroups.sh" ]; then
    section "cgroup layout checks (scripts/v2/checks_cgroups.sh)"
    # With MASTER it also runs the Running Workloads task group through the
    # master with share_cgroups false and true and checks what tasks read.
    MASTER="$MASTER" bash "$H/scripts/v2/checks_cgroups.sh" 2>&1 | tee "$RES/checks_cgroups.log"
    rc=${PIPESTATUS[0]}
    if grep -qE '^(CHECK )?(PASS|FAIL):? ' "$RES/checks_cgroups.log"; then
        import_checks "$RES/checks_cgroups.log"
    else
        check "scripts/v2/checks_cgroups.sh" "$rc" "exit status $rc"
    fi
    end_section "cgroup checks"
fi

# ----------------------------------------------------------------------------
section "Running Workloads task group through the master (scripts/demo_scheduler.py)"
since=$(date +%s)
timeout 300 python3 "$H/scripts/demo_scheduler.py" --master "$MASTER" --timeout 240 2>&1 | tee "$RES/demo.log"
check "demo_scheduler: both tasks of the task group TASK_FINISHED" "${PIPESTATUS[0]}" "$(tail -1 "$RES/demo.log")"
# This run's tasks only (the cgroup checks ran the same framework before).
limits=$(for f in /var/lib/tepui/slaves/*/frameworks/*/executors/*/runs/*/tasks/task-00000[12]/stdout; do
    [ -f "$f" ] && [ "$(stat -c %Y "$f")" -ge "$since" ] && grep -h 'memory limit' "$f"
done | tr '\n' ' ')
check "inside each task (share_cgroups false), /sys/fs/cgroup/memory.max = its limit (256 MiB)" \
    "$([ "$(grep -o 'memory limit: 268435456' <<<"$limits" | wc -l)" = 2 ]; echo $?)" "${limits:-no task stdout}"
end_section "task group"

# ----------------------------------------------------------------------------
section "image task through the master (busybox from a registry in the guest)"
python3 "$H/tests/v2/oci_registry.py" "$H/oci" --port 5000 > "$RES/registry.log" 2>&1 &
registry=$!
wait_for 20 curl -sf http://127.0.0.1:5000/v2/
timeout 300 tepui run --master "$MASTER" --framework_name v2-image --task_group "$H/tests/v2/image-task-group.json" \
    > "$RES/image-task.log" 2>&1
rc=$?
cat "$RES/image-task.log"
out=$(task_stdout img | tr '\n' ' ')
check "image task: pulled busybox, ran in its rootfs, TASK_FINISHED (tepui run exit 0)" \
    "$([ $rc = 0 ] && grep -q 'image task: BusyBox' <<<"$out"; echo $?)" "exit $rc; stdout: ${out:-none}"
check "inside the image task, /sys/fs/cgroup/memory.max = its limit (64 MiB)" \
    "$(grep -q 'memory.max=67108864' <<<"$out"; echo $?)" "stdout: ${out:-none}"
# The same through a scheduler tepui did not write: pymesos from PyPI (the
# journeys' framework; ci.sh copies pymesos and its dependencies into the share).
if [ -d "$H/pymesos-site" ]; then
    PYTHONPATH="$H/pymesos-site" timeout 300 python3 "$H/tests/v2/pymesos_journey.py" "$MASTER" \
        "$H/tests/journeys/pymesos/journey.py" "$H/tests/v2/image-task-group.json" \
        > "$RES/pymesos.log" 2>&1
    cat "$RES/pymesos.log"
    import_checks "$RES/pymesos.log"
else
    check "pymesos (PyPI) launches an image task group through the master: both TASK_FINISHED" 1 \
        "no pymesos in the share (scripts/deps.sh install_journey_clients, target/journeys/venv)"
fi
kill "$registry" 2>/dev/null; wait "$registry" 2>/dev/null
end_section "image task"

# ----------------------------------------------------------------------------
section "systemctl restart tepui-agent with running tasks"
api '{"type":"LAUNCH_CONTAINER","launch_container":{"container_id":{"value":"survivor"},"command":{"shell":true,"value":"exec sleep 600"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}]}}' >/dev/null
# A task of a checkpointing framework (its tasks must outlive agent restarts).
python3 "$H/tests/v2/long_task.py" --master "$MASTER" > "$RES/longtask.log" 2>&1 &
runner=$!
# Whether the master reports the task `longtask` TASK_RUNNING.
running_task() {
    tepui ps --master "$MASTER" -o json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = d if isinstance(d, list) else d.get("tasks", [])
sys.exit(0 if any(r.get("id") == "longtask" and r.get("state") == "TASK_RUNNING" for r in rows) else 1)'
}
wait_for 120 running_task
before=$(sleep_pids)
check "a standalone container and a master task running (two sleep 600)" \
    "$([ "$(wc -w <<<"$before")" = 2 ]; echo $?)" "pids: $before"
mark=$(date '+%Y-%m-%d %H:%M:%S')
old=$(systemctl show -p MainPID --value tepui-agent)
timeout 180 systemctl restart tepui-agent
rc=$?
new=$(systemctl show -p MainPID --value tepui-agent)
check "systemctl restart tepui-agent: active again with a new main process" \
    "$([ $rc = 0 ] && [ "$(systemctl is-active tepui-agent)" = active ] && [ "$old" != "$new" ]; echo $?)" "MainPID $old -> $new"
after=$(sleep_pids)
check "tasks survived the restart (same processes)" "$([ -n "$before" ] && [ "$before" = "$after" ]; echo $?)" "before: $before after: $after"
listed=$(api '{"type":"GET_CONTAINERS","get_containers":{"show_standalone":true}}')
wait_for 60 running_task
rc=$?
check "tasks recovered: the agent lists the container, the master shows the task TASK_RUNNING" \
    "$(grep -q survivor <<<"$listed" && [ $rc = 0 ]; echo $?)" "$(tepui ps --master "$MASTER" 2>&1 | tail -2 | tr '\n' ' ')"
leftover=$(journalctl -u tepui-agent --since "$mark" --no-pager | grep -i 'left-over process')
check "journalctl -u tepui-agent after the restart: no \"left-over process\" line" "$([ -z "$leftover" ]; echo $?)" \
    "$(head -2 <<<"${leftover:-none}" | tr '\n' ' ')"
end_section "restart"

# ----------------------------------------------------------------------------
section "systemctl stop tepui-agent: tasks keep running (by design)"
timeout 60 systemctl stop tepui-agent
rc=$?
result=$(systemctl show -p Result --value tepui-agent)
stopped=$(sleep_pids)
check "systemctl stop tepui-agent: clean stop (Result=success), tasks still running" \
    "$([ $rc = 0 ] && [ "$result" = success ] && [ "$stopped" = "$before" ]; echo $?)" "Result=$result; pids $stopped"
timeout 180 systemctl start tepui-agent
wait_for 60 running_task
check "systemctl start tepui-agent: tasks recovered" "$([ "$(sleep_pids)" = "$before" ] && grep -q survivor <<<"$(api '{"type":"GET_CONTAINERS","get_containers":{"show_standalone":true}}')"; echo $?)" \
    "pids $(sleep_pids)"
end_section "stop"

# ----------------------------------------------------------------------------
section "clean up and leftovers"
kill "$runner" 2>/dev/null   # its framework tears down: the task is killed
wait "$runner" 2>/dev/null
api '{"type":"KILL_CONTAINER","kill_container":{"container_id":{"value":"survivor"}}}' >/dev/null
api '{"type":"WAIT_CONTAINER","wait_container":{"container_id":{"value":"survivor"}}}' >/dev/null
api '{"type":"REMOVE_CONTAINER","remove_container":{"container_id":{"value":"survivor"}}}' >/dev/null
# The agent destroys the pods once their tasks ended (the framework's
# SHUTDOWN_FRAMEWORK reaches it over the link): supervisors (comm
# tepui-supervise: they run from a sealed memfd) and tasks go.
pods_gone() { ! pgrep -x tepui-supervise >/dev/null && [ -z "$(sleep_pids)" ] && ! running_task; }
wait_for 90 pods_gone
timeout 60 systemctl stop tepui-agent tepui-master
m_result=$(systemctl show -p Result --value tepui-master)
check "systemctl stop tepui-master: clean stop (STOPPING=1, Result=success)" "$([ "$m_result" = success ]; echo $?)" "Result=$m_result"
procs=$(pgrep -a -x tepui-supervise; pgrep -a -f 'sleep 600')
cgroups=$(find /sys/fs/cgroup -mindepth 1 -type d -path '*tepui*' | grep -vxE '/sys/fs/cgroup/(tepui|tepui-dev|tepui\.slice)')
mounts=$(awk '{print $5}' /proc/self/mountinfo | grep -E 'tepui|/images/containers/')
check "nothing left: no supervisor or task process, pod cgroup or mount once tasks ended and units stopped" \
    "$([ -z "$procs$cgroups$mounts" ]; echo $?)" "procs: ${procs:-none}; cgroups: ${cgroups:-none}; mounts: ${mounts:-none}"
journalctl -u tepui-agent -u tepui-master --no-pager > "$RES/journal.log" 2>&1
end_section "leftovers"

# ----------------------------------------------------------------------------
section "package removal"
dpkg -r tepui > "$RES/dpkg-remove.log" 2>&1
rc=$?
check "dpkg -r tepui: binary and units gone, conffiles kept" \
    "$([ $rc = 0 ] && [ ! -e /usr/bin/tepui ] && [ ! -e /lib/systemd/system/tepui-agent.service ] && [ -e /etc/default/tepui-agent ]; echo $?)" \
    "$(tail -2 "$RES/dpkg-remove.log" | tr '\n' ' ')"
dpkg -P tepui > "$RES/dpkg-purge.log" 2>&1
rc=$?
check "dpkg -P tepui: conffiles gone, systemd no longer knows the units" \
    "$([ $rc = 0 ] && [ ! -e /etc/default/tepui-agent ] && ! systemctl cat tepui-agent >/dev/null 2>&1; echo $?)" \
    "$(tail -2 "$RES/dpkg-purge.log" | tr '\n' ' ')"
end_section "package removal"

# ----------------------------------------------------------------------------
echo
echo "######## guest timings"
printf '  %s\n' "${timings[@]}" | tee "$RES/timings.txt"
failed=$(grep -c '^FAIL' "$RES/checks.txt")
echo "######## $(grep -c '^PASS' "$RES/checks.txt") passed, $failed failed (table: $RES/checks.txt)"
exit "$failed"
