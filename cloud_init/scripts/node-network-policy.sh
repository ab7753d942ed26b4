#!/usr/bin/env bash
# node-network-policy.sh: a node follows networkPolicy.enabled once it is running. Calico's
# DaemonSet installs its CNI conflist (sorting before the node's own 10-flannel.conflist) and
# the CNI plugin's kubeconfig on every node, and nothing removes them when Calico goes: new
# pods would then be set up by a plugin whose token and RBAC are gone, and fail to start. With
# network policy off this removes both, so new pods go through the node's flannel bridge
# conflist again; with it on there is nothing to do (the DaemonSet writes them).
#
# Run as root by a pulumi-command remote.Command (`sudo bash -s`, the environment exported
# ahead of this text) when networkPolicy.enabled changes. Inputs (environment):
#   NETWORK_POLICY  required: "true" or "false"
#   CNI_FILES       the files Calico's install-cni writes, space-separated names (required
#                   when NETWORK_POLICY is false)
#   CNI_CONF_DIR    default /etc/cni/net.d
# Exit status: 0 done (or nothing to do), 1 a file could not be removed, 2 bad input.
set -euo pipefail

PROG=node-network-policy
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local dir=${CNI_CONF_DIR:-/etc/cni/net.d} name removed=0
  case ${NETWORK_POLICY:-} in
    true)
      log "network policy is on: calico-node installs its CNI files itself"
      return 0
      ;;
    false) ;;
    *) die 2 "NETWORK_POLICY must be true or false, got '${NETWORK_POLICY:-}'" ;;
  esac
  [[ -n ${CNI_FILES:-} ]] || die 2 "CNI_FILES is not set"
  for name in $CNI_FILES; do
    [[ $name == */* || $name == .* ]] && die 2 "CNI_FILES names files in $dir, got '$name'"
    [[ -e $dir/$name ]] || continue
    rm -f -- "${dir:?}/$name" || die 1 "could not remove $dir/$name"
    log "removed $dir/$name"
    removed=$((removed + 1))
  done
  if ((removed)); then
    log "new pods go through the flannel bridge conflist; restart the pods Calico set up"
  else
    log "no Calico CNI files on this node"
  fi
}

main "$@" </dev/null
