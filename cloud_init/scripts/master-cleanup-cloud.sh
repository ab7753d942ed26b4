#!/usr/bin/env bash
# master-cleanup-cloud.sh: before the cloud controller manager and Cinder CSI go (`pulumi
# destroy`, or the add-ons switched off), delete what they made in the cloud on the
# cluster's behalf, from the first master: LoadBalancer Services (their Octavia load
# balancers and floating IPs sit on the cluster's subnet, and Neutron then refuses to delete
# the subnet, the router interface and the network) and PersistentVolumeClaims whose volumes
# the cluster would delete anyway (reclaimPolicy Delete). Waits, bounded, until the objects
# are gone: the CCM removes a Service's finalizer only once its load balancer is deleted,
# and a PersistentVolume of the CSI driver disappears only once its Cinder volume is.
#
# Run as root by a pulumi-command remote.Command (its `delete`): `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   CLEANUP_TIMEOUT  seconds for the whole cleanup (default 600).
#   API_TIMEOUT      seconds to wait for the API before concluding the cluster is already gone
#                    (default 30): then warn, name what may be left in the cloud, and exit 0.
#   CSI_DRIVER       the provisioner whose volumes are waited for (default cinder.csi.openstack.org).
#   RETRY_DELAY      seconds between checks (default 5).
#   KUBERNETES_DIR   default /etc/kubernetes (admin.conf is read from there).
# Exit status: 0 nothing of the cluster's is left in the cloud (or the API is gone), 1 some
# is still there at the deadline (stderr lists it; `pulumi destroy` again retries), 2 bad input.
set -euo pipefail

PROG=master-cleanup-cloud
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
say() { printf 'master-cleanup-cloud: %s\n' "$*"; }
warn() { printf 'master-cleanup-cloud: warning: %s\n' "$*" >&2; }

# Every API call is bounded on its own; callers bound their loops.
k() { timeout 30 kubectl --kubeconfig "$ADMIN" --request-timeout=20s "$@"; }

# "namespace/name" of every Service of type LoadBalancer.
load_balancer_services() {
  k get services --all-namespaces \
    -o 'jsonpath={range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
}

# Names of the PersistentVolumes the CSI driver will delete from the cloud.
deleting_volumes() {
  k get persistentvolumes \
    -o "jsonpath={range .items[?(@.spec.csi.driver==\"$CSI_DRIVER\")]}{.metadata.name} {.spec.persistentVolumeReclaimPolicy}{\"\\n\"}{end}" |
    awk '$2 == "Delete" { print $1 }'
}

api_up() {
  local until=$1
  while :; do
    k get --raw /readyz >/dev/null 2>&1 && return 0
    (($(now_ms) + DELAY_MS < until)) || return 1
    sleep "$(ms_to_s "$DELAY_MS")"
  done
}

main() {
  local deadline api_ms services volumes svc
  deadline=$(($(now_ms) + $(seconds_env CLEANUP_TIMEOUT 600)))
  api_ms=$(seconds_env API_TIMEOUT 30)
  DELAY_MS=$(seconds_env RETRY_DELAY 5)
  CSI_DRIVER=${CSI_DRIVER:-cinder.csi.openstack.org}
  ADMIN=${KUBERNETES_DIR:-/etc/kubernetes}/admin.conf

  if ! api_up $(($(now_ms) + api_ms)); then
    warn "the API does not answer: nothing can be cleaned up from here. Check the cloud for" \
      "load balancers named kube_service_* and volumes named pvc-* of this cluster."
    exit 0
  fi

  services=$(load_balancer_services) || die 1 "could not list Services"
  for svc in $services; do
    k delete service -n "${svc%%/*}" "${svc#*/}" --ignore-not-found --wait=false >/dev/null ||
      warn "could not delete Service $svc"
  done
  # Claims go first: a PersistentVolume of reclaimPolicy Delete follows its claim.
  k delete persistentvolumeclaims --all --all-namespaces --wait=false >/dev/null ||
    warn "could not delete every PersistentVolumeClaim"
  say "deleting $(wc -w <<<"$services") LoadBalancer Service(s) and every PersistentVolumeClaim"

  while :; do
    services=$(load_balancer_services 2>/dev/null) || services="(could not list Services)"
    volumes=$(deleting_volumes 2>/dev/null) || volumes="(could not list PersistentVolumes)"
    if [[ -z $services && -z $volumes ]]; then
      say "no LoadBalancer Service and no $CSI_DRIVER volume of reclaimPolicy Delete is left"
      return 0
    fi
    (($(now_ms) + DELAY_MS < deadline)) || break
    sleep "$(ms_to_s "$DELAY_MS")"
  done
  {
    echo "master-cleanup-cloud: still there after CLEANUP_TIMEOUT:"
    [[ -z $services ]] || {
      echo "  LoadBalancer Services (their Octavia load balancers):"
      indent <<<"$services"
    }
    [[ -z $volumes ]] || {
      echo "  PersistentVolumes (their Cinder volumes):"
      indent <<<"$volumes"
    }
    echo "  the cloud controller manager and Cinder CSI logs (kube-system) say why."
  } >&2
  exit 1
}

main "$@" </dev/null
