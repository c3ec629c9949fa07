#!/usr/bin/env bash
# tepui's main job on a fresh Debian 12 machine (as root): installs the build
# dependencies, builds tepui, starts a single-node cluster (`tepui dev`:
# master + agent in one process on loopback) and runs a small framework
# against it that launches the task group of Mesos's "Running Workloads"
# document: two tasks with per-task requests and limits, an artifact fetched
# before launch, each in its own container under a default executor.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_cargo
install_apt_packages "${BUILD_PACKAGES[@]}" python3
cargo build --release --bin tepui

MASTER_PORT=${TEPUI_DEMO_MASTER_PORT:-5050}
AGENT_PORT=${TEPUI_DEMO_AGENT_PORT:-5051}
WORK=$(mktemp -d /tmp/tepui-dev.XXXXXX)
LOG="$WORK/tepui-dev.log"
echo "== starting tepui dev (master :$MASTER_PORT, agent :$AGENT_PORT, work dir $WORK, log $LOG)"
target/release/tepui dev --work_dir "$WORK" --master_port "$MASTER_PORT" --agent_port "$AGENT_PORT" >"$LOG" 2>&1 &
DEV=$!
trap 'kill -TERM $DEV 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$MASTER_PORT/health" >/dev/null 2>&1 && break
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$MASTER_PORT/health')" 2>/dev/null && break
  sleep 0.1
done
echo "== running the demo framework (scripts/demo_scheduler.py)"
python3 scripts/demo_scheduler.py --master "127.0.0.1:$MASTER_PORT"
echo "== the tasks' sandboxes (stdout, stderr, the fetched artifact) are under $WORK/agent/slaves"
