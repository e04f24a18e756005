#!/usr/bin/env bash
# The `up`/`down`/`env` half of scripts/kube.sh (sourced by it). Everything the cluster writes lives
# under $KUBE_STATE; what it changes outside (sysctls, cgroups, the bridge, iptables rules, a few
# host directories the kubelet insists on) is recorded by `up` in $KUBE_STATE/host and undone by
# `down` (scripts/kube-down.sh). Expects KUBE_STATE, KUBE_VERSION, KUBE_PAUSE_IMAGE, bin, images, cache (from kube.sh).

# Ports and names: loopback only, overridable so two clusters (or a system one) can coexist.
: "${KUBE_ETCD_PORT:=23790}" "${KUBE_ETCD_PEER_PORT:=23800}" "${KUBE_APISERVER_PORT:=26443}"
: "${KUBE_KUBELET_PORT:=20250}" "${KUBE_KUBELET_READONLY_PORT:=20255}" "${KUBE_KUBELET_HEALTHZ_PORT:=20248}"
: "${KUBE_NODE_NAME:=spiffe-agent-node}" "${KUBE_BRIDGE:=sakube0}" "${KUBE_POD_CIDR:=10.244.77.0/24}"
: "${KUBE_NODE_IP:=}" "${KUBE_SERVICE_CIDR:=10.96.77.0/24}" "${KUBE_SERVICE_IP:=10.96.77.1}" "${KUBE_UP_TIMEOUT:=180}"
KUBE_SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward"
# Directories the kubelet, containerd or CNI create on the host whatever they are told; `down`
# removes those that did not exist before `up`.
KUBE_HOST_DIRS="/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/netns /var/run/netns
/usr/libexec/kubernetes /opt/containerd /opt/cni /etc/cni/net.d /var/lib/containerd /run/containerd"
CGROUP_ROOT=/sys/fs/cgroup

S="$KUBE_STATE"
pki="$S/pki"
sock="$S/containerd/containerd.sock"

log() { echo "kube.sh: $*" >&2; }
alive() { [ -f "$S/pids/$1" ] && kill -0 "$(cat "$S/pids/$1")" 2>/dev/null; }

kubectl_() { "$bin/kubectl" --kubeconfig "$S/kubeconfig" "$@"; }

kube_env() {
  [ -f "$S/env" ] || { log "no cluster in $S (kube.sh up $S)"; return 1; }
  cat "$S/env"
}

node_ready() {
  [ "$(kubectl_ get node "$KUBE_NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# --- PKI -------------------------------------------------------------------------------------
cert() { # name, subject, extensions (may be empty)
  local name="$1" subj="$2" ext="$3"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() {
  mkdir -p "$pki" && chmod 700 "$pki"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=spiffe-agent-kube-ca" \
    -days 30 -out "$pki/ca.crt" 2>/dev/null
  local client="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$KUBE_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # The kubelet's serving certificate names 127.0.0.1: the node name need not resolve, so clients
  # (the k8s workload attestor with node_name = "127.0.0.1") reach it by IP.
  cert kubelet "/CN=$KUBE_NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$KUBE_NODE_NAME"
  cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
  cert node "/O=system:nodes/CN=system:node:$KUBE_NODE_NAME" "$client"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  # A client certificate with no group: what a test presents to the kubelet as a plain user.
  cert kubelet-client "/CN=spiffe-agent-kubelet-client" "$client"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

kubeconfig() { # file, client cert name
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$KUBE_APISERVER_PORT", certificate-authority: "$pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
KC
}

# --- host record ------------------------------------------------------------------------------
record_host() {
  local h="$S/host" s d
  mkdir -p "$h"
  for s in $KUBE_SYSCTLS; do echo "$s=$(sysctl -n "$s")"; done >"$h/sysctls"
  for d in $KUBE_HOST_DIRS; do [ -e "$d" ] && echo "$d"; done >"$h/dirs" || true
  { iptables-save 2>/dev/null || true; } >"$h/iptables"
  { ip6tables-save 2>/dev/null || true; } >"$h/ip6tables"
  awk '{print $5}' /proc/self/mountinfo >"$h/mounts"
  kubepods_cgroups >"$h/cgroups"
}

# --- up ---------------------------------------------------------------------------------------
start() { # name, command...
  local name="$1"; shift
  # The lock fds must not leak into the daemons, or the lock would outlive this script.
  setsid "$@" >>"$S/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$S/pids/$name"
}

wait_for() { # what, seconds, command...
  local what="$1" t="$2"; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then log "$what not ready after ${t}s; see $S/logs"; return 1; fi
    sleep 0.5
  done
}

write_configs() {
  mkdir -p "$S/containerd" "$S/cni/net.d" "$S/cni/ipam" "$S/kubelet" "$S/logs/pods"
  cat >"$S/containerd/config.toml" <<TOML
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
plugin_dir = ""
[grpc]
  address = "$sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KUBE_PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: without this runc fails ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$S/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
TOML
  # No ipMasq: pods need no way out, and every rule CNI does not add is one `down` cannot miss.
  cat >"$S/cni/net.d/10-spiffe-agent-kube.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "spiffe-agent-kube", "plugins": [
  {"type": "bridge", "bridge": "$KUBE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$S/cni/ipam", "ranges": [[{"subnet": "$KUBE_POD_CIDR"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}
]}
CNI
  printf 'nameserver 127.0.0.1\n' >"$S/resolv.conf"
  cat >"$S/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBE_KUBELET_PORT
readOnlyPort: $KUBE_KUBELET_READONLY_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBE_KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
failSwapOn: false
podLogsDir: $S/logs/pods
volumePluginDir: $S/kubelet/volume-plugins
resolvConf: $S/resolv.conf
clusterDomain: cluster.local
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
maxPods: 50
syncFrequency: 5s
nodeStatusUpdateFrequency: 5s
YAML
}

# The kubelet refuses a loopback node IP ("nodeIP can't be loopback address") and then reports no
# address at all (pods get no hostIP), so the node IP is the host's own source address; the kubelet
# still listens on 127.0.0.1 only. The price: the apiserver cannot reach the kubelet at the node IP,
# so `kubectl logs/exec` do not work (container logs are under $KUBE_STATE/logs/pods).
node_ip() {
  [ -n "$KUBE_NODE_IP" ] && { echo "$KUBE_NODE_IP"; return; }
  ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit }}' | grep . ||
    ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1
}

kube_up_inner() {
  mkdir -p "$S/logs" "$S/pids"
  KUBE_NODE_IP="$(node_ip)"
  [ -n "$KUBE_NODE_IP" ] || { log "no non-loopback IPv4 address for the node (set KUBE_NODE_IP)"; return 1; }
  record_host
  make_pki
  kubeconfig "$S/kubeconfig" admin
  kubeconfig "$S/kubelet.kubeconfig" node
  write_configs

  start etcd etcd --name default --data-dir "$S/etcd" \
    --listen-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$KUBE_ETCD_PEER_PORT"
  start containerd containerd --config "$S/containerd/config.toml"
  wait_for etcd 30 curl -sf "http://127.0.0.1:$KUBE_ETCD_PORT/health"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$KUBE_ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode Node,RBAC --allow-privileged=true --endpoint-reconciler-type none \
    --service-cluster-ip-range "$KUBE_SERVICE_CIDR" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP --profiling=false
  wait_for kube-apiserver 90 kubectl_ get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$S/kubeconfig" \
    --authentication-kubeconfig "$S/kubeconfig" --authorization-kubeconfig "$S/kubeconfig" \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --leader-elect=false --secure-port 0
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$S/kubeconfig" \
    --authentication-kubeconfig "$S/kubeconfig" --authorization-kubeconfig "$S/kubeconfig" \
    --leader-elect=false --secure-port 0
  wait_for containerd 30 ctr --address "$sock" version
  ctr --address "$sock" -n k8s.io images import "$images/pause.tar" >/dev/null
  ctr --address "$sock" -n k8s.io images import "$images/busybox.tar" >/dev/null
  start kubelet "$bin/kubelet" --config "$S/kubelet/config.yaml" --kubeconfig "$S/kubelet.kubeconfig" \
    --root-dir "$S/kubelet" --cert-dir "$S/kubelet/pki" --hostname-override "$KUBE_NODE_NAME" --node-ip "$KUBE_NODE_IP"
  wait_for "node $KUBE_NODE_NAME" "$KUBE_UP_TIMEOUT" node_ready
  # Tests create pods in "default" as soon as up returns; its service account comes from the
  # controller-manager a moment after the namespace exists.
  wait_for "default service account" 60 kubectl_ -n default get serviceaccount default
  cat >"$S/env.tmp" <<ENV
KUBE_STATE_DIR=$S
KUBE_BIN_DIR=$bin
KUBECONFIG=$S/kubeconfig
KUBE_APISERVER_URL=https://127.0.0.1:$KUBE_APISERVER_PORT
KUBE_CA_CERT=$pki/ca.crt
KUBE_ADMIN_CERT=$pki/admin.crt
KUBE_ADMIN_KEY=$pki/admin.key
KUBE_KUBELET_CLIENT_CERT=$pki/kubelet-client.crt
KUBE_KUBELET_CLIENT_KEY=$pki/kubelet-client.key
KUBE_SA_SIGNING_KEY=$pki/sa.key
KUBE_NODE_NAME=$KUBE_NODE_NAME
KUBE_NODE_IP=$KUBE_NODE_IP
KUBE_KUBELET_PORT=$KUBE_KUBELET_PORT
KUBE_KUBELET_READONLY_PORT=$KUBE_KUBELET_READONLY_PORT
KUBE_CONTAINERD_SOCKET=$sock
KUBE_BUSYBOX_IMAGE=$KUBE_BUSYBOX_IMAGE
ENV
  mv "$S/env.tmp" "$S/env"
}

kube_up() {
  kube_built || { log "Kubernetes $KUBE_VERSION is not built: run scripts/kube.sh build first"; return 1; }
  mkdir -p "$cache"
  exec 8>"$cache/.state.lock"
  flock 8
  local n
  if [ -f "$S/env" ] && alive kube-apiserver && alive kubelet && node_ready; then cat "$S/env"; return 0; fi
  # A half-started or crashed cluster: clean it away first, so `up` always starts from the host as it was.
  [ -d "$S" ] && kube_down_inner
  mkdir -p "$S"
  local t0 rc; t0=$(date +%s)
  # In a subshell of its own so that `set -e` stops it at the first failing step (inside an `if`
  # condition bash would ignore errexit and carry on past a component that did not start).
  set +e
  (set -e; kube_up_inner)
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    for n in kube-apiserver kubelet containerd; do [ -f "$S/logs/$n.log" ] && { log "last lines of $n.log:"; tail -n 15 "$S/logs/$n.log" >&2; }; done
    kube_down_inner
    return 1
  fi
  log "cluster up in $(( $(date +%s) - t0 )) s ($S)"
  cat "$S/env"
}

