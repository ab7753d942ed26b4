# Shared by every node script: deadlines in milliseconds, errors, status lines, log masking.
# Not run on its own: a script sets PROG (and LOG_FD) and sources it; when a script is shipped
# to a node (cloud_init.script), the `source` line is replaced by this text.
# shellcheck shell=bash

now_ms() {
  local t=${EPOCHREALTIME//[!0-9]/}
  echo $((t / 1000))
}
# Seconds (decimals allowed) -> milliseconds, and back: deadlines are kept in milliseconds.
to_ms() {
  [[ $1 =~ ^([0-9]+)(\.([0-9]{1,3})[0-9]*)?$ ]] || return 1
  local frac=${BASH_REMATCH[3]}000
  echo $((10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3}))
}
ms_to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# Deadlines are now_ms instants: deadline_in MS sets one, passed tells whether it has come,
# ms_left how long is left (0 once passed).
deadline_in() { echo $(($(now_ms) + $1)); }
passed() { (($(now_ms) >= $1)); }
ms_left() {
  local l=$(($1 - $(now_ms)))
  echo $((l > 0 ? l : 0))
}
die() {
  local rc=$1
  shift
  printf '%s: %s\n' "${PROG:?}" "$*" >&2
  exit "$rc"
}
seconds_env() {
  local name=$1 default=$2 ms
  ms=$(to_ms "${!name:-$default}") || die 2 "$name must be a number of seconds, got '${!name}'"
  echo "$ms"
}
# kubeadm output can echo the bootstrap token or the certificate key: mask both.
redact() { sed -E 's/\b([a-z0-9]{6})\.[a-z0-9]{16}\b/\1.<redacted>/g; s/\b[0-9a-f]{64}\b/<redacted>/g'; }
indent() { sed 's/^/    /'; }
# Status lines go to stderr: a script's stdout is what its caller captures (a token, a file).
# A script whose callers read its status on stdout sets LOG_FD=1 before sourcing this.
log() { printf '%s: %s\n' "${PROG:?}" "$*" >&"${LOG_FD:-2}"; }
