#!/usr/bin/env bash
# discovery-wait-sshd.sh: on the jump host (the discovery node), wait, bounded, until a private
# node's sshd answers with its SSH banner, so that the commands sent to that node through the
# jump host find an sshd to talk to. A VM is ACTIVE long before its sshd listens, and an SSH
# client retrying through a proxy keeps reusing a connection that already failed: waiting here,
# one hop closer, turns "handshake failed" into a plain wait with a clear end.
#
# Run as root by a pulumi-command remote.Command on the jump host: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   TARGET_HOST       required: the node's private address (or name).
#   TARGET_PORT       default 22.
#   SSH_WAIT_TIMEOUT  seconds to wait in all (default 300).
#   PROBE_TIMEOUT     seconds one try may take, connect and banner (default 5).
#   RETRY_DELAY       seconds between tries (default 2).
# Exit status: 0 the node's sshd answered (its banner on stdout), 1 it did not within
# SSH_WAIT_TIMEOUT (stderr says what the last try saw and what to check), 2 bad input.
set -euo pipefail

PROG=discovery-wait-sshd
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

# One try: connect, read the first line the server sends. Exit 3 when the connection is
# refused or unreachable, 4 when it closes without a line; `timeout` gives 124 on a hang.
# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
PROBE='exec 3<>"/dev/tcp/$1/$2" || exit 3; IFS= read -r line <&3 || exit 4; printf "%s\n" "${line%$'"'"'\r'"'"'}"'

main() {
  local host=${TARGET_HOST:-} port=${TARGET_PORT:-22} timeout_ms probe_ms delay_ms
  [[ $host =~ ^[A-Za-z0-9.:-]+$ ]] || die 2 "TARGET_HOST must be the node's address, got '$host'"
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die 2 "TARGET_PORT must be a TCP port, got '$port'"
  fi
  timeout_ms=$(seconds_env SSH_WAIT_TIMEOUT 300)
  probe_ms=$(seconds_env PROBE_TIMEOUT 5)
  delay_ms=$(seconds_env RETRY_DELAY 2)

  local start deadline tries=0 rc out last="" left
  start=$(now_ms)
  deadline=$((start + timeout_ms))
  while :; do
    tries=$((tries + 1))
    left=$((deadline - $(now_ms)))
    ((left < probe_ms)) || left=$probe_ms
    ((left > 0)) || left=1
    rc=0
    out=$(timeout --kill-after=1 "$(ms_to_s "$left")" bash -c "$PROBE" _ "$host" "$port" 2>/dev/null) || rc=$?
    if ((rc == 0)) && [[ $out == SSH-* ]]; then
      printf '%s\n' "$out"
      log "$host:$port answered after $(ms_to_s $(($(now_ms) - start)))s ($tries tries)"
      return 0
    fi
    case $rc in
      0) last="an answer that is not an SSH banner: '${out:0:80}'" ;;
      3) last="connection refused or no route" ;;
      4) last="the connection closed before any banner" ;;
      124 | 137)
        # A try cut short by the deadline says nothing new: keep what a whole try saw.
        ((left < probe_ms)) && [[ -n ${last:-} ]] || last="no banner within PROBE_TIMEOUT (connect or banner hung)"
        ;;
      *) last="exit $rc" ;;
    esac
    (($(now_ms) + delay_ms < deadline)) || break
    sleep "$(ms_to_s "$delay_ms")"
  done
  {
    echo "$PROG: sshd on $host:$port did not answer within SSH_WAIT_TIMEOUT=${SSH_WAIT_TIMEOUT:-300}s ($tries tries; last: $last)."
    echo "  what to check:"
    echo "  - the node's console log (openstack console log show <server>): did it boot, did cloud-init start?"
    echo "  - its security group: TCP $port must be open from the discovery node ($(hostname))."
  } >&2
  exit 1
}

main "$@" </dev/null
