#!/usr/bin/env bash
# A software TPM 2.0 (swtpm) for the TPM tests, provisioned the way a tpm_devid node is:
#
#   swtpm.sh install      installs Debian's swtpm, swtpm-tools and tpm2-tools if a tool is missing
#   swtpm.sh provision    builds (once, cached) a TPM state with an EK certificate and a DevID key and
#                         certificate; prints the directory that holds them (the "template")
#   swtpm.sh start DIR    starts swtpm on DIR/tpm.sock with a fresh copy of the template's TPM state;
#                         prints KEY=VALUE lines (SWTPM_SOCKET, SWTPM_TEMPLATE, ...). Idempotent.
#   swtpm.sh stop DIR     stops that swtpm and removes DIR. Idempotent.
#
# The template lives in $SWTPM_CACHE (default ~/.cache/spiffe-agent/swtpm), keyed by this script's
# own hash and swtpm's version, so a change to either rebuilds it and older ones are removed. Each
# start copies the state, so a test that locks the TPM out or sets a password leaves no trace.
# swtpm-localca is pointed at the template's own directory: /var/lib/swtpm-localca is not touched.
# Files in the template (read them, never write them):
#   state/                  the TPM state after provisioning
#   ek-ca.pem               the swtpm-localca root and intermediate that issued the EK certificate
#   devid_pub.bin           TPMT_PUBLIC of the DevID key (no size prefix: spire-agent's devid_pub_path)
#   devid_priv.bin          TPM2B_PRIVATE contents of the DevID key (devid_priv_path)
#   devid_password          the DevID key's password (no newline)
#   devid.pem, devid-ca.pem the DevID certificate and the test CA that issued it
set -euo pipefail

self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cache="${SWTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spiffe-agent/swtpm}"
DEVID_PASSWORD="devid-test-password"
# The SRK spire-agent recreates (EK profile template H-1) and an RSA-2048 RSASSA DevID key.
SRK_ATTRS='restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'
DEVID_ATTRS='sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth'

log() { echo "swtpm.sh: $*" >&2; }

install() {
  local missing=0 tool
  for tool in swtpm swtpm_setup swtpm_ioctl tpm2_createprimary tpm2_create tpm2_print; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" = 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { log "swtpm, swtpm-tools and tpm2-tools are missing and there is no apt-get to install them"; return 1; }
  [ "$(id -u)" = 0 ] || { log "installing swtpm, swtpm-tools and tpm2-tools needs root (apt-get)"; return 1; }
  log "installing swtpm swtpm-tools tpm2-tools"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swtpm swtpm-tools tpm2-tools >/dev/null
}

# True while pid $1 runs (a daemonized swtpm is reaped by init, so an exited one may linger as a zombie).
running() {
  [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Stops the swtpm whose pid file is $1, only if that pid still is an swtpm.
kill_swtpm() {
  local pidfile="$1" pid i
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = swtpm ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

# Starts swtpm on STATE_DIR serving SOCK; waits until it answers on the socket.
run_swtpm() {
  local state="$1" sock="$2" pidfile="$3" logfile="$4" i
  rm -f "$sock" "$sock.ctrl"
  swtpm socket --tpm2 --tpmstate "dir=$state" \
    --server "type=unixio,path=$sock" --ctrl "type=unixio,path=$sock.ctrl" \
    --flags not-need-init,startup-clear --daemon --pid "file=$pidfile" --log "file=$logfile,level=1"
  for i in $(seq 1 100); do
    [ -S "$sock" ] && [ -s "$pidfile" ] && return 0
    sleep 0.05
  done
  log "swtpm did not start; its log:"; cat "$logfile" >&2 || true
  return 1
}

provision() {
  install
  local key tpl work
  key="$( (sha256sum "$self" | cut -c1-12; swtpm --version 2>&1 | head -n1) | sha256sum | cut -c1-16)"
  tpl="$cache/template-$key"
  if [ -f "$tpl/ready" ]; then echo "$tpl"; return 0; fi
  mkdir -p "$cache"
  # One provisioning at a time: test files started together wait for the first.
  exec 9>"$cache/.lock"
  flock 9
  if [ -f "$tpl/ready" ]; then echo "$tpl"; return 0; fi
  work="$(mktemp -d "$cache/work.XXXXXX")"
  # shellcheck disable=SC2064
  trap "kill_swtpm '$work/swtpm.pid'; rm -rf '$work'" EXIT
  mkdir -p "$work/state" "$work/localca"
  cat >"$work/localca.conf" <<EOF
statedir = $work/localca
signingkey = $work/localca/signkey.pem
issuercert = $work/localca/issuercert.pem
certserial = $work/localca/certserial
EOF
  cat >"$work/setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $work/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOF
  log "creating a TPM state with an EK certificate"
  swtpm_setup --tpm2 --tpmstate "$work/state" --create-ek-cert --create-platform-cert --lock-nvram \
    --config "$work/setup.conf" --logfile "$work/setup.log" >/dev/null \
    || { cat "$work/setup.log" >&2; return 1; }
  cat "$work/localca/swtpm-localca-rootca-cert.pem" "$work/localca/issuercert.pem" >"$work/ek-ca.pem"

  log "provisioning the DevID key"
  run_swtpm "$work/state" "$work/prov.sock" "$work/swtpm.pid" "$work/swtpm.log"
  (
    export TPM2TOOLS_TCTI="swtpm:path=$work/prov.sock"
    cd "$work"
    tpm2_createprimary -Q -C o -g sha256 -G rsa2048:null:aes128cfb -a "$SRK_ATTRS" -c srk.ctx
    tpm2_create -Q -C srk.ctx -g sha256 -G rsa2048:rsassa-sha256:null -p "$DEVID_PASSWORD" -a "$DEVID_ATTRS" \
      -u devid.pub.tpm2b -r devid.priv.tpm2b
    tpm2_flushcontext -t
    # spire-agent reads both blobs without the 2-byte size prefix tpm2_create writes.
    tail -c +3 devid.pub.tpm2b >devid_pub.bin
    tail -c +3 devid.priv.tpm2b >devid_priv.bin
    tpm2_print -t TPM2B_PUBLIC -f pem devid.pub.tpm2b >devid-pubkey.pem
    rm -f srk.ctx
  )
  swtpm_ioctl --unix "$work/prov.sock.ctrl" -s >/dev/null 2>&1 || true
  kill_swtpm "$work/swtpm.pid"
  rm -f "$work/prov.sock" "$work/prov.sock.ctrl" "$work/swtpm.log"
  printf '%s' "$DEVID_PASSWORD" >"$work/devid_password"

  log "issuing the DevID certificate from a test CA"
  (
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout devid-ca.key -out devid-ca.pem -subj "/CN=spiffe-agent test DevID CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    printf 'keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' >devid.ext
    openssl x509 -new -force_pubkey devid-pubkey.pem -CA devid-ca.pem -CAkey devid-ca.key \
      -subj "/CN=spiffe-agent test DevID" -days 3650 -extfile devid.ext -out devid.pem 2>/dev/null
    rm -f devid.ext
  )
  touch "$work/ready"
  trap - EXIT
  # Older templates (another script version or swtpm version) are of no further use.
  find "$cache" -mindepth 1 -maxdepth 1 -name 'template-*' ! -name "template-$key" -exec rm -rf {} +
  mv "$work" "$tpl"
  echo "$tpl"
}

start() {
  local dir="${1:?usage: swtpm.sh start DIR}" tpl
  tpl="$(provision)"
  if [ -d "$dir" ] && [ ! -f "$dir/.swtpm-run" ] && [ -n "$(ls -A "$dir")" ]; then
    log "$dir is not empty and not an swtpm.sh directory; give a new or empty directory"; return 1
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/swtpm.pid" ] && [ "$(cat "/proc/$(cat "$dir/swtpm.pid")/comm" 2>/dev/null)" = swtpm ]; then
    : # already running: idempotent
  else
    # The marker lets stop remove DIR, and only a directory this script made.
    touch "$dir/.swtpm-run"
    rm -rf "$dir/state" && cp -a "$tpl/state" "$dir/state"
    run_swtpm "$dir/state" "$dir/tpm.sock" "$dir/swtpm.pid" "$dir/swtpm.log"
  fi
  echo "SWTPM_DIR=$dir"
  echo "SWTPM_SOCKET=$dir/tpm.sock"
  echo "SWTPM_TCTI=swtpm:path=$dir/tpm.sock"
  echo "SWTPM_PID=$(cat "$dir/swtpm.pid")"
  echo "SWTPM_TEMPLATE=$tpl"
}

stop() {
  local dir="${1:?usage: swtpm.sh stop DIR}"
  [ -d "$dir" ] || return 0
  kill_swtpm "$dir/swtpm.pid"
  if [ -f "$dir/.swtpm-run" ]; then rm -rf "$dir"; else log "not removing $dir: swtpm.sh did not create it"; fi
}

case "${1:-}" in
  install) install ;;
  provision) provision ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | provision | start DIR | stop DIR" >&2; exit 2 ;;
esac
