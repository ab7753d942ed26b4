"""What nodes receive: cloud-config built as Python data, and the shell scripts they run."""
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


def script(name: str) -> str:
    """The text of a node script shipped under cloud_init/scripts/."""
    return (SCRIPTS / name).read_text()
