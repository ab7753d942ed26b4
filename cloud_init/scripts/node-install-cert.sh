#!/usr/bin/env bash
# node-install-cert.sh: put a renewed client or server certificate (and its key, and the CA)
# on a running node and restart what reads it. The program renews certificates before they
# expire, but user-data only runs at first boot: without this, a node keeps the old
# certificate until it expires (flanneld on every master and worker, etcd on the discovery
# members) and then stops talking to the discovery etcd.
#
# Run as root by a pulumi-command remote.Command whose update runs it when the certificate
# changes: `sudo bash -s`, stdin being `export KEY='value'` lines (a secret: the key is one of
# them) followed by this text. Inputs (environment):
#   CERT_PEM, KEY_PEM  required: the certificate and its private key (PEM).
#   CA_PEM             optional: the CA; the certificate must then verify against it.
#   CERT_PATH, KEY_PATH  required; CA_PATH required with CA_PEM. Written 0644 (key 0600).
#   KEY_OWNER          owner of the key, user:group (default root:root; etcd:etcd for etcd).
#   RESTART_UNITS      systemd units that read these files, restarted when a file changed, one
#                      after another (e.g. flanneld.service, or etcd.service).
#   RESTART_TIMEOUT    seconds each restart may take (default 120).
# Exit status: 0 installed (or already in place: nothing restarted), 1 a restart failed (the
# files are in place; a re-run restarts again), 2 refused: bad input, a key that is not the
# certificate's, a certificate that does not verify against CA_PEM or has expired (nothing
# was changed).
set -euo pipefail

PROG=node-install-cert
# Status lines on stdout: the command logs it (its stdin is the secret, not its output).
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

# put PATH MODE OWNER FILE: install FILE at PATH unless the same bytes, mode and owner are
# there; same directory, then rename, so a reader never sees half a file. Prints "changed".
put() {
  local path=$1 mode=$2 owner=$3 src=$4 tmp
  if [[ -f $path ]] && cmp -s "$src" "$path" &&
    [[ $(stat -c '%a %U:%G' "$path") == "${mode#0} $owner" ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$path")"
  tmp=$(mktemp "$(dirname "$path")/.cert.XXXXXX")
  cat "$src" >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$path"
  echo changed
}

main() {
  umask 077
  local name
  for name in CERT_PEM KEY_PEM CERT_PATH KEY_PATH; do
    [[ -n ${!name:-} ]] || die 2 "$name is required"
  done
  for name in CERT_PATH KEY_PATH CA_PATH; do
    [[ -z ${!name:-} || ${!name} == /* ]] || die 2 "$name must be an absolute path, got '${!name}'"
  done
  [[ -z ${CA_PEM:-} || -n ${CA_PATH:-} ]] || die 2 "CA_PATH is required with CA_PEM"
  local owner=${KEY_OWNER:-root:root} units=() timeout_ms unit
  [[ $owner =~ ^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$ ]] || die 2 "KEY_OWNER must be user:group, got '$owner'"
  read -r -a units <<<"${RESTART_UNITS:-}"
  timeout_ms=$(seconds_env RESTART_TIMEOUT 120)

  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  printf '%s\n' "$CERT_PEM" >"$WORK/cert"
  printf '%s\n' "$KEY_PEM" >"$WORK/key"
  # Checked before anything is written: a bad pair must not replace a working one.
  local cert_pub key_pub
  cert_pub=$(openssl x509 -noout -pubkey -in "$WORK/cert" 2>/dev/null) || die 2 "CERT_PEM is not a PEM certificate"
  key_pub=$(openssl pkey -pubout -in "$WORK/key" 2>/dev/null) || die 2 "KEY_PEM is not a PEM private key"
  [[ $cert_pub == "$key_pub" ]] || die 2 "KEY_PEM is not the key of CERT_PEM: nothing changed"
  openssl x509 -noout -checkend 0 -in "$WORK/cert" >/dev/null ||
    die 2 "CERT_PEM expired on $(openssl x509 -noout -enddate -in "$WORK/cert" | cut -d= -f2): nothing changed"
  if [[ -n ${CA_PEM:-} ]]; then
    printf '%s\n' "$CA_PEM" >"$WORK/ca"
    openssl verify -CAfile "$WORK/ca" "$WORK/cert" >/dev/null 2>&1 ||
      die 2 "CERT_PEM does not verify against CA_PEM: nothing changed"
  fi

  # The marker outlives a failed restart: the re-run restarts the units although the files
  # are already in place.
  local changed="" pending=$CERT_PATH.restart-pending
  [[ ! -e $pending ]] || changed=pending
  [[ -z ${CA_PEM:-} ]] || changed+=$(put "$CA_PATH" 0644 root:root "$WORK/ca")
  changed+=$(put "$KEY_PATH" 0600 "$owner" "$WORK/key")
  changed+=$(put "$CERT_PATH" 0644 root:root "$WORK/cert")
  if [[ -z $changed ]]; then
    log "certificate at $CERT_PATH already in place: nothing restarted"
    return 0
  fi
  : >"$pending"
  log "installed the certificate at $CERT_PATH (expires $(openssl x509 -noout -enddate -in "$WORK/cert" | cut -d= -f2))"
  for unit in "${units[@]}"; do
    timeout "$(ms_to_s "$timeout_ms")" systemctl restart "$unit" ||
      die 1 "restarting $unit failed or took over RESTART_TIMEOUT=${RESTART_TIMEOUT:-120}s;" \
        "the new certificate is in place: see 'journalctl -u $unit' on $(hostname), then re-run"
    log "restarted $unit"
  done
  rm -f "$pending"
}

main "$@" </dev/null
