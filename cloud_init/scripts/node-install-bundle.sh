#!/usr/bin/env bash
# Install a bundle of files (and the packages and units they need) on a running node.
#
# Used for what a node gets after its first boot, on purpose and again whenever it changes:
# the etcd backup timer and its scripts, for instance. User-data only runs once, and changing
# it would replace the VM; this runs again (idempotently) when the bundle changes.
#
# Env:
#   BUNDLE_TAR_B64   base64 of a gzipped tar of absolute paths (relative to ROOT_DIR), modes kept
#   PACKAGES         space-separated Debian/Ubuntu packages to install when missing (optional)
#   ENABLE_UNITS     space-separated systemd units to enable and start (optional)
#   ROOT_DIR         default /
#   APT_TIMEOUT      seconds to wait for apt/dpkg locks and downloads, default 600
set -euo pipefail

PROG=node-install-bundle
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  ROOT_DIR=${ROOT_DIR:-/}
  APT_TIMEOUT=${APT_TIMEOUT:-600}
  PACKAGES=${PACKAGES:-}
  ENABLE_UNITS=${ENABLE_UNITS:-}
  : "${BUNDLE_TAR_B64:?BUNDLE_TAR_B64 is required}"

  if [[ -n "$PACKAGES" ]]; then
    read -r -a wanted <<<"$PACKAGES"
    missing=()
    for pkg in "${wanted[@]}"; do
      dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
      export DEBIAN_FRONTEND=noninteractive
      if ! timeout "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout="$APT_TIMEOUT" update -q ||
        ! timeout "$APT_TIMEOUT" apt-get -o DPkg::Lock::Timeout="$APT_TIMEOUT" install -y -q "${missing[@]}"; then
        echo "node-install-bundle: could not install ${missing[*]} within ${APT_TIMEOUT}s;" \
          "check the node's package mirror (apt-get update) and retry pulumi up" >&2
        exit 1
      fi
    fi
  fi

  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  printf '%s' "$BUNDLE_TAR_B64" | base64 -d | tar -xz -C "$staging" --no-same-owner

  changed=0
  while IFS= read -r -d '' file; do
    rel=${file#"$staging"/}
    target="${ROOT_DIR%/}/$rel"
    mode=$(stat -c '%a' "$file")
    if [[ -f "$target" ]] && cmp -s "$file" "$target" && [[ "$(stat -c '%a' "$target")" == "$mode" ]]; then
      continue
    fi
    mkdir -p "$(dirname "$target")"
    # Same directory, then rename: a reader never sees half a file.
    tmp=$(mktemp "$(dirname "$target")/.bundle.XXXXXX")
    install -m "$mode" "$file" "$tmp"
    mv -f "$tmp" "$target"
    changed=$((changed + 1))
  done < <(find "$staging" -type f -print0 | sort -z)

  if [[ -n "$ENABLE_UNITS" ]]; then
    read -r -a units <<<"$ENABLE_UNITS"
    systemctl daemon-reload
    systemctl enable "${units[@]}"
    if ((changed)); then
      systemctl restart "${units[@]}"
    else
      systemctl start "${units[@]}"
    fi
  fi
  echo "node-install-bundle: $changed file(s) changed"
}

main "$@" </dev/null
