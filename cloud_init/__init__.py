"""What nodes receive: cloud-config built as Python data, and the shell scripts they run."""

import re
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


# `source "${BASH_SOURCE[0]%/*}/lib/x.sh"` in a script: replaced by lib/x.sh's text when the
# script is shipped, since a script sent to a node on stdin has no directory to source from.
_INCLUDE = re.compile(r'^source "\$\{BASH_SOURCE\[0\]%/\*\}/(lib/[a-z0-9-]+\.sh)".*$', re.M)


def script(name: str) -> str:
    """The text of a node script under cloud_init/scripts/, as it is shipped: libraries it
    sources are inlined."""
    text = (SCRIPTS / name).read_text()
    return _INCLUDE.sub(lambda m: (SCRIPTS / m.group(1)).read_text().rstrip("\n"), text)
