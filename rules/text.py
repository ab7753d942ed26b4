"""Text that reaches the nodes: every string config value ends up in a flag, a file, a unit or
a script, where a newline starts another line (another flag, another unit directive, another
command) and a tab or an escape changes what the line says."""

from __future__ import annotations

import unicodedata

# Line breaks YAML and Python's splitlines() count although they are not Cc.
_BREAKS = {"\u2028": "a line separator", "\u2029": "a paragraph separator"}
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL"}


def control_character(value: str) -> str | None:
    """What the first control character of `value` is, with its position; None if none."""
    for i, c in enumerate(value):
        if unicodedata.category(c) == "Cc" or c in _BREAKS:
            what = _NAMES.get(c) or _BREAKS.get(c) or "a control character"
            return f"{what} (U+{ord(c):04X}) at position {i + 1}"
    return None


def one_line(value: str) -> str:
    """`value` if it holds no control character (nor a Unicode line break)."""
    found = control_character(value)
    if found:
        raise ValueError(
            f"contains {found}: config values are one line of printable text (they end up "
            f"in flags, files and scripts)"
        )
    return value
