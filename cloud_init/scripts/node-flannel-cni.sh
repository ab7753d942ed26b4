#!/usr/bin/env bash
# flanneld's ExecStartPost: runs once flanneld has its subnet lease (/run/flannel/subnet.env).
# Checks that the pod MTU flannel chose is not above the network MTU - VXLAN_OVERHEAD, and,
# when the flannel CNI plugin is not installed (FLANNEL_CNI_MODE=bridge), writes the conflist
# the plugin would have generated: the bridge plugin with this node's subnet, hairpin mode,
# and portmap.
#
# Inputs (environment, from /etc/openstack-k8s/node.env):
#   NETWORK_MTU      the tenant network's MTU (required)
#   VXLAN_OVERHEAD   bytes VXLAN adds to a packet (default 50; cloud_init.constants)
#   FLANNEL_CNI_MODE "plugin" (conflist shipped by cloud-init) or "bridge" (written here)
#   SUBNET_ENV       flanneld's subnet file (default /run/flannel/subnet.env)
#   CNI_CONF_DIR     default /etc/cni/net.d
#   SUBNET_WAIT      seconds to wait for the subnet file (default 60)
# Exit status: 0 ok; 1 subnet file missing or MTU too large (flanneld is then restarted by systemd).
set -euo pipefail

PROG=node-flannel-cni
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  SUBNET_ENV=${SUBNET_ENV:-/run/flannel/subnet.env}
  CNI_CONF_DIR=${CNI_CONF_DIR:-/etc/cni/net.d}
  FLANNEL_CNI_MODE=${FLANNEL_CNI_MODE:-plugin}
  VXLAN_OVERHEAD=${VXLAN_OVERHEAD:-50}

  [[ ${NETWORK_MTU:-} =~ ^[0-9]+$ ]] || die 1 "NETWORK_MTU must be a number, got '${NETWORK_MTU:-}'"
  local deadline
  deadline=$(deadline_in "$(seconds_env SUBNET_WAIT 60)")
  until [[ -s $SUBNET_ENV ]]; do
    ! passed "$deadline" || die 1 "flanneld wrote no ${SUBNET_ENV} within ${SUBNET_WAIT:-60}s: see journalctl -u flanneld"
    sleep 1
  done
  # shellcheck source=/dev/null
  . "$SUBNET_ENV"
  : "${FLANNEL_NETWORK:?missing in $SUBNET_ENV}" "${FLANNEL_SUBNET:?missing in $SUBNET_ENV}" "${FLANNEL_MTU:?missing in $SUBNET_ENV}"

  want=$((NETWORK_MTU - VXLAN_OVERHEAD))
  if ((FLANNEL_MTU > want)); then
    die 1 "flannel chose pod MTU ${FLANNEL_MTU}, above network MTU ${NETWORK_MTU} - ${VXLAN_OVERHEAD} = ${want}: VXLAN packets would be dropped"
  fi

  if [[ $FLANNEL_CNI_MODE == bridge ]]; then
    mkdir -p "$CNI_CONF_DIR"
    FLANNEL_NETWORK=$FLANNEL_NETWORK FLANNEL_SUBNET=$FLANNEL_SUBNET FLANNEL_MTU=$FLANNEL_MTU \
      FLANNEL_IPMASQ=${FLANNEL_IPMASQ:-false} python3 - "$CNI_CONF_DIR/10-flannel.conflist" <<'PY'
import ipaddress, json, os, sys

# What the flannel CNI plugin hands to the bridge plugin: host-local IPAM on this node's lease
# (network address, not flannel's gateway address), a route to the whole pod network, no
# masquerading by the bridge when flanneld already masquerades (--ip-masq).
subnet = ipaddress.ip_interface(os.environ["FLANNEL_SUBNET"]).network
conf = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "mtu": int(os.environ["FLANNEL_MTU"]),
            "ipMasq": os.environ["FLANNEL_IPMASQ"] != "true",
            "isGateway": True,
            "isDefaultGateway": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(subnet)}]],
                "routes": [{"dst": os.environ["FLANNEL_NETWORK"]}],
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
path = sys.argv[1]
text = json.dumps(conf, indent=2) + "\n"
try:
    with open(path) as f:
        if f.read() == text:
            sys.exit(0)
except FileNotFoundError:
    pass
with open(path + ".tmp", "w") as f:
    f.write(text)
os.replace(path + ".tmp", path)
PY
  fi
}

main "$@" </dev/null
