#!/usr/bin/env bash
# master-admin-kubeconfig.sh: print the cluster's admin kubeconfig (on the first master, after
# master-init.sh). stdout carries that file and nothing else: the caller captures it as a secret.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   KUBERNETES_DIR  default /etc/kubernetes.
# Exit status: 0 printed, 1 admin.conf missing or empty (stderr says so).
set -euo pipefail

PROG=master-admin-kubeconfig
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  local conf=${KUBERNETES_DIR:-/etc/kubernetes}/admin.conf
  if [[ ! -s $conf ]]; then
    printf 'master-admin-kubeconfig: %s is missing or empty: has kubeadm init (master-init.sh) run on %s?\n' \
      "$conf" "$(hostname)" >&2
    exit 1
  fi
  cat -- "$conf"
}

main "$@" </dev/null
