#!/usr/bin/env bash
# Runs tepui's main job on a fresh Debian 12 machine (as root): installs the
# build dependencies, builds tepui and runs it. Today that shows the command
# tree; once `tepui dev` exists it starts a single-node cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_cargo
install_apt_packages "${BUILD_PACKAGES[@]}"
exec cargo run --release --bin tepui -- --help
