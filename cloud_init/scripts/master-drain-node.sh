#!/usr/bin/env bash
# master-drain-node.sh: take a node out of the cluster before its VM is deleted, from a
# surviving master: cordon, drain (bounded), delete the Node object and, for a master, remove
# its etcd member. Never wedges: a host that is gone, a PodDisruptionBudget that blocks, or a
# cluster whose API is gone (the whole stack being destroyed) all end within the bounds.
#
# Run as root by a pulumi-command remote.Command (its `delete`): `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   NODE_NAME           required: the Node (and etcd member) name of the leaving node.
#   DRAIN_TIMEOUT       seconds for cordon + drain + Node deletion (default 300). Two thirds go
#                       to a polite drain (evictions honour PDBs); the rest to a forced one
#                       (--disable-eviction, --force) and then to deleting its pods outright.
#   REMOVE_ETCD_MEMBER  "true" for masters: remove its member from the stacked etcd.
#   NODE_IP             optional: also match the etcd member by peer URL https://NODE_IP:2380
#                       (a member that never started has no name yet).
#   API_TIMEOUT         seconds to wait for the API to answer before concluding the cluster is
#                       going away (default 30): then warn and exit 0.
#   ETCD_TIMEOUT        seconds for the etcd member removal (default 60).
#   RETRY_DELAY         seconds between retries (default 5).
#   KUBERNETES_DIR      default /etc/kubernetes (admin.conf, pki/etcd are read from there).
#   ETCD_ENDPOINTS      default https://127.0.0.1:2379 (this master's stacked etcd).
#   ETCD_CACERT, ETCD_CERT, ETCD_KEY  default KUBERNETES_DIR/pki/etcd/{ca,healthcheck-client}.*
# Exit status: 0 node out of the cluster (or already absent, or the cluster itself is gone),
# 1 the API or etcd answered but refused to let the node go (stderr says what), 2 bad input.
set -euo pipefail

PROG=master-drain-node
# Status lines on stdout, where callers and tests have always read them.
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/etcd.sh
source "${BASH_SOURCE[0]%/*}/lib/etcd.sh" # inlined when shipped (cloud_init.script)
warn() { printf 'master-drain-node: warning: %s\n' "$*" >&2; }
pause() { sleep "$(ms_to_s "$DELAY_MS")"; }

# Every API call is bounded on its own; callers bound their loops.
k() { timeout 30 kubectl --kubeconfig "$ADMIN" --request-timeout=20s "$@"; }

wait_api() {
  local until=$1
  while :; do
    k get --raw /readyz >/dev/null 2>&1 && return 0
    (($(now_ms) + DELAY_MS < until)) || return 1
    pause
  done
}

# Pods on a node whose kubelet is gone never confirm termination: delete their objects.
delete_pods_outright() {
  log "deleting the pods left on $NODE_NAME (--force --grace-period=0)"
  k delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
    --force --grace-period=0 --wait=false >/dev/null 2>&1 || warn "could not delete every pod on $NODE_NAME"
}

# drain BUDGET_MS EXTRA_FLAGS...: one `kubectl drain`, hard-bounded by BUDGET_MS.
drain() {
  local budget=$1
  shift
  ((budget >= 1000)) || return 1
  timeout "$(ms_to_s "$budget")" kubectl --kubeconfig "$ADMIN" drain "$NODE_NAME" \
    --ignore-daemonsets --delete-emptydir-data --timeout="${budget}ms" "$@"
}

take_node_out() {
  local deadline=$1 present ready
  if ! present=$(k get node "$NODE_NAME" --ignore-not-found -o name 2>&1); then
    warn "could not look up Node $NODE_NAME: $present"
    return 1
  fi
  if [[ -z $present ]]; then
    log "Node $NODE_NAME is already absent"
    return 0
  fi
  k cordon "$NODE_NAME" || warn "could not cordon $NODE_NAME"
  ready=$(k get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || ready=""
  if [[ $ready == True ]]; then
    local left reserve
    left=$(ms_left "$deadline")
    reserve=$((left / 3 < 60000 ? left / 3 : 60000))
    if drain $((left - reserve)); then
      log "drained $NODE_NAME"
    else
      warn "drain of $NODE_NAME did not finish (a PodDisruptionBudget, or pods that will not stop): forcing"
      drain $(($(ms_left "$deadline") - 2000)) --disable-eviction --force --grace-period=10 ||
        delete_pods_outright
    fi
  else
    log "Node $NODE_NAME is not Ready (${ready:-Unknown}): its host is gone, skipping eviction"
    delete_pods_outright
  fi
  while :; do
    if k delete node "$NODE_NAME" --ignore-not-found --wait=false; then
      log "deleted Node $NODE_NAME"
      return 0
    fi
    (($(now_ms) + DELAY_MS < deadline)) || break
    pause
  done
  return 2
}

main() {
  [[ -n ${NODE_NAME:-} ]] || die 2 "NODE_NAME is not set"
  local drain_ms api_ms etcd_ms
  drain_ms=$(seconds_env DRAIN_TIMEOUT 300)
  api_ms=$(seconds_env API_TIMEOUT 30)
  etcd_ms=$(seconds_env ETCD_TIMEOUT 60)
  DELAY_MS=$(seconds_env RETRY_DELAY 5)
  local k8s=${KUBERNETES_DIR:-/etc/kubernetes}
  ADMIN=$k8s/admin.conf
  ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-https://127.0.0.1:2379}
  ETCD_CACERT=${ETCD_CACERT:-$k8s/pki/etcd/ca.crt}
  ETCD_CERT=${ETCD_CERT:-$k8s/pki/etcd/healthcheck-client.crt}
  ETCD_KEY=${ETCD_KEY:-$k8s/pki/etcd/healthcheck-client.key}
  ETCD_ERROR=""
  local start api_up=true
  start=$(now_ms)

  if [[ ! -r $ADMIN ]] || ! wait_api $((start + api_ms)); then
    warn "the API does not answer from $(hostname) within API_TIMEOUT=${API_TIMEOUT:-30}s" \
      "(the cluster is being destroyed?): not draining $NODE_NAME"
    api_up=false
  else
    local rc=0
    take_node_out $(($(now_ms) + drain_ms)) || rc=$?
    if ((rc == 1)); then
      warn "the API stopped answering: leaving Node $NODE_NAME"
      api_up=false
    elif ((rc == 2)); then
      die 1 "could not delete Node $NODE_NAME within DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}s;" \
        "try: kubectl --kubeconfig $ADMIN delete node $NODE_NAME"
    fi
  fi

  if [[ ${REMOVE_ETCD_MEMBER:-false} == true ]]; then
    # With the API gone etcd is likely gone too: try briefly, never fail the destroy.
    local bound=$etcd_ms
    [[ $api_up == true ]] || bound=$((api_ms < etcd_ms ? api_ms : etcd_ms))
    local peer=""
    [[ -z ${NODE_IP:-} ]] || peer="https://$NODE_IP:2380"
    if ! etcd_remove_member "$NODE_NAME" "$peer" $(($(now_ms) + bound)) "$DELAY_MS"; then
      if [[ $api_up == true ]]; then
        die 1 "could not remove etcd member $NODE_NAME via $ETCD_ENDPOINTS: ${ETCD_ERROR}." \
          "The cluster keeps a dead member and tolerates one failure less; remove it by hand:" \
          "etcdctl member list / member remove <id> (certs in $(dirname "$ETCD_CERT"))"
      fi
      warn "etcd did not answer either: leaving its member list as it is"
    fi
  fi
  log "done with $NODE_NAME"
}

main "$@" </dev/null
