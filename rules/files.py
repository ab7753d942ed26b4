"""Files named by config, read on the machine that runs Pulumi (a policy file beside the
stack file). Each failure is one line naming the file, and for YAML the line it fails on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_text(path: str) -> str:
    """The UTF-8 text of the regular file at `path`."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path} is a directory, not a file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"{path}: no such file (a relative path is from the project directory)"
        ) from None
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start + 1})") from None


def yaml_document(path: str) -> tuple[str, Any]:
    """The text of the YAML file at `path` and the one document it holds (never empty)."""
    text = read_text(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path} is not YAML{where}: {problem}") from None
    if document is None:
        raise ValueError(f"{path} is empty")
    return text, document
