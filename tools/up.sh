#!/usr/bin/env bash
# Set up and `pulumi up` one stack: `bash tools/up.sh [STACK] [pulumi up flags...]`.
#
# STACK may be qualified (`org/dev`, `org/project/dev`); its config is Pulumi.<last part>.yaml,
# as Pulumi reads it. State goes to a local backend (./.pulumi-state) unless
# PULUMI_BACKEND_URL says otherwise; the OpenStack provider reads OS_CLOUD (clouds.yaml) or
# the OS_* variables. Everything is checked before anything is created.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-dev}
shift || true
stack_file="Pulumi.${stack##*/}.yaml"

die() { echo "tools/up.sh: $*" >&2; exit 1; }
command -v pulumi >/dev/null || die "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
[[ -f "$stack_file" ]] || die "no $stack_file for stack $stack: copy Pulumi.dev.yaml, change its clusterName and edit it"
[[ -n "${OS_CLOUD:-}${OS_AUTH_URL:-}" ]] || die "set OS_CLOUD (clouds.yaml) or source your openrc (OS_AUTH_URL, ...)"

backend=${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-state}
if [[ "$backend" == file://* && -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    die "a local backend encrypts the stack's secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
fi
if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL=$backend
fi

# The program's own dependencies only; the offline plan and the tests need
# requirements-dev.txt on top (see the README).
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

pulumi stack select --create "$stack"
pulumi up --stack "$stack" "$@"
