#!/usr/bin/env bash
# Upgrade one worker in place, from the worker itself: cordon and drain it, upgrade its
# packages and kubelet, wait until it is Ready at the new version, uncordon it.
#
# One command per worker keeps the rolling order (workers of a pool in lanes of
# upgrade.maxUnavailable) a single link per worker in Pulumi's graph. The cluster-side steps
# use a short-lived token of the openstack-k8s-node-upgrader ServiceAccount (made on the first
# master by master-upgrade-credential.sh), whose RBAC allows what a drain needs and no more.
# The three steps are the tested scripts upgrade-cordon.sh, upgrade-node.sh and
# upgrade-uncordon.sh, run in that order from the node's step kit (cloud_init.steps), which
# the node's -ready command installs.
#
# Env:
#   NODE_NAME, TARGET_VERSION          this Node and the version to reach
#   KUBE_API                           https://<API endpoint>:6443
#   KUBE_TOKEN                         the node-upgrader token (secret)
#   KUBE_CA                            default /etc/kubernetes/pki/ca.crt (what kubeadm join writes)
#   STEP_KIT_DIR                       the step kit, default /usr/local/lib/openstack-k8s/steps
#   anything the steps read (DRAIN_TIMEOUT, PACKAGE_MIRROR, UPGRADE_TIMEOUT, READY_TIMEOUT)
# Exit: 0 upgraded (or already at TARGET_VERSION), else the failing step's status; a node
# whose upgrade failed stays cordoned: fix the cause and re-run `pulumi up`.
set -euo pipefail

PROG=upgrade-worker
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local name
  for name in NODE_NAME TARGET_VERSION KUBE_API KUBE_TOKEN; do
    [[ -n ${!name:-} ]] || {
      echo "upgrade-worker: $name is required" >&2
      exit 2
    }
  done
  local ca=${KUBE_CA:-/etc/kubernetes/pki/ca.crt}
  [[ -r $ca ]] || {
    echo "upgrade-worker: cannot read the cluster CA at $ca: has this node joined?" >&2
    exit 2
  }
  local kit=${STEP_KIT_DIR:-/usr/local/lib/openstack-k8s/steps} step
  for step in cordon node uncordon; do
    [[ -r $kit/upgrade-$step.sh ]] ||
      die 1 "$kit/upgrade-$step.sh is missing: the node's -ready command installs the step kit"
  done

  umask 077
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # The token stays in a 0600 file for the length of this run, never on a command line.
  cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: ${KUBE_API}
    certificate-authority: ${ca}
users:
- name: node-upgrader
  user:
    token: ${KUBE_TOKEN}
contexts:
- name: node-upgrader
  context:
    cluster: cluster
    user: node-upgrader
current-context: node-upgrader
KUBECONFIG
  unset KUBE_TOKEN

  echo "upgrade-worker: $NODE_NAME -> $TARGET_VERSION: cordon and drain"
  KUBECONFIG="$work/kubeconfig" bash "$kit/upgrade-cordon.sh"
  echo "upgrade-worker: $NODE_NAME: packages, kubeadm upgrade node, kubelet"
  # The node step reads its own Node with the kubelet's credentials, as any node may.
  env -u KUBECONFIG ROLE=worker bash "$kit/upgrade-node.sh"
  echo "upgrade-worker: $NODE_NAME: wait for Ready at $TARGET_VERSION, then uncordon"
  KUBECONFIG="$work/kubeconfig" bash "$kit/upgrade-uncordon.sh"
}

main "$@" </dev/null
