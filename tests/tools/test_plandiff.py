"""tools/plandiff: what a reviewer reads in a PR about two offline plans.

The plans here are synthetic but shaped like tools/plan's output (DESIGN.md, "Offline
plan"): a Stack, the Cluster component and its children, instances with ports and user-data,
`<node>-ready`/`-join` remote commands. They do not depend on tools/plan so that the diff's
rules are tested on their own.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from planning import ROOT
from tools import plandiff
from tools.urn import make as make_urn

PROJECT = "openstack-k8s"
INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
COMMAND = "command:remote:Command"


def _urn(stack: str, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified_type}::{name}"


class PlanBuilder:
    """Builds the plan.json + user-data/ of a small cluster, parametrised on what the
    tests vary: worker count, Kubernetes version, ignoreChanges on instances, upgrades."""

    def __init__(
        self,
        stack: str = "dev",
        workers: int = 2,
        k8s: str = "1.31.4",
        ignore_user_data: bool = True,
        upgrade_commands: bool = False,
    ):
        self.stack, self.k8s = stack, k8s
        self.ignore_user_data = ignore_user_data
        self.resources: list[dict] = []
        self.user_data: dict[str, str] = {}
        st = "pulumi:pulumi:Stack"
        self.stack_urn = self._add(st, f"{PROJECT}-{stack}", None, st, {})
        # The engine's URNs (tools/urn): the stack's type is not in its children's.
        cl = "openstack-k8s:index:Cluster"
        self.cluster = self._add("openstack-k8s:index:Cluster", stack, self.stack_urn, cl, {})
        net_t = f"{cl}$openstack-k8s:index:PrivateNetwork"
        net = self._add(
            "openstack-k8s:index:PrivateNetwork", f"{stack}-net", self.cluster, net_t, {}
        )
        self.network = self._add(
            "openstack:networking/network:Network",
            f"{stack}-net-network",
            net,
            f"{net_t}$openstack:networking/network:Network",
            {"name": f"{stack}-net", "adminStateUp": True},
        )
        self.subnet = self._add(
            "openstack:networking/subnet:Subnet",
            f"{stack}-net-subnet",
            net,
            f"{net_t}$openstack:networking/subnet:Subnet",
            {"cidr": "10.0.0.0/24", "ipVersion": 4, "networkId": "[unknown]"},
            deps=[self.network],
        )
        cp_t = f"{cl}$openstack-k8s:index:ControlPlane"
        cp = self._add(
            "openstack-k8s:index:ControlPlane", f"{stack}-masters", self.cluster, cp_t, {}
        )
        master = self._node(cp, cp_t, f"{stack}-master-0", "master", "m1.large")
        init = self._command(
            cp, cp_t, f"{stack}-master-0-init", "kubeadm init", deps=[f"{stack}-master-0-ready"]
        )
        wp_t = f"{cl}$openstack-k8s:index:WorkerPool"
        wp = self._add("openstack-k8s:index:WorkerPool", f"{stack}-workers", self.cluster, wp_t, {})
        for i in range(workers):
            name = f"{stack}-worker-{i}"
            self._node(wp, wp_t, name, "worker", "m1.medium")
            self._command(wp, wp_t, f"{name}-join", "kubeadm join", deps=[f"{name}-ready", init])
            if upgrade_commands:
                self._command(
                    wp, wp_t, f"{name}-upgrade", f"upgrade-node.sh {k8s}", deps=[f"{name}-join"]
                )
        if upgrade_commands:
            self._command(
                cp, cp_t, f"{stack}-master-0-upgrade", f"kubeadm upgrade apply v{k8s}", deps=[init]
            )
        self.outputs = {
            "kubeconfig": "[secret]",
            "apiEndpoint": "https://203.0.113.10:6443",
            "masterCount": 1,
            "master": master,
        }
        self.settings = {"podCidr": "10.244.0.0/16", "serviceCidr": "10.96.0.0/12"}
        self.control_plane = (cp, cp_t)

    def _add(self, rtype, name, parent, qualified, inputs, deps=(), options=None) -> str:
        urn = _urn(self.stack, qualified, name)
        deps = [d if d.startswith("urn:") else self._by_name(d) for d in deps]
        self.resources.append(
            {
                "urn": urn,
                "type": rtype,
                "name": name,
                "parent": parent,
                "dependencies": sorted(deps),
                "inputs": inputs,
                "options": options or {},
            }
        )
        return urn

    def add_vip(self) -> None:
        """The VIP port a multi-master endpoint puts in front of the masters."""
        cp, cp_t = self.control_plane
        self._add(
            PORT,
            f"{self.stack}-masters-vip",
            cp,
            f"{cp_t}${PORT}",
            {"networkId": "[unknown]", "fixedIps": [{"subnetId": "[unknown]"}]},
            deps=[self.network, self.subnet],
        )

    def _by_name(self, name: str) -> str:
        return next(r["urn"] for r in self.resources if r["name"] == name)

    def _node(self, parent, ptype, name, role, flavor) -> str:
        port = self._add(
            PORT,
            f"{name}-port",
            parent,
            f"{ptype}${PORT}",
            {
                "networkId": "[unknown]",
                "adminStateUp": True,
                "fixedIps": [{"subnetId": "[unknown]"}],
            },
            deps=[self.network, self.subnet],
        )
        cloud_config = "\n".join(
            [
                "#cloud-config",
                f"hostname: {name}",
                "package_update: true",
                "write_files:",
                "- path: /etc/kubernetes/versions.env",
                "  permissions: '0644'",
                f"  content: KUBERNETES_VERSION={self.k8s}",
                "- path: /etc/kubernetes/pki/node.key",
                "  permissions: '0600'",
                "  content: |",
                "    -----BEGIN EC PRIVATE KEY-----",
                f"    MHcCAQEEIFAKE{name.upper()}KEYMATERIAL0123456789",
                "    -----END EC PRIVATE KEY-----",
                "runcmd:",
                f"- [/usr/local/lib/openstack-k8s/install-{role}.sh, '{self.k8s}']",
                "",
            ]
        )
        self.user_data[name] = cloud_config
        options = {"ignoreChanges": ["userData"]} if self.ignore_user_data else {}
        urn = self._add(
            INSTANCE,
            name,
            parent,
            f"{ptype}${INSTANCE}",
            {
                "name": name,
                "imageName": "ubuntu-24.04",
                "flavorName": flavor,
                "keyPair": f"{self.stack}-key",
                "userData": "[secret]",
                "networks": [{"port": "[unknown]"}],
                "metadata": {"role": role, "cluster": self.stack},
            },
            deps=[port],
            options=options,
        )
        self._command(parent, ptype, f"{name}-ready", "wait-cloud-init.sh", deps=[urn])
        return name

    def _command(self, parent, ptype, name, script, deps) -> str:
        return self._add(
            COMMAND,
            name,
            parent,
            f"{ptype}${COMMAND}",
            {
                "connection": {"host": "[unknown]", "user": "ubuntu", "privateKey": "[secret]"},
                "create": f"#!/usr/bin/env bash\nset -euo pipefail\n{script}\n",
            },
            deps=deps,
            options={"customTimeouts": {"create": "20m"}},
        )

    def write(self, directory: Path) -> Path:
        (directory / "user-data").mkdir(parents=True)
        (directory / "plan.json").write_text(
            json.dumps(
                {
                    "stack": self.stack,
                    "project": PROJECT,
                    "resources": self.resources,
                    "outputs": self.outputs,
                    "settings": self.settings,
                },
                indent=2,
                sort_keys=True,
            )
        )
        for name, text in self.user_data.items():
            (directory / "user-data" / f"{name}.yaml").write_text(text)
        return directory


def _diff(tmp_path: Path, old: PlanBuilder, new: PlanBuilder) -> tuple[int, str]:
    a, b = old.write(tmp_path / "old"), new.write(tmp_path / "new")
    text = plandiff.diff_plans(a, b)
    code = plandiff.main([str(a), str(b)])
    return code, text


def _section(text: str, title: str) -> str:
    """The body of one `### title (...)` section of the report, '' if absent."""
    m = re.search(rf"^### {re.escape(title)}\b.*?$(.*?)(?=^### |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def _changed(section: str, rtype: str, effect: str) -> list[str]:
    """Names under `#### [N × ]`Type` `a`, `b`: effect...` headings of a Changed section."""
    names = []
    for heading in re.findall(
        rf"^#### (?:\d+ × )?`{rtype}` (.*?): {re.escape(effect)}", section, re.M
    ):
        names += re.findall(r"`([^`]+)`", heading)
    return names


CALM = (
    "No resource is replaced or rebuilt, no instance is deleted, and the API endpoint "
    "stays where it is."
)


def _boxes(text: str) -> list[str]:
    """The warning boxes of a report, each as its lines without the '> ' prefix; asserts
    they come before the counts line (what can break a cluster is read first)."""
    boxes = re.findall(r"^> \[!WARNING\]\n((?:^> .*\n)+)", text, re.M)
    if boxes:
        assert text.index("[!WARNING]") < text.index(" to add, ")
    return [re.sub(r"^> ", "", b, flags=re.M) for b in boxes]


def _table_names(section: str) -> list[str]:
    return re.findall(r"^\| `[^`]+` \| `([^`]+)` \|", section, re.M)


def test_identical_plans_report_no_changes_and_exit_0(tmp_path, capsys):
    """Identical plans must read "no changes" and exit 0, as diff(1) does, so a workflow
    can tell a PR that changes nothing in the cluster from one that does."""
    code, text = _diff(tmp_path, PlanBuilder(), PlanBuilder())
    assert code == 0
    assert "No changes" in text
    assert "###" not in text  # no empty Added/Changed sections
    assert "No changes" in capsys.readouterr().out


def test_one_added_worker_is_exactly_its_resources_and_replaces_nothing(tmp_path):
    """Scaling a pool by one must show the new worker's instance, port and ready/join
    commands as added, and not one existing resource touched, let alone replaced."""
    code, text = _diff(tmp_path, PlanBuilder(workers=2), PlanBuilder(workers=3))
    assert code == 1
    added = _table_names(_section(text, "Added"))
    assert sorted(added) == sorted(
        ["dev-worker-2", "dev-worker-2-port", "dev-worker-2-ready", "dev-worker-2-join"]
    )
    assert "**4 to add, 0 to remove, 0 to change (0 replaced)" in text
    assert CALM in text
    for title in ("Removed", "Changed", "User-data", "Stack outputs changed"):
        assert _section(text, title) == "", title
    assert "where |" in text and "WorkerPool `dev-workers`" in text


def test_version_bump_with_ignored_user_data_replaces_nothing(tmp_path):
    """A Kubernetes upgrade changes every node's user-data; with ignoreChanges
    ["userData"] on the instances and upgrade commands added, the report must say no
    replacement, list the upgrade commands as added and still show the user-data diffs
    (they matter for nodes created later)."""
    old = PlanBuilder(workers=3, k8s="1.31.4")
    new = PlanBuilder(workers=3, k8s="1.32.1", upgrade_commands=True)
    code, text = _diff(tmp_path, old, new)
    assert code == 1
    assert CALM in text
    assert "[!WARNING]" not in text
    added = _table_names(_section(text, "Added"))
    assert sorted(added) == sorted(
        ["dev-master-0-upgrade"] + [f"dev-worker-{i}-upgrade" for i in range(3)]
    )
    assert _section(text, "Changed") == ""  # nothing the engine applies to a VM
    ignored = _section(text, "Ignored changes")
    instances = _changed(ignored, "Instance", "ignored")
    assert "Values shown for `dev-master-0`" in ignored  # one entry for all four
    assert sorted(instances) == ["dev-master-0", "dev-worker-0", "dev-worker-1", "dev-worker-2"]
    assert "0 to change (0 replaced), 4 with ignored changes" in text
    assert "### Ignored changes (4)" in text
    ud = _section(text, "User-data")
    assert "(4 nodes)" in text
    assert "-  content: KUBERNETES_VERSION=1.31.4" in ud
    assert "+  content: KUBERNETES_VERSION=1.32.1" in ud
    assert "applies to newly created ones" in ud
    # workers share their changed lines, the master installs another role script
    assert ud.count("<details>") == 2
    assert "dev-worker-0, dev-worker-1, dev-worker-2" in ud
    # the fake key bodies never reach the comment
    assert "KEYMATERIAL" not in text and "[secret]" in ud


def test_ignored_user_data_applies_to_a_node_that_is_replaced(tmp_path):
    """ignoreChanges keeps the old user-data only for a VM updated in place: a replaced VM
    is created from the program's inputs (the engine checks a replacement afresh), so it
    boots with the new user-data. Here the worker is replaced (a new key pair) in the same
    change as a version bump: its user-data diff is not "ignored", the master's is."""
    old = PlanBuilder(workers=1, k8s="1.31.4")
    new = PlanBuilder(workers=1, k8s="1.32.1")
    worker = next(r for r in new.resources if r["name"] == "dev-worker-0")
    worker["inputs"] = {**worker["inputs"], "keyPair": "dev-key-2"}
    _, text = _diff(tmp_path, old, new)
    assert _changed(_section(text, "Changed"), "Instance", "**replace**") == ["dev-worker-0"]
    blocks = {
        name: block
        for block in _section(text, "User-data").split("<details>")[1:]
        for name in ("dev-master-0", "dev-worker-0")
        if f"user-data of {name}:" in block
    }
    assert sorted(blocks) == ["dev-master-0", "dev-worker-0"]
    assert "+  content: KUBERNETES_VERSION=1.32.1" in blocks["dev-worker-0"]
    assert "ignored by the existing VMs" not in blocks["dev-worker-0"]
    assert "ignored by the existing VMs" in blocks["dev-master-0"]


def test_version_bump_without_ignore_changes_replaces_every_instance(tmp_path):
    """The same upgrade without ignoreChanges on userData replaces every VM: the report
    must shout it, counting the instances per pool, with userData as the reason."""
    old = PlanBuilder(workers=3, k8s="1.31.4", ignore_user_data=False)
    new = PlanBuilder(workers=3, k8s="1.32.1", ignore_user_data=False)
    code, text = _diff(tmp_path, old, new)
    assert code == 1
    assert "This change **replaces 4 resources**" in text
    assert (
        "> - 3 × Instance in WorkerPool `dev-workers`: dev-worker-0, dev-worker-1, "
        "dev-worker-2" in text
    )
    assert "> - 1 × Instance in ControlPlane `dev-masters`: dev-master-0" in text
    changed = _section(text, "Changed")
    replaced = _changed(changed, "Instance", "**replace**")
    assert len(replaced) == 4
    rows = re.findall(r"^\| `userData` \| .* \| replace \|$", changed, re.M)
    assert len(rows) == 1  # the four identical changes share one table
    assert "No resource is replaced" not in text


@pytest.mark.parametrize(
    "path, effect",
    [
        ("flavorName", "resize"),
        ("imageName", "rebuild"),
        ("keyPair", "replace"),
        ("metadata.role", "update"),
        ("networks[0].port", "replace"),
        ("blockDevices[0].volumeSize", "replace"),
        ("blockDevices[0].multiattach", "replace"),
        ("networks[0].accessNetwork", "update"),
        ("schedulerHints[0].group", "replace"),
    ],
)
def test_instance_effects_follow_the_provider_table(path, effect):
    """Which Instance inputs replace, rebuild or resize is the knowledge the report adds
    over a plain JSON diff; pin the table's answers to the provider docs."""
    assert plandiff.effect_of(INSTANCE, path, {}) == effect


def test_options_override_the_table():
    """ignoreChanges wins (the engine never sends the change), and replaceOnChanges
    turns an update into a replacement."""
    assert plandiff.effect_of(INSTANCE, "userData", {"ignoreChanges": ["userData"]}) == "ignored"
    assert plandiff.effect_of(COMMAND, "create", {}) == "rerun"
    assert plandiff.effect_of(COMMAND, "triggers[0]", {}) == "replace"
    assert plandiff.effect_of(COMMAND, "create", {"replaceOnChanges": ["create"]}) == "replace"
    assert plandiff.effect_of("tls:index/privateKey:PrivateKey", "rsaBits", {}) == "replace"


def test_resize_is_reported_as_update_not_replacement(tmp_path):
    """A flavor change resizes the server in place: no replacement warning, but the row
    shows old -> new and the resize."""
    old, new = PlanBuilder(), PlanBuilder()
    for r in new.resources:
        if r["name"] == "dev-worker-1":
            r["inputs"]["flavorName"] = "m1.xlarge"
    code, text = _diff(tmp_path, old, new)
    assert code == 1
    assert CALM in text
    assert '| `flavorName` | `"m1.medium"` | `"m1.xlarge"` | resize |' in text


def test_long_strings_are_summarized_and_secrets_stay_secret(tmp_path):
    """A changed command script shows as a one-line summary, not a wall of shell; a
    secret input reads [secret] on both sides."""
    old, new = PlanBuilder(), PlanBuilder()
    for r in new.resources:
        if r["name"] == "dev-worker-0-join":
            r["inputs"]["create"] += "echo " + "x" * 200 + "\n"
            r["inputs"]["connection"]["privateKey"] = "[secret]"
        if r["name"] == "dev-worker-1-join":
            r["inputs"]["environment"] = {"TOKEN": "[secret]"}
    code, text = _diff(tmp_path, old, new)
    assert code == 1
    row = next(ln for ln in text.splitlines() if ln.startswith("| `create` |"))
    assert "x" * 100 not in row and "lines" in row and "sha256" in row and "rerun" in row
    assert "| `environment.TOKEN` | *(absent)* | `[secret]` | rerun |" in text


def test_max_chars_drops_whole_user_data_diffs(tmp_path):
    """A GitHub comment holds 65536 characters: a capped report keeps its summary and
    drops user-data blocks whole (never a half-open code fence), saying so."""
    old = PlanBuilder(workers=3, k8s="1.31.4")
    new = PlanBuilder(workers=3, k8s="1.32.1")
    for i, r in enumerate(new.resources):  # make every node's diff distinct
        if r["type"] == INSTANCE:
            new.user_data[r["name"]] += f"# node {i}\n"
    a, b = old.write(tmp_path / "old"), new.write(tmp_path / "new")
    full = plandiff.diff_plans(a, b)
    assert full.count("<details>") == 4
    capped = plandiff.diff_plans(a, b, max_chars=len(full) - 10)
    assert len(capped) <= len(full) - 10
    assert capped.count("<details>") == 3 and capped.count("</details>") == 3
    assert "1 more user-data diff(s) left out" in capped
    assert capped.count("```") % 2 == 0


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    """A missing or malformed plan dir is a usage error (2), distinct from 'different'
    (1), and says which file is wrong."""
    good = PlanBuilder().write(tmp_path / "good")
    assert plandiff.main([str(good), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing/plan.json" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "plan.json").write_text('{"resources": [{"urn": 1}]}')
    assert plandiff.main([str(good), str(bad)]) == 2
    assert "resources[0]" in capsys.readouterr().err
    (bad / "plan.json").write_text("not json")
    assert plandiff.main([str(bad), str(good)]) == 2
    assert plandiff.main([str(good)]) == 2  # usage


def test_removed_instances_are_the_first_warning(tmp_path):
    """Shrinking a pool (or renaming it, which removes every instance under the old name)
    deletes VMs: the report must say so in a box before anything else, naming each."""
    code, text = _diff(tmp_path, PlanBuilder(workers=3), PlanBuilder(workers=1))
    assert code == 1
    boxes = _boxes(text)
    assert boxes == [
        "This change **deletes 2 instances**:\n"
        "- 2 × Instance in WorkerPool `dev-workers`: dev-worker-1, dev-worker-2\n"
    ]
    assert CALM not in text


def test_a_moving_api_endpoint_is_warned_of(tmp_path):
    """1 -> 3 masters with the endpoint unset moves the API from the master's :6443 to a
    VIP's :8443; vip -> octavia removes the VIP every kubelet points at. Both are changes a
    running cluster cannot take, whatever else the diff says."""
    one = PlanBuilder()
    three = PlanBuilder()
    three.add_vip()
    three.outputs["apiEndpoint"] = "https://203.0.113.10:8443"
    code, text = _diff(tmp_path / "grow", one, three)
    assert code == 1
    [box] = _boxes(text)
    assert box.startswith("This change **moves the API endpoint**:\n")
    assert '- `apiEndpoint`: `"https://203.0.113.10:6443"` → `"https://203.0.113.10:8443"`' in box
    assert "- adds Port `dev-masters-vip`" in box
    assert CALM not in text

    lb = PlanBuilder()
    lb.outputs["apiEndpoint"] = three.outputs["apiEndpoint"]  # same address, VIP gone
    code, text = _diff(tmp_path / "vip-to-lb", three, lb)
    [box] = _boxes(text)
    assert "- removes Port `dev-masters-vip`" in box and "apiEndpoint" not in box


def test_settings_a_running_cluster_cannot_change_are_warned_of(tmp_path):
    """A new pod or Service network shows in no resource input a reviewer would notice;
    the plan's effective settings carry it and the report puts it first."""
    new = PlanBuilder()
    new.settings["podCidr"] = "10.200.0.0/16"
    code, text = _diff(tmp_path, PlanBuilder(), new)
    assert code == 1
    [box] = _boxes(text)
    assert box.startswith(
        "This change **changes what a running cluster cannot change**:\n"
        '- `podCidr`: `"10.244.0.0/16"` → `"10.200.0.0/16"`: flannel'
    )
    assert "serviceCidr" not in box
    # a plan written before the settings section existed is compared without it
    old_style = PlanBuilder()
    old_style.settings = {}
    assert _boxes(_diff(tmp_path / "old-style", old_style, new)[1]) == []


def test_the_header_counts_what_the_changed_section_lists(tmp_path):
    """ "N to change" in the header and "Changed (N)" below are one number; changes the
    engine ignores are counted and listed on their own."""
    old = PlanBuilder(k8s="1.31.4")
    new = PlanBuilder(k8s="1.32.1")
    for r in new.resources:
        if r["name"] in ("dev-worker-0", "dev-worker-1"):
            r["inputs"]["flavorName"] = "m1.xlarge"
    code, text = _diff(tmp_path, old, new)
    header = re.search(r"(\d+) to change \((\d+) replaced\), (\d+) with ignored changes", text)
    assert header, text[:500]
    assert re.search(r"^### Changed \((\d+)\)", text, re.M).group(1) == header.group(1) == "2"
    assert (
        re.search(r"^### Ignored changes \((\d+)\)", text, re.M).group(1) == header.group(3) == "1"
    )


def test_values_read_as_text_and_image_tags_stay_visible(tmp_path):
    """A summarized value shows "…", not a JSON escape; an image reference longer than a
    short cell keeps its tag (the change a reviewer is looking for)."""
    image = "registry.k8s.io/provider-os/openstack-cloud-controller-manager:v{}"
    old, new = PlanBuilder(), PlanBuilder()
    for plan, tag in ((old, "1.33.1"), (new, "1.34.1")):
        for r in plan.resources:
            if r["name"] == "dev-worker-0-join":
                r["inputs"]["image"] = image.format(tag)
                r["inputs"]["create"] += f"# {'long comment line ' * 5} {tag}\n"
    code, text = _diff(tmp_path, old, new)
    assert "\\u2026" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| `image` |"))
    assert image.format("1.33.1") in row and image.format("1.34.1") in row
    create = next(ln for ln in text.splitlines() if ln.startswith("| `create` |"))
    assert "…" in create and "lines" in create
    assert plandiff._show("x" * 500).count("x") == 100  # a very long line: its ends


def test_exit_status_is_in_the_help():
    """The exit status (1 on any difference) is what a CI step branches on: --help says it."""
    import subprocess
    import sys

    root = ROOT
    for args in (["tools.plandiff", "--help"], ["tools.plan", "--help"]):
        out = subprocess.run(
            [sys.executable, "-m", *args], cwd=root, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert "0 if the plans are the same, 1 if they differ" in " ".join(out.stdout.split())


def test_cli_module_runs(tmp_path):
    """`python -m tools.plandiff OLD NEW` is what the workflow calls."""
    import subprocess
    import sys

    a = PlanBuilder().write(tmp_path / "a")
    b = PlanBuilder(workers=3).write(tmp_path / "b")
    root = ROOT
    proc = subprocess.run(
        [sys.executable, "-m", "tools.plandiff", str(a), str(b)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "### Added (4)" in proc.stdout


def test_builder_shape_is_what_tools_plan_writes():
    """Guard the fixture itself: every resource has the documented keys, every
    dependency points at a registered URN, every instance has user-data."""
    b = PlanBuilder(workers=2, upgrade_commands=True)
    urns = {r["urn"] for r in b.resources}
    keys = {"urn", "type", "name", "parent", "dependencies", "inputs", "options"}
    assert all(set(r) == keys for r in b.resources)
    for r in b.resources:
        assert r["urn"] == make_urn("dev", PROJECT, r["parent"], r["type"], r["name"])
    deps = [d for r in b.resources for d in r["dependencies"]]
    assert deps and set(deps) <= urns
    instances = [r["name"] for r in b.resources if r["type"] == INSTANCE]
    assert len(instances) == 3 and set(instances) == set(b.user_data)
    assert copy.deepcopy(b.resources) == b.resources


def _legacy_urns(resources: list[dict]) -> list[dict]:
    """The URNs tools/plan wrote before it followed the engine (Pulumi's mock monitor's):
    the direct parent's type only, and `pulumi:pulumi:Stack$` before a top component's."""
    old: dict[str, str] = {}
    for r in resources:  # parents come first in the builder
        parent_type = (old.get(r["parent"]) or r["parent"] or "").split("::")[2:3]
        prefix = parent_type[0].rsplit("$", 1)[-1] + "$" if parent_type else ""
        old[r["urn"]] = f"urn:pulumi:dev::{PROJECT}::{prefix}{r['type']}::{r['name']}"
    return [
        dict(
            r,
            urn=old[r["urn"]],
            parent=old.get(r["parent"], r["parent"]),
            dependencies=[old[d] for d in r["dependencies"]],
        )
        for r in resources
    ]


def test_a_plan_with_the_old_urns_compares_to_one_with_the_engines(tmp_path):
    """A PR that brings the engine's URNs is diffed against a base plan written with the
    mock's: the same resources, not every one removed and added again."""
    old, new = PlanBuilder(), PlanBuilder()
    old.resources = _legacy_urns(old.resources)
    cluster = next(r for r in old.resources if r["name"] == "dev")
    worker = next(r for r in old.resources if r["name"] == "dev-worker-0")
    assert "::pulumi:pulumi:Stack$openstack-k8s:index:Cluster::" in cluster["urn"]
    assert "::openstack-k8s:index:WorkerPool$openstack:compute/instance:" in worker["urn"]
    assert old.resources != new.resources
    code, text = _diff(tmp_path, old, new)
    assert (code, "**No changes.**" in text) == (0, True), text


def _drain(b: PlanBuilder, seconds: int, *, create: bool) -> None:
    """A worker's drain: a command whose work is its `delete` step (and maybe a `create`)."""
    cp, cp_t = b.control_plane
    inputs = {"delete": f"drain.sh --timeout {seconds}"}
    if create:
        inputs["create"] = "true"
    b._add(COMMAND, "dev-worker-0-drain", cp, f"{cp_t}${COMMAND}", inputs)


@pytest.mark.parametrize(
    ("create", "heading"),
    [
        (False, "update in place: nothing runs now, only what runs at delete changes"),
        (True, "update: the command runs again"),
    ],
)
def test_a_changed_delete_step_runs_again_only_with_a_create_step(tmp_path, create, heading):
    """pulumi-command's update runs `update`, else `create`: a command with only a `delete`
    step (a drain) runs nothing when its delete changes; one with a `create` runs it again."""
    old, new = PlanBuilder(), PlanBuilder()
    _drain(old, 300, create=create)
    _drain(new, 900, create=create)
    code, text = _diff(tmp_path, old, new)
    assert code == 1
    changed = _section(text, "Changed")
    assert re.findall(r"^#### `Command` `dev-worker-0-drain`: (.*)$", changed, re.M) == [heading]
    assert ("runs again" in text) == create


# The fields of `pulumi preview --json` (pulumi/pulumi display.PreviewStep, and the
# apitype.ResourceV3 of its states): what reads a real preview reads ours.
PREVIEW_STEP = {
    "op",
    "urn",
    "provider",
    "oldState",
    "newState",
    "diffReasons",
    "replaceReasons",
    "detailedDiff",
}
RESOURCE_V3 = {
    "urn",
    "custom",
    "delete",
    "id",
    "type",
    "inputs",
    "outputs",
    "parent",
    "protect",
    "external",
    "dependencies",
    "initErrors",
    "provider",
    "propertyDependencies",
    "pendingReplacement",
    "additionalSecretOutputs",
    "aliases",
    "customTimeouts",
}


def _preview(tmp_path: Path, old: PlanBuilder, new: PlanBuilder) -> dict:
    a, b = old.write(tmp_path / "old"), new.write(tmp_path / "new")
    return plandiff.preview(plandiff.load_plan(a), plandiff.load_plan(b))


def _ops(preview: dict) -> dict[str, str]:
    return {s["urn"].rsplit("::", 1)[1]: s["op"] for s in preview["steps"]}


def test_the_preview_has_one_step_per_resource_in_the_engines_fields(tmp_path):
    """One more worker and a version bump: the new worker's resources are created, the
    upgrade commands (a new create line) update, the instances' ignored user-data is no
    change to the engine (same), a removed worker's resources are deleted."""
    old = PlanBuilder(workers=3, upgrade_commands=True)
    new = PlanBuilder(workers=2, k8s="1.32.0", upgrade_commands=True)
    preview = _preview(tmp_path, old, new)
    steps = preview["steps"]
    assert steps[0] == {
        "op": "same",
        "urn": "urn:pulumi:dev::openstack-k8s::pulumi:pulumi:Stack::openstack-k8s-dev",
        "detailedDiff": None,
    }
    for s in steps:
        assert set(s) <= PREVIEW_STEP and {"op", "urn", "detailedDiff"} <= set(s), s
        for key in ("oldState", "newState"):
            assert set(s.get(key) or {}) <= RESOURCE_V3, s[key]
    assert len({s["urn"] for s in steps}) == len(steps)
    ops = _ops(preview)
    builder_names = {r["name"] for r in old.resources + new.resources} - {"openstack-k8s-dev"}
    assert set(ops) == builder_names | {"openstack-k8s-dev"}
    assert [ops[f"dev-worker-2{s}"] for s in ("", "-port", "-ready", "-join", "-upgrade")] == [
        "delete"
    ] * 5
    assert ops["dev-worker-0-upgrade"] == ops["dev-master-0-upgrade"] == "update"
    assert ops["dev-worker-0"] == ops["dev-master-0"] == "same"  # userData is ignored
    upgrade = next(s for s in steps if s["urn"].endswith("::dev-worker-0-upgrade"))
    assert upgrade["diffReasons"] == ["create"] and "replaceReasons" not in upgrade
    assert upgrade["detailedDiff"] == {"create": {"kind": "update", "inputDiff": True}}
    assert upgrade["oldState"]["inputs"]["create"] != upgrade["newState"]["inputs"]["create"]
    counts = preview["changeSummary"]
    assert sum(counts.values()) == len(steps) and counts["delete"] == 5
    assert json.loads(json.dumps(preview)) == preview  # what is written is what is read


def test_a_replacement_step_names_what_forces_it(tmp_path):
    old, new = PlanBuilder(ignore_user_data=False), PlanBuilder(ignore_user_data=False)
    new.user_data["dev-worker-0"] += "# changed\n"
    worker = next(r for r in new.resources if r["name"] == "dev-worker-0")
    worker["inputs"] = dict(worker["inputs"], userData="#cloud-config\n# new\n")
    step = next(s for s in _preview(tmp_path, old, new)["steps"] if s["urn"] == worker["urn"])
    assert (step["op"], step["diffReasons"], step["replaceReasons"]) == (
        "replace",
        ["userData"],
        ["userData"],
    )
    assert step["detailedDiff"] == {"userData": {"kind": "update-replace", "inputDiff": True}}
    assert "id" not in step["newState"]  # a replacement's id is the cloud's to give
