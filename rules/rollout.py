"""How many workers of a pool upgrade at once: `upgrade.maxUnavailable`."""

from __future__ import annotations

import math
import re

_PERCENT = re.compile(r"^([1-9][0-9]?|100)%$")


def max_unavailable(value: object) -> int | str:
    """A count (at least 1) or a percentage of the pool, "1%" to "100%"."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'must be a count or a percentage like "20%" (got {value!r})')
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"must be at least 1 (got {value}): no worker could ever upgrade")
        return value
    if not _PERCENT.match(value):
        raise ValueError(
            f'must be a count or a percentage from 1% to 100% like "20%" (got {value!r})'
        )
    return value


def lanes(value: int | str, pool_size: int) -> int:
    """Workers upgraded at once in a pool of pool_size: a percentage is rounded up, and at
    least one worker always goes."""
    if isinstance(value, int):
        return value
    return max(1, math.ceil(pool_size * int(value[:-1]) / 100))
