#!/usr/bin/env bash
# Cordon and drain a node before upgrade-node.sh upgrades it in place.
#
# Run as root on the first master (it has the cluster admin kubeconfig), fed on stdin
# (`sudo bash -s`) by a remote command. A node whose kubelet already runs TARGET_VERSION has
# nothing left to upgrade, so it is not drained: a re-run after a finished node, or a node that
# joined at the target version, costs nothing. Cordon and drain are idempotent themselves, so a
# re-run after a failed drain simply continues it.
#
# Environment:
#   NODE_NAME       required, the Node to drain
#   TARGET_VERSION  required, e.g. 1.34.1 (a leading "v" is accepted)
#   DRAIN_TIMEOUT   optional, seconds the drain may take, default 600
#   KUBECONFIG      optional (tests), default /etc/kubernetes/admin.conf
#
# Exit status: 0 drained (or nothing to do), 1 the Node cannot be read or the drain failed or
# timed out, 2 bad input.
set -euo pipefail

PROG=upgrade-cordon
# Status lines on stdout, where callers and tests have always read them.
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local target version rc=0
  target=${TARGET_VERSION:-}
  target=${target#v}
  [[ $target =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die 2 "TARGET_VERSION='${TARGET_VERSION:-}' is not a version like 1.34.1"
  [[ -n ${NODE_NAME:-} ]] || die 2 "NODE_NAME is required"
  DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
  [[ $DRAIN_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die 2 "DRAIN_TIMEOUT='$DRAIN_TIMEOUT' must be a number of seconds"
  KUBECONFIG=${KUBECONFIG:-/etc/kubernetes/admin.conf}
  local kubectl=(kubectl --kubeconfig "$KUBECONFIG")

  version=$(timeout 60 "${kubectl[@]}" get node "$NODE_NAME" \
    -o jsonpath='{.status.nodeInfo.kubeletVersion}') ||
    die 1 "cannot read Node $NODE_NAME (see above): is it joined and is the API server up?"
  if [[ ${version#v} == "$target" ]]; then
    log "$NODE_NAME already runs $version: nothing to drain"
    return 0
  fi
  log "$NODE_NAME runs $version: cordon and drain before upgrading to $target"
  timeout 60 "${kubectl[@]}" cordon "$NODE_NAME" || die 1 "cordon $NODE_NAME failed (see above)"
  # kubectl's own --timeout ends the drain cleanly; timeout(1) is the backstop.
  timeout --kill-after=10 "$((DRAIN_TIMEOUT + 30))" "${kubectl[@]}" drain "$NODE_NAME" \
    --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s" || rc=$?
  if ((rc != 0)); then
    die 1 "drain of $NODE_NAME did not finish within ${DRAIN_TIMEOUT}s (exit $rc). Usually a PodDisruptionBudget that allows no eviction or a pod without a controller: see 'kubectl get pods -A --field-selector spec.nodeName=$NODE_NAME', fix it, then re-run 'pulumi up'. The node stays cordoned."
  fi
  log "$NODE_NAME drained"
}

main "$@" </dev/null
