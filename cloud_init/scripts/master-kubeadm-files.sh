#!/usr/bin/env bash
# Install the files kubeadm reads on a master: the cluster PKI the program generated (CAs,
# service-account key) and, on the first master, the init configuration.
#
# They come with the remote command, not in user-data: user-data is readable from the
# metadata service by anything on the VM, and a CA key has no business there.
#
# Env:
#   KUBEADM_FILES_TAR_B64  base64 of a gzipped tar; its paths are relative to KUBERNETES_DIR
#   KUBERNETES_DIR         default /etc/kubernetes
# Idempotent: identical files are left alone. A file that exists with other content is
# refused (exit 1): swapping a live cluster's CA would lock every node out.
set -euo pipefail

PROG=master-kubeadm-files
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  KUBERNETES_DIR=${KUBERNETES_DIR:-/etc/kubernetes}
  : "${KUBEADM_FILES_TAR_B64:?KUBEADM_FILES_TAR_B64 is required}"

  umask 077
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT

  printf '%s' "$KUBEADM_FILES_TAR_B64" | base64 -d | tar -xz -C "$staging" --no-same-owner

  installed=0
  kept=0
  while IFS= read -r -d '' file; do
    rel=${file#"$staging"/}
    target="$KUBERNETES_DIR/$rel"
    if [[ -e "$target" ]]; then
      if cmp -s "$file" "$target"; then
        kept=$((kept + 1))
        continue
      fi
      echo "master-kubeadm-files: $target exists with different content; refusing to replace it." >&2
      echo "If this master belongs to another cluster, rebuild it; to rotate the PKI, follow the README." >&2
      exit 1
    fi
    mkdir -p "$(dirname "$target")"
    case "$rel" in
      *.key) mode=0600 ;;
      *) mode=0644 ;;
    esac
    install -m "$mode" "$file" "$target"
    installed=$((installed + 1))
  done < <(find "$staging" -type f -print0 | sort -z)

  if ((installed + kept == 0)); then
    echo "master-kubeadm-files: the archive held no files" >&2
    exit 1
  fi
  echo "master-kubeadm-files: $installed installed, $kept already in place under $KUBERNETES_DIR"
}

main "$@" </dev/null
