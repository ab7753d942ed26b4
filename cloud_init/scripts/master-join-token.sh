#!/usr/bin/env bash
# master-join-token.sh: mint a fresh, short-lived kubeadm bootstrap token for one join (on the
# first master) and print ONLY the token on stdout: the caller captures it as a secret.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   TOKEN_TTL          token lifetime, a kubeadm duration (default 30m).
#   TOKEN_DESCRIPTION  optional, stored with the token (for example the joining node's name).
#   TOKEN_TIMEOUT      seconds to keep trying while the API does not answer yet (default 300).
#   RETRY_DELAY        seconds between tries (default 5).
#   KUBERNETES_DIR     default /etc/kubernetes (admin.conf is read from there).
# Exit status: 0 token printed, 1 no token by the deadline (stderr has kubeadm's last error),
# 2 bad input.
set -euo pipefail

TMP=""

PROG=master-join-token
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  umask 077
  local timeout_ms delay_ms ttl=${TOKEN_TTL:-30m}
  timeout_ms=$(seconds_env TOKEN_TIMEOUT 300)
  delay_ms=$(seconds_env RETRY_DELAY 5)
  local admin=${KUBERNETES_DIR:-/etc/kubernetes}/admin.conf
  local args=(token create --kubeconfig "$admin" --ttl "$ttl")
  [[ -n ${TOKEN_DESCRIPTION:-} ]] && args+=(--description "$TOKEN_DESCRIPTION")
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  trap 'exit 129' HUP INT TERM

  local deadline=$(($(now_ms) + timeout_ms)) tries=0 token rc
  while :; do
    tries=$((tries + 1))
    rc=0
    token=$(timeout 30 kubeadm "${args[@]}" 2>"$TMP/err") || rc=$?
    if ((rc == 0)) && [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
      printf '%s\n' "$token"
      return 0
    fi
    ((rc == 0)) && echo "kubeadm printed something that is not a bootstrap token" >"$TMP/err"
    (($(now_ms) + delay_ms < deadline)) || break
    sleep "$(ms_to_s "$delay_ms")"
  done
  {
    echo "master-join-token: no bootstrap token from $(hostname) within TOKEN_TIMEOUT=${TOKEN_TIMEOUT:-300}s ($tries tries)."
    echo "  kubeadm token create said:"
    sed 's/^/    /' "$TMP/err"
    echo "  check that the API answers there: kubectl --kubeconfig $admin get --raw /readyz"
  } >&2
  exit 1
}

main "$@" </dev/null
