#!/usr/bin/env bash
# Set up and `pulumi up` one stack: `bash tools/up.sh [STACK] [pulumi up flags...]`.
#
# STACK may be qualified (`org/dev`, `org/project/dev`); its config is Pulumi.<last part>.yaml,
# as Pulumi reads it. State goes where the Pulumi CLI keeps it: PULUMI_BACKEND_URL, else the
# backend of your `pulumi login` (Pulumi Cloud, S3, a directory...), else, when you have
# logged in nowhere, a local backend in ./.pulumi-state. The OpenStack provider reads
# OS_CLOUD (a cloud in clouds.yaml) or the OS_* variables. Everything is checked before
# anything is created.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-dev}
shift || true
stack_file="Pulumi.${stack##*/}.yaml"

die() {
  echo "tools/up.sh: $*" >&2
  exit 1
}

# Where openstacksdk and the OpenStack provider look for clouds.yaml, in their order.
clouds_files() {
  [[ -z "${OS_CLIENT_CONFIG_FILE:-}" ]] || echo "$OS_CLIENT_CONFIG_FILE"
  echo "$PWD/clouds.yaml"
  echo "${XDG_CONFIG_HOME:-$HOME/.config}/openstack/clouds.yaml"
  echo "/etc/openstack/clouds.yaml"
}

# Does clouds.yaml FILE name CLOUD under its top-level `clouds:`? Block-style YAML, as
# clouds.yaml is written: the cloud names are the keys one level in.
file_has_cloud() {
  awk -v want="$2" '
		/^[^[:space:]#]/ { in_clouds = ($0 ~ /^clouds:[[:space:]]*(#.*)?$/); indent = 0; next }
		in_clouds && /^[[:space:]]+[^[:space:]#]/ {
			match($0, /^[[:space:]]+/)
			if (!indent) indent = RLENGTH
			if (RLENGTH != indent) next
			key = substr($0, RLENGTH + 1)
			sub(/[[:space:]]*:([[:space:]].*)?$/, "", key)
			gsub(/^["\047]|["\047]$/, "", key)
			if (key == want) found = 1
		}
		END { exit !found }
	' "$1"
}

check_cloud() {
  local file searched=()
  while read -r file; do
    searched+=("$file")
    [[ -f "$file" ]] && file_has_cloud "$file" "$OS_CLOUD" && return 0
  done < <(clouds_files)
  local IFS=,
  die "OS_CLOUD=$OS_CLOUD: no clouds.yaml names that cloud (looked in ${searched[*]})"
}

# The backend the CLI is logged in to, as `pulumi whoami` reports it; empty when it is logged
# in nowhere. A login that no longer works is an error, never a reason to go local.
logged_in_backend() {
  local out
  if out=$(pulumi whoami --json --non-interactive 2>&1); then
    local url
    url=$(sed -n 's/^[[:space:]]*"url":[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$out")
    [[ -n "$url" ]] || die "pulumi whoami --json names no backend url: set PULUMI_BACKEND_URL"
    echo "$url"
    return 0
  fi
  local credentials=${PULUMI_HOME:-$HOME/.pulumi}/credentials.json
  if [[ -n "${PULUMI_ACCESS_TOKEN:-}" ]] || grep -qs '"current":[[:space:]]*"[^"]' "$credentials"; then
    die "pulumi whoami fails for the backend you are logged in to (${out//$'\n'/ }): fix the login, or set PULUMI_BACKEND_URL"
  fi
}

command -v pulumi >/dev/null || die "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
[[ -f "$stack_file" ]] || die "no $stack_file for stack $stack: copy Pulumi.dev.yaml, change its clusterName and edit it"
[[ -n "${OS_CLOUD:-}${OS_AUTH_URL:-}" ]] || die "set OS_CLOUD (clouds.yaml) or source your openrc (OS_AUTH_URL, ...)"
[[ -z "${OS_CLOUD:-}" ]] || check_cloud
command -v python3 >/dev/null || die "python3 is not installed: the program needs Python 3.11 or newer"
python3 python_version.py || exit 1 # one line when python3 is older than the program needs

local_state=""
backend=${PULUMI_BACKEND_URL:-}
if [[ -z "$backend" ]]; then
  backend=$(logged_in_backend) || exit 1
fi
if [[ -z "$backend" ]]; then
  local_state=$PWD/.pulumi-state
  backend=file://$local_state
fi
if [[ "$backend" == file://* && -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  die "a local backend ($backend) encrypts the stack's secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
fi
if [[ -n "$local_state" ]]; then
  mkdir -p "$local_state"
  export PULUMI_BACKEND_URL=$backend
  echo "tools/up.sh: not logged in to any Pulumi backend: the state goes to $local_state (for later pulumi commands: pulumi login $backend)" >&2
else
  echo "tools/up.sh: state in $backend" >&2
fi

# The program's own dependencies only; the offline plan and the tests need
# requirements-dev.txt on top (see the README).
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

pulumi stack select --create "$stack"
pulumi up --stack "$stack" "$@"
