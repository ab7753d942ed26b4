"""Offline plan: what a stack would create, and what every node would receive.

    python -m tools.plan [--stack dev] [--set KEY=VALUE ...] --out DIR
    python -m tools.plan --diff OLD_DIR NEW_DIR

Evaluates the program for a stack under Pulumi's mock engine, with no credentials and no
Pulumi CLI, and writes DIR/plan.json and DIR/user-data/<instance>.yaml. Invalid config exits
with status 2 and one line naming the key, before anything is written.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import settings as config  # noqa: E402

INSTANCE = "openstack:compute/instance:Instance"


class UsageError(Exception):
    pass


def stack_config(stack: str) -> dict[str, Any]:
    """The project's keys from Pulumi.<stack>.yaml (prefix stripped); secure values masked."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise UsageError(f"no stack config {path.name}")
    data = yaml.safe_load(path.read_text()) or {}
    raw = {}
    for key, value in (data.get("config") or {}).items():
        project, _, name = key.partition(":")
        if project != config.PROJECT:
            continue
        raw[name] = _mask_secure(value)
    return raw


def _mask_secure(value: Any) -> Any:
    # `pulumi config set --secret` values can't be decrypted offline.
    if isinstance(value, dict) and set(value) == {"secure"}:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _mask_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secure(v) for v in value]
    return value


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(raw: dict, key: str, value: Any) -> None:
    """`pulumi config set --path` semantics: masters.count, workerPools[0].count."""
    parts: list = []
    pos = 0
    for m in _PATH_PART.finditer(key):
        if m.start() != pos and key[pos:m.start()] != ".":
            raise UsageError(f"--set {key}: not a config path like masters.count or workerPools[0].count")
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
        pos = m.end()
    if not parts or pos != len(key) or not isinstance(parts[0], str):
        raise UsageError(f"--set {key}: not a config path like masters.count or workerPools[0].count")
    node: Any = raw
    for part, nxt in zip(parts, parts[1:]):
        if isinstance(part, int):
            if not isinstance(node, list):
                raise UsageError(f"--set {key}: [{part}] indexes something that is not a list")
            while len(node) <= part:
                node.append({} if isinstance(nxt, str) else [])
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise UsageError(f"--set {key}: .{part} names a field of something that is not an object")
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {} if isinstance(nxt, str) else []
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list):
            raise UsageError(f"--set {key}: [{last}] indexes something that is not a list")
        while len(node) <= last:
            node.append(None)
    elif not isinstance(node, dict):
        raise UsageError(f"--set {key}: .{last} names a field of something that is not an object")
    node[last] = value


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def engine_config(raw: dict[str, Any]) -> dict[str, str]:
    """What the Pulumi CLI hands the program: `project:key` -> string (objects as JSON)."""
    out = {}
    for key, value in raw.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out[f"{config.PROJECT}:{key}"] = text
    return out


def user_data_text(value: str) -> str:
    """Decode user-data that was compressed or base64-encoded on its way to Nova."""
    if value.startswith("#"):
        return value
    try:
        blob = base64.b64decode(value, validate=True)
    except ValueError:
        return value
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    return blob.decode()


def evaluate_stack(stack: str, sets: list[tuple[str, Any]]):
    """A stack's config with overrides, validated (ConfigError first), then the program run
    under the mock engine: the Evaluation. Shared by the plan, the bench and the tests."""
    from tools.mockengine import evaluate

    raw = stack_config(stack)
    for key, value in sets:
        set_path(raw, key, value)
    settings = config.load(config.raw_from_pulumi(engine_config(raw)), stack)
    return evaluate(engine_config(raw), stack=stack, subnet=str(settings.network.cidr))


def build(stack: str, sets: list[tuple[str, Any]]):
    """Validate, then evaluate: (plan dict, {instance: user-data}). Raises ConfigError first."""
    from tools.mockengine import SECRET

    result = evaluate_stack(stack, sets)

    resources, user_data = [], {}
    # Sorted by URN: registration order follows asyncio scheduling, the plan must not.
    for r in sorted(result.registrations, key=lambda r: r.urn):
        resources.append({
            "urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent,
            "dependencies": r.dependencies, "inputs": r.inputs, "options": r.options,
        })
        if r.type == INSTANCE and r.raw_inputs.get("userData"):
            user_data[r.name] = user_data_text(r.raw_inputs["userData"])
    outputs = {k: (SECRET if secret else value) for k, (value, secret) in result.outputs.items()}
    plan = {"stack": stack, "project": config.PROJECT, "resources": resources, "outputs": outputs}
    return plan, user_data


def write(out: Path, plan: dict, user_data: dict[str, str]) -> None:
    """Write into a fresh temp dir, then move into place: no half-written plans."""
    out = out.resolve()
    tmp = Path(tempfile.mkdtemp(prefix=".plan-", dir=out.parent if out.parent.exists() else None))
    (tmp / "user-data").mkdir()
    (tmp / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    for name, text in sorted(user_data.items()):
        (tmp / "user-data" / f"{name}.yaml").write_text(text)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), str(out))


def _root_cause(e: BaseException) -> str:
    """The innermost error of the SDK's chain of "While processing ..." wrappers."""
    while e.__cause__ is not None:
        e = e.__cause__
    return f"{type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (pulumi config set --path syntax); VALUE is JSON or a string")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("OLD_DIR", "NEW_DIR"),
                        help="compare two plan directories instead")
    args = parser.parse_args(argv)

    if args.diff:
        from tools import plandiff

        return plandiff.main([str(p) for p in args.diff])
    if args.out is None:
        parser.error("--out DIR is required")
    try:
        sets = []
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--set {item}: expected KEY=VALUE")
            sets.append((key, parse_value(value)))
        plan, user_data = build(args.stack, sets)
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the program itself failed: say what, briefly
        print(f"error: the program failed while planning stack {args.stack}: {_root_cause(e)}", file=sys.stderr)
        return 1
    write(args.out, plan, user_data)
    print(f"{len(plan['resources'])} resources, {len(user_data)} nodes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
