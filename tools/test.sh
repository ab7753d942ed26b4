#!/usr/bin/env bash
# Set up everything the tests need and run every tier: `bash tools/test.sh [--tiers a,b] [pytest args]`.
#
# Installs Debian packages (real etcd, cloud-init, haproxy, keepalived, qemu, debootstrap for
# the VM test; kubectl when missing), creates .venv with requirements-dev.txt, and runs the
# tiers in TIERS order. Needs root or sudo for apt-get. Best run in a throwaway VM or
# container: it installs cloud-init and an etcd server (their services are kept from starting
# during the install). Builds shfmt (needs Go 1.23 or newer and the Go module proxy) into a
# cache outside the checkout.
#
# Every tier runs even when an earlier one failed (a failing offline test must not hide the VM
# test's result). The report at the end gives each step and tier its result and duration; the
# exit status is 1 when any of them failed. `--tiers offline` runs only the tiers named.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tiers, in the order they run. A tier is a name here and a function tier_<name> below;
# its exit status is its result. Anything else on the command line goes to every pytest.
TIERS=(offline vm engine cloud)
pytest_args=()
while (($#)); do
  case $1 in
    --tiers)
      IFS=, read -r -a TIERS <<<"${2:?--tiers needs a comma-separated list}"
      shift 2
      ;;
    *)
      pytest_args+=("$1")
      shift
      ;;
  esac
done

# The offline tests, two at a time; the VM boot test on its own (it wants both cores).
tier_offline() { .venv/bin/python -m pytest -n 2 -m "not vm and not engine and not cloud" "${pytest_args[@]}"; }
tier_vm() { .venv/bin/python -m pytest -m vm "${pytest_args[@]}"; }
# The real Pulumi CLI and plugins (tools/real-engine.sh, built beside the earlier tiers).
tier_engine() {
  wait_step engine-build || return
  .venv/bin/python -m pytest -n 2 -m "engine and not cloud" "${pytest_args[@]}"
}
# The real engine against the local OpenStack (tools/openstack.sh, installed beside the earlier
# tiers): started for this tier and stopped whatever the tests did. One cloud for the tier: its
# tests use stacks of their own names, one at a time.
tier_cloud() {
  local rc=0
  wait_step openstack-install || return
  [[ -z "${step_pid["engine-build"]:-}" ]] || wait_step engine-build || return
  bash tools/openstack.sh start || rc=$?
  if ((rc == 0)); then
    .venv/bin/python -m pytest -m cloud "${pytest_args[@]}" || rc=$?
  fi
  bash tools/openstack.sh stop || rc=$?
  return "$rc"
}

die() {
  echo "tools/test.sh: $*" >&2
  exit 1
}

for tier in "${TIERS[@]}"; do
  [[ $(type -t "tier_$tier") == function ]] ||
    die "--tiers: no tier named '$tier' (tiers: $(declare -F | sed -n 's/^declare -f tier_//p' | paste -sd ' '))"
done

# --- the report: one line per step and tier, in the order they finished ---------------------

# Seconds since the epoch: the only clock here (the tests of this script replace `date`).
now() { date +%s; }

report=()
failed=()
record() { # NAME EXIT_STATUS START
  local result=passed
  if (($2 != 0)); then
    result="FAILED (exit $2)"
    failed+=("$1")
  fi
  report+=("$(printf '%-18s %-18s %6d s' "$1" "$result" $(($(now) - $3)))")
}

# run_step NAME COMMAND...: runs it in the foreground and records it; never stops the script.
run_step() {
  local name=$1 start rc=0
  shift
  start=$(now)
  echo "=== tools/test.sh: $name" >&2
  "$@" || rc=$?
  record "$name" "$rc" "$start"
}

# start_step NAME COMMAND... runs it beside what follows, its output in a log of its own;
# wait_step NAME waits for it, shows the log when it failed, records it, and returns its status.
logs=$(mktemp -d)
declare -A step_pid step_start step_rc
start_step() {
  local name=$1
  shift
  step_start[$name]=$(now)
  "$@" >"$logs/$name.log" 2>&1 &
  step_pid[$name]=$!
}
wait_step() { # a second wait for the same step (two tiers need one build) returns its status
  local rc=0
  [[ -z "${step_rc[$1]:-}" ]] || return "${step_rc[$1]}"
  wait "${step_pid[$1]}" || rc=$?
  ((rc == 0)) || cat "$logs/$1.log" >&2
  record "$1" "$rc" "${step_start[$1]}"
  step_rc[$1]=$rc
  return "$rc"
}

print_report() {
  echo
  echo "tools/test.sh: report"
  printf '  %s\n' "${report[@]}"
  if ((${#failed[@]})); then
    echo "tools/test.sh: FAILED: ${failed[*]}"
  else
    echo "tools/test.sh: all passed"
  fi
}

trap 'echo "tools/test.sh: interrupted" >&2; exit 130' INT

# --- setup: what the tiers need -----------------------------------------------------------

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

packages=(
  etcd-server etcd-client  # the discovery node's scripts run against a real etcd
  cloud-init               # strict schema validation of every user-data
  haproxy keepalived       # the VIP configs are checked by the real daemons
  systemd                  # systemd-analyze: units and OnCalendar schedules
  curl gpg ca-certificates # node scripts' download and key checks, run for real
  iproute2
  # the discovery node VM test: qemu, a debootstrapped Debian 12, a NoCloud seed, ssh
  qemu-system-x86 qemu-utils debootstrap debian-archive-keyring cloud-image-utils
  openssh-client e2fsprogs
)
command -v kubectl >/dev/null || packages+=(kubernetes-client)

install_packages() {
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  # Keep freshly installed services (etcd, haproxy, keepalived) from starting on the host:
  # the tests start their own, on free ports, and stop them by PID.
  local blocker=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    blocker=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$blocker" >/dev/null
    "${sudo[@]}" chmod +x "$blocker"
  fi
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [[ -z "$blocker" ]] || "${sudo[@]}" rm -f "$blocker"
}

# shfmt (a Go program) checks the node scripts' format: built once per version through the Go
# module proxy into a cache outside the checkout. Keep the version in step with
# tests/cloud_init/scripts/test_script_platform.py (SHFMT_VERSION).
SHFMT_VERSION=v3.12.0
shfmt_bin=${XDG_CACHE_HOME:-$HOME/.cache}/openstack-k8s/bin/shfmt-$SHFMT_VERSION

# Go 1.23 or newer builds this shfmt (Debian 12's golang-go is 1.19): said in one line here,
# before the build fails deep in the module graph.
check_go() {
  local version major minor
  version=$(go env GOVERSION 2>/dev/null) ||
    die "Go 1.23 or newer is needed to build shfmt $SHFMT_VERSION (https://go.dev/dl/; Debian 12's golang-go is too old)"
  IFS=. read -r major minor _ <<<"${version#go}"
  ((major > 1 || minor >= 23)) ||
    die "Go ${version#go} is too old to build shfmt $SHFMT_VERSION: Go 1.23 or newer (https://go.dev/dl/)"
}

build_shfmt() {
  local build
  build=$(mktemp -d)
  GOBIN=$build go install "mvdan.cc/sh/v3/cmd/shfmt@$SHFMT_VERSION"
  mkdir -p "$(dirname "$shfmt_bin")"
  mv "$build/shfmt" "$shfmt_bin"
  rm -rf "$build"
}

make_venv() {
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
}

# Setup failures stop here: no tier could run without its packages and .venv.
start=$(now)
install_packages
# The long installs only later tiers need start now, beside everything else: the local
# OpenStack's Debian packages and venv (its apt-get runs after ours, never beside it).
in_tiers() { [[ " ${TIERS[*]} " == *" $1 "* ]]; }
! in_tiers cloud || start_step openstack-install bash tools/openstack.sh install
[[ -x $shfmt_bin ]] || {
  check_go
  start_step shfmt build_shfmt
}
make_venv
# The CLI and the OpenStack provider are Go builds of minutes cold; the token map is read from
# the venv's pulumi_openstack, so this starts after make_venv. Waited for by the tiers.
if in_tiers engine || in_tiers cloud; then start_step engine-build bash tools/real-engine.sh; fi
[[ -z "${step_pid[shfmt]:-}" ]] || wait_step shfmt || true # a failure is in the report
record setup $((${#failed[@]} ? 1 : 0)) "$start"
((${#failed[@]} == 0)) || {
  print_report
  exit 1
}

# --- the tiers: every one runs, the report says how each went ------------------------------

for tier in "${TIERS[@]}"; do
  run_step "$tier" "tier_$tier"
done
print_report
((${#failed[@]} == 0))
