"""Reading a VM's serial console log: cloud-init's final line, boots, and tails for errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# cloud-init's final stage prints this to the console when it has run every module, e.g.
# "Cloud-init v. 22.4.2 finished at Tue, 19 Nov 2024 18:20:01 +0000. Datasource
#  DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 65.83 seconds"
_FINISHED = re.compile(r"Cloud-init v\. (\S+) finished at .*?Up ([0-9.]+) seconds")
# One per kernel start: counts boots in a log that spans reboots.
_KERNEL_START = re.compile(r"^\[\s*0\.000000\] Linux version ", re.MULTILINE)
_FATAL = re.compile(r"Kernel panic|end Kernel panic|emulation failure|Cannot open root device")


@dataclass(frozen=True)
class Finished:
    """cloud-init's final line on one boot."""

    version: str
    uptime_seconds: float


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def tail(text: str, lines: int = 60) -> str:
    """The last lines of a log, for failure messages (control characters stripped)."""
    cleaned = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", text)
    return "\n".join(cleaned.splitlines()[-lines:])


def boots(text: str) -> list[str]:
    """The log split per boot (text before the first kernel line is dropped)."""
    starts = [m.start() for m in _KERNEL_START.finditer(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]


def finished(boot_text: str) -> Finished | None:
    """cloud-init's final line in one boot's log, if it got there."""
    match = _FINISHED.search(boot_text)
    return Finished(match.group(1), float(match.group(2))) if match else None


def fatal(text: str) -> str | None:
    """A line saying the VM cannot get anywhere (kernel panic, no root device), if any."""
    match = _FATAL.search(text)
    if not match:
        return None
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : end if end >= 0 else len(text)].strip()
