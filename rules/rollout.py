"""How many workers of a pool upgrade at once: `upgrade.maxUnavailable`, and the one rule
that keeps every upgrade lane short."""

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


# The longest chain of upgrade commands a pool may form. Each link is one more level in
# every dependency walk over the graph (the SDK's own walks recurse), and one more engine
# step on the path of every bring-up, although nothing runs at creation.
MAX_LANE_LENGTH = 50


def lanes(value: int | str, pool_size: int) -> int:
    """Workers upgraded at once in a pool of pool_size: maxUnavailable (a percentage is
    rounded up, and at least one worker always goes), or more when the pool is so big that
    that many lanes would each be longer than MAX_LANE_LENGTH."""
    wanted = value if isinstance(value, int) else math.ceil(pool_size * int(value[:-1]) / 100)
    return max(wanted, math.ceil(pool_size / MAX_LANE_LENGTH), 1)
