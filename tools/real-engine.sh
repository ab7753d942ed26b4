#!/usr/bin/env bash
# Build (or reuse) the real Pulumi engine for this checkout: `bash tools/real-engine.sh`.
#
# The test environment reaches no Pulumi download site, and the Go module proxy refuses the
# Python language host and the provider modules, so this builds what can be built and stands in
# for the rest (docs/real-engine.md; a user with internet access installs the Pulumi CLI as usual):
#   - the Pulumi CLI, from its Go module at a pinned version (tools/engine/cli);
#   - the OpenStack provider, the Terraform provider bridged to Pulumi (tools/engine/openstack),
#     its token map derived from the installed pulumi_openstack SDK at build time;
#   - our `pulumi-language-python` (tools/engine/language_host.py, on the project's venv Python);
#   - the stand-in plugins tls, random, command and kubernetes (tools/engine/standins).
# Everything lands in a cache outside the checkout, keyed by versions and by a hash of our own
# sources (an edit rebuilds): ${XDG_CACHE_HOME:-$HOME/.cache}/openstack-k8s/engine. The two Go
# builds run side by side. Progress goes to stderr; the LAST line of stdout is a directory to put
# first on PATH: `pulumi` and our language host, with the plugins installed in ../home:
#
#   bin=$(bash tools/real-engine.sh | tail -n1)
#   export PATH="$bin:$PATH" PULUMI_HOME="$bin/../home" PULUMI_SKIP_UPDATE_CHECK=true \
#       PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
#       PULUMI_BACKEND_URL=file://$(mktemp -d) PULUMI_CONFIG_PASSPHRASE=test
#
# The same exports are written to $bin/../env.sh. Needs Go (and the module cache or the Go module
# proxy), the project's .venv (requirements-dev.txt) or PYTHON=<python with it>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CLI_VERSION=v3.276.0
PY=${PYTHON:-$root/.venv/bin/python}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/openstack-k8s/engine

say() { echo "real-engine: $*" >&2; }
die() {
  say "$*"
  exit 1
}
now() { date +%s; }

command -v go >/dev/null || die "Go is not installed: the CLI and the OpenStack provider are built from their Go modules"
[[ -x $PY ]] || die "no Python at $PY: create .venv with requirements-dev.txt, or set PYTHON"

# A pinned version from requirements.txt: `pin pulumi-tls` -> 5.6.2.
pin() {
  local v
  v=$(sed -n "s/^$1==\([^ ]*\).*/\1/p" requirements.txt)
  [[ -n $v ]] || die "requirements.txt pins no $1"
  echo "$v"
}
OPENSTACK_VERSION=$(pin pulumi-openstack)
SDK_VERSION=$(pin pulumi)
declare -A STANDINS=(
  [tls]=$(pin pulumi-tls)
  [random]=$(pin pulumi-random)
  [command]=$(pin pulumi-command)
  [kubernetes]=$(pin pulumi-kubernetes)
)
installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("pulumi"), m.version("pulumi_openstack"))')
[[ $installed == "$SDK_VERSION $OPENSTACK_VERSION" ]] ||
  die "$PY has pulumi/pulumi_openstack $installed, requirements.txt pins $SDK_VERSION $OPENSTACK_VERSION: reinstall .venv"

# Short hash of files' contents and of extra words (versions, paths).
digest() {
  local words=$1
  shift
  { echo "$words" && cat "$@"; } | sha256sum | cut -c1-16
}
go_version=$(go env GOVERSION)

cli_key=$CLI_VERSION-$(digest "$go_version" tools/engine/cli/go.mod tools/engine/cli/go.sum)
cli_dir=$cache/cli-$cli_key
os_sources=(tools/engine/openstack/go.mod tools/engine/openstack/go.sum tools/engine/openstack/main.go
  tools/engine/openstack/tfnames/main.go tools/engine/openstack_tokens.py)
os_key=$OPENSTACK_VERSION-$(digest "$go_version" "${os_sources[@]}")
os_dir=$cache/openstack-$os_key
mkdir -p "$cache/logs"
# One build at a time (test workers call this side by side): the others wait, then reuse it.
exec 9>"$cache/.lock"
flock 9

# The CLI: the wrapper module's `tool` line names the CLI's main package.
build_cli() {
  local build=$cache/build/cli-$cli_key
  rm -rf "$build" && mkdir -p "$build"
  cp tools/engine/cli/go.mod tools/engine/cli/go.sum "$build/"
  (cd "$build" && go build -buildvcs=false -o "$build/pulumi" \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mkdir -p "$cli_dir" && mv "$build/pulumi" "$cli_dir/pulumi" && rm -rf "$build"
}

# The OpenStack provider: list the Terraform names (tfnames), pair them with the SDK's tokens
# (tokens_gen.go, a build failure when any does not pair), build, then check the binary's own
# token table against the SDK once more.
build_openstack() {
  local build=$cache/build/openstack-$os_key
  rm -rf "$build" && mkdir -p "$build/tfnames"
  cp tools/engine/openstack/go.mod tools/engine/openstack/go.sum tools/engine/openstack/main.go "$build/"
  cp tools/engine/openstack/tfnames/main.go "$build/tfnames/"
  (cd "$build" && go build -buildvcs=false -o "$build/tfnames.bin" ./tfnames)
  "$build/tfnames.bin" >"$build/tfnames.json"
  "$PY" -m tools.engine.openstack_tokens "$build/tfnames.json" "$build/tokens_gen.go"
  (cd "$build" && go build -buildvcs=false -o "$build/pulumi-resource-openstack" .)
  "$PY" -m tools.engine.openstack_tokens --check "$build/pulumi-resource-openstack" "$OPENSTACK_VERSION"
  mkdir -p "$os_dir" && mv "$build/pulumi-resource-openstack" "$os_dir/" && rm -rf "$build"
}

# Run a build in the background with its log in the cache; `finish` waits and reports. A
# failed build is reported only once both are done: no build is left running behind us.
declare -A jobs=() started=()
failed=()
start() {
  local name=$1 out=$2
  if [[ -x $out ]]; then
    say "$name: cached ($out)"
    return
  fi
  say "$name: building (log: $cache/logs/$name.log)"
  started[$name]=$(now)
  "build_$name" >"$cache/logs/$name.log" 2>&1 &
  jobs[$name]=$!
}
finish() {
  local name=$1
  [[ -n ${jobs[$name]:-} ]] || return 0
  if ! wait "${jobs[$name]}"; then
    tail -n 30 "$cache/logs/$name.log" >&2
    say "$name: build failed (log: $cache/logs/$name.log)"
    failed+=("$name")
    return 0
  fi
  say "$name: built in $(($(now) - ${started[$name]})) s"
}

start cli "$cli_dir/pulumi"
start openstack "$os_dir/pulumi-resource-openstack"
finish openstack
finish cli
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"

# The environment: pulumi and our language host on PATH, the plugins in a PULUMI_HOME of its
# own. The Python parts run from this checkout, so the key also covers its path and sources.
py_sources=(tools/engine/language_host.py tools/real-engine.sh)
mapfile -t standin_sources < <(find tools/engine/standins -name '*.py' 2>/dev/null | sort)
((${#standin_sources[@]})) || die "tools/engine/standins is missing: the stand-in plugins (tls, random, command, kubernetes) come from it"
env_key=$(digest "$root $PY $cli_key $os_key ${STANDINS[*]}" "${py_sources[@]}" "${standin_sources[@]}")
env_dir=$cache/env-$env_key
if [[ ! -f $env_dir/.done ]]; then
  t0=$(now)
  rm -rf "$env_dir"
  mkdir -p "$env_dir/bin" "$env_dir/home" "$env_dir/wrappers"
  # A hard link (a copy across file systems), not a symlink: the CLI takes a language host
  # beside its own resolved path for its bundled one; found only on PATH, it warns on every
  # command. No pulumi-resource-* may sit here: the CLI would prefer it to the installed plugin.
  ln "$cli_dir/pulumi" "$env_dir/bin/pulumi" 2>/dev/null || cp "$cli_dir/pulumi" "$env_dir/bin/pulumi"
  # -P: the CLI starts plugins in the project's directory, whose own `tools` package (a project
  # like this one has one) must not shadow ours; the host puts the program's directory on
  # sys.path itself.
  printf '#!/bin/sh\n# Our Python language host (tools/engine/language_host.py).\nPYTHONPATH=%q exec %q -P -m tools.engine.language_host "$@"\n' \
    "$root" "$PY" >"$env_dir/bin/pulumi-language-python"
  chmod +x "$env_dir/bin/pulumi-language-python"
  export PULUMI_HOME=$env_dir/home PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  "$env_dir/bin/pulumi" plugin install resource openstack "$OPENSTACK_VERSION" \
    --file "$os_dir/pulumi-resource-openstack" >&2
  for name in "${!STANDINS[@]}"; do
    wrapper=$env_dir/wrappers/pulumi-resource-$name
    printf '#!/bin/sh\n# A STAND-IN for the %s provider (tools/engine/standins), not the real one.\nPYTHONPATH=%q exec %q -P -m tools.engine.standins %s "$@"\n' \
      "$name" "$root" "$PY" "$name" >"$wrapper"
    chmod +x "$wrapper"
    "$env_dir/bin/pulumi" plugin install resource "$name" "${STANDINS[$name]}" --file "$wrapper" >&2
  done
  cat >"$env_dir/env.sh" <<EOF
# Source this to run this checkout's stacks with the engine built by tools/real-engine.sh;
# then set PULUMI_BACKEND_URL (file://...) and PULUMI_CONFIG_PASSPHRASE.
export PATH="$env_dir/bin:\$PATH"
export PULUMI_HOME="$env_dir/home"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
EOF
  touch "$env_dir/.done"
  say "plugins installed in $env_dir/home in $(($(now) - t0)) s"
else
  say "environment: cached ($env_dir)"
fi
say "ready: source $env_dir/env.sh (pulumi $CLI_VERSION, openstack $OPENSTACK_VERSION, stand-ins: tls random command kubernetes)"
echo "$env_dir/bin"
