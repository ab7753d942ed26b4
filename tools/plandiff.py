"""Diff two offline plans (see tools/plan) into markdown a reviewer reads in a PR comment.

    python -m tools.plandiff OLD_DIR NEW_DIR [--max-chars N]

Each DIR is what `python -m tools.plan --out DIR` wrote: DIR/plan.json and
DIR/user-data/<instance name>.yaml. The report says what is added, removed and changed,
and for every change what the engine will do to the real thing: update in place, resize,
rebuild, or REPLACE (delete + create). Which inputs force what is not in the plan (the
engine only learns it from the provider at preview time), so it lives in `EFFECTS` below,
taken from the pinned providers' own documentation. What can break a running cluster
comes first, in warning boxes: deleted instances, a moving API endpoint, a new pod or
Service network, replacements and rebuilds; then a note for what changes on running nodes
without showing in their VMs (the masters an API server setting reconfigures). A reviewer
should read "this PR replaces 3 instances" before anything runs.

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
from typing import Any
from collections.abc import Sequence

from components.roles import GENERATIONAL, Role, role_of
from tools import urn as urns

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
#     ipv6 modes, region, tenant_id create a new subnet (and so every port on it: a port
#     updates its fixed_ips to the new subnet, and gets a new address there).
#   networking/routerInterface: the resource has no Update, every input replaces it.
#   command:remote:Command (pulumi-command 1.x, remote/commandController.go Update): a change
#     runs `update`, or without one `create` again, in place; a command with neither (only
#     a `delete` step) runs nothing then, the change only replaces what runs at its delete;
#     `triggers` replace it (delete runs, then create).
#   tls and random resources: every input is ForceNew in those providers.
REPLACE, REBUILD, RESIZE, RERUN, UPDATE, AT_DELETE, IGNORED = (
    "replace",
    "rebuild",
    "resize",
    "rerun",
    "update",
    "at-delete",
    "ignored",
)
EFFECT_RANK = {IGNORED: 0, AT_DELETE: 1, UPDATE: 2, RERUN: 3, RESIZE: 4, REBUILD: 5, REPLACE: 6}
EFFECT_TEXT = {
    REPLACE: "**replace** (delete + create)",
    REBUILD: "**rebuild** in place (root disk re-imaged, node state lost)",
    RESIZE: "resize in place (the server reboots)",
    RERUN: "update: the command runs again",
    UPDATE: "update in place",
    AT_DELETE: "update in place: nothing runs now, only what runs at delete changes",
    IGNORED: "ignored (ignoreChanges): not applied to the existing resource",
}
INSTANCE = "openstack:compute/instance:Instance"
COMMAND = "command:remote:Command"
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
        key: REPLACE
        for key in ("networkId", "deviceId", "deviceOwner", "macAddress", "region", "tenantId")
    },
    "openstack:blockstorage/volume:Volume": {
        **{
            key: REPLACE
            for key in (
                "availabilityZone",
                "imageId",
                "snapshotId",
                "sourceVolId",
                "backupId",
                "region",
            )
        },
        "size": RESIZE,
    },
    "openstack:compute/volumeAttach:VolumeAttach": {"": REPLACE},
    "openstack:networking/routerInterface:RouterInterface": {"": REPLACE},
    "openstack:networking/secGroupRule:SecGroupRule": {"": REPLACE},
    "openstack:networking/floatingIp:FloatingIp": {
        key: REPLACE for key in ("pool", "dnsName", "dnsDomain", "region", "tenantId")
    },
    "openstack:networking/subnet:Subnet": {
        key: REPLACE
        for key in (
            "networkId",
            "cidr",
            "ipVersion",
            "prefixLength",
            "subnetpoolId",
            "ipv6AddressMode",
            "ipv6RaMode",
            "region",
            "tenantId",
        )
    },
    "command:remote:Command": {"": RERUN, "triggers": REPLACE},
}
# Whole providers whose every input is ForceNew.
PROVIDER_EFFECTS = {"tls": REPLACE, "random": REPLACE}

LONG_LINE = 160  # one-line strings longer than this are shortened in tables


class PlanError(Exception):
    """The directory is not an offline plan; the message names what is wrong."""


@dataclass
class Plan:
    stack: str
    project: str
    resources: dict[str, dict[str, Any]]  # by URN
    outputs: dict[str, Any]
    user_data: dict[str, str]  # instance resource name -> cloud-config text
    settings: dict[str, Any] = field(default_factory=dict)  # effective values (tools/plan)
    digest: str = ""  # of plan.json's content (plan_digest)
    planned_against: str = ""  # the digest of the plan it was planned over (--previous)


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


def plan_digest(data: dict[str, Any]) -> str:
    """What identifies a plan.json: its content, whatever the formatting."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _read_plan_file(plan_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(plan_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{plan_file}: not valid JSON: {exc}") from None
    return _checked(plan_file, data)


def _checked(plan_file: Path | str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise PlanError(f"{plan_file}: expected an object with a 'resources' list")
    for key in ("outputs", "settings"):
        if not isinstance(data.get(key) or {}, dict):
            raise PlanError(f"{plan_file}: '{key}' is not an object")
    return data


def _resources_by_urn(plan_file: Path | str, listed: list[Any]) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for i, res in enumerate(listed):
        if not isinstance(res, dict) or not all(
            isinstance(res.get(k), str) for k in ("urn", "type", "name")
        ):
            raise PlanError(f"{plan_file}: resources[{i}] lacks a string urn/type/name")
        if res["urn"] in resources:
            raise PlanError(f"{plan_file}: duplicate urn {res['urn']}")
        resources[res["urn"]] = res
    return resources


def _read_user_data(ud_dir: Path) -> dict[str, str]:
    user_data: dict[str, str] = {}
    for path in sorted(ud_dir.glob("*.yaml")) if ud_dir.is_dir() else ():
        try:
            user_data[path.stem] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"{path}: unreadable: {exc}") from None
    return user_data


def load_plan(directory: Path) -> Plan:
    """Read DIR/plan.json and DIR/user-data/*.yaml; raise PlanError on anything malformed."""
    directory = Path(directory)
    plan_file = directory / "plan.json"
    if not plan_file.is_file():
        raise PlanError(f"{plan_file}: no such file (is {directory} an offline plan dir?)")
    return plan_of(_read_plan_file(plan_file), _read_user_data(directory / "user-data"), plan_file)


def plan_of(data: dict[str, Any], user_data: dict[str, str], source: Path | str) -> Plan:
    """The Plan of a plan.json's content and its user-data (source names it in errors)."""
    data = _checked(source, data)
    resources = _resources_by_urn(source, data["resources"])
    return Plan(
        str(data.get("stack", "")),
        str(data.get("project", "")),
        _engine_urns(resources),
        data.get("outputs") or {},
        user_data,
        data.get("settings") or {},
        plan_digest(data),
        str(data.get("plannedAgainst") or ""),
    )


def _engine_urns(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A plan written before tools/plan made the engine's URNs, with the engine's URNs
    (tools/urn), rebuilt from each resource's parent: a diff across that change compares
    the same resources instead of reporting every one removed and added again."""
    if not any(urns.is_legacy(u) for u in resources):
        return resources
    new: dict[str, str] = {}

    def convert(old: str) -> str:
        if old not in resources:
            return old  # the stack, or a URN from outside the plan
        if old not in new:
            res = resources[old]
            parent = res.get("parent") or ""
            stack, project = old.split("::", 2)[0].removeprefix("urn:pulumi:"), old.split("::")[1]
            new[old] = urns.make(
                stack, project, convert(parent) if parent else "", res["type"], res["name"]
            )
        return new[old]

    out = {}
    for old, res in resources.items():
        res = dict(
            res, urn=convert(old), dependencies=[convert(d) for d in res.get("dependencies") or []]
        )
        if res.get("parent"):
            res["parent"] = convert(res["parent"])
        out[res["urn"]] = res
    return out


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


def effect_of(
    rtype: str, path: str, options: dict[str, Any], inputs: dict[str, Any] | None = None
) -> str:
    """What changing input `path` of a resource of type `rtype` does, given its options and
    (when known) its new inputs."""
    if any(_matches(path, p) for p in options.get("ignoreChanges") or []):
        return IGNORED
    if any(_matches(path, p) for p in options.get("replaceOnChanges") or []):
        return REPLACE
    table = EFFECTS.get(rtype)
    if table is None:
        return PROVIDER_EFFECTS.get(rtype.split(":", 1)[0], UPDATE)
    hits = [p for p in table if _matches(path, p)]
    effect = table[max(hits, key=len)] if hits else UPDATE
    if (
        effect == RERUN
        and inputs is not None
        and not (inputs.get("update") or inputs.get("create"))
    ):
        # An update runs `update`, else `create`: a command with neither runs nothing.
        return AT_DELETE
    return effect


def _natural(name: str) -> list:
    """worker-2 before worker-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _short_type(rtype: str) -> str:
    return rtype.rsplit(":", 1)[-1]


_urn_name, _urn_type = urns.name_of, urns.type_of


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
    """One table cell for a value: short values verbatim, long ones summarized. A single
    line (an image reference) is kept whole up to LONG_LINE, and past it keeps its end,
    where the tag is."""
    if value is _MISSING:
        return "*(absent)*"
    if value == SECRET:
        return f"`{SECRET}`"
    digest = hashlib.sha256(value.encode()).hexdigest()[:10] if isinstance(value, str) else ""
    if isinstance(value, str) and "\n" in value.strip():
        first = value.strip().splitlines()[0]
        first = first[:40] + ("…" if len(first) > 40 else "")
        text = (
            f"{json.dumps(first, ensure_ascii=False)}… ({value.count(chr(10)) + 1} lines, "
            f"{len(value.encode())} B, sha256 {digest})"
        )
    elif isinstance(value, str) and len(value) > LONG_LINE:
        shown = value[:60] + "…" + value[-40:]
        text = f"{json.dumps(shown, ensure_ascii=False)} ({len(value.encode())} B, sha256 {digest})"
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = text.replace("|", "\\|")
    tick = "``" if "`" in text else "`"
    return f"{tick}{text}{tick}"


def _diff_resource(
    old: dict[str, Any], new: dict[str, Any], old_ud: str | None, new_ud: str | None
) -> ResourceDiff:
    rd = ResourceDiff(new["urn"], new["type"], new["name"], new.get("parent"))
    options, inputs = new.get("options") or {}, new.get("inputs") or {}
    a, b = _flatten(old.get("inputs") or {}), _flatten(inputs)
    ud_changed = old_ud != new_ud and not (old_ud is None or new_ud is None)
    for path in sorted(set(a) | set(b)):
        va, vb = a.get(path, _MISSING), b.get(path, _MISSING)
        if path == "userData" and ud_changed:
            continue  # reported once below, from the decoded cloud-config
        if va != vb:
            rd.changes.append(Change(path, va, vb, effect_of(rd.type, path, options, inputs)))
    if ud_changed:
        rd.changes.append(
            Change("userData", old_ud, new_ud, effect_of(rd.type, "userData", options, inputs))
        )
    old_opts, new_opts = old.get("options") or {}, options
    for key in sorted(set(old_opts) | set(new_opts)):
        if old_opts.get(key) != new_opts.get(key):
            rd.meta.append(
                f"option `{key}`: {_show(old_opts.get(key, _MISSING))} → "
                f"{_show(new_opts.get(key, _MISSING))}"
            )
    old_deps, new_deps = set(old.get("dependencies") or []), set(new.get("dependencies") or [])
    if old_deps != new_deps:
        added = ", ".join(sorted(_urn_name(u) for u in new_deps - old_deps)) or "-"
        gone = ", ".join(sorted(_urn_name(u) for u in old_deps - new_deps)) or "-"
        rd.meta.append(f"waits for: +[{added}] −[{gone}] (ordering only)")
    if old.get("parent") != new.get("parent"):
        rd.meta.append(
            f"parent: {_urn_name(old.get('parent') or '-')} → {_urn_name(new.get('parent') or '-')}"
        )
    return rd


@dataclass
class Step:
    """What the engine does to one resource, as `pulumi preview --json` says it."""

    op: str  # create, same, update, replace, delete
    diff_reasons: list[str] = field(default_factory=list)  # top-level inputs that change
    replace_reasons: list[str] = field(default_factory=list)  # those that force the replace
    detailed: dict[str, dict[str, Any]] = field(default_factory=dict)  # by property path


def _top(path: str) -> str:
    return re.match(r"[^.\[]*", path).group(0)


def step(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Step:
    """The engine's step for a resource of the old plan (None: new) registered as new
    (None: gone). Ignored changes are none to the engine (it sends the old values); a
    rebuild or resize is an update in place."""
    if old is None:
        return Step("create")
    if new is None:
        return Step("delete")
    changes = [c for c in _diff_resource(old, new, None, None).changes if c.effect != IGNORED]
    if not changes:
        return Step("same")
    replace = [c for c in changes if c.effect == REPLACE]
    detailed = {}
    for c in changes:
        kind = "add" if c.old is _MISSING else "delete" if c.new is _MISSING else "update"
        detailed[c.path] = {
            "kind": kind + ("-replace" if c.effect == REPLACE else ""),
            "inputDiff": True,
        }
    return Step(
        "replace" if replace else "update",
        sorted({_top(c.path) for c in changes}),
        sorted({_top(c.path) for c in replace}),
        detailed,
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def _seconds(text: str) -> float:
    """A Go duration as the SDK sends customTimeouts ("20m", "1h30m") in seconds."""
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in _DURATION.findall(text))


def _state(res: dict[str, Any], known_id: bool) -> dict[str, Any]:
    """A resource as the engine's state shows it (apitype.ResourceV3): inputs, no outputs
    (a plan knows what the program sends, not what the cloud answers)."""
    options = res.get("options") or {}
    state: dict[str, Any] = {"urn": res["urn"], "custom": bool(res.get("custom"))}
    if known_id and res.get("id"):
        state["id"] = res["id"]
    state["type"] = res["type"]
    if res.get("inputs"):
        state["inputs"] = res["inputs"]
    if res.get("parent"):
        state["parent"] = res["parent"]
    if options.get("protect"):
        state["protect"] = True
    if res.get("dependencies"):
        state["dependencies"] = res["dependencies"]
    if options.get("additionalSecretOutputs"):
        state["additionalSecretOutputs"] = options["additionalSecretOutputs"]
    if options.get("customTimeouts"):
        state["customTimeouts"] = {
            k: _seconds(v) for k, v in options["customTimeouts"].items() if _seconds(v)
        }
    return state


def preview(old: Plan, new: Plan) -> dict[str, Any]:
    """The steps from old to new in `pulumi preview --json`'s shape (display.PreviewDigest:
    steps of op, urn, oldState, newState, diffReasons, replaceReasons, detailedDiff; and
    changeSummary), every resource's step included, `same` ones too (as with --show-sames),
    and the stack's first, as the engine always shows it. The order is the new plan's, then
    what it deletes."""
    stack = urns.make(new.stack, new.project, None, urns.STACK_TYPE, f"{new.project}-{new.stack}")
    steps: list[dict[str, Any]] = [
        {"op": "same", "urn": stack, "detailedDiff": None},
    ]
    for urn, res in new.resources.items():
        if res["type"] == urns.STACK_TYPE:
            continue  # tools/plan lists no stack; a plan that does has it first already
        prior = old.resources.get(urn)
        s = step(prior, res)
        entry: dict[str, Any] = {"op": s.op, "urn": urn}
        if prior is not None:
            entry["oldState"] = _state(prior, known_id=True)
        entry["newState"] = _state(res, known_id=s.op in ("same", "update"))
        if s.diff_reasons:
            entry["diffReasons"] = s.diff_reasons
        if s.replace_reasons:
            entry["replaceReasons"] = s.replace_reasons
        entry["detailedDiff"] = s.detailed or None
        steps.append(entry)
    for urn, res in old.resources.items():
        if urn not in new.resources and res["type"] != urns.STACK_TYPE:
            steps.append(
                {"op": "delete", "urn": urn, "oldState": _state(res, True), "detailedDiff": None}
            )
    summary: dict[str, int] = {}
    for entry in steps:
        summary[entry["op"]] = summary.get(entry["op"], 0) + 1
    return {"steps": steps, "changeSummary": dict(sorted(summary.items()))}


def _where(res: dict[str, Any]) -> str:
    parent = res.get("parent")
    if not parent or _urn_type(parent) == "pulumi:pulumi:Stack":
        return ""
    return f" in {_short_type(_urn_type(parent))} `{_urn_name(parent)}`"


# What a running cluster cannot take, besides losing or replacing nodes (README, "Offline
# plan"). The API endpoint is what every kubelet, kubeconfig and join points at: it is the
# stack output, the load balancer or the VIP port (named after its control plane).
ENDPOINT_OUTPUT = "apiEndpoint"
LOAD_BALANCER = "openstack:loadbalancer/loadBalancer:LoadBalancer"
PORT = "openstack:networking/port:Port"
# Settings fixed once a cluster runs, by the key tools/plan writes under "settings".
FIXED_SETTINGS = {
    "podCidr": "flannel's network is seeded once in the discovery etcd, which refuses to "
    "change it, and every node holds a /24 of the old one",
    "serviceCidr": "the API server's certificate and every Service's cluster IP come from "
    "the old range",
    "networkCidr": "no running cluster survives it: the subnet is replaced and every node's "
    "port takes a new address, while etcd's members, the API server's certificate and "
    "every kubelet hold the old ones",
}


@dataclass
class Alert:
    """One warning box at the top of the report."""

    title: str  # bold, after "This change"
    lines: list[str]


@dataclass
class UserDataGroup:
    """Nodes whose user-data changes by the same lines; the diff shown is the first's."""

    names: list[str]
    diff: list[str]
    plus: int
    minus: int
    ignored: bool


@dataclass
class Comparison:
    """Everything the report says, computed; `render` only formats it."""

    old: Plan
    new: Plan
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[ResourceDiff]  # changes the engine applies
    ignored: list[ResourceDiff]  # only changes ignoreChanges keeps from the resource
    meta_only: list[ResourceDiff]
    outputs: list[str]  # keys of changed stack outputs
    alerts: list[Alert]
    notes: list[Alert]  # what a change does to running nodes, when that is not obvious
    user_data: list[UserDataGroup]
    user_data_nodes: int

    @property
    def different(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.ignored
            or self.meta_only
            or self.outputs
            or self.alerts
            or self.user_data_nodes
            or set(self.old.user_data) != set(self.new.user_data)
        )


def _by_kind(plan: Plan, rows: list[tuple[str, str]]) -> list[str]:
    """'> - 3 × Instance in WorkerPool `x`: a, b, c' lines from (urn, name) pairs."""
    groups: dict[str, list[str]] = {}
    for urn, name in rows:
        res = plan.resources[urn]
        groups.setdefault(_short_type(res["type"]) + _where(res), []).append(name)
    return [
        f"{len(names)} × {kind}: {', '.join(sorted(names, key=_natural))}"
        for kind, names in groups.items()
    ]


def _is_endpoint(res: dict[str, Any]) -> bool:
    return res["type"] == LOAD_BALANCER or (
        res["type"] == PORT and res["name"] == f"{_urn_name(res.get('parent') or '')}-vip"
    )


def _alerts(
    old: Plan, new: Plan, added: list[dict], removed: list[dict], changed: list[ResourceDiff]
) -> list[Alert]:
    alerts = []
    gone = [r for r in removed if r["type"] == INSTANCE]
    if gone:
        alerts.append(
            Alert(
                f"deletes {len(gone)} instance{'s' if len(gone) != 1 else ''}",
                _by_kind(old, [(r["urn"], r["name"]) for r in gone]),
            )
        )
    moves = []
    before, after = (
        old.outputs.get(ENDPOINT_OUTPUT, _MISSING),
        new.outputs.get(ENDPOINT_OUTPUT, _MISSING),
    )
    if before != after:
        moves.append(f"`{ENDPOINT_OUTPUT}`: {_show(before)} → {_show(after)}")
    moves += [f"removes {_short_type(r['type'])} `{r['name']}`" for r in removed if _is_endpoint(r)]
    moves += [f"adds {_short_type(r['type'])} `{r['name']}`" for r in added if _is_endpoint(r)]
    if moves:
        alerts.append(
            Alert(
                "moves the API endpoint",
                moves
                + [
                    "a running cluster's endpoint cannot move: every kubelet, kubeconfig and join "
                    "points at the old one"
                ],
            )
        )
    fixed = [
        f"`{key}`: {_show(old.settings[key])} → {_show(new.settings[key])}: {why}"
        for key, why in FIXED_SETTINGS.items()
        if key in old.settings and key in new.settings and old.settings[key] != new.settings[key]
    ]
    if fixed:
        alerts.append(Alert("changes what a running cluster cannot change", fixed))
    for label, effect in (("replaces", REPLACE), ("rebuilds", REBUILD)):
        group = [d for d in changed if d.effect == effect]
        if group:
            alerts.append(
                Alert(
                    f"{label} {len(group)} resource{'s' if len(group) != 1 else ''}",
                    _by_kind(new, [(d.urn, d.name) for d in group]),
                )
            )
    return alerts


def _command_label(res: dict[str, Any]) -> str:
    """The clear-text label a command carries on its command line (`# ...`)."""
    inputs = res.get("inputs") or {}
    for line in (inputs.get("create"), inputs.get("update")):
        if isinstance(line, str) and "  # " in line:
            return line.split("  # ", 1)[1]
    return "?"


def _rotation_notes(added: list[dict[str, Any]]) -> list[Alert]:
    """A new generation of the Secrets encryption key: its steps are added commands, run once
    each, master after master (the labels say which keys each step leaves)."""
    order = GENERATIONAL  # in the order the steps run
    steps = sorted(
        (r for r in added if r["type"] == COMMAND and role_of(r["name"]) in order),
        key=lambda r: (order.index(role_of(r["name"])), _natural(r["name"])),
    )
    if not steps:
        return []
    masters = sum(1 for r in steps if role_of(r["name"]) is Role.ENCRYPTION_ADD)
    lines = [
        f"`{r['name']}`: "
        + (
            "every Secret written again with the new key"
            if role_of(r["name"]) is Role.ENCRYPTION_REWRITE
            else _command_label(r)
        )
        for r in steps
    ]
    return [
        Alert(
            f"rotates the Secrets encryption key on {masters} master{'s' if masters != 1 else ''}",
            ["in this order, one step after another (master-encryption-rotate.sh):", *lines],
        )
    ]


def _notes(old: Plan, new: Plan, changed: list[ResourceDiff]) -> list[Alert]:
    """Changes to running masters' API servers (encryption, audit, OIDC): they run again on
    every master, one after another, and the stdin holding the files is a secret, so only the
    label says what changes."""
    reconfigured = [d for d in changed if d.type == COMMAND and role_of(d.name) is Role.APISERVER]
    if not reconfigured:
        return []
    first = reconfigured[0]
    before, after = (
        _command_label(old.resources[first.urn]),
        _command_label(new.resources[first.urn]),
    )
    lines = [
        f"`{before}` → `{after}`" if before != after else "the files the API server reads change",
        "applied by "
        + ", ".join(f"`{d.name}`" for d in sorted(reconfigured, key=lambda d: _natural(d.name)))
        + " (master-apiserver-config.sh), one master after another",
    ]
    count = len(reconfigured)
    return [Alert(f"reconfigures {count} master{'s' if count != 1 else ''}", lines)]


_REVISION = re.compile(r"(?:^| · )([a-z0-9-]+) revision ([0-9]+)$")


def _revision(res: dict[str, Any]) -> tuple[str, int] | None:
    """(role, revision) from a command's label, which names a step's revision once it was
    ever raised (components/commands.run_step); None at revision 1."""
    m = _REVISION.search(_command_label(res))
    return (m.group(1), int(m.group(2))) if m else None


def _revision_notes(old: Plan, new: Plan, changed: list[ResourceDiff]) -> list[Alert]:
    """Steps that run again because their revision was raised (docs/lifecycle.md): which,
    from which revision to which, on how many nodes; and the step kit that goes first."""
    raised: dict[tuple[str, int, int], list[str]] = {}
    for d in changed:
        if d.type != COMMAND or d.effect != RERUN:
            continue
        before, after = _revision(old.resources[d.urn]), _revision(new.resources[d.urn])
        if after is not None and (before is None or before[1] < after[1]):
            key = (after[0], before[1] if before else 1, after[1])
            raised.setdefault(key, []).append(d.name)
    if not raised:
        return []
    kits = sum(1 for d in changed if d.name.endswith("-step-kit") and d.effect == REPLACE)
    lines = [
        f"`{role}` revision {a} → {b} on {len(names)} node{'s' if len(names) != 1 else ''}: "
        + ", ".join(f"`{n}`" for n in sorted(names, key=_natural))
        for (role, a, b), names in sorted(raised.items())
    ]
    lines.append(
        f"the new step kit goes to every node first ({kits} `-step-kit` commands replaced); "
        "the steps keep their order (one master after another, workers lane by lane)"
    )
    return [Alert("runs steps again whose revision was raised", lines)]


# Kubernetes' version-skew policy, as the program orders a version bump: the control plane
# first (no component may be newer than the API server it talks to), then the add-ons, then
# the workers (a kubelet never newer than the API server).
CONTROL_PLANE = "openstack-k8s:index:ControlPlane"
WORKER_POOL = "openstack-k8s:index:WorkerPool"
WORKLOAD_TYPES = ("kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:Deployment")


def _waiting_for(plan: Plan, names: list[str]) -> dict[str, set[str]]:
    """For each of `names`: the names of every resource that waits for it, directly or
    through others."""
    waiters: dict[str, list[str]] = {}
    for res in plan.resources.values():
        for dep in res.get("dependencies") or ():
            waiters.setdefault(_urn_name(dep), []).append(res["name"])
    out = {}
    for name in names:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for waiter in waiters.get(todo.pop(), ()):
                if waiter not in seen:
                    seen.add(waiter)
                    todo.append(waiter)
        out[name] = seen
    return out


def _upgrade_order(new: Plan, changed: list[ResourceDiff]) -> tuple[list[Alert], list[Alert]]:
    """A changed version (or mirror) runs the upgrade commands again: a note with the steps in
    the order the dependency graph runs them, and a warning naming every step the graph lets
    run out of the version-skew order. (alerts, notes)"""
    upgrades = [d for d in changed if d.type == COMMAND and role_of(d.name) is Role.UPGRADE]
    where = {d.name: _urn_type(new.resources[d.urn].get("parent") or "") for d in upgrades}
    masters = [d.name for d in upgrades if where[d.name] == CONTROL_PLANE]
    if not masters:
        return [], []
    workers = sorted((d.name for d in upgrades if where[d.name] == WORKER_POOL), key=_natural)
    addons = sorted((d.name for d in changed if d.type.startswith("kubernetes:")), key=_natural)
    workloads = [d.name for d in changed if d.type in WORKLOAD_TYPES]
    after = _waiting_for(new, [*masters, *workloads])
    # Each master waits for the ones before it: the fewest waited-for comes first.
    masters.sort(key=lambda m: sum(m in after[other] for other in masters))
    late = set.intersection(*(after[m] for m in masters))
    lines = [
        "the control plane, one master after another: "
        + " → ".join(f"`{m}`" for m in masters)
        + f" (`{_command_label(new.resources[_urn_of(new, masters[0])])}`)"
    ]
    if addons:
        lines.append(
            f"then the add-ons ({len(addons)} object{'s' if len(addons) != 1 else ''}), "
            "once every master runs the new version: " + ", ".join(f"`{a}`" for a in addons)
        )
    if workers:
        lines.append(
            f"then the workers ({len(workers)}), "
            + ("after the add-ons rolled out, " if workloads else "")
            + "`upgrade.maxUnavailable` at a time in each pool"
        )
    early = [
        f"`{a}` does not wait for every master's upgrade: it may roll out beside "
        "`kubeadm upgrade`, newer than an API server"
        for a in addons
        if a not in late
    ]
    early += [
        f"`{w}` does not wait for `{x}`: the worker may upgrade before the add-on rolled out"
        for w in workers
        for x in workloads
        if w not in after[x]
    ]
    early += [
        f"`{w}` does not wait for every master's upgrade: its kubelet may be newer than an "
        "API server"
        for w in workers
        if w not in late
    ]
    alerts = [Alert("upgrades out of the version-skew order", early)] if early else []
    return alerts, [Alert("upgrades Kubernetes in this order", lines)]


def _urn_of(plan: Plan, name: str) -> str:
    return next(u for u, r in plan.resources.items() if r["name"] == name)


def _user_data_groups(old: Plan, new: Plan, ignored: set[str]) -> list[UserDataGroup]:
    """One group per distinct user-data change; nodes whose changed lines are identical (a
    version bump on 30 workers) share one."""
    groups: dict[tuple[str, ...], list[tuple[str, list[str]]]] = {}
    for name in sorted(set(old.user_data) | set(new.user_data), key=_natural):
        a, b = old.user_data.get(name), new.user_data.get(name)
        if a == b or a is None or b is None:
            continue  # added/removed nodes are listed as added/removed instances
        lines = list(
            difflib.unified_diff(
                _redact(a).splitlines(keepends=True),
                _redact(b).splitlines(keepends=True),
                f"a/user-data/{name}.yaml",
                f"b/user-data/{name}.yaml",
                n=3,
            )
        )
        key = tuple(ln for ln in lines[2:] if ln[:1] in "+-")
        groups.setdefault(key, []).append((name, lines))
    out = []
    for key, members in groups.items():
        names = [n for n, _ in members]
        plus = sum(1 for ln in key if ln.startswith("+"))
        out.append(
            UserDataGroup(
                names, members[0][1], plus, len(key) - plus, all(n in ignored for n in names)
            )
        )
    return out


def compare(old: Plan, new: Plan) -> Comparison:
    """What differs from old to new, and what the engine will do about it."""
    added = [new.resources[u] for u in new.resources if u not in old.resources]
    removed = [old.resources[u] for u in old.resources if u not in new.resources]
    diffs = []
    for urn, res in new.resources.items():
        if urn not in old.resources:
            continue
        name = res["name"]
        # user-data files are named after instances; only a resource that takes userData
        # (not a command or port that happens to share the name) is paired with one.
        takes_ud = res["type"] == INSTANCE or "userData" in (res.get("inputs") or {})
        diffs.append(
            _diff_resource(
                old.resources[urn],
                res,
                old.user_data.get(name) if takes_ud else None,
                new.user_data.get(name) if takes_ud else None,
            )
        )
    changed = [d for d in diffs if d.changes and d.effect != IGNORED]
    ignored = [d for d in diffs if d.changes and d.effect == IGNORED]
    outputs = sorted(
        k
        for k in set(old.outputs) | set(new.outputs)
        if old.outputs.get(k, _MISSING) != new.outputs.get(k, _MISSING)
    )
    # A node keeps its old user-data only when updated in place: a replacement is created
    # from the program's inputs (the engine checks it afresh), ignored ones included.
    ignored_ud = {
        d.name
        for d in changed + ignored
        for c in d.changes
        if c.path == "userData" and c.effect == IGNORED and d.effect != REPLACE
    }
    ud_nodes = sum(
        1 for n in set(old.user_data) & set(new.user_data) if old.user_data[n] != new.user_data[n]
    )
    skew_alerts, upgrade_notes = _upgrade_order(new, changed)
    return Comparison(
        old,
        new,
        added,
        removed,
        changed,
        ignored,
        meta_only=[d for d in diffs if d.meta and not d.changes],
        outputs=outputs,
        alerts=_alerts(old, new, added, removed, changed) + skew_alerts,
        notes=_rotation_notes(added)
        + _revision_notes(old, new, changed)
        + _notes(old, new, changed)
        + upgrade_notes,
        user_data=_user_data_groups(old, new, ignored_ud),
        user_data_nodes=ud_nodes,
    )


def _resource_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| type | name | where |", "| --- | --- | --- |"]
    lines += [
        f"| `{_short_type(r['type'])}` | `{r['name']}` | {_where(r).removeprefix(' in ') or '-'} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def _changes(title: str, diffs: list[ResourceDiff], new: Plan) -> str:
    # 300 workers bumped the same way make one entry, not 300 identical tables.
    groups: dict[tuple, list[ResourceDiff]] = {}
    for d in sorted(diffs, key=lambda d: (-EFFECT_RANK[d.effect], d.type, _natural(d.name))):
        key = (d.type, d.effect, tuple((c.path, c.effect) for c in d.changes), tuple(d.meta))
        groups.setdefault(key, []).append(d)
    parts = [f"### {title} ({len(diffs)})\n"]
    for (rtype, effect, _, meta), members in groups.items():
        first = members[0]
        names = ", ".join(f"`{d.name}`" for d in members)
        count = f"{len(members)} × " if len(members) > 1 else ""
        parts.append(f"#### {count}`{_short_type(rtype)}` {names}: {EFFECT_TEXT[effect]}\n")
        if len(members) > 1:
            parts.append(f"Values shown for `{first.name}`.\n")
        parts.append(
            "| input | old | new | effect |\n| --- | --- | --- | --- |\n"
            + "".join(
                f"| `{c.path}` | {_show(c.old)} | {_show(c.new)} | {c.effect} |\n"
                for c in first.changes
            )
        )
        if meta:
            parts.append("".join(f"- {m}\n" for m in meta))
        if effect == REPLACE and (new.resources[first.urn].get("options") or {}).get(
            "deleteBeforeReplace"
        ):
            parts.append("- deleteBeforeReplace: the old one is deleted first.\n")
    return "\n".join(parts)


def _user_data_block(group: UserDataGroup) -> str:
    names = group.names
    note = " (ignored by the existing VMs: applies to newly created ones)" if group.ignored else ""
    body = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in group.diff)
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    shown = (
        ", ".join(names)
        if len(names) <= 6
        else (", ".join(names[:5]) + f" and {len(names) - 5} more")
    )
    same = (
        f"Shown for {names[0]}; the same lines change on all {len(names)}.\n\n"
        if len(names) > 1
        else ""
    )
    return (
        f"<details><summary>user-data of {shown}: +{group.plus} −{group.minus}{note}</summary>\n\n"
        f"{same}{fence}diff\n{body}{fence}\n</details>\n"
    )


def _title(c: Comparison) -> str:
    title = f"## Offline plan diff: stack `{c.new.stack or '?'}`"
    if c.old.stack != c.new.stack:
        title += f" (old plan is stack `{c.old.stack}`)"
    return title + "\n"


def _box(kind: str, alert: Alert) -> str:
    return f"> [!{kind}]\n> This change **{alert.title}**:\n" + "".join(
        f"> - {line}\n" for line in alert.lines
    )


def _summary(c: Comparison) -> list[str]:
    """What can break a running cluster first, before any count or table; then the counts."""
    parts = [_box("WARNING", a) for a in c.alerts] + [_box("NOTE", n) for n in c.notes]
    unchanged = len(c.new.resources) - len(c.added) - len(c.changed) - len(c.ignored)
    replaced = sum(1 for d in c.changed if d.effect == REPLACE)
    parts.append(
        f"**{len(c.added)} to add, {len(c.removed)} to remove, {len(c.changed)} to change "
        f"({replaced} replaced), {len(c.ignored)} with ignored changes, {unchanged} unchanged.**\n"
    )
    if not c.alerts:
        parts.append(
            "No resource is replaced or rebuilt, no instance is deleted, and the API "
            "endpoint stays where it is.\n"
        )
    if c.new.planned_against != c.old.digest:
        parts.append(NOT_PLANNED_OVER + "\n")
    return parts


# What a diff of two plans made apart cannot see: the mock gives every resource the id and
# outputs of its name, as if nothing existed before.
NOT_PLANNED_OVER = (
    "*The new plan was not planned over the old one (`python -m tools.plan ... --previous "
    "OLD_DIR`): ids and outputs come from names, so what a replacement changes downstream "
    "(new ids, addresses) and what ignoreChanges keeps (a node's pinned image) are not "
    "shown as the engine would.*"
)


def _sections(c: Comparison) -> list[str]:
    old, new = c.old, c.new
    sections = []
    if c.added:
        sections.append(f"### Added ({len(c.added)})\n\n" + _resource_table(c.added))
    if c.removed:
        sections.append(f"### Removed ({len(c.removed)})\n\n" + _resource_table(c.removed))
    if c.changed:
        sections.append(_changes("Changed", c.changed, new))
    if c.ignored:
        sections.append(_changes("Ignored changes", c.ignored, new))
    if c.meta_only:
        sections.append(
            f"### Options or ordering only ({len(c.meta_only)}): no cloud change\n\n"
            + "".join(
                f"- `{_short_type(d.type)}` `{d.name}`: {'; '.join(d.meta)}\n" for d in c.meta_only
            )
        )
    if c.outputs:
        sections.append(
            "### Stack outputs changed\n\n"
            + "".join(
                f"- `{k}`: {_show(old.outputs.get(k, _MISSING))} → "
                f"{_show(new.outputs.get(k, _MISSING))}\n"
                for k in c.outputs
            )
        )
    if c.user_data:
        n = c.user_data_nodes
        sections.append(f"### User-data ({n} node{'s' if n != 1 else ''})\n")
    return sections


def _fit(text: str, blocks: list[str], max_chars: int) -> str:
    """text and as many whole user-data blocks as fit in max_chars (0: all of them)."""
    kept: list[str] = []
    for i, block in enumerate(blocks):
        tail = (
            f"\n*{len(blocks) - i} more user-data diff(s) left out to fit; "
            "the plan directories are attached as artifacts.*\n"
        )
        if max_chars and len(text) + 1 + len("\n".join(kept + [block])) + len(tail) > max_chars:
            return text + "\n" + "\n".join(kept) + tail
        kept.append(block)
    return text + ("\n" + "\n".join(kept) if kept else "")


def render(c: Comparison, max_chars: int = 0) -> str:
    """The markdown report. max_chars > 0 keeps it under that size (a GitHub comment holds
    65536) by dropping whole user-data diffs from the end, saying how many were dropped."""
    if not c.different:
        return "\n".join(
            [
                _title(c),
                "**No changes.** Both plans register the same resources with the "
                "same inputs, options and user-data.\n",
            ]
        )
    text = "\n".join([_title(c), *_summary(c), *_sections(c)])
    return _fit(text, [_user_data_block(g) for g in c.user_data], max_chars)


def diff_plans(old_dir: Path, new_dir: Path, max_chars: int = 0) -> str:
    """Markdown report of what changes from the plan in old_dir to the one in new_dir."""
    return render(compare(load_plan(old_dir), load_plan(new_dir)), max_chars)


EXIT_STATUS = (
    "exit status, like diff(1): 0 if the plans are the same, 1 if they differ, 2 on bad input"
)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the diff; 0 no difference, 1 different, 2 bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.plandiff",
        description="Diff two offline plan directories.",
        epilog=EXIT_STATUS[0].upper() + EXIT_STATUS[1:] + ".",
    )
    parser.add_argument("old_dir", type=Path)
    parser.add_argument("new_dir", type=Path)
    parser.add_argument(
        "--max-chars",
        type=int,
        default=0,
        help="keep the markdown under N characters (0: no limit)",
    )
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed usage
        return 0 if exc.code == 0 else 2
    try:
        comparison = compare(load_plan(args.old_dir), load_plan(args.new_dir))
    except PlanError as exc:
        print(f"plandiff: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(comparison, args.max_chars))
    return 1 if comparison.different else 0


if __name__ == "__main__":
    sys.exit(main())
