"""Offline plan: what a stack would create, and what every node would receive.

    python -m tools.plan [--stack dev] [--set KEY=VALUE ...] [--previous OLD_DIR] --out DIR
    python -m tools.plan --diff OLD_DIR NEW_DIR

Evaluates the program for a stack under Pulumi's mock engine, with no credentials and no
Pulumi CLI, and writes DIR/plan.json and DIR/user-data/<instance>.yaml. With `--previous`,
the mock answers over that earlier plan as the engine over its state (kept ids and outputs,
ignoreChanges, new ids for replacements), and DIR/preview.json says what the engine would
do to each resource, in the shape of `pulumi preview --json`. Invalid config exits with
status 2 and one line naming the key, before anything is written. `--diff` prints the
markdown report of tools/plandiff and exits like diff(1): 0 if the plans are the same, 1 if
they differ, 2 on bad input. Runs from the test environment (requirements-dev.txt).
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
    return _project_keys(_stack_section(stack))


def _stack_section(stack: str) -> dict[str, Any]:
    """The `config:` section of Pulumi.<stack>.yaml, every namespace."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise UsageError(f"no stack config {path.name}")
    return read_stack_file(path).get("config") or {}


def _project_keys(section: dict[str, Any]) -> dict[str, Any]:
    raw = {}
    for key, value in section.items():
        # A near-miss of the project's namespace is a typo, not a provider's key.
        config.check_namespace(key)
        project, _, name = key.partition(":")
        if project != config.PROJECT:
            continue
        raw[name] = _mask_secure(value)
    return raw


_TOP_KEY = re.compile(r"^[^.\[]*")


def _secure_keys(section: dict[str, Any]) -> set[str]:
    """`project:key` of every top-level key whose value holds a `secure:` value: what the
    CLI would mark secret (PULUMI_CONFIG_SECRET_KEYS)."""
    return {key for key, value in section.items() if _has_secure(value)}


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def read_stack_file(path: Path) -> dict[str, Any]:
    """A stack file as data, or UsageError in one line naming the file and line: what the
    YAML parser, a list at the top or a key like `1:` would otherwise turn into a traceback."""
    text = path.read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{path.name}{line}: not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{path.name}: not valid YAML: {str(e).splitlines()[0]}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise UsageError(
            f"{path.name}:{root.start_mark.line + 1}: a stack file is a mapping "
            "(config: {...}), not a " + _yaml_kind(root)
        )
    section = next((v for k, v in root.value if k.value == "config"), None)
    if section is not None and not isinstance(section, yaml.MappingNode) and section.tag != _NULL:
        raise UsageError(
            f"{path.name}:{section.start_mark.line + 1}: config: must be a mapping "
            f"of keys to values, not a {_yaml_kind(section)}"
        )
    bad = _non_string_key(root)
    if bad is not None:
        shown = repr(bad.value) if isinstance(bad, yaml.ScalarNode) else f"a {_yaml_kind(bad)}"
        raise UsageError(
            f"{path.name}:{bad.start_mark.line + 1}: key {shown} is not a string (quote it)"
        )
    return yaml.safe_load(text) or {}


_NULL, _STR = "tag:yaml.org,2002:null", "tag:yaml.org,2002:str"


def _yaml_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    return "scalar"


def _non_string_key(node: yaml.Node) -> yaml.Node | None:
    """The first mapping key under node that YAML reads as something other than a string
    (1, true, null, a list): Pulumi's config keys and every field name are strings."""
    bad, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if not (isinstance(k, yaml.ScalarNode) and k.tag == _STR):
                    bad.append(k)
                todo.append(v)
        elif isinstance(n, yaml.SequenceNode):
            todo.extend(n.value)
    return min(bad, key=lambda k: k.start_mark.index, default=None)


def _mask_secure(value: Any) -> Any:
    # `pulumi config set --secret` values can't be decrypted offline.
    if isinstance(value, dict) and set(value) == {"secure"}:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _mask_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secure(v) for v in value]
    return value


# One part of a config path: a double-quoted name in brackets (`\"` for a quote; a backslash
# before anything else is itself), a list index, or a plain name (after a dot, but the first).
_PART = re.compile(
    r'\["(?P<quoted>(?:\\"|\\(?!")|[^"\\])*)"\]|\[(?P<index>\d+)\]|(?P<dot>\.)?(?P<name>[^.\[\]"]+)'
)


def parse_path(key: str) -> list[str | int]:
    """A `pulumi config set --path` key as its parts: `workerPools[0].labels["a.b/c"]` ->
    ["workerPools", 0, "labels", "a.b/c"]. Names are split at dots; a bracket holds a list
    index or a double-quoted name (for keys with dots or slashes, `\\"` for a quote)."""
    usage = f'--set {key}: not a config path like masters.count, workerPools[0].count or labels["a.b/c"]'
    parts: list[str | int] = []
    i = 0
    while i < len(key):
        m = _PART.match(key, i)
        if m is None and key.startswith('["', i):
            raise UsageError(f'--set {key}: a quoted name needs its closing "]')
        if m is None or (m["name"] is not None and bool(m["dot"]) != bool(parts)):
            raise UsageError(usage)
        if m["quoted"] is not None:
            parts.append(m["quoted"].replace('\\"', '"'))
        elif m["index"] is not None:
            parts.append(int(m["index"]))
        else:
            parts.append(m["name"])
        i = m.end()
    if not parts or not isinstance(parts[0], str):
        raise UsageError(usage)
    return parts


def set_path(raw: dict, key: str, value: Any) -> None:
    """`pulumi config set --path` semantics: masters.count, workerPools[0].count. A list
    grows by at most one entry, as Pulumi's does: `workerPools[10000000]` is a typo, and
    padding a list up to it would take all the memory there is."""
    parts = parse_path(key)
    node: Any = raw
    for part, nxt in zip(parts, parts[1:] + [None], strict=True):
        fresh = None if nxt is None else [] if isinstance(nxt, int) else {}
        if isinstance(part, int):
            if not isinstance(node, list):
                raise UsageError(f"--set {key}: [{part}] indexes something that is not a list")
            if part > len(node):
                raise UsageError(
                    f"--set {key}: index {part} is past the end of a list of {len(node)} "
                    f"(at most [{len(node)}], which adds one)"
                )
            if part == len(node):
                node.append(fresh)
        else:
            if not isinstance(node, dict):
                raise UsageError(
                    f"--set {key}: .{part} names a field of something that is not an object"
                )
            if nxt is not None and not isinstance(node.get(part), (dict, list)):
                node[part] = fresh
        if nxt is None:
            node[part] = value
        else:
            node = node[part]


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


def load_stack(stack: str, sets: list[tuple[str, Any]]):
    """A stack's raw config with overrides, and its validated settings (ConfigError first)."""
    section = _stack_section(stack)
    raw = _project_keys(section)
    for key, value in sets:
        set_path(raw, key, value)
    # A secret in plain text in the stack file is refused, as under the CLI; --set values are
    # the caller's own, never written to a stack file.
    secrets = _secure_keys(section) | {
        f"{config.PROJECT}:{_TOP_KEY.match(key).group(0)}" for key, _ in sets
    }
    return raw, config.load(config.raw_from_pulumi(engine_config(raw)), stack, secrets)


def evaluate_stack(stack: str, sets: list[tuple[str, Any]]):
    """A stack's config with overrides, validated (ConfigError first), then the program run
    under the mock engine: the Evaluation. Shared by the plan, the bench and the tests."""
    from tools.mockengine import evaluate

    raw, settings = load_stack(stack, sets)
    return evaluate(engine_config(raw), stack=stack, subnet=str(settings.network.cidr))


def build(stack: str, sets: list[tuple[str, Any]], previous=None):
    """Validate, then evaluate: (plan dict, {instance: user-data}). Raises ConfigError first.
    previous: a plandiff.Plan the mock answers over (CloudMocks)."""
    from tools.mockengine import SECRET, evaluate

    raw, settings = load_stack(stack, sets)
    result = evaluate(
        engine_config(raw),
        stack=stack,
        subnet=str(settings.network.cidr),
        prior=previous.resources if previous is not None else None,
    )

    resources, user_data = [], {}
    # Sorted by URN: registration order follows asyncio scheduling, the plan must not.
    for r in sorted(result.registrations, key=lambda r: r.urn):
        resources.append(
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                **({"id": r.id} if r.id else {}),
                "dependencies": r.dependencies,
                "inputs": r.inputs,
                "options": r.options,
            }
        )
        if r.type == INSTANCE and r.raw_inputs.get("userData"):
            user_data[r.name] = user_data_text(r.raw_inputs["userData"])
    outputs = {k: (SECRET if secret else value) for k, (value, secret) in result.outputs.items()}
    # The effective values of settings a running cluster cannot change (defaults applied):
    # no resource input shows them, and `--diff` warns when they move.
    fixed = {
        "podCidr": str(settings.pod_cidr),
        "serviceCidr": str(settings.service_cidr),
        "networkCidr": str(settings.network.cidr),
    }
    plan = {
        "stack": stack,
        "project": config.PROJECT,
        "resources": resources,
        "outputs": outputs,
        "settings": fixed,
    }
    if previous is not None:
        plan["plannedAgainst"] = previous.digest
    return plan, user_data


def preview_of(previous, plan: dict, user_data: dict[str, str]) -> dict:
    """preview.json: the engine's step per resource from the previous plan to this one."""
    from tools import plandiff

    return plandiff.preview(previous, plandiff.plan_of(plan, user_data, "plan.json"))


def write(out: Path, plan: dict, user_data: dict[str, str], preview: dict | None = None) -> None:
    """Write into a fresh temp dir, then move into place: no half-written plans."""
    out = out.resolve()
    tmp = Path(tempfile.mkdtemp(prefix=".plan-", dir=out.parent if out.parent.exists() else None))
    (tmp / "user-data").mkdir()
    (tmp / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    if preview is not None:
        # Keys in the engine's order (op, urn, states, reasons), as preview --json has them.
        (tmp / "preview.json").write_text(json.dumps(preview, indent=4) + "\n")
    for name, text in sorted(user_data.items()):
        (tmp / "user-data" / f"{name}.yaml").write_text(text)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), str(out))


def _previous(directory: Path, stack: str):
    """The earlier plan of the stack to plan over, or UsageError naming what is wrong."""
    from tools import plandiff

    try:
        previous = plandiff.load_plan(directory)
    except plandiff.PlanError as e:
        raise UsageError(f"--previous: {e}") from None
    if previous.stack != stack:
        raise UsageError(
            f"--previous {directory} is a plan of stack {previous.stack}, not of {stack}"
        )
    return previous


def _root_cause(e: BaseException) -> BaseException:
    """The innermost error of the SDK's chain of "While processing ..." wrappers. The chain
    can loop (the SDK re-raises an RPC's exception `from` itself), so each is visited once."""
    seen = {id(e)}
    while e.__cause__ is not None and id(e.__cause__) not in seen:
        e = e.__cause__
        seen.add(id(e))
    return e


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}"


def _check_environment() -> None:
    """The mock engine signs real certificates with `cryptography`, which the program itself
    does not need: requirements-dev.txt has it, the deploy venv (requirements.txt) does not."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise UsageError(
            "the offline plan needs the test environment: "
            "pip install -r requirements-dev.txt (cryptography is missing)"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key in pulumi config set --path syntax "
        '(workerPools[0].count, workerPools[0].labels["a.b/c"]); VALUE is JSON or a string',
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--previous",
        type=Path,
        metavar="OLD_DIR",
        help="plan over an earlier plan as the engine over its state, and write "
        "DIR/preview.json: each resource's step (create, same, update, replace, delete) "
        "in the shape of `pulumi preview --json`",
    )
    parser.add_argument(
        "--diff",
        nargs=2,
        type=Path,
        metavar=("OLD_DIR", "NEW_DIR"),
        help="compare two plan directories instead: markdown on stdout, "
        "exit 0 if the plans are the same, 1 if they differ, 2 on bad input",
    )
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
        _check_environment()
        previous = _previous(args.previous, args.stack) if args.previous else None
        plan, user_data = build(args.stack, sets, previous)
        preview = preview_of(previous, plan, user_data) if previous is not None else None
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the program itself failed: say what, briefly
        from tools.mockengine import PUBLIC_NETS, AddressesExhausted

        cause = _root_cause(e)
        if isinstance(cause, AddressesExhausted) and cause.net not in PUBLIC_NETS:
            # The subnet is too small for what the program makes: a config error, whether
            # or not the validator's count saw it coming.
            print(
                f"error: {config.PROJECT}:network.cidr: {cause}; use a larger subnet",
                file=sys.stderr,
            )
            return 2
        print(
            f"error: the program failed while planning stack {args.stack}: {_one_line(cause)}",
            file=sys.stderr,
        )
        return 1
    write(args.out, plan, user_data, preview)
    summary = ""
    if preview is not None:
        counts = preview["changeSummary"]
        summary = " (" + ", ".join(f"{n} {op}" for op, n in counts.items()) + ")"
    print(f"{len(plan['resources'])} resources, {len(user_data)} nodes -> {args.out}{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
