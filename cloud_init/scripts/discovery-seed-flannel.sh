#!/usr/bin/env bash
# discovery-seed-flannel.sh: write flannel's network config into the discovery etcd, once.
#
# Runs on every discovery member from cloud-init's runcmd, right after etcd.service was
# started without blocking: it waits (bounded) until the local etcd answers with quorum,
# then creates the key only if it is absent, in one transaction, so that when all members
# run it at once exactly one write happens. cloud-init's final stage (and so
# `cloud-init status --wait`) ends only when this script has.
#
# Installed on the node as /usr/local/sbin/discovery-seed-flannel.sh; safe to re-run by hand.
#
# Environment:
#   POD_CIDR            required: flannel's "Network", an IPv4 CIDR (e.g. 10.244.0.0/16)
#   SUBNET_LEN          per-node subnet prefix length             (default 24)
#   VXLAN_VNI           VXLAN network identifier                  (default 1)
#   VXLAN_PORT          VXLAN UDP port                            (default 8472)
#   SEED_TIMEOUT        seconds to wait for etcd, in total        (default 600)
#   ETCD_ENDPOINTS      comma-separated client URLs               (default https://127.0.0.1:2379)
#   ETCD_CA_FILE        CA bundle the server cert is checked with (default /etc/etcd/pki/ca.crt)
#   ETCD_CERT_FILE      client certificate                        (default /etc/etcd/pki/server.crt)
#   ETCD_KEY_FILE       client key                                (default /etc/etcd/pki/server.key)
#   FLANNEL_CONFIG_KEY  key flannel reads          (default /coreos.com/network/config)
#   ETCDCTL             etcdctl executable                        (default etcdctl, from PATH)
#
# Exit status:
#   0  written now, or the same config was already there (nothing written)
#   1  etcd did not answer before SEED_TIMEOUT
#   2  invalid input
#   3  a different config is already there: refused, never overwritten
set -euo pipefail

PROG=discovery-seed-flannel
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {

  POD_CIDR=${POD_CIDR:-}
  SUBNET_LEN=${SUBNET_LEN:-24}
  VXLAN_VNI=${VXLAN_VNI:-1}
  VXLAN_PORT=${VXLAN_PORT:-8472}
  SEED_TIMEOUT=${SEED_TIMEOUT:-600}
  ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-https://127.0.0.1:2379}
  ETCD_CA_FILE=${ETCD_CA_FILE:-/etc/etcd/pki/ca.crt}
  ETCD_CERT_FILE=${ETCD_CERT_FILE:-/etc/etcd/pki/server.crt}
  ETCD_KEY_FILE=${ETCD_KEY_FILE:-/etc/etcd/pki/server.key}
  FLANNEL_CONFIG_KEY=${FLANNEL_CONFIG_KEY:-/coreos.com/network/config}
  ETCDCTL=${ETCDCTL:-etcdctl}
  # Ubuntu 22.04's etcdctl (3.3) still defaults to the v2 API.
  export ETCDCTL_API=3

  [[ $POD_CIDR =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] ||
    die 2 "POD_CIDR must be an IPv4 CIDR such as 10.244.0.0/16, got '${POD_CIDR}'"
  for name in SUBNET_LEN VXLAN_VNI VXLAN_PORT SEED_TIMEOUT; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die 2 "${name} must be a non-negative integer, got '${!name}'"
  done
  for name in ETCD_CA_FILE ETCD_CERT_FILE ETCD_KEY_FILE; do
    [[ -r ${!name} ]] || die 2 "${name}=${!name} is not a readable file"
  done

  # The exact bytes written; flannel parses it as JSON.
  config=$(printf '{"Network": "%s", "SubnetLen": %d, "Backend": {"Type": "vxlan", "VNI": %d, "Port": %d}}' \
    "$POD_CIDR" "$SUBNET_LEN" "$VXLAN_VNI" "$VXLAN_PORT")

  deadline=$(deadline_in "$(seconds_env SEED_TIMEOUT 600)")

  # One etcdctl call, killed when the overall deadline passes so that the script as a whole
  # never outlives SEED_TIMEOUT by more than a second.
  etcdctl_() {
    local left
    left=$(ms_left "$deadline")
    ((left > 1000)) || left=1000
    timeout --kill-after=1 "$(ms_to_s "$left")" "$ETCDCTL" \
      --endpoints="$ETCD_ENDPOINTS" --cacert="$ETCD_CA_FILE" \
      --cert="$ETCD_CERT_FILE" --key="$ETCD_KEY_FILE" \
      --dial-timeout=3s --command-timeout=10s "$@"
  }

  # Creates the key when absent (compare create revision == 0); prints SUCCESS or FAILURE
  # first. etcdctl's txn parser takes a double-quoted Go string, hence the escaped quotes.
  create_if_absent() {
    printf 'create("%s") = "0"\n\nput %s "%s"\n\n\n' \
      "$FLANNEL_CONFIG_KEY" "$FLANNEL_CONFIG_KEY" "${config//\"/\\\"}" | etcdctl_ txn
  }

  same_json() {
    command -v python3 >/dev/null 2>&1 || return 1
    python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' \
      "$1" "$2" 2>/dev/null
  }

  last_error="no attempt made"
  while :; do
    if out=$(etcdctl_ endpoint health 2>&1) && out=$(create_if_absent 2>&1); then
      case $out in
        SUCCESS*)
          echo "${PROG}: wrote ${FLANNEL_CONFIG_KEY} = ${config}"
          exit 0
          ;;
        FAILURE*)
          # The key exists and is never deleted, so reading it back cannot race.
          if existing=$(etcdctl_ get --print-value-only "$FLANNEL_CONFIG_KEY" 2>&1); then
            if [[ $existing == "$config" ]] || same_json "$existing" "$config"; then
              echo "${PROG}: ${FLANNEL_CONFIG_KEY} already holds this config, nothing written"
              exit 0
            fi
            die 3 "${FLANNEL_CONFIG_KEY} already holds a different config: ${existing}" \
              "(wanted: ${config}). Refusing to repoint a live pod network; if it is" \
              "really meant, change it by hand with etcdctl put and restart flanneld" \
              "on every node."
          fi
          ;;
      esac
    fi
    last_error=${out:-${existing:-}}
    if passed "$deadline"; then
      die 1 "etcd at ${ETCD_ENDPOINTS} did not become healthy within ${SEED_TIMEOUT}s," \
        "flannel's config was not written. Last error: ${last_error}." \
        "Check 'systemctl status etcd' and 'journalctl -u etcd' (a new cluster needs a" \
        "quorum of its members up), then re-run $0."
    fi
    left=$(ms_left "$deadline")
    sleep "$(ms_to_s $((left < 2000 ? left : 2000)))"
  done
}

main "$@" </dev/null
