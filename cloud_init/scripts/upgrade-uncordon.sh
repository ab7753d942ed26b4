#!/usr/bin/env bash
# Give an upgraded node back to the scheduler once it is Ready at TARGET_VERSION.
#
# Run as root on the first master (it has the cluster admin kubeconfig), fed on stdin
# (`sudo bash -s`) by a remote command, after upgrade-node.sh finished on NODE_NAME. It waits
# first and uncordons after, so a node whose kubelet did not come back at the target version
# stays cordoned (and this command fails) instead of receiving work. Uncordon is idempotent.
#
# Environment:
#   NODE_NAME       required, the Node to uncordon
#   TARGET_VERSION  required, e.g. 1.34.1 (a leading "v" is accepted)
#   READY_TIMEOUT   optional, seconds to wait for Ready at the target version, default 300
#   KUBECONFIG      optional (tests), default /etc/kubernetes/admin.conf
#   POLL_INTERVAL   optional (tests), seconds between checks, default 5
#
# Exit status: 0 Ready at target and uncordoned, 1 not Ready at target in time or uncordon
# failed, 2 bad input.
set -euo pipefail

PROG=upgrade-uncordon
# Status lines on stdout, where callers and tests have always read them.
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local target state="" deadline
  target=${TARGET_VERSION:-}
  target=${target#v}
  [[ $target =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die 2 "TARGET_VERSION='${TARGET_VERSION:-}' is not a version like 1.34.1"
  [[ -n ${NODE_NAME:-} ]] || die 2 "NODE_NAME is required"
  READY_TIMEOUT=${READY_TIMEOUT:-300}
  deadline=$(deadline_in "$(seconds_env READY_TIMEOUT 300)")
  KUBECONFIG=${KUBECONFIG:-/etc/kubernetes/admin.conf}
  POLL_INTERVAL=${POLL_INTERVAL:-5}
  local kubectl=(kubectl --kubeconfig "$KUBECONFIG")

  log "waiting up to ${READY_TIMEOUT}s for $NODE_NAME to be Ready at v$target"
  while :; do
    state=$(timeout 30 "${kubectl[@]}" get node "$NODE_NAME" -o \
      jsonpath='{.status.nodeInfo.kubeletVersion}{" "}{.status.conditions[?(@.type=="Ready")].status}' \
      2>/dev/null) || state="unreadable"
    [[ $state == "v$target True" ]] && break
    if passed "$deadline"; then
      die 1 "$NODE_NAME not Ready at v$target within ${READY_TIMEOUT}s (version and Ready: '$state'); it stays cordoned. Check 'kubectl describe node $NODE_NAME' and 'journalctl -u kubelet' on it, then re-run 'pulumi up'."
    fi
    sleep "$POLL_INTERVAL"
  done
  timeout 60 "${kubectl[@]}" uncordon "$NODE_NAME" || die 1 "uncordon $NODE_NAME failed (see above)"
  log "$NODE_NAME Ready at v$target and uncordoned"
}

main "$@" </dev/null
