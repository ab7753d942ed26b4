#!/usr/bin/env bash
# flanneld's ExecStart: finds, at every start, the interface that holds this node's address in
# the private network, makes sure its MTU is not above the network's (flannel's VXLAN MTU is the
# interface MTU - 50, so a too large interface MTU gives pods a too large MTU), then execs
# flanneld with --iface pinned to it and the remaining arguments.
#
# Inputs (environment, from /etc/openstack-k8s/node.env):
#   NETWORK_CIDR  the private subnet, e.g. 10.0.0.0/24 (required)
#   NETWORK_MTU   the tenant network's MTU, e.g. 1450 (required)
#   IFACE_WAIT    seconds to wait for the address to appear (default 120)
#   FLANNELD      the flanneld binary (default /usr/local/bin/flanneld)
# Arguments: passed to flanneld.
# Exit status: flanneld's; 1 no interface in NETWORK_CIDR within IFACE_WAIT; 2 bad input.
set -euo pipefail

PROG=node-flanneld
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local deadline
  deadline=$(deadline_in "$(seconds_env IFACE_WAIT 120)")
  FLANNELD=${FLANNELD:-/usr/local/bin/flanneld}

  ip_to_int() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
  }

  [[ ${NETWORK_CIDR:-} =~ ^([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)/([0-9]+)$ ]] ||
    die 2 "NETWORK_CIDR must be an IPv4 CIDR, got '${NETWORK_CIDR:-}'"
  net=$(ip_to_int "${BASH_REMATCH[1]}")
  prefix=${BASH_REMATCH[2]}
  mask=$(((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF))
  [[ ${NETWORK_MTU:-} =~ ^[0-9]+$ ]] || die 2 "NETWORK_MTU must be a number, got '${NETWORK_MTU:-}'"

  # Prints the interface holding an IPv4 address inside NETWORK_CIDR, if any.
  find_iface() {
    local _n dev _fam addr
    while read -r _n dev _fam addr _; do
      local a
      a=$(ip_to_int "${addr%/*}")
      if (((a & mask) == (net & mask))); then
        echo "$dev"
        return 0
      fi
    done < <(ip -o -4 addr show)
    return 1
  }

  until iface=$(find_iface); do
    ! passed "$deadline" ||
      die 1 "no interface has an address in ${NETWORK_CIDR} after ${IFACE_WAIT:-120}s; check the port on the private network (ip -4 addr)"
    sleep 2
  done

  mtu=$(cat "/sys/class/net/${iface}/mtu" 2>/dev/null || ip -o link show dev "$iface" | sed -E 's/.* mtu ([0-9]+) .*/\1/')
  if ((mtu > NETWORK_MTU)); then
    echo "node-flanneld: lowering ${iface} MTU from ${mtu} to the network's ${NETWORK_MTU}" >&2
    ip link set dev "$iface" mtu "$NETWORK_MTU"
  elif ((mtu < NETWORK_MTU)); then
    echo "node-flanneld: warning: ${iface} MTU ${mtu} is below the configured network MTU ${NETWORK_MTU}; pods get $((mtu - 50))" >&2
  fi

  exec "$FLANNELD" --iface="$iface" "$@"
}

main "$@" </dev/null
