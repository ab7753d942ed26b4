"""Nova server metadata a node group adds to its VMs (`metadata`), as Nova's compute API
takes it (nova/api/validation/parameter_types.py, `metadata`): a key of 1 to 255 characters
of letters, digits, space and `-_:.`; a string value of at most 255 characters. Nova counts
them against the metadata_items quota (128 by default); the program's own keys (the
cluster and the node's role, `openstack-k8s-...`) are reserved: the cloud's tooling and the
program's tests find the cluster's VMs by them.
"""

from __future__ import annotations

import re

MAX_ITEMS = 128
RESERVED_PREFIX = "openstack-k8s-"
_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
VALUE_MAX = 255


def server_metadata(items: dict[str, str]) -> dict[str, str]:
    """The group's metadata, or a ValueError naming the offending key."""
    # Two of the quota are the program's own keys.
    if len(items) > MAX_ITEMS - 2:
        raise ValueError(
            f"has {len(items)} items: Nova's default quota is {MAX_ITEMS} per server, "
            f"two of them the program's own"
        )
    for key, value in items.items():
        if not _KEY.fullmatch(key):
            raise ValueError(
                f"key {key!r} is not a Nova metadata key: 1 to 255 letters, digits, spaces or -_:."
            )
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"key {key!r}: keys starting with {RESERVED_PREFIX} are the program's")
        if len(value) > VALUE_MAX:
            raise ValueError(f"value of {key!r} is {len(value)} characters long, at most 255")
    return items
