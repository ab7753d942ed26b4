#!/usr/bin/env bash
# Set up everything the tests need and run them all: `bash tools/test.sh [pytest args]`.
#
# Installs Debian packages (real etcd, cloud-init, haproxy, keepalived, qemu, debootstrap for
# the VM test; kubectl when missing), creates .venv with requirements-dev.txt, and runs
# pytest. Needs root or sudo for apt-get. Best run in a throwaway VM or container: it installs
# cloud-init and an etcd server (their services are kept from starting during the install).
# Builds shfmt (needs Go and the Go module proxy) into a cache outside the checkout.
#
# `bash tools/test.sh --under-load [pytest args]`: the offline tests with 8 workers beside
# stress-ng (4 CPU hogs), twice in a row, instead of the usual run: a test that depends on
# the machine's speed fails here (docs/steady-tests.md).
set -euo pipefail
cd "$(dirname "$0")/.."

under_load=false
if [[ ${1:-} == --under-load ]]; then
    under_load=true
    shift
fi

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

packages=(
    etcd-server etcd-client          # the discovery node's scripts run against a real etcd
    cloud-init                       # strict schema validation of every user-data
    haproxy keepalived               # the VIP configs are checked by the real daemons
    systemd                          # systemd-analyze: units and OnCalendar schedules
    curl gpg ca-certificates         # node scripts' download and key checks, run for real
    iproute2
    # the discovery node VM test: qemu, a debootstrapped Debian 12, a NoCloud seed, ssh
    qemu-system-x86 qemu-utils debootstrap debian-archive-keyring cloud-image-utils
    openssh-client e2fsprogs
)
command -v kubectl >/dev/null || packages+=(kubernetes-client)
"$under_load" && packages+=(stress-ng)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    # Keep freshly installed services (etcd, haproxy, keepalived) from starting on the host:
    # the tests start their own, on free ports, and stop them by PID.
    blocker=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        blocker=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$blocker" >/dev/null
        "${sudo[@]}" chmod +x "$blocker"
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    [[ -z "$blocker" ]] || "${sudo[@]}" rm -f "$blocker"
fi

# shfmt (a Go program) checks the node scripts' format: built once per version through the Go
# module proxy into a cache outside the checkout. Keep the version in step with
# tests/cloud_init/scripts/test_script_platform.py (SHFMT_VERSION).
SHFMT_VERSION=v3.12.0
shfmt_bin=${XDG_CACHE_HOME:-$HOME/.cache}/openstack-k8s/bin/shfmt-$SHFMT_VERSION
if [[ ! -x $shfmt_bin ]]; then
    build=$(mktemp -d)
    GOBIN=$build go install "mvdan.cc/sh/v3/cmd/shfmt@$SHFMT_VERSION"
    mkdir -p "$(dirname "$shfmt_bin")"
    mv "$build/shfmt" "$shfmt_bin"
    rm -rf "$build"
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

if "$under_load"; then
    stress-ng --cpu 4 --timeout 4h --quiet &
    stress=$!
    trap 'kill "$stress"' EXIT
    for run in 1 2; do
        echo "tools/test.sh --under-load: run $run of 2"
        .venv/bin/python -m pytest -n 8 -m "not vm" -p no:cacheprovider "$@"
    done
    exit 0
fi

# The offline tests, two at a time, then the VM boot test on its own (it wants both cores).
.venv/bin/python -m pytest -n 2 -m "not vm" "$@"
.venv/bin/python -m pytest -m vm "$@"
