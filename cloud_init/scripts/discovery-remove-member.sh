#!/usr/bin/env bash
# discovery-remove-member.sh: remove one member from the discovery etcd, by name, bounded, from
# a member that stays. Shrinking discovery (3 members to 1) deletes VMs; without this their
# members would stay in the member list, and the survivor would wait forever for a quorum of
# members that no longer exist.
#
# Run as root on a surviving discovery member by a pulumi-command remote.Command: `sudo bash
# -s`, stdin being `export KEY='value'` lines followed by this text. Remove members one at a
# time, before their VMs go: a member leaving a 2-member cluster needs both to agree.
# Inputs (environment):
#   MEMBER_NAME      required: the etcd member name of the leaving member (its node name).
#   MEMBER_ADDRESS   optional: also match the member by its peer URL https://ADDRESS:2380.
#   REMOVE_TIMEOUT   seconds for the whole removal, retries included (default 60).
#   RETRY_DELAY      seconds between tries (default 2).
#   ETCD_ENDPOINTS   default https://127.0.0.1:2379 (this member's etcd).
#   ETCD_CACERT, ETCD_CERT, ETCD_KEY  default /etc/etcd/pki/{ca,server}.{crt,key}.
# Exit status: 0 removed (or already gone), 1 etcd did not let it go in time (stderr has its
# answer), 2 bad input or the last member (refused: a cluster cannot remove itself).
set -euo pipefail

PROG=discovery-remove-member
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/etcd.sh
source "${BASH_SOURCE[0]%/*}/lib/etcd.sh" # inlined when shipped (cloud_init.script)

main() {
  local name=${MEMBER_NAME:-} peer="" timeout_ms delay_ms list
  [[ -n $name && $name != *[[:space:],=]* ]] || die 2 "MEMBER_NAME must be an etcd member name, got '$name'"
  [[ -z ${MEMBER_ADDRESS:-} ]] || peer="https://$MEMBER_ADDRESS:2380"
  timeout_ms=$(seconds_env REMOVE_TIMEOUT 60)
  delay_ms=$(seconds_env RETRY_DELAY 2)
  ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-https://127.0.0.1:2379}
  ETCD_CACERT=${ETCD_CACERT:-/etc/etcd/pki/ca.crt}
  ETCD_CERT=${ETCD_CERT:-/etc/etcd/pki/server.crt}
  ETCD_KEY=${ETCD_KEY:-/etc/etcd/pki/server.key}
  ETCD_ERROR=""

  # The last member cannot go: etcd would refuse, and the cluster's data would go with it.
  if list=$(etcd_ctl member list -w simple 2>/dev/null) && [[ $(grep -c . <<<"$list") == 1 ]] &&
    [[ -n $(etcd_member_id "$list" "$name" "$peer") ]]; then
    die 2 "$name is the only member of the discovery etcd at $ETCD_ENDPOINTS: refusing to remove it"
  fi
  if ! etcd_remove_member "$name" "$peer" $(($(now_ms) + timeout_ms)) "$delay_ms"; then
    die 1 "could not remove etcd member $name via $ETCD_ENDPOINTS within REMOVE_TIMEOUT=${REMOVE_TIMEOUT:-60}s:" \
      "${ETCD_ERROR}. Check the remaining members (etcdctl member list, endpoint health) and re-run"
  fi
}

main "$@" </dev/null
