#!/usr/bin/env bash
# Prints what scripts/kube.sh may change on the host, one sorted section each, so that a snapshot
# before `up` and one after `down` can be diffed (test/interop/kube/host-restore.test.ts does).
# Processes are those whose command line names a cluster component (the full list changes by
# itself); everything else is complete.
set -uo pipefail
echo "== processes"
ps -eo args= | grep -E 'kube-apiserver|kube-controller|kube-scheduler|kubelet|etcd|containerd|runc|/pause$' |
  grep -vE 'grep|kube-host-snapshot' | sort
echo "== mounts"
awk '{print $5, $9}' /proc/self/mountinfo | sort
echo "== links"
ip -o link show | awk -F': ' '{print $2}' | sort
echo "== addresses"
ip -o addr show | awk '{print $2, $4}' | sort
echo "== routes"
ip route show table all 2>/dev/null | sort
echo "== iptables"
iptables-save 2>/dev/null | grep -vE '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | sort
echo "== ip6tables"
ip6tables-save 2>/dev/null | grep -vE '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | sort
echo "== sysctls"
for s in vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward net.ipv4.conf.all.forwarding \
  net.bridge.bridge-nf-call-iptables kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  echo "$s=$(sysctl -n "$s" 2>/dev/null || echo absent)"
done
echo "== cgroups"
find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d 2>/dev/null | grep -vE '/(docker|system.slice|user.slice)' | sort
echo "== host dirs"
for d in /var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/netns /var/run/netns \
  /usr/libexec/kubernetes /opt/containerd /opt/cni /etc/cni/net.d /var/lib/containerd /run/containerd /etc/kubernetes; do
  [ -e "$d" ] && echo "$d"
done
exit 0
