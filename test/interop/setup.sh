#!/usr/bin/env bash
# Prepares the real SPIFFE peers the interop suite runs against our agent:
#   - .cache/bin/go-client : go-spiffe v2 (pinned in go-client/go.mod + go.sum), built with -mod=readonly
#   - .cache/bin/sds-client: Envoy's own Go API types (go-control-plane/envoy, pinned in sds-client/go.mod
#                            + go.sum), an SDS v3 client that talks to the agent as Envoy does
#   - .cache/bin/grpcurl   : grpcurl (GRPCURL_VERSION below, from the Go module proxy, checked against
#                            the checksum database), a grpc-go reflection client for reflection.test.ts
#   - .cache/venv          : a private venv with PyPI `spiffe` (py/requirements.txt); nothing installed globally
#   - test users           : uid 1001 spiffe-a, 1002 spiffe-b, 1003 spiffe-none (no home, no shell, group = uid),
#                            created only if that uid is missing. Workload attestation reads the caller's uid
#                            from the kernel, so the tests must run clients as real, distinct uids.
# Idempotent and cache-aware: each output carries a stamp of its inputs and is rebuilt only when they
# change. Needs root only when a test user is missing. Java and Rust are not used by this suite.
#
# Environment: INTEROP_PYTHON=/path/to/python3 picks the interpreter for the venv (it must be runnable by
# the test uids, so e.g. a pyenv Python under a 0700 /root is skipped automatically).
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$HERE/.cache"
BIN="$CACHE/bin"
VENV="$CACHE/venv"
GO_MIN="1.24"   # the go directive go-spiffe v2.8.1 needs
GO_SDS_MIN="1.26" # the go directive go-control-plane/envoy v1.40.0 needs
PY_MIN="3.9"    # py-spiffe 0.3.x
NODE_MIN="20"
TEST_USERS=("1001:spiffe-a" "1002:spiffe-b" "1003:spiffe-none")

say() { echo "interop: $*" >&2; }
die() { echo "interop: $*" >&2; exit 1; }

# version_ge A B: true when dotted version A >= B.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

hash_inputs() { cat "$@" | sha256sum | cut -d' ' -f1; }

check_node() {
  command -v node >/dev/null 2>&1 || die "node not found; install Node.js >= $NODE_MIN (the agent under test runs on it)"
  local v; v="$(node -p 'process.versions.node')"
  version_ge "$v" "$NODE_MIN" || die "node $v is too old; install Node.js >= $NODE_MIN"
}

check_go() {
  command -v go >/dev/null 2>&1 || die "go not found; install Go >= $GO_MIN (https://go.dev/dl) and put it on PATH"
  local v; v="$(GOTOOLCHAIN=local go env GOVERSION)"; v="${v#go}"
  version_ge "$v" "$GO_MIN" || die "go $v is too old; install Go >= $GO_MIN"
}

ensure_users() {
  local entry uid name
  for entry in "${TEST_USERS[@]}"; do
    uid="${entry%%:*}"; name="${entry#*:}"
    if getent passwd "$uid" >/dev/null; then
      continue  # any account with this uid will do; the tests select by uid, not name
    fi
    [ "$(id -u)" = 0 ] || die "test user uid $uid is missing and creating it needs root: sudo $0 (or: useradd -M -r -u $uid $name)"
    getent passwd "$name" >/dev/null && die "user $name exists with another uid; free the name or create uid $uid by hand"
    getent group "$uid" >/dev/null || groupadd -r -g "$uid" "$name"
    useradd -M -r -u "$uid" -g "$uid" -d /nonexistent -s /usr/sbin/nologin "$name"
    say "created user $name (uid $uid)"
  done
}

# The test uids execute the venv's interpreter, so the base Python must be reachable by them.
runnable_by_test_uid() {
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid=1001 --regid=1001 --clear-groups -- "$1" -c 'import sys' >/dev/null 2>&1
  else
    "$1" -c 'import sys' >/dev/null 2>&1
  fi
}

pick_python() {
  local cand v tried=()
  for cand in ${INTEROP_PYTHON:-} "$(command -v python3 || true)" /usr/bin/python3 /usr/local/bin/python3; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    cand="$(readlink -f "$cand")"
    tried+=("$cand")
    v="$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
    version_ge "$v" "$PY_MIN" || continue
    "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1 || continue
    runnable_by_test_uid "$cand" || continue
    echo "$cand"; return 0
  done
  if [ ${#tried[@]} -eq 0 ]; then
    die "python3 not found; install Python >= $PY_MIN with the venv module (e.g. apt-get install python3 python3-venv)"
  fi
  die "no usable python3 among: ${tried[*]}; need Python >= $PY_MIN with venv+ensurepip (apt-get install python3-venv) that uid 1001 can execute (set INTEROP_PYTHON)"
}

build_go_client() {
  local src="$HERE/go-client" stamp="$BIN/go-client.stamp" want
  want="$( { GOTOOLCHAIN=local go env GOVERSION; hash_inputs "$src/go.mod" "$src/go.sum" "$src"/*.go; } | sha256sum | cut -d' ' -f1)"
  if [ -x "$BIN/go-client" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "go-client up to date"
    return
  fi
  say "building go-client (go-spiffe from go.sum, -mod=readonly)"
  mkdir -p "$BIN"
  # -mod=readonly: go.sum is the lock; a missing or changed sum fails instead of being rewritten.
  (cd "$src" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -o "$BIN/go-client.tmp" .)
  mv -f "$BIN/go-client.tmp" "$BIN/go-client"
  echo "$want" > "$stamp"
}

build_sds_client() {
  local src="$HERE/sds-client" stamp="$BIN/sds-client.stamp" want v
  v="$(GOTOOLCHAIN=local go env GOVERSION)"; v="${v#go}"
  version_ge "$v" "$GO_SDS_MIN" || die "go $v is too old for sds-client (go-control-plane/envoy v1.40.0); install Go >= $GO_SDS_MIN"
  want="$( { GOTOOLCHAIN=local go env GOVERSION; hash_inputs "$src/go.mod" "$src/go.sum" "$src"/*.go; } | sha256sum | cut -d' ' -f1)"
  if [ -x "$BIN/sds-client" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "sds-client up to date"
    return
  fi
  say "building sds-client (go-control-plane/envoy from go.sum, -mod=readonly)"
  mkdir -p "$BIN"
  (cd "$src" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -o "$BIN/sds-client.tmp" .)
  mv -f "$BIN/sds-client.tmp" "$BIN/sds-client"
  echo "$want" > "$stamp"
}

GRPCURL_VERSION=v1.9.4
build_grpcurl() {
  local stamp="$BIN/grpcurl.stamp" want
  want="$( { GOTOOLCHAIN=local go env GOVERSION; echo "$GRPCURL_VERSION"; } | sha256sum | cut -d' ' -f1)"
  if [ -x "$BIN/grpcurl" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "grpcurl up to date"
    return
  fi
  say "building grpcurl $GRPCURL_VERSION"
  # Outside any module: `go install pkg@version` takes that version's go.mod/go.sum as they are.
  (cd / && GOTOOLCHAIN=local GOBIN="$BIN" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION")
  echo "$want" > "$stamp"
}

build_venv() {
  local py="$1" req="$HERE/py/requirements.txt" stamp="$VENV/.interop-stamp" want
  want="$( { echo "$py"; "$py" -VV; hash_inputs "$req"; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import spiffe' >/dev/null 2>&1; then
    say "python venv up to date ($py)"
    return
  fi
  say "creating venv with $py and installing py/requirements.txt"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --require-virtualenv -r "$req"
  "$VENV/bin/python" -c 'import spiffe, spiffe.workloadapi.workload_api_client' \
    || die "py-spiffe installed but does not import; see the pip output above"
  echo "$want" > "$stamp"
}

main() {
  local t0=$SECONDS py
  check_node
  check_go
  ensure_users
  py="$(pick_python)"
  mkdir -p "$BIN"
  chmod 0755 "$CACHE" "$BIN"
  build_go_client
  build_sds_client
  build_grpcurl
  build_venv "$py"
  # Quick smoke: both peers start and report a missing endpoint in their own words.
  local rc=0
  "$BIN/go-client" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || die "go-client did not start (exit $rc, expected usage exit 2)"
  rc=0; "$BIN/sds-client" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || die "sds-client did not start (exit $rc, expected usage exit 2)"
  "$VENV/bin/python" "$HERE/py/fetch.py" --help >/dev/null || die "py/fetch.py does not start"
  "$BIN/grpcurl" -version >/dev/null 2>&1 || die "grpcurl does not start"
  say "ready in $((SECONDS - t0))s: $BIN/go-client, $BIN/sds-client, $VENV/bin/python"
}

main "$@"
bash "$(dirname "$0")/setup-java.sh"
