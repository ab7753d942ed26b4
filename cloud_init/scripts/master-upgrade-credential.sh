#!/usr/bin/env bash
# Print a fresh, short-lived token for the openstack-k8s-node-upgrader ServiceAccount (and
# make sure it and its RBAC exist). Workers drain and uncordon themselves with it during a
# rolling upgrade (upgrade-worker.sh); it can do what `kubectl drain` needs and nothing else.
#
# Runs on the first master, with its admin kubeconfig. stdout is the token alone.
# Env:
#   TOKEN_DURATION     default 48h: it must outlive the whole rolling upgrade
#   CREDENTIAL_TIMEOUT default 300 s: how long to retry while the API does not answer
#   KUBECONFIG         default /etc/kubernetes/admin.conf
#   RETRY_DELAY        default 5
set -euo pipefail

PROG=master-upgrade-credential
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

readonly SA=openstack-k8s-node-upgrader
readonly NS=kube-system
MANIFEST=""

rbac() {
  cat <<EOF_RBAC
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${SA}
  namespace: ${NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ${SA}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, patch, update]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, delete]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
- apiGroups: [apps]
  resources: [daemonsets, replicasets, statefulsets]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ${SA}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ${SA}
subjects:
- kind: ServiceAccount
  name: ${SA}
  namespace: ${NS}
EOF_RBAC
}

main() {
  local duration=${TOKEN_DURATION:-48h} deadline
  deadline=$(deadline_in "$(seconds_env CREDENTIAL_TIMEOUT 300)")
  local kubectl=(kubectl --kubeconfig "${KUBECONFIG:-/etc/kubernetes/admin.conf}")
  local token=""
  # A file, not a pipe: a retried apply must read the whole manifest every time.
  MANIFEST=$(mktemp)
  trap 'rm -f "${MANIFEST:-}"' EXIT
  rbac >"$MANIFEST"
  while :; do
    if "${kubectl[@]}" apply -f "$MANIFEST" >&2 &&
      token=$("${kubectl[@]}" -n "$NS" create token "$SA" --duration="$duration"); then
      break
    fi
    if passed "$deadline"; then
      die 1 "the API did not give a token for $NS/$SA within ${CREDENTIAL_TIMEOUT:-300}s;" \
        "check 'kubectl get --raw /readyz' on this master"
    fi
    sleep "${RETRY_DELAY:-5}"
  done
  printf '%s\n' "$token"
}

main "$@" </dev/null
