#!/usr/bin/env bash
# node-ready.sh: wait, bounded, for cloud-init to finish on this node (every node), and when
# it did not, say what failed and show the tail of cloud-init's output log.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   READY_TIMEOUT          seconds to wait for cloud-init (default 900).
#   CLOUD_INIT_OUTPUT_LOG  default /var/log/cloud-init-output.log.
#   LOG_TAIL_LINES         lines of that log shown on failure (default 40).
#   STEP_KIT_TAR_B64       optional: the step kit (cloud_init.steps.step_kit_tar_b64), a
#                          base64 gzipped tar of shipped scripts, installed once cloud-init
#                          is done; day-2 commands run these copies (cloud_init.steps.loader).
#   STEP_KIT_DIR           where the kit goes (default /usr/local/lib/openstack-k8s/steps).
# `cloud-init status --wait` exits 0 when done, 1 on error and, from cloud-init 23.4 on, 2 when
# it finished with recoverable errors (deprecated keys, a module warning): the node is usable,
# so 2 passes with the details on stderr.
# The kit is swapped in whole: STEP_KIT_DIR is a symlink to a directory next to it, replaced
# by a rename, so a step starting meanwhile runs either the old kit or the new one.
# Exit status: 0 ready, 1 cloud-init failed or did not finish in time, or the kit could not be
# installed (stderr says which), 2 bad input.
set -euo pipefail

PROG=node-ready
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

# Unpack the kit beside STEP_KIT_DIR (same filesystem), then rename a symlink to it over
# STEP_KIT_DIR: a rename is atomic. The previous kit stays until the next install: a step
# that resolved STEP_KIT_DIR just before the rename still finds every file of it. Older
# ones go.
install_kit() {
  local dir=$1 b64=$2 parent name new link entry previous=
  parent=${dir%/*}
  name=${dir##*/}
  mkdir -p "$parent"
  new=$(mktemp -d "$parent/.$name.XXXXXX")
  if ! printf '%s' "$b64" | base64 -d 2>/dev/null | tar -xz -C "$new" --no-same-owner 2>/dev/null; then
    rm -rf "$new"
    die 1 "STEP_KIT_TAR_B64 is not a base64 gzipped tar: the step kit was not installed"
  fi
  # Flat, files only, at least one: what cloud_init.steps.step_kit_tar_b64 makes.
  if [[ -z $(find "$new" -mindepth 1 -type f -print -quit) ]] ||
    [[ -n $(find "$new" -mindepth 1 ! -type f -print -quit) ]]; then
    rm -rf "$new"
    die 1 "STEP_KIT_TAR_B64 must hold script files only, at least one: the step kit was not installed"
  fi
  chown -R root:root "$new"
  chmod 0755 "$new" "$new"/*
  if [[ -L $dir ]]; then
    previous=$parent/$(readlink "$dir")
  elif [[ -e $dir ]]; then
    # A directory not made here (a copy made by hand): moved aside, the one moment without a kit.
    previous=$parent/.$name.replaced
    rm -rf "$previous"
    mv -T "$dir" "$previous"
  fi
  link=$(mktemp -u "$parent/.$name.link.XXXXXX")
  ln -s "${new##*/}" "$link"
  mv -T "$link" "$dir"
  # Kits before the previous one, and whatever an interrupted earlier run left behind.
  for entry in "$parent/.$name".*; do
    if [[ $entry != "$new" && $entry != "$previous" ]] && [[ -e $entry || -L $entry ]]; then
      rm -rf "$entry"
    fi
  done
  echo "node-ready: $(hostname): step kit installed in $dir ($(find "$new" -type f | wc -l) scripts)"
}

main() {
  local timeout=${READY_TIMEOUT:-900} log=${CLOUD_INIT_OUTPUT_LOG:-/var/log/cloud-init-output.log}
  local lines=${LOG_TAIL_LINES:-40} kit_dir=${STEP_KIT_DIR:-/usr/local/lib/openstack-k8s/steps}
  # Kept in this shell only: a large kit exported to every child would hit the kernel's
  # 128 KiB bound on one environment string.
  local kit=${STEP_KIT_TAR_B64:-}
  export -n STEP_KIT_TAR_B64
  [[ $timeout =~ ^[0-9]+(\.[0-9]+)?$ ]] || die 2 "READY_TIMEOUT must be a number of seconds, got '$timeout'"
  [[ $lines =~ ^[0-9]+$ ]] || die 2 "LOG_TAIL_LINES must be a whole number, got '$lines'"
  [[ $kit_dir =~ ^(/[A-Za-z0-9._-]+)+$ ]] || die 2 "STEP_KIT_DIR must be an absolute path, got '$kit_dir'"

  local rc=0 what
  timeout "$timeout" cloud-init status --wait >/dev/null 2>&1 || rc=$?
  case $rc in
    0)
      echo "node-ready: $(hostname): cloud-init finished"
      [[ -z $kit ]] || install_kit "$kit_dir" "$kit"
      return 0
      ;;
    2)
      echo "node-ready: $(hostname): cloud-init finished with recoverable errors:" >&2
      timeout 10 cloud-init status --long >&2 2>&1 || true
      [[ -z $kit ]] || install_kit "$kit_dir" "$kit"
      return 0
      ;;
    124) what="cloud-init did not finish within READY_TIMEOUT=${timeout}s" ;;
    126 | 127) what="cloud-init could not be run (exit $rc): is this a cloud-init image?" ;;
    *) what="cloud-init failed (status exit $rc)" ;;
  esac
  {
    echo "node-ready: $(hostname): $what."
    echo "  cloud-init status --long:"
    timeout 10 cloud-init status --long 2>&1 | sed 's/^/    /' || true
    if [[ -r $log ]]; then
      echo "  last $lines lines of $log:"
      tail -n "$lines" "$log" | sed 's/^/    /'
    else
      echo "  $log is missing or unreadable."
    fi
  } >&2
  exit 1
}

main "$@" </dev/null
