"""The step kit: the node scripts a running node keeps on disk, so that a day-2 command sends
only its environment and one loader line, not the script text.

A command's stdin is what triggers it: when it carried the script (with lib/*.sh inlined),
any edit of a script, even of a comment, re-ran that command on every node at the next
`pulumi up`. Instead, each node's `-ready` command (node-ready.sh, STEP_KIT_TAR_B64) unpacks
the shipped scripts into STEP_KIT_DIR once, when the node is made (or when a step revision is
raised), and a day-2 command runs `loader(script)`: the copy already on the node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cloud_init import SCRIPTS, script
from cloud_init.userdata import tar_b64

STEP_KIT_DIR = "/usr/local/lib/openstack-k8s/steps"

# upgrade-worker.sh runs these three from the kit, in this order: a worker's kit holds them
# (components/roles.UPGRADE_WORKER uses them).
UPGRADE_STEPS = ("upgrade-cordon.sh", "upgrade-node.sh", "upgrade-uncordon.sh")

# A script name goes unquoted into a shell line: letters, digits and '-' only (no lib/).
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.sh")
# The kit directory too: an absolute path of plain characters.
_DIR = re.compile(r"(/[A-Za-z0-9._-]+)+")


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name) or not (SCRIPTS / name).is_file():
        raise ValueError(f"{name!r} is not a script under cloud_init/scripts/")
    return name


def step_kit_tar_b64(scripts: Iterable[str]) -> str:
    """The kit as node-ready.sh's STEP_KIT_TAR_B64: a deterministic gzipped tar (base64) of
    each named script as it is shipped (libraries inlined), at its bare name, mode 0755.
    The same names give the same bytes, whatever their order or repeats."""
    names = sorted({_checked(name) for name in scripts})
    if not names:
        raise ValueError("a step kit needs at least one script")
    return tar_b64((name, script(name), 0o755) for name in names)


def loader(name: str, *, kit_dir: str = STEP_KIT_DIR) -> str:
    """The one shell line that runs the kit's copy of `name` (with this shell's arguments):
    what a day-2 command sends after its environment, in place of the script. A node
    without the kit fails on it with one line that says what installs it."""
    _checked(name)
    if not _DIR.fullmatch(kit_dir):
        raise ValueError(f"kit_dir: {kit_dir!r} is not an absolute path of plain characters")
    path = f"{kit_dir}/{name}"
    missing = f"{path} is missing: the node's -ready command installs the step kit"
    return f'[[ -r {path} ]] || {{ echo "{missing}" >&2; exit 1; }}; exec bash {path} "$@"'


def command_file(name: str, *, kit_dir: str = STEP_KIT_DIR) -> str:
    """An executable file (e.g. /usr/local/sbin/etcd-restore.sh) that runs the kit's copy of
    `name` with its arguments: an operator's or a unit's stable path into the kit, whose
    text does not change when the script does."""
    return (
        "#!/bin/bash\n"
        f"# Runs {name} from the step kit ({kit_dir}), which the node's -ready command installs.\n"
        f"{loader(name, kit_dir=kit_dir)}\n"
    )
