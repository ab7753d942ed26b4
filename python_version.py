"""The oldest Python this project runs on, checked before anything that needs it is imported.

The program (__main__.py), the tools (tools/__init__.py) and tools/up.sh (`python3
python_version.py`) ask it first, so that an older Python gets one line instead of a
traceback from deep inside (enum.StrEnum, datetime.UTC). Keep this file importable by any
Python 3: nothing newer than f-strings here.
"""

from __future__ import annotations

import sys

MINIMUM = (3, 11)


def problem() -> str | None:
    """One line saying why this Python will not do, or None when it will."""
    found = tuple(sys.version_info[:3])
    if found[:2] >= MINIMUM:
        return None
    want = ".".join(map(str, MINIMUM))
    have = ".".join(map(str, found))
    return (
        f"openstack-k8s needs Python {want} or newer (it uses enum.StrEnum and datetime.UTC); "
        f"{sys.executable} is Python {have}"
    )


def require() -> None:
    """Exit with that one line (status 1) on an older Python."""
    too_old = problem()
    if too_old:
        sys.exit(too_old)


if __name__ == "__main__":
    require()
