#!/usr/bin/env bash
# The `build` half of scripts/kube.sh (sourced by it, not run alone): compiles the Kubernetes
# binaries from the Go module proxy, installs the Debian packages the node needs and makes the two
# image tarballs (pause, busybox) that containerd imports without a registry.
# Expects: KUBE_VERSION, cache, bin, images, log_build (from kube.sh).

# Debian packages the node runs: etcd (3.4, accepted by apiserver 1.34), containerd + runc, the CNI
# bridge plugins, and busybox-static for the test image.
kube_apt_packages() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || { echo "kube.sh: missing ${missing[*]} and no apt-get to install them" >&2; return 1; }
  echo "kube.sh: apt-get install ${missing[*]}" >&2
  # The containerd package starts the system's containerd; the cluster runs its own, so leave the
  # system's as the package left it but do not let the install fail on policy-rc.d.
  # Another apt run (CI installs dbus and faketime at the same time) holds the lock for a while.
  (apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}") >&2
}

# Each staging repository is a replace: k8s.io/kubernetes's own `./staging` replaces are ignored
# when it is a dependency, and the v0.0.0 requirements it declares would not resolve otherwise.
KUBE_STAGING="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
pod-security-admission sample-apiserver"
KUBE_CMDS="kubelet kube-apiserver kube-controller-manager kube-scheduler kubectl"

kube_build_binaries() {
  local mod="$cache/mod" staging_version="v0${KUBE_VERSION#v1}" c pkgs=() minor
  command -v go >/dev/null || { echo "kube.sh: Go is needed to build Kubernetes $KUBE_VERSION" >&2; return 1; }
  rm -rf "$mod" "$bin.tmp" && mkdir -p "$mod" "$bin.tmp"
  for c in $KUBE_CMDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  (
    cd "$mod"
    go mod init kube-build >/dev/null 2>&1
    for c in $KUBE_STAGING; do go mod edit -replace "k8s.io/$c=k8s.io/$c@$staging_version"; done
    local tools=(); for p in "${pkgs[@]}"; do tools+=("$p@$KUBE_VERSION"); done
    GOFLAGS=-mod=mod go get -tool "${tools[@]}" >&2
    # Without the version stamps the binaries call themselves v0.0.0 and the apiserver's
    # /version (which kubectl and the kubelet read) says so.
    local v=k8s.io/component-base/version
    CGO_ENABLED=0 go build -trimpath -o "$bin.tmp/" -ldflags "-s -w -X $v.gitVersion=$KUBE_VERSION \
      -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean \
      -X $v.buildDate=1970-01-01T00:00:00Z" "${pkgs[@]}" >&2
  )
}

# A pause container only has to sit still as PID 1 of the pod's sandbox and exit on SIGTERM/SIGINT;
# a static Go binary does that and needs no C toolchain.
kube_build_pause() {
  local dir="$cache/pause-src"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
GO
  (cd "$dir" && go mod init pause >/dev/null 2>&1 && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$dir/pause" .) >&2
}

# Writes a docker-archive tarball (manifest.json + config + one layer) that `ctr images import`
# reads; $1 = output tar, $2 = image ref, $3 = directory holding the root filesystem, $4 = JSON
# array for Cmd.
kube_image_tar() {
  local out="$1" ref="$2" root="$3" cmd="$4" work layer_sha cfg cfg_sha
  work="$(mktemp -d)"
  tar -C "$root" --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -cf "$work/layer.tar" .
  layer_sha="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
  mkdir "$work/$layer_sha" && mv "$work/layer.tar" "$work/$layer_sha/layer.tar"
  cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":$cmd,\"Env\":[\"PATH=/bin:/usr/bin\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_sha\"]}}"
  cfg_sha="$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)"
  printf '%s' "$cfg" >"$work/$cfg_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg_sha" "$ref" "$layer_sha" >"$work/manifest.json"
  tar -C "$work" --mtime=@0 --sort=name -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$work"
}

kube_build_images() {
  local root bb
  mkdir -p "$images"
  kube_build_pause
  root="$(mktemp -d)"
  install -D -m 0755 "$cache/pause-src/pause" "$root/pause"
  kube_image_tar "$images/pause.tar" "$KUBE_PAUSE_IMAGE" "$root" '["/pause"]'
  rm -rf "$root"
  # Debian's busybox-static puts its (static) binary at /bin/busybox.
  bb=/bin/busybox
  root="$(mktemp -d)"
  install -D -m 0755 "$bb" "$root/bin/busybox"
  local a
  for a in sh sleep cat ls echo env id ps true false wget nc; do ln -s busybox "$root/bin/$a"; done
  mkdir -p "$root/tmp" "$root/etc" && chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  kube_image_tar "$images/busybox.tar" "$KUBE_BUSYBOX_IMAGE" "$root" '["/bin/sh"]'
  rm -rf "$root"
}
