#!/usr/bin/env bash
# node-ready.sh: wait, bounded, for cloud-init to finish on this node (every node), and when
# it did not, say what failed and show the tail of cloud-init's output log.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   READY_TIMEOUT          seconds to wait for cloud-init (default 900).
#   CLOUD_INIT_OUTPUT_LOG  default /var/log/cloud-init-output.log.
#   LOG_TAIL_LINES         lines of that log shown on failure (default 40).
# `cloud-init status --wait` exits 0 when done, 1 on error and, from cloud-init 23.4 on, 2 when
# it finished with recoverable errors (deprecated keys, a module warning): the node is usable,
# so 2 passes with the details on stderr.
# Exit status: 0 ready, 1 cloud-init failed or did not finish in time (stderr says which), 2 bad input.
set -euo pipefail

PROG=node-ready
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local timeout=${READY_TIMEOUT:-900} log=${CLOUD_INIT_OUTPUT_LOG:-/var/log/cloud-init-output.log}
  local lines=${LOG_TAIL_LINES:-40}
  [[ $timeout =~ ^[0-9]+(\.[0-9]+)?$ ]] || die 2 "READY_TIMEOUT must be a number of seconds, got '$timeout'"
  [[ $lines =~ ^[0-9]+$ ]] || die 2 "LOG_TAIL_LINES must be a whole number, got '$lines'"

  local rc=0 what
  timeout "$timeout" cloud-init status --wait >/dev/null 2>&1 || rc=$?
  case $rc in
    0)
      echo "node-ready: $(hostname): cloud-init finished"
      return 0
      ;;
    2)
      echo "node-ready: $(hostname): cloud-init finished with recoverable errors:" >&2
      timeout 10 cloud-init status --long >&2 2>&1 || true
      return 0
      ;;
    124) what="cloud-init did not finish within READY_TIMEOUT=${timeout}s" ;;
    126 | 127) what="cloud-init could not be run (exit $rc): is this a cloud-init image?" ;;
    *) what="cloud-init failed (status exit $rc)" ;;
  esac
  {
    echo "node-ready: $(hostname): $what."
    echo "  cloud-init status --long:"
    timeout 10 cloud-init status --long 2>&1 | sed 's/^/    /' || true
    if [[ -r $log ]]; then
      echo "  last $lines lines of $log:"
      tail -n "$lines" "$log" | sed 's/^/    /'
    else
      echo "  $log is missing or unreadable."
    fi
  } >&2
  exit 1
}

main "$@" </dev/null
