"""The pieces every role part of a cloud-config is built from: a file, a systemd unit, an
environment file and a runcmd step that fails the boot.

One rule each, so that the discovery node, the masters' VIP, the node bootstrap and the etcd
backup cannot drift apart: every file states its owner and mode, every environment file uses
the same quoting rule, and every runcmd step ends the boot with an error when it fails.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

# (section, [(key, value), ...]) in file order, or a dict of section -> pairs.
Unit = Sequence[tuple[str, Sequence[tuple[str, str]]]] | dict[str, Sequence[tuple[str, str]]]

# An environment file is read both by systemd (EnvironmentFile=) and by sh (`set -a; . file`).
# Values are written unquoted, so they must mean the same to both: no whitespace, quotes,
# backslashes, `$`, backticks, globs or `~` (sh expands a leading one). URLs, paths, image
# references, sha256 digests and comma lists fit.
_PLAIN = re.compile(r"[A-Za-z0-9._:/@%+=,{}-]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What a failed step appends: cloud-init joins runcmd into one sh script whose exit status is
# its last command's, so a step that fails must end that script itself.
_FAIL = " || exit 1"


def file(
    path: str, content: str, permissions: str = "0644", *, owner: str = "root:root", **extra
) -> dict:
    """A write_files entry: absolute path, explicit owner and mode (`defer` etc. in extra)."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r}: a file for a node needs an absolute path")
    if not re.fullmatch(r"0[0-7]{3}", permissions):
        raise ValueError(f"{path}: permissions {permissions!r} are not an octal mode like 0644")
    return {"path": path, "owner": owner, "permissions": permissions, "content": content, **extra}


def unit(sections: Unit) -> str:
    """A systemd unit file from its data; keys may repeat within a section."""
    if isinstance(sections, dict):
        sections = list(sections.items())
    return "\n".join(
        f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in items) for name, items in sections
    )


def env_file(env: dict[str, str], *, comment: str | None = None) -> str:
    """KEY=VALUE lines, unquoted, refused when a value would need quoting (see _PLAIN)."""
    for key, value in env.items():
        if not _NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not an environment variable name")
        if not _PLAIN.fullmatch(value):
            raise ValueError(
                f"{key}={value!r}: only plain URL/path characters are allowed "
                "in an environment file"
            )
    head = f"# {comment}\n" if comment else ""
    return head + "".join(f"{k}={v}\n" for k, v in env.items())


def step(command: list[str] | str) -> str:
    """A runcmd entry that fails the boot when the command fails.

    An argv list is shell-quoted; a string is a shell command list, run in a subshell so that
    `&&` chains and `set` inside it stay inside it."""
    text = shlex.join(command) if isinstance(command, list) else f"({command})"
    return text + _FAIL
