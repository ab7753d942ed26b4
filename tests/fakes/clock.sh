# A fake clock for the node scripts under test: bash sources this file before the script
# when BASH_ENV names it (fakes.Clock). The scripts read the time from $EPOCHREALTIME only
# (lib/common.sh now_ms) and wait with `sleep` only. Unset, EPOCHREALTIME loses its special
# meaning for good, and becomes a plain variable that only the `sleep` below moves: a
# deadline then passes after the sleeps a script makes, however slow the machine, and a test
# can count tries instead of seconds. Every sleep is logged to $FAKE_CLOCK_LOG (seconds, one
# a line); nothing sleeps for real.
# shellcheck shell=bash

unset EPOCHREALTIME
_fake_clock_us=$((${FAKE_CLOCK_START:-1000000} * 1000000))
EPOCHREALTIME=$((_fake_clock_us / 1000000)).000000

sleep() {
  [[ $# -eq 1 && $1 =~ ^([0-9]+)(\.([0-9]{1,6})[0-9]*)?$ ]] || {
    echo "fake sleep: expected one number of seconds, got: $*" >&2
    return 2
  }
  local frac=${BASH_REMATCH[3]}000000
  _fake_clock_us=$((_fake_clock_us + 10#${BASH_REMATCH[1]} * 1000000 + 10#${frac:0:6}))
  printf -v EPOCHREALTIME '%d.%06d' $((_fake_clock_us / 1000000)) $((_fake_clock_us % 1000000))
  [[ -z ${FAKE_CLOCK_LOG:-} ]] || printf '%s\n' "$1" >>"$FAKE_CLOCK_LOG"
}
