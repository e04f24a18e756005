#!/usr/bin/env bash
# A real single-node Kubernetes for the k8s interop tests, pinned here and nowhere else.
#   kube.sh build      compile kubelet, kube-apiserver, kube-controller-manager, kube-scheduler and
#                      kubectl from the Go module proxy; apt-install etcd, containerd, runc, CNI
#                      plugins and busybox-static when missing; make the pause and busybox images.
#                      Cached in $KUBE_CACHE (default ~/.cache/spiffe-agent/kube-<version>); a rerun
#                      returns at once. Prints the bin directory on its last line.
#   kube.sh up [DIR]   start etcd, apiserver, controller-manager, scheduler, containerd and kubelet
#                      on loopback with their own ports and directories under DIR (default
#                      $KUBE_STATE_DIR or /tmp/spiffe-agent-kube), wait for the node Ready. Writes
#                      DIR/env (sourceable) and DIR/kubeconfig. Idempotent: a running cluster is kept.
#   kube.sh down [DIR] stop everything `up` started and undo what it changed on the host (mounts,
#                      cgroups, bridge, veths, netns, iptables rules, sysctls).
#   kube.sh env [DIR]  print DIR/env.
#   kube.sh deps       only the apt part of build.
#   kube.sh built      exit 0 (printing the bin directory) when `build` has nothing left to do.
#   kube.sh --version  print the Kubernetes version.
set -euo pipefail
KUBE_VERSION="v1.34.4"
KUBE_PAUSE_IMAGE="localhost/spiffe-agent/pause:1"
KUBE_BUSYBOX_IMAGE="localhost/spiffe-agent/busybox:1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent/kube-$KUBE_VERSION}"
bin="$cache/bin"
images="$cache/images"

kube_built() {
  local c
  for c in kubelet kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$bin/$c" ] || return 1; done
  [ -f "$images/pause.tar" ] && [ -f "$images/busybox.tar" ] &&
    command -v etcd >/dev/null && command -v containerd >/dev/null && command -v runc >/dev/null &&
    [ -x /usr/lib/cni/bridge ]
}

kube_build() {
  if kube_built; then echo "$bin"; return 0; fi
  mkdir -p "$cache"
  # One build at a time: a second caller waits for the first instead of compiling twice.
  exec 9>"$cache/.lock"
  flock 9
  if kube_built; then echo "$bin"; return 0; fi
  # shellcheck source=scripts/kube-build.sh
  . "$here/kube-build.sh"
  kube_apt_packages
  local c ok=1
  for c in $KUBE_CMDS; do [ -x "$bin/$c" ] || ok=0; done
  if [ $ok = 0 ]; then
    kube_build_binaries
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
  fi
  [ -f "$images/pause.tar" ] && [ -f "$images/busybox.tar" ] || kube_build_images
  exec 9>&-
  echo "$bin"
}

state_dir() { echo "${1:-${KUBE_STATE_DIR:-/tmp/spiffe-agent-kube}}"; }

case "${1:-}" in
  --version) echo "$KUBE_VERSION" ;;
  build) kube_build ;;
  # Only the Debian packages (CI runs this in the foreground, so apt runs once at a time).
  deps) . "$here/kube-build.sh" && kube_apt_packages ;;
  # Exit 0 (printing the bin directory) when everything `up` needs is there; builds nothing.
  built) kube_built && echo "$bin" ;;
  up | down | env)
    cmd="$1"; shift
    KUBE_STATE="$(state_dir "${1:-}")"
    # shellcheck source=scripts/kube-node.sh
    . "$here/kube-node.sh"
    # shellcheck source=scripts/kube-down.sh
    . "$here/kube-down.sh"
    "kube_$cmd"
    ;;
  *) echo "usage: kube.sh build | deps | built | up [DIR] | down [DIR] | env [DIR] | --version" >&2; exit 2 ;;
esac
