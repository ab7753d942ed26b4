# etcd membership, for the scripts that take a member out: master-drain-node.sh (kubeadm's
# stacked etcd) and discovery-remove-member.sh (the discovery etcd).
# Not run on its own: sourced after lib/common.sh (die, log, now_ms, ms_to_s); the caller sets
# ETCD_ENDPOINTS, ETCD_CACERT, ETCD_CERT and ETCD_KEY. Inlined when a script is shipped.
# shellcheck shell=bash

# etcdctl with the caller's endpoint and TLS files, each call bounded on its own.
etcd_ctl() {
  ETCDCTL_API=3 timeout 20 etcdctl --endpoints="$ETCD_ENDPOINTS" --cacert="$ETCD_CACERT" \
    --cert="$ETCD_CERT" --key="$ETCD_KEY" --dial-timeout=5s --command-timeout=10s "$@"
}

# etcd_member_id LIST NAME [PEER_URL]: the id of the member named NAME, or whose peer URLs hold
# PEER_URL (a member that never started has no name yet), in `member list -w simple` output.
etcd_member_id() {
  awk -F', ' -v name="$2" -v peer="${3:-}" \
    '$3 == name || (peer != "" && index($4, peer)) { print $1 }' <<<"$1"
}

# etcd_remove_member NAME PEER_URL DEADLINE_MS DELAY_MS: remove the member, retrying until
# DEADLINE_MS (now_ms clock). 0: removed or already gone; 1: not by the deadline, with etcd's
# last answer in ETCD_ERROR.
etcd_remove_member() {
  local name=$1 peer=$2 deadline=$3 delay_ms=$4 list id out
  while :; do
    if list=$(etcd_ctl member list -w simple 2>&1); then
      id=$(etcd_member_id "$list" "$name" "$peer")
      if [[ -z $id ]]; then
        log "no etcd member named $name: already removed"
        return 0
      fi
      if out=$(etcd_ctl member remove "$id" 2>&1); then
        log "removed etcd member $name ($id)"
        return 0
      fi
      if [[ $out == *"member not found"* ]]; then
        log "etcd member $id already removed"
        return 0
      fi
      list=$out
    fi
    (($(now_ms) + delay_ms < deadline)) || break
    sleep "$(ms_to_s "$delay_ms")"
  done
  ETCD_ERROR=$list
  return 1
}
