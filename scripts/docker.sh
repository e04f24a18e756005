#!/usr/bin/env bash
# A private Docker engine for the docker workload attestor's interop test. Never touches the
# system's containerd (/run/containerd/containerd.sock, used by scripts/kube.sh) or a system dockerd.
#   docker.sh deps      apt-install Debian's docker.io (dockerd 20.10) and busybox-static when missing.
#   docker.sh image     build the busybox image tarball (cached in $DOCKER_CACHE, default
#                       ~/.cache/spiffe-agent/docker); prints its path.
#   docker.sh up [DIR]  start a containerd and a dockerd of our own, everything under DIR (default
#                       $DOCKERD_STATE_DIR or /tmp/spiffe-agent-dockerd): data-root, exec-root,
#                       pidfiles, sockets. No networking (--bridge=none, no iptables, no ip forwarding):
#                       containers run with --network none. Imports the busybox image. Writes DIR/env
#                       (sourceable). Idempotent: a running engine is kept.
#   docker.sh down [DIR] remove the containers, stop both daemons, unmount what they left under DIR,
#                       remove the cgroups they created and DIR itself.
#   docker.sh env [DIR] print DIR/env.
set -euo pipefail
DOCKER_BUSYBOX_IMAGE="spiffe-agent/busybox:1"
cache="${DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent/docker}"
image_tar="$cache/busybox-rootfs.tar"
state="${2:-${DOCKERD_STATE_DIR:-/tmp/spiffe-agent-dockerd}}"
sock="$state/docker.sock"
ctrd_sock="$state/containerd/containerd.sock"
# The docker.io CLI matches its daemon; another CLI on PATH (e.g. /usr/local/bin/docker) may be newer.
cli() { if [ -x /usr/bin/docker ]; then /usr/bin/docker -H "unix://$sock" "$@"; else docker -H "unix://$sock" "$@"; fi; }

docker_deps() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { echo "docker.sh: missing ${missing[*]} and no apt-get to install them" >&2; return 1; }
  echo "docker.sh: apt-get install ${missing[*]}" >&2
  # docker.io's postinst asks to start docker.service; where policy-rc.d refuses (as in CI images)
  # nothing starts, and this script never uses the system's daemon either way.
  (apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}") >&2
}

# A rootfs tar with Debian's static busybox as /bin/busybox, for `docker import` (no registry here).
docker_image() {
  if [ -f "$image_tar" ]; then echo "$image_tar"; return 0; fi
  mkdir -p "$cache"
  local root a
  root="$(mktemp -d)"
  install -D -m 0755 /bin/busybox "$root/bin/busybox"
  for a in sh sleep cat ls echo env id true; do ln -s busybox "$root/bin/$a"; done
  mkdir -p "$root/tmp" "$root/etc" && chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" --owner=0 --group=0 --numeric-owner -cf "$image_tar.tmp" .
  rm -rf "$root"
  mv "$image_tar.tmp" "$image_tar"
  echo "$image_tar"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # description, seconds, command...
  local what="$1" secs="$2" i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do "$@" >/dev/null && return 0; sleep 0.1; done
  echo "docker.sh: $what did not come up within ${secs}s" >&2
  return 1
}

# Ready when it answers; a dockerd that exited fails at once with its log's last lines.
dockerd_ready() {
  kill -0 "$1" 2>/dev/null || { tail -n 5 "$state/dockerd.log" >&2; echo "docker.sh: dockerd exited" >&2; exit 1; }
  cli version 2>/dev/null
}

docker_up() {
  command -v dockerd >/dev/null && command -v containerd >/dev/null || { echo "docker.sh: dockerd or containerd missing; run: bash scripts/docker.sh deps" >&2; return 1; }
  mkdir -p "$state"
  exec 9>"$state.lock"
  flock 9 # (the daemons are started with fd 9 closed, or they would hold this lock)
  if alive "$state/dockerd.pid" && cli version >/dev/null 2>&1; then cat "$state/env"; return 0; fi
  docker_image >/dev/null
  mkdir -p "$state/containerd" "$state/data" "$state/exec"
  # Which cgroup directories exist before: `down` removes only those the containers created.
  [ -f "$state/cgroups.before" ] || { ls -d /sys/fs/cgroup/*/docker 2>/dev/null || true; } >"$state/cgroups.before"
  # Fixed paths dockerd 20.10 creates whatever its flags say: /run/docker/plugins (plugin discovery)
  # and /etc/docker/key.json (its trust key). `down` removes those that were not there before.
  local p
  if [ ! -f "$state/paths.before" ]; then
    for p in /run/docker/plugins /run/docker /etc/docker/key.json /etc/docker; do [ -e "$p" ] || echo "$p"; done >"$state/paths.before"
  fi
  # Our own containerd: own root, state, gRPC and ttrpc sockets, no CRI plugin, no metrics port.
  cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
[ttrpc]
  address = "$ctrd_sock.ttrpc"
[debug]
  address = "$state/containerd/debug.sock"
EOF
  if ! alive "$state/containerd.pid"; then
    setsid containerd --config "$state/containerd/config.toml" >"$state/containerd.log" 2>&1 </dev/null 9>&- &
    echo $! >"$state/containerd.pid"
    wait_for "containerd" 30 test -S "$ctrd_sock"
  fi
  echo '{}' >"$state/daemon.json"
  # --ip-forward=false: dockerd would otherwise set net.ipv4.ip_forward. --oom-score-adjust=0: root
  # here lacks CAP_SYS_RESOURCE, so a negative value cannot be set.
  setsid dockerd --config-file "$state/daemon.json" --host "unix://$sock" --containerd "$ctrd_sock" \
    --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --storage-driver=overlay2 --oom-score-adjust=0 --log-level=warn \
    >"$state/dockerd.log" 2>&1 </dev/null 9>&- &
  wait_for "dockerd (log: $state/dockerd.log)" 60 dockerd_ready $!
  cli image inspect "$DOCKER_BUSYBOX_IMAGE" >/dev/null 2>&1 || cli import "$image_tar" "$DOCKER_BUSYBOX_IMAGE" >/dev/null
  cat >"$state/env" <<EOF
DOCKERD_STATE_DIR=$state
DOCKER_HOST=unix://$sock
DOCKER_SOCKET=$sock
DOCKER_CLI=$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || command -v docker)
DOCKER_BUSYBOX_IMAGE=$DOCKER_BUSYBOX_IMAGE
EOF
  cat "$state/env"
}

stop_pidfile() { # pidfile, name
  local pid i
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "docker.sh: $2 ($pid) ignored SIGTERM; killing it" >&2; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$1"
}

docker_down() {
  [ -d "$state" ] || return 0
  exec 9>"$state.lock"
  flock 9
  local ids pid m cg
  if alive "$state/dockerd.pid"; then
    ids="$(cli ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || cli rm -f $ids >/dev/null 2>&1 || true
  fi
  stop_pidfile "$state/dockerd.pid" dockerd
  # Shims outlive containerd; any still running belong to our containerd's namespaces only.
  for pid in $(pgrep -f "containerd-shim.*-address $ctrd_sock" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  stop_pidfile "$state/containerd.pid" containerd
  # Mounts left under the state dir (overlay layers, netns files), deepest first.
  for m in $(awk -v p="$state/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  # cgroup directories the containers created (cgroupfs driver: /docker/<id> on every hierarchy).
  for cg in /sys/fs/cgroup/*/docker; do
    [ -d "$cg" ] || continue
    grep -qxF "$cg" "$state/cgroups.before" 2>/dev/null && continue
    find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$cg" 2>/dev/null || echo "docker.sh: could not remove $cg" >&2
  done
  local p
  while read -r p; do
    [ -e "$p" ] || continue
    if [ -d "$p" ]; then rmdir "$p" 2>/dev/null || echo "docker.sh: $p is not empty; left in place" >&2; else rm -f "$p"; fi
  done <"$state/paths.before" 2>/dev/null || true
  rm -rf "$state" "$state.lock"
}

case "${1:-}" in
  deps) docker_deps ;;
  image) docker_image ;;
  up) docker_up ;;
  down) docker_down ;;
  env) cat "$state/env" ;;
  *) echo "usage: docker.sh deps | image | up [DIR] | down [DIR] | env [DIR]" >&2; exit 2 ;;
esac
