#!/usr/bin/env bash
# Rebuilds the web UI bundle (webui/dist/) from webui/src with the exact npm
# packages of webui/package-lock.json (`npm ci`, then esbuild). The bundle is
# checked in and embedded in the binary (master/src/webui.rs), so neither
# cargo nor CI needs npm; run this after changing webui/src or the lockfile.
#   --check: rebuild into a temporary dir and fail if it differs from the
#            checked-in bundle (what scripts/test.sh runs when npm is there).
set -euo pipefail
cd "$(dirname "$0")/../webui"

out=dist
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

npm ci --no-audit --no-fund --loglevel=error >/dev/null
esbuild=node_modules/.bin/esbuild
# One JS file and one CSS file, minified, no source maps: deterministic for
# a given lockfile and source, so the check can compare bytes.
"$esbuild" src/main.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --log-level=warning --outfile="$out/app.js"
"$esbuild" src/app.css --bundle --minify --log-level=warning --outfile="$out/app.css"
cp src/index.html "$out/index.html"

if [ "$out" != dist ]; then
  if ! diff -r "$out" dist >/dev/null; then
    echo "webui/dist is not what webui/src and package-lock.json build: run scripts/build-webui.sh and commit" >&2
    exit 1
  fi
  echo "webui/dist matches a rebuild"
fi
ls -l dist
