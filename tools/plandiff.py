"""Diff two offline plans (see tools/plan) into markdown a reviewer reads in a PR comment.

    python -m tools.plandiff OLD_DIR NEW_DIR [--max-chars N]

Each DIR is what `python -m tools.plan --out DIR` wrote: DIR/plan.json and
DIR/user-data/<instance name>.yaml. The report says what is added, removed and changed,
and for every change what the engine will do to the real thing: update in place, resize,
rebuild, or REPLACE (delete + create). Which inputs force what is not in the plan (the
engine only learns it from the provider at preview time), so it lives in `EFFECTS` below,
taken from the pinned providers' own documentation. A reviewer should read "this PR
replaces 3 instances" before anything runs.

Exit status, like diff(1): 0 no difference, 1 different, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

SECRET = "[secret]"

# What a changed input does to an existing resource, by the engine's type token. Patterns
# are input property paths as the engine receives them (camelCase), `[*]` for any list
# index; the longest matching pattern wins and a changed path no pattern matches is an
# in-place update. Sources: the pinned pulumi-openstack 5.5.3 is bridged from
# terraform-provider-openstack; its docs say per argument "Changing this creates a new
# server / rebuilds / resizes", and where docs and schema differ the schema's ForceNew
# (openstack/resource_openstack_compute_instance_v2.go) wins:
#   compute/instance: user_data, block_device.* (multiattach too, which the docs omit),
#     network.* (except access_network), network_mode, scheduler_hints.* (hints only act
#     at boot, so a server group added later replaces the server; the docs omit it),
#     availability_zone(_hints), config_drive, key_pair, region, hypervisor_hostname
#     create a new server; image_id/image_name/personality rebuild it (same server, root
#     disk re-imaged); flavor_id/flavor_name resize it (reboot); metadata,
#     security_groups, tags, name, hostname update in place.
#   networking/port: network_id, device_id, device_owner, mac_address, region, tenant_id
#     create a new port; fixed_ips, security groups, allowed address pairs update.
#   blockstorage/volume: availability_zone, image_id, snapshot_id, source_vol_id,
#     backup_id, region create a new volume; size extends it in place.
#   compute/volumeAttach: the resource has no Update at all, every input replaces it.
#   networking/secGroupRule: every argument is ForceNew.
#   networking/floatingIp: pool, dns_name, dns_domain, region, tenant_id create a new IP.
#   networking/subnet: network_id, cidr, ip_version, prefix_length, subnetpool_id,
#     ipv6 modes, region, tenant_id create a new subnet (and so every port on it).
#   command:remote:Command (pulumi-command 1.x): without an `update` command, a change
#     re-runs `create` in place; `triggers` replace it (delete runs, then create).
#   tls and random resources: every input is ForceNew in those providers.
REPLACE, REBUILD, RESIZE, RERUN, UPDATE, IGNORED = (
    "replace", "rebuild", "resize", "rerun", "update", "ignored")
EFFECT_RANK = {IGNORED: 0, UPDATE: 1, RERUN: 2, RESIZE: 3, REBUILD: 4, REPLACE: 5}
EFFECT_TEXT = {
    REPLACE: "**replace** (delete + create)",
    REBUILD: "**rebuild** in place (root disk re-imaged, node state lost)",
    RESIZE: "resize in place (the server reboots)",
    RERUN: "update: the command runs again",
    UPDATE: "update in place",
    IGNORED: "ignored (ignoreChanges): not applied to the existing resource",
}
INSTANCE = "openstack:compute/instance:Instance"
EFFECTS: dict[str, dict[str, str]] = {
    INSTANCE: {
        "userData": REPLACE,
        "blockDevices": REPLACE,
        "networks": REPLACE,
        "networks[*].accessNetwork": UPDATE,
        "networkMode": REPLACE,
        "schedulerHints": REPLACE,
        "availabilityZone": REPLACE,
        "availabilityZoneHints": REPLACE,
        "configDrive": REPLACE,
        "keyPair": REPLACE,
        "region": REPLACE,
        "hypervisorHostname": REPLACE,
        "imageId": REBUILD,
        "imageName": REBUILD,
        "personalities": REBUILD,
        "flavorId": RESIZE,
        "flavorName": RESIZE,
    },
    "openstack:networking/port:Port": {
        key: REPLACE for key in (
            "networkId", "deviceId", "deviceOwner", "macAddress", "region", "tenantId")
    },
    "openstack:blockstorage/volume:Volume": {
        **{key: REPLACE for key in (
            "availabilityZone", "imageId", "snapshotId", "sourceVolId", "backupId",
            "region")},
        "size": RESIZE,
    },
    "openstack:compute/volumeAttach:VolumeAttach": {"": REPLACE},
    "openstack:networking/secGroupRule:SecGroupRule": {"": REPLACE},
    "openstack:networking/floatingIp:FloatingIp": {
        key: REPLACE for key in ("pool", "dnsName", "dnsDomain", "region", "tenantId")
    },
    "openstack:networking/subnet:Subnet": {
        key: REPLACE for key in (
            "networkId", "cidr", "ipVersion", "prefixLength", "subnetpoolId",
            "ipv6AddressMode", "ipv6RaMode", "region", "tenantId")
    },
    "command:remote:Command": {"": RERUN, "triggers": REPLACE},
}
# Whole providers whose every input is ForceNew.
PROVIDER_EFFECTS = {"tls": REPLACE, "random": REPLACE}

LONG = 60  # strings longer than this (or multi-line) are summarized in tables


class PlanError(Exception):
    """The directory is not an offline plan; the message names what is wrong."""


@dataclass
class Plan:
    stack: str
    project: str
    resources: dict[str, dict[str, Any]]  # by URN
    outputs: dict[str, Any]
    user_data: dict[str, str]  # instance resource name -> cloud-config text


@dataclass
class Change:
    path: str
    old: Any
    new: Any
    effect: str


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    parent: str | None
    changes: list[Change] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)  # options/dependency notes

    @property
    def effect(self) -> str | None:
        if not self.changes:
            return None
        return max((c.effect for c in self.changes), key=EFFECT_RANK.__getitem__)


_MISSING = object()


def load_plan(directory: Path) -> Plan:
    """Read DIR/plan.json and DIR/user-data/*.yaml; raise PlanError on anything malformed."""
    directory = Path(directory)
    plan_file = directory / "plan.json"
    if not plan_file.is_file():
        raise PlanError(f"{plan_file}: no such file (is {directory} an offline plan dir?)")
    try:
        data = json.loads(plan_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{plan_file}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise PlanError(f"{plan_file}: expected an object with a 'resources' list")
    resources: dict[str, dict[str, Any]] = {}
    for i, res in enumerate(data["resources"]):
        if not isinstance(res, dict) or not all(
                isinstance(res.get(k), str) for k in ("urn", "type", "name")):
            raise PlanError(f"{plan_file}: resources[{i}] lacks a string urn/type/name")
        if res["urn"] in resources:
            raise PlanError(f"{plan_file}: duplicate urn {res['urn']}")
        resources[res["urn"]] = res
    user_data: dict[str, str] = {}
    ud_dir = directory / "user-data"
    if ud_dir.is_dir():
        for path in sorted(ud_dir.glob("*.yaml")):
            try:
                user_data[path.stem] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PlanError(f"{path}: unreadable: {exc}") from None
    outputs = data.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise PlanError(f"{plan_file}: 'outputs' is not an object")
    return Plan(str(data.get("stack", "")), str(data.get("project", "")),
                resources, outputs, user_data)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a JSON value: {"a": [{"b": 1}]} -> {"a[0].b": 1}."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", path)


def _matches(path: str, pattern: str) -> bool:
    """Pulumi property-path prefix match: 'userData' matches 'userData' and 'a' 'a[0].b'."""
    if pattern in ("", "*"):
        return True
    generic = _generic(path)
    for candidate in (path, generic):
        if candidate == pattern or candidate.startswith((pattern + ".", pattern + "[")):
            return True
    return False


def effect_of(rtype: str, path: str, options: dict[str, Any]) -> str:
    """What changing input `path` of a resource of type `rtype` does, given its options."""
    if any(_matches(path, p) for p in options.get("ignoreChanges") or []):
        return IGNORED
    if any(_matches(path, p) for p in options.get("replaceOnChanges") or []):
        return REPLACE
    table = EFFECTS.get(rtype)
    if table is not None:
        hits = [p for p in table if _matches(path, p)]
        if hits:
            return table[max(hits, key=len)]
        return UPDATE
    return PROVIDER_EFFECTS.get(rtype.split(":", 1)[0], UPDATE)


def _natural(name: str) -> list:
    """worker-2 before worker-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _short_type(rtype: str) -> str:
    return rtype.rsplit(":", 1)[-1]


def _urn_name(urn: str) -> str:
    return urn.split("::", 3)[-1] if urn.count("::") >= 3 else urn


def _urn_type(urn: str) -> str:
    parts = urn.split("::", 3)
    return parts[2].rsplit("$", 1)[-1] if len(parts) == 4 else ""


def _redact(text: str) -> str:
    """Keep private key bodies out of PR comments, even the offline plan's fake ones."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if inside:
            if "-----END" in line and "PRIVATE KEY-----" in line:
                inside = False
                out.append(line)
            continue
        out.append(line)
        if "-----BEGIN" in line and "PRIVATE KEY-----" in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{SECRET}\n")
    return "".join(out)


def _show(value: Any) -> str:
    """One table cell for a value: short values verbatim, long ones summarized."""
    if value is _MISSING:
        return "*(absent)*"
    if value == SECRET:
        return f"`{SECRET}`"
    if isinstance(value, str) and (len(value) > LONG or "\n" in value):
        first = value.strip().splitlines()[0] if value.strip() else ""
        first = first[:40] + ("…" if len(first) > 40 else "")
        digest = hashlib.sha256(value.encode()).hexdigest()[:10]
        text = (f"{json.dumps(first)}… ({value.count(chr(10)) + 1} lines, "
                f"{len(value.encode())} B, sha256 {digest})")
    else:
        text = json.dumps(value, sort_keys=True)
    text = text.replace("|", "\\|")
    tick = "``" if "`" in text else "`"
    return f"{tick}{text}{tick}"


def _diff_resource(old: dict[str, Any], new: dict[str, Any], old_ud: str | None,
                   new_ud: str | None) -> ResourceDiff:
    rd = ResourceDiff(new["urn"], new["type"], new["name"], new.get("parent"))
    options = new.get("options") or {}
    a, b = _flatten(old.get("inputs") or {}), _flatten(new.get("inputs") or {})
    ud_changed = old_ud != new_ud and not (old_ud is None or new_ud is None)
    for path in sorted(set(a) | set(b)):
        va, vb = a.get(path, _MISSING), b.get(path, _MISSING)
        if path == "userData" and ud_changed:
            continue  # reported once below, from the decoded cloud-config
        if va != vb:
            rd.changes.append(Change(path, va, vb, effect_of(rd.type, path, options)))
    if ud_changed:
        rd.changes.append(Change("userData", old_ud, new_ud,
                                 effect_of(rd.type, "userData", options)))
    old_opts, new_opts = old.get("options") or {}, options
    for key in sorted(set(old_opts) | set(new_opts)):
        if old_opts.get(key) != new_opts.get(key):
            rd.meta.append(f"option `{key}`: {_show(old_opts.get(key, _MISSING))} → "
                           f"{_show(new_opts.get(key, _MISSING))}")
    old_deps, new_deps = set(old.get("dependencies") or []), set(new.get("dependencies") or [])
    if old_deps != new_deps:
        added = ", ".join(sorted(_urn_name(u) for u in new_deps - old_deps)) or "-"
        gone = ", ".join(sorted(_urn_name(u) for u in old_deps - new_deps)) or "-"
        rd.meta.append(f"waits for: +[{added}] −[{gone}] (ordering only)")
    if old.get("parent") != new.get("parent"):
        rd.meta.append(f"parent: {_urn_name(old.get('parent') or '-')} → "
                       f"{_urn_name(new.get('parent') or '-')}")
    return rd


def _where(res: dict[str, Any]) -> str:
    parent = res.get("parent")
    if not parent or _urn_type(parent) == "pulumi:pulumi:Stack":
        return ""
    return f" in {_short_type(_urn_type(parent))} `{_urn_name(parent)}`"


def _user_data_blocks(old: Plan, new: Plan, ignored: set[str]) -> list[str]:
    """One collapsible unified diff per distinct user-data change; nodes whose changed
    lines are identical (a version bump on 30 workers) share one block."""
    groups: dict[tuple[str, ...], list[tuple[str, list[str]]]] = {}
    for name in sorted(set(old.user_data) | set(new.user_data), key=_natural):
        a, b = old.user_data.get(name), new.user_data.get(name)
        if a == b or a is None or b is None:
            continue  # added/removed nodes are listed as added/removed instances
        lines = list(difflib.unified_diff(
            _redact(a).splitlines(keepends=True), _redact(b).splitlines(keepends=True),
            f"a/user-data/{name}.yaml", f"b/user-data/{name}.yaml", n=3))
        key = tuple(ln for ln in lines[2:] if ln[:1] in "+-")
        groups.setdefault(key, []).append((name, lines))
    blocks = []
    for key, members in groups.items():
        names = [n for n, _ in members]
        plus = sum(1 for ln in key if ln.startswith("+"))
        minus = len(key) - plus
        note = ""
        if all(n in ignored for n in names):
            note = " (ignored by the existing VMs: applies to newly created ones)"
        body = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in members[0][1])
        fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
        shown = ", ".join(names) if len(names) <= 6 else (
            ", ".join(names[:5]) + f" and {len(names) - 5} more")
        same = (f"Shown for {names[0]}; the same lines change on all {len(names)}.\n\n"
                if len(names) > 1 else "")
        blocks.append(
            f"<details><summary>user-data of {shown}: +{plus} −{minus}{note}</summary>\n\n"
            f"{same}{fence}diff\n{body}{fence}\n</details>\n")
    return blocks


def _compute(old: Plan, new: Plan) -> tuple[list[str], list[str], bool]:
    """Head sections, user-data blocks, and whether anything differs."""
    added = [new.resources[u] for u in new.resources if u not in old.resources]
    removed = [old.resources[u] for u in old.resources if u not in new.resources]
    diffs = []
    for urn, res in new.resources.items():
        if urn not in old.resources:
            continue
        before, name = old.resources[urn], res["name"]
        # user-data files are named after instances; only a resource that takes userData
        # (not a command or port that happens to share the name) is paired with one.
        takes_ud = res["type"] == INSTANCE or "userData" in (res.get("inputs") or {})
        diffs.append(_diff_resource(before, res,
                                    old.user_data.get(name) if takes_ud else None,
                                    new.user_data.get(name) if takes_ud else None))
    changed = [d for d in diffs if d.changes]
    meta_only = [d for d in diffs if d.meta and not d.changes]
    applied = [d for d in changed if d.effect != IGNORED]
    replaced = [d for d in changed if d.effect == REPLACE]
    rebuilt = [d for d in changed if d.effect == REBUILD]
    out_keys = sorted(k for k in set(old.outputs) | set(new.outputs)
                      if old.outputs.get(k, _MISSING) != new.outputs.get(k, _MISSING))
    ud_names = {n for n in set(old.user_data) & set(new.user_data)
                if old.user_data[n] != new.user_data[n]}
    different = bool(added or removed or changed or meta_only or out_keys or ud_names
                     or set(old.user_data) != set(new.user_data))

    title = f"## Offline plan diff: stack `{new.stack or '?'}`"
    if old.stack != new.stack:
        title += f" (old plan is stack `{old.stack}`)"
    head = [title + "\n"]
    if not different:
        head.append("**No changes.** Both plans register the same resources with the "
                    "same inputs, options and user-data.\n")
        return head, [], False
    head.append(
        f"**{len(added)} to add, {len(removed)} to remove, {len(applied)} to change "
        f"({len(replaced)} replaced), {len(changed) - len(applied)} with ignored changes, "
        f"{len(new.resources) - len(added) - len(changed)} unchanged.**\n")
    if replaced or rebuilt:
        for label, group in (("replaces", replaced), ("rebuilds", rebuilt)):
            if not group:
                continue
            by_kind: dict[str, list[str]] = {}
            for d in group:
                kind = _short_type(d.type) + _where(new.resources[d.urn])
                by_kind.setdefault(kind, []).append(d.name)
            head.append(f"> [!WARNING]\n> This change **{label} {len(group)} "
                        f"resource{'s' if len(group) != 1 else ''}**:\n" + "".join(
                            f"> - {len(names)} × {kind}: {', '.join(names)}\n"
                            for kind, names in by_kind.items()))
    else:
        head.append("No resource is replaced or rebuilt.\n")

    def table(rows: list[dict[str, Any]]) -> str:
        lines = ["| type | name | where |", "| --- | --- | --- |"]
        lines += [f"| `{_short_type(r['type'])}` | `{r['name']}` | "
                  f"{_where(r).removeprefix(' in ') or '-'} |" for r in rows]
        return "\n".join(lines) + "\n"

    if added:
        head.append(f"### Added ({len(added)})\n\n" + table(added))
    if removed:
        head.append(f"### Removed ({len(removed)})\n\n" + table(removed))
    if changed:
        # 300 workers bumped the same way make one entry, not 300 identical tables.
        groups: dict[tuple, list[ResourceDiff]] = {}
        for d in sorted(changed, key=lambda d: (-EFFECT_RANK[d.effect], d.type,
                                                 _natural(d.name))):
            key = (d.type, d.effect, tuple((c.path, c.effect) for c in d.changes),
                   tuple(d.meta))
            groups.setdefault(key, []).append(d)
        parts = [f"### Changed ({len(changed)})\n"]
        for (rtype, effect, _, meta), members in groups.items():
            first = members[0]
            names = ", ".join(f"`{d.name}`" for d in members)
            count = f"{len(members)} × " if len(members) > 1 else ""
            parts.append(f"#### {count}`{_short_type(rtype)}` {names}: {EFFECT_TEXT[effect]}\n")
            if len(members) > 1:
                parts.append(f"Values shown for `{first.name}`.\n")
            parts.append("| input | old | new | effect |\n| --- | --- | --- | --- |\n" + "".join(
                f"| `{c.path}` | {_show(c.old)} | {_show(c.new)} | {c.effect} |\n"
                for c in first.changes))
            if meta:
                parts.append("".join(f"- {m}\n" for m in meta))
            if effect == REPLACE and (new.resources[first.urn].get("options") or {}).get(
                    "deleteBeforeReplace"):
                parts.append("- deleteBeforeReplace: the old one is deleted first.\n")
        head.append("\n".join(parts))
    if meta_only:
        head.append(f"### Options or ordering only ({len(meta_only)}): no cloud change\n\n"
                    + "".join(f"- `{_short_type(d.type)}` `{d.name}`: {'; '.join(d.meta)}\n"
                              for d in meta_only))
    if out_keys:
        head.append("### Stack outputs changed\n\n" + "".join(
            f"- `{k}`: {_show(old.outputs.get(k, _MISSING))} → "
            f"{_show(new.outputs.get(k, _MISSING))}\n" for k in out_keys))
    ignored_ud = {d.name for d in changed for c in d.changes
                  if c.path == "userData" and c.effect == IGNORED}
    blocks = _user_data_blocks(old, new, ignored_ud)
    if blocks:
        head.append(f"### User-data ({len(ud_names)} node{'s' if len(ud_names) != 1 else ''})\n")
    return head, blocks, True


def diff_plans(old_dir: Path, new_dir: Path, max_chars: int = 0) -> str:
    """Markdown report of what changes from the plan in old_dir to the one in new_dir.

    max_chars > 0 keeps the report under that size (a GitHub comment holds 65536) by
    dropping whole user-data diffs from the end, saying how many were dropped."""
    head, blocks, _ = _compute(load_plan(old_dir), load_plan(new_dir))
    return _render(head, blocks, max_chars)


def _render(head: list[str], blocks: list[str], max_chars: int) -> str:
    text = "\n".join(head)
    kept = []
    for i, block in enumerate(blocks):
        tail = (f"\n*{len(blocks) - i} more user-data diff(s) left out to fit; "
                "the plan directories are attached as artifacts.*\n")
        if max_chars and len(text) + 1 + len("\n".join(kept + [block])) + len(tail) > max_chars:
            return text + "\n" + "\n".join(kept) + tail
        kept.append(block)
    return text + ("\n" + "\n".join(kept) if kept else "")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the diff; 0 no difference, 1 different, 2 bad input."""
    parser = argparse.ArgumentParser(prog="python -m tools.plandiff",
                                     description="Diff two offline plan directories.")
    parser.add_argument("old_dir", type=Path)
    parser.add_argument("new_dir", type=Path)
    parser.add_argument("--max-chars", type=int, default=0,
                        help="keep the markdown under N characters (0: no limit)")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed usage
        return 0 if exc.code == 0 else 2
    try:
        head, blocks, different = _compute(load_plan(args.old_dir), load_plan(args.new_dir))
    except PlanError as exc:
        print(f"plandiff: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(_render(head, blocks, args.max_chars))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
