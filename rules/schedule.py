"""systemd OnCalendar values (a documented subset of systemd.time(7)), checked without systemd.

The machine running `pulumi up` may have no systemd, so this is pure Python. A value must
parse and must fire at least once from now on: `*-02-30` parses but never elapses, nor does a
date in the past; systemd would take either and the timer would sit there doing nothing.
Times are the node's (UTC on cloud images). tests/rules/test_rules.py compares both the
grammar and the next elapse with `systemd-analyze calendar`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, UTC

SHORTHANDS = {  # systemd.time(7): what each shorthand means
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {d: i for i, d in enumerate(_DAYS)} | {
    full: i
    for i, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_ITEM = re.compile(r"^(\d+)(?:\.\.(\d+))?(?:/(\d+))?$")
YEARS = (1970, 2199)  # what systemd accepts
HELP = (
    "use a systemd OnCalendar value: one of "
    + ", ".join(SHORTHANDS)
    + ", or '[WEEKDAYS] [[YYYY-]MM-DD] HH:MM[:SS]' where each number may be '*', a list "
    "'a,b', a range 'a..b' or a step 'a/n' (e.g. '*:00/15', 'Mon..Fri 02:30', '*-*-* 03:00'); "
    "times are in the node's timezone (UTC on cloud images), no timezone suffix"
)


def _values(text: str, low: int, high: int, what: str) -> set[int]:
    if text == "*":
        return set(range(low, high + 1))
    out: set[int] = set()
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m:
            raise ValueError(f"{what} {item!r} is not a number, range a..b or step a/n")
        first, last, step = int(m[1]), m[2], m[3]
        if not low <= first <= high:
            raise ValueError(f"{what} {first} is outside {low}..{high}")
        if last is not None and not first < int(last) <= high:
            raise ValueError(f"{what} range {item!r} must run upwards within {low}..{high}")
        if step is not None and int(step) < 1:
            raise ValueError(f"{what} step in {item!r} must be at least 1")
        if step is not None and last is None and first + int(step) > high:
            # systemd refuses a repetition that can never repeat
            raise ValueError(f"{what} {item!r} never repeats within {low}..{high}")
        end = int(last) if last is not None else (high if step is not None else first)
        out.update(range(first, end + 1, int(step or 1)))
    return out


def _weekdays(text: str) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        ends = item.lower().split("..")
        if len(ends) > 2 or not all(e in _DAY_NAMES for e in ends):
            raise ValueError(f"weekday {item!r} is not Mon..Sun (or a range like Mon..Fri)")
        if len(ends) == 2 and _DAY_NAMES[ends[0]] > _DAY_NAMES[ends[1]]:
            raise ValueError(f"weekday range {item!r} must run forwards (Mon..Sun)")
        out.update(range(_DAY_NAMES[ends[0]], _DAY_NAMES[ends[-1]] + 1))
    return out


def _date(text: str) -> dict[str, set[int]]:
    parts = text.split("-")
    spec = {}
    if len(parts) == 3:
        if parts[0] != "*" and not re.fullmatch(r"\d{4}", parts[0]):
            raise ValueError(f"year {parts[0]!r} must be '*' or four digits")
        spec["year"] = _values(parts[0], *YEARS, "year")
        parts = parts[1:]
    if len(parts) != 2:
        raise ValueError("a date is [YYYY-]MM-DD")
    spec["month"] = _values(parts[0], 1, 12, "month")
    spec["day"] = _values(parts[1], 1, 31, "day")
    return spec


def _time(text: str) -> dict[str, set[int]]:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError("a time is HH:MM or HH:MM:SS")
    return {
        what: _values(part, 0, high, what)
        for part, high, what in zip(parts, (23, 59, 59), ("hour", "minute", "second"), strict=False)
    }


def parse(schedule: str) -> dict[str, set[int]]:
    """The sets of weekdays, years, months, days, hours, minutes and seconds that match."""
    tokens = SHORTHANDS.get(schedule.lower(), schedule).split(" ")
    if "" in tokens:
        raise ValueError("stray spaces")
    spec = {
        "weekday": set(range(7)),
        "year": set(range(YEARS[0], YEARS[1] + 1)),
        "month": set(range(1, 13)),
        "day": set(range(1, 32)),
        "hour": {0},
        "minute": {0},
        "second": {0},
    }
    if tokens and re.match(r"^[A-Za-z]", tokens[0]):
        spec["weekday"] = _weekdays(tokens.pop(0))
    if tokens and "-" in tokens[0]:
        spec.update(_date(tokens.pop(0)))
    if tokens and ":" in tokens[0]:
        spec.update(_time(tokens.pop(0)))
    if tokens:
        raise ValueError(f"unexpected {' '.join(tokens)!r} (no timezones, one date, one time)")
    return spec


def next_elapse(schedule: str, now: datetime) -> datetime | None:
    """When the schedule next fires after `now` (naive UTC or aware), or None if it never does."""
    spec = parse(schedule)
    now = (
        now.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        if now.tzinfo
        else now.replace(microsecond=0)
    )
    times = sorted(
        time(h, m, s) for h in spec["hour"] for m in spec["minute"] for s in spec["second"]
    )
    for year in sorted(y for y in spec["year"] if y >= now.year):
        for month in sorted(spec["month"]):
            for day in sorted(spec["day"]):
                try:
                    d = date(year, month, day)
                except ValueError:  # Feb 30, Apr 31: no such day
                    continue
                if d < now.date() or d.weekday() not in spec["weekday"]:
                    continue
                for t in times:
                    at = datetime.combine(d, t)
                    if at > now:
                        return at
    return None


def on_calendar(schedule: str, now: datetime | None = None) -> str:
    """`schedule` if it is a supported OnCalendar value that fires again, else ValueError."""
    if not isinstance(schedule, str) or not schedule:
        raise ValueError(f"schedule {schedule!r} is empty; {HELP}")
    try:
        fires = next_elapse(schedule, now or datetime.now(UTC))
    except ValueError as e:
        raise ValueError(f"schedule {schedule!r}: {e}; {HELP}") from None
    if fires is None:
        raise ValueError(
            f"schedule {schedule!r} never fires (no such date, or only dates in the past); {HELP}"
        )
    return schedule
