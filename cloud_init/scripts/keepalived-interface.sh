#!/usr/bin/env bash
# Write the name of the interface that holds this node's address in INTERFACE_CIDR as a
# keepalived definition (`$IFACE=<name>`): keepalived cannot choose an interface by subnet and
# the name (ens3, eth0, ...) depends on the image and flavor, so it is found at boot.
#
# Installed on masters as /usr/local/sbin/keepalived-interface.sh, run by cloud-init runcmd.
#
# Environment:
#   INTERFACE_CIDR  the masters' subnet, e.g. 10.0.0.0/24 (required)
#   OUT             file to write (default /etc/keepalived/interface.conf)
#   WAIT_SECONDS    how long to wait for the address to appear (default 60)
# Exit: 0 written (or already up to date), 1 no interface found in time, 2 bad usage.
set -euo pipefail

PROG=keepalived-interface
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  : "${INTERFACE_CIDR:?INTERFACE_CIDR must name the masters subnet, e.g. 10.0.0.0/24}"
  OUT="${OUT:-/etc/keepalived/interface.conf}"
  local deadline
  deadline=$(deadline_in "$(seconds_env WAIT_SECONDS 60)")

  if ! [[ "$INTERFACE_CIDR" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]]; then
    die 2 "INTERFACE_CIDR=$INTERFACE_CIDR is not an IPv4 CIDR"
  fi

  iface=""
  while :; do
    # `ip -o addr show to PREFIX` lists only addresses inside PREFIX; field 2 is the interface.
    iface="$(ip -o -4 addr show to "$INTERFACE_CIDR" | awk 'NR == 1 { print $2 }')"
    [[ -n "$iface" ]] && break
    if passed "$deadline"; then
      die 1 "no interface has an address in $INTERFACE_CIDR after" \
        "${WAIT_SECONDS:-60}s; check the master's port is on that subnet (ip -4 addr)"
    fi
    sleep 1
  done

  line="\$IFACE=$iface"
  if [[ -f "$OUT" ]] && [[ "$(cat "$OUT")" == "$line" ]]; then
    exit 0
  fi
  mkdir -p "$(dirname "$OUT")"
  tmp="$(mktemp "$OUT.XXXXXX")"
  printf '%s\n' "$line" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$OUT"
  log "$OUT: $line"
}

main "$@" </dev/null
