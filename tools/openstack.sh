#!/usr/bin/env bash
# A local OpenStack control plane on 127.0.0.1 for the cloud tests: `bash tools/openstack.sh
# start|stop|status|env|install`. docs/local-openstack.md says what runs and how.
#
#   start    installs what is missing (Debian packages, the OpenStack venv), then starts
#            MariaDB, RabbitMQ, OVN and Open vSwitch, Keystone, Glance, Placement, Nova (fake
#            driver), Neutron (ML2/OVN), Cinder (fake backend) and Octavia (noop amphorae), and
#            seeds the external network, image and flavors the stacks use. Bounded: a service
#            that does not come up fails the run with the tail of its log.
#   stop     stops every process `start` started, by PID.
#   status   lists them, and whether each API answers.
#   env      prints `export` lines: eval "$(bash tools/openstack.sh env)".
#   install  only the installs (Debian packages and the venv).
#
# The venv lives outside the checkout, keyed by the pins (tools/openstack/requirements.txt and
# constraints.txt) and the Python version, and is reused when warm. Run state (data, logs,
# configs, PIDs) goes to $OSK8S_OPENSTACK_RUN (default /tmp/osk8s-openstack).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/openstack

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

packages=(mariadb-server rabbitmq-server ovn-central ovn-host openvswitch-switch)

install_packages() {
  local missing=() pkg blocker=""
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  echo "openstack.sh: apt-get install ${missing[*]}" >&2
  # Keep the packages' own services from starting: this script starts its own, by PID.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    blocker=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$blocker" >/dev/null
    "${sudo[@]}" chmod +x "$blocker"
  fi
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [[ -z $blocker ]] || "${sudo[@]}" rm -f "$blocker"
}

venv_dir() {
  local python_version key
  python_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  key=$(cat "$tools/requirements.txt" "$tools/constraints.txt" | sha256sum | cut -c1-12)
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/openstack-k8s/openstack/2026.2-py$python_version-$key"
}

install_venv() {
  local dir started
  dir=$(venv_dir)
  [[ -e $dir/complete ]] && return 0
  echo "openstack.sh: installing the OpenStack services into $dir (cold: minutes)" >&2
  started=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q --disable-pip-version-check -c "$tools/constraints.txt" pip setuptools wheel
  "$dir/venv/bin/pip" install -q --disable-pip-version-check -c "$tools/constraints.txt" -r "$tools/requirements.txt"
  touch "$dir/complete"
  echo "openstack.sh: venv installed in $((SECONDS - started)) s" >&2
}

controlplane() {
  local python=python3
  [[ -x $(venv_dir)/venv/bin/python ]] && python=$(venv_dir)/venv/bin/python
  OSK8S_OPENSTACK_VENV=$(venv_dir)/venv exec "$python" "$tools/controlplane.py" "$@"
}

case ${1:-} in
  install)
    install_packages
    install_venv
    ;;
  start)
    install_packages
    install_venv
    controlplane start
    ;;
  stop | status | env)
    controlplane "$1"
    ;;
  *)
    echo "usage: $0 start|stop|status|env|install" >&2
    exit 2
    ;;
esac
