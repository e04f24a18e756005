#!/usr/bin/env bash
# The `down` half of scripts/kube.sh (sourced by it after kube-node.sh): stops what `up` started
# and undoes, from the record `up` left in $KUBE_STATE/host, what the cluster changed on the host.
# TERM to each named component at once, up to 5 s for all of them to exit, then KILL.
stop_pids() { # names...
  local n p pids=() i alive_any
  for n in "$@"; do
    [ -f "$S/pids/$n" ] || continue
    p="$(cat "$S/pids/$n")"
    kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null && pids+=("$p")
  done
  for i in $(seq 1 50); do
    alive_any=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive_any=1; done
    [ $alive_any = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for i in $(seq 1 20); do
    alive_any=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive_any=1; done
    [ $alive_any = 0 ] && break
    sleep 0.1
  done
  for n in "$@"; do rm -f "$S/pids/$n"; done
}

kubepods_cgroups() { find "$CGROUP_ROOT"/*/kubepods -depth -type d 2>/dev/null || true; }

kill_pods() {
  local p cg i
  # containerd's shims outlive containerd (they are reparented); each names our socket in its argv.
  for p in $(pgrep -f -- "containerd-shim.*-address $sock" || true); do kill -KILL "$p" 2>/dev/null || true; done
  # Everything left in the pods' cgroups is a container process.
  for i in 1 2 3 4 5; do
    local left=0
    for cg in $(new_cgroups); do
      for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; left=1; done
    done
    [ $left = 0 ] && break
    sleep 0.3
  done
}

unmount_all() {
  local m i
  # Deepest first; pods' mounts (tmpfs for projected tokens, netns binds, overlay rootfs, shm) are
  # all under $S with netns_mounts_under_state_dir; /run/netns is checked too in case.
  for i in 1 2 3; do
    for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($S/|/run/netns/|/var/run/netns/|/var/lib/kubelet/)" | sort -r); do
      grep -qxF "$m" "$S/host/mounts" 2>/dev/null && continue
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
}

remove_links() {
  local l
  for l in $(ip -o link show master "$KUBE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$l" 2>/dev/null || true
  done
  ip link delete "$KUBE_BRIDGE" 2>/dev/null || true
}

# Removes the rules and chains added since `up` that belong to the cluster (the kubelet's KUBE-*
# chains, CNI-* chains, anything naming our bridge or pod range), and nothing else: another tool
# (dockerd) may have changed iptables meanwhile.
clean_iptables() { # save-cmd, cmd, before-file, nft family
  local save="$1" ipt="$2" before="$3" family="$4" table="" line chains=()
  command -v "$save" >/dev/null || return 0
  local now; now="$($save 2>/dev/null || true)"
  local pat="KUBE-|CNI-|$KUBE_BRIDGE|${KUBE_POD_CIDR%/*}"
  while IFS= read -r line; do
    case "$line" in
      \**) table="${line#\*}" ;;
      -A\ *)
        grep -qxF -- "$line" "$before" 2>/dev/null && continue
        echo "$line" | grep -qE -- "$pat" || continue
        # shellcheck disable=SC2086
        eval "$ipt -t $table -D ${line#-A }" 2>/dev/null || true ;;
      :*)
        local c="${line#:}"; c="${c%% *}"
        grep -q -- "^:$c " "$before" 2>/dev/null && continue
        echo "$c" | grep -qE '^(KUBE-|CNI-)' && chains+=("$table $c") ;;
    esac
  done <<<"$now"
  local tc
  for tc in "${chains[@]}"; do
    set -- $tc
    "$ipt" -t "$1" -F "$2" 2>/dev/null || true
    "$ipt" -t "$1" -X "$2" 2>/dev/null || true
  done
  # With iptables-nft, the kubelet's canary chains bring tables into being (mangle, and ip6's
  # filter/nat/mangle); one that did not exist before and now holds no rule goes again.
  command -v nft >/dev/null && "$ipt" --version 2>/dev/null | grep -q nf_tables || return 0
  for table in $($save 2>/dev/null | sed -n 's/^\*//p'); do
    grep -qxF -- "*$table" "$before" 2>/dev/null && continue
    $save -t "$table" 2>/dev/null | grep -q '^-A' && continue
    nft delete table "$family" "$table" 2>/dev/null || true
  done
}

restore_sysctls() {
  local kv
  [ -f "$S/host/sysctls" ] || return 0
  while IFS= read -r kv; do sysctl -q -w "$kv" >/dev/null 2>&1 || log "could not restore $kv"; done <"$S/host/sysctls"
}

# The kubepods cgroups made since `up` (one that was there before is someone else's).
new_cgroups() { kubepods_cgroups | grep -vxF -f "$S/host/cgroups" 2>/dev/null || { [ -f "$S/host/cgroups" ] || kubepods_cgroups; }; }

remove_cgroups() {
  local cg i
  for i in 1 2 3 4 5; do
    for cg in $(new_cgroups); do rmdir "$cg" 2>/dev/null || true; done
    [ -z "$(new_cgroups)" ] && return 0
    sleep 0.3
  done
  log "kubepods cgroups left: $(new_cgroups | tr '\n' ' ')"
}

# The host directories the components create whatever they are told (the kubelet's device-plugin
# socket under /var/lib/kubelet, its /var/log/containers links into our pod logs, libcni's result
# cache in /var/lib/cni, the shims' sockets in /run/containerd). One that did not exist before `up`
# was made by this cluster and goes whole; in one that did, only links into $S are removed.
remove_host_dirs() {
  local d
  [ -f "$S/host/dirs" ] || return 0
  for d in $KUBE_HOST_DIRS; do
    [ -e "$d" ] || continue
    if grep -qxF "$d" "$S/host/dirs"; then
      find "$d" -maxdepth 1 -type l -lname "$S/*" -delete 2>/dev/null || true
    else
      rm -rf "$d" 2>/dev/null || log "could not remove $d"
    fi
  done
  return 0
}

kube_down_inner() {
  local n
  # The kubelet first, so that nothing restarts the pods killed next.
  stop_pids kubelet kube-scheduler kube-controller-manager
  kill_pods
  stop_pids containerd kube-apiserver etcd
  kill_pods
  unmount_all
  remove_links
  clean_iptables iptables-save iptables "$S/host/iptables" ip
  clean_iptables ip6tables-save ip6tables "$S/host/ip6tables" ip6
  remove_cgroups
  restore_sysctls
  remove_host_dirs
  unmount_all
  if [ "${KUBE_KEEP_LOGS:-}" = 1 ] && [ -d "$S/logs" ]; then rm -rf "$S.logs" && cp -a "$S/logs" "$S.logs"; fi
  rm -rf "$S" 2>/dev/null || { unmount_all; rm -rf "$S"; }
}

kube_down() {
  mkdir -p "$cache"
  exec 8>"$cache/.state.lock"
  flock 8
  [ -d "$S" ] || return 0
  kube_down_inner
  log "cluster down ($S)"
}
