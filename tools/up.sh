#!/usr/bin/env bash
# Set up and `pulumi up` one stack: `bash tools/up.sh [STACK] [pulumi up flags...]`.
#
# State goes to a local backend (./.pulumi-state) unless PULUMI_BACKEND_URL says otherwise;
# the OpenStack provider reads OS_CLOUD (clouds.yaml) or the OS_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-dev}
shift || true

die() { echo "tools/up.sh: $*" >&2; exit 1; }
command -v pulumi >/dev/null || die "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
[[ -f "Pulumi.$stack.yaml" ]] || die "no Pulumi.$stack.yaml: copy Pulumi.dev.yaml and edit it"
[[ -n "${OS_CLOUD:-}${OS_AUTH_URL:-}" ]] || die "set OS_CLOUD (clouds.yaml) or source your openrc (OS_AUTH_URL, ...)"

if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
fi
if [[ "$PULUMI_BACKEND_URL" == file://* && -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    die "a local backend encrypts the stack's secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

pulumi stack select --create "$stack"
pulumi up --stack "$stack" "$@"
