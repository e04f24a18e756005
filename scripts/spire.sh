#!/usr/bin/env bash
# Builds the real spire-server and spire-agent that the server-mode, differential and benchmark
# suites run against. The version is pinned here and nowhere else. Idempotent and cached: the
# binaries land in $SPIRE_CACHE (default ~/.cache/spiffe-agent/spire-<version>/bin) and a rerun
# with them present returns at once; Go's module and build caches make a rebuild take seconds.
# Prints the bin directory on its last line. Builds from the Go module proxy only.
set -euo pipefail
SPIRE_VERSION="v1.13.3"
cache="${SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent/spire-$SPIRE_VERSION}"
bin="$cache/bin"
if [ "${1:-}" = "--version" ]; then echo "$SPIRE_VERSION"; exit 0; fi
if [ -x "$bin/spire-server" ] && [ -x "$bin/spire-agent" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "spire.sh: Go is needed to build SPIRE $SPIRE_VERSION" >&2; exit 1; }
mkdir -p "$cache"
# One build at a time: a second caller waits for the first instead of compiling twice.
exec 9>"$cache/.lock"
flock 9
if [ -x "$bin/spire-server" ] && [ -x "$bin/spire-agent" ]; then echo "$bin"; exit 0; fi
mod="$cache/mod"
rm -rf "$mod" && mkdir -p "$mod" "$bin.tmp"
(
  cd "$mod"
  go mod init spire-build >/dev/null 2>&1
  # `go install …@version` is refused here (the proxy lists no versions); `go get -tool` works.
  GOFLAGS=-mod=mod go get -tool "github.com/spiffe/spire/cmd/spire-server@$SPIRE_VERSION" \
    "github.com/spiffe/spire/cmd/spire-agent@$SPIRE_VERSION" >&2
  GOBIN="$bin.tmp" go install github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent >&2
)
rm -rf "$bin" && mv "$bin.tmp" "$bin"
echo "$bin"
