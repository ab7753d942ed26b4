"""NodeSet on its own, under the mock engine in this process, with small hand-made arguments:
the VMs it opens and boots, the order its steps run in over the nodes, what each mode of
the lifecycle table makes of a command, and the table itself."""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pytest

from cloud_init import SCRIPTS
from components import roles
from components.cluster import network_args
from components.commands import Access, run_step
from components.machine import FloatingIps, GroupSpec, NodeImage
from components.network import PrivateNetwork
from components.node_set import NodeSet, StepSpec
from components.roles import GENERATIONAL, STEPS, Mode, Role, command_name, role_of

SET_TYPE = "test:index:NodeSet"
PORT = "openstack:networking/port:Port"
INSTANCE = "openstack:compute/instance:Instance"
FIP = "openstack:networking/floatingIp:FloatingIp"
ASSOCIATION = "openstack:networking/floatingIpAssociate:FloatingIpAssociate"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
COMMAND = "command:remote:Command"
RUN = "sudo bash -s"


@pytest.fixture
def net(stack_settings):
    return network_args(stack_settings())


def _group(count: int, **extra) -> GroupSpec:
    # Made inside a build: an Output belongs to the run that makes it.
    image = NodeImage(name="img", id=pulumi.Output.from_input("image-id"))
    return GroupSpec(
        role="worker",
        count=count,
        cluster="t",
        image=image,
        flavor="m1.small",
        ready_timeout=60,
        **extra,
    )


def _access() -> Access:
    return Access(
        private_key=pulumi.Output.secret("deploy-key"),
        jump_host=pulumi.Output.from_input("203.0.113.9"),
    )


def _env(node) -> dict:
    return {"NODE": node.name}


@dataclass
class Planned:
    """What a build registered, and the NodeSet it made (for what it returns, not registers)."""

    regs: list
    node_set: NodeSet
    ran: list

    @property
    def by_name(self) -> dict:
        return {r.name: r for r in self.regs}

    def named(self, name: str):
        return self.by_name[name]

    def of_type(self, type_: str) -> list:
        return [r for r in self.regs if r.type == type_]

    def deps(self, name: str) -> set[str]:
        """Names of what `name` waits for directly (options and inputs)."""
        urns = {r.urn: r.name for r in self.regs}
        return {urns[u] for u in self.named(name).dependencies if u in urns}


def _plan(
    under_mocks,
    net,
    count: int = 3,
    *,
    specs=lambda first: [],
    only=None,
    type_: str = SET_TYPE,
    user_data=None,
    **group,
) -> Planned:
    """A set `t-set` of `count` nodes: opened, booted, its `specs` run (given `first`, a
    resource made before the set, for what the first nodes wait for)."""
    made: dict = {}

    def build():
        network = PrivateNetwork("t-network", net)
        first = random.RandomId("first", byte_length=4)
        s = NodeSet(type_, "t-set", _group(count, **group), network=network)
        s.open()
        s.boot(user_data or (lambda i: pulumi.Output.from_input(f"node {i}")), access=_access())
        made["ran"] = s.run(specs(first), only=only)
        made["set"] = s

    ev = under_mocks(build)
    return Planned(ev.registrations, made["set"], made["ran"])


# The VMs: ports, instances, parents, type token.


def test_ports_first_then_instances_named_by_index_all_children_of_the_set(under_mocks, net):
    seen: list[int] = []

    def user_data(i: int):
        # Every port exists when user-data is made: a node can name its peers.
        seen.append(i)
        return pulumi.Output.all(*s.addresses).apply(lambda a: f"node {i} peers {','.join(a)}")

    made: dict = {}

    def build():
        nonlocal s
        network = PrivateNetwork("t-network", net)
        s = NodeSet("openstack-k8s:index:WorkerPool", "t-set", _group(3), network=network)
        s.open()
        assert len(s.ports) == 3 and not s.nodes  # opened, nothing booted yet
        made["nodes"] = s.boot(user_data, access=_access())

    s = None
    regs = under_mocks(build).registrations
    names = [r.name for r in regs]
    ports = [names.index(f"t-set-{i}-port") for i in range(3)]
    instances = [names.index(f"t-set-{i}") for i in range(3)]
    assert max(ports) < min(instances)
    assert seen == [0, 1, 2] and [n.name for n in made["nodes"]] == [
        "t-set-0",
        "t-set-1",
        "t-set-2",
    ]
    assert [r.name for r in regs if r.type == INSTANCE] == ["t-set-0", "t-set-1", "t-set-2"]
    by_name = {r.name: r for r in regs}
    # A node's address, as its ready gate dials it.
    addresses = [by_name[f"t-set-{i}-ready"].raw_inputs["connection"]["host"] for i in range(3)]
    assert len(set(addresses)) == 3 and all(a.startswith("10.0.0.") for a in addresses)
    assert by_name["t-set-0"].raw_inputs["userData"] == f"node 0 peers {','.join(addresses)}"
    # The set's own type token, and every resource it made is its child.
    (node_set,) = [r for r in regs if r.name == "t-set"]
    assert node_set.type == "openstack-k8s:index:WorkerPool"
    assert node_set.urn.endswith("::openstack-k8s:index:WorkerPool::t-set")
    children = [r for r in regs if r.name.startswith("t-set-")]
    assert len(children) >= 3 * 5  # port, image pin, instance, sshd, ready per node
    assert all(r.parent == node_set.urn for r in children), [
        r.name for r in children if r.parent != node_set.urn
    ]


def test_each_node_boots_on_its_own_port_and_waits_for_the_way_out(under_mocks, net):
    p = _plan(under_mocks, net, 2)
    for i in range(2):
        vm = p.named(f"t-set-{i}")
        assert vm.raw_inputs["networks"] == [{"port": p.named(f"t-set-{i}-port").id}]
        assert "t-network-router-interface" in p.deps(f"t-set-{i}")
        ready = f"t-set-{i}-ready"
        assert {f"t-set-{i}", f"t-set-{i}-sshd"} <= p.deps(ready)
    assert [(n.index, n.name) for n in p.node_set.nodes] == [(0, "t-set-0"), (1, "t-set-1")]
    # Booted: the ready gate, then the step kit (its own command, after the gate).
    for n in p.node_set.nodes:
        assert set(n.steps) == {Role.READY, Role.STEP_KIT} and n.steps[Role.READY] is n.ready
        assert f"{n.name}-ready" in p.deps(f"{n.name}-step-kit")


# Floating IPs and the server group.


def _description(fip) -> str:
    return fip.raw_inputs["description"]


def test_one_floating_ip_for_the_set_on_its_first_node(under_mocks, net):
    fips = FloatingIps(pool="public", every_node=False, description="{node} jump host")
    p = _plan(under_mocks, net, 3, floating_ips=fips)
    assert [r.name for r in p.of_type(FIP)] == ["t-set-fip"]
    assert _description(p.named("t-set-fip")) == "t-set jump host"
    assert p.named("t-set-fip").raw_inputs["pool"] == "public"
    (assoc,) = p.of_type(ASSOCIATION)
    assert assoc.name == "t-set-fip-association"
    assert assoc.raw_inputs["portId"] == p.named("t-set-0-port").id
    assert assoc.raw_inputs["floatingIp"].startswith("203.0.113.")  # the mock's floating IPs
    assert "t-network-router-interface" in p.deps(assoc.name)
    assert len(p.node_set.public_addresses) == 1 and len(p.node_set.reachable) == 1


def test_a_floating_ip_on_every_node(under_mocks, net):
    fips = FloatingIps(pool="public", every_node=True, description="{node} gateway")
    p = _plan(under_mocks, net, 3, floating_ips=fips)
    assert [r.name for r in p.of_type(FIP)] == [f"t-set-{i}-fip" for i in range(3)]
    for i in range(3):
        assert _description(p.named(f"t-set-{i}-fip")) == f"t-set-{i} gateway"
        assoc = p.named(f"t-set-{i}-fip-association")
        assert assoc.raw_inputs["portId"] == p.named(f"t-set-{i}-port").id
    addresses = {r.raw_inputs["floatingIp"] for r in p.of_type(ASSOCIATION)}
    assert len(addresses) == 3 and len(p.node_set.public_addresses) == 3


def test_no_floating_ip_without_one(under_mocks, net):
    p = _plan(under_mocks, net, 2)
    assert not p.of_type(FIP) and not p.of_type(ASSOCIATION)
    assert p.node_set.public_addresses == [] and p.node_set.reachable == []
    assert len(p.of_type(INSTANCE)) == 2  # the plan did run


def test_server_group_only_with_a_policy(under_mocks, net):
    with_group = _plan(under_mocks, net, 2, server_group="anti-affinity")
    (group,) = with_group.of_type(SERVER_GROUP)
    assert group.name == "t-set-spread" and group.parent == with_group.named("t-set").urn
    assert group.raw_inputs["policies"] in ("anti-affinity", ["anti-affinity"])
    for vm in with_group.of_type(INSTANCE):
        assert vm.raw_inputs["schedulerHints"] == [{"group": group.id}]
    without = _plan(under_mocks, net, 2)
    assert not without.of_type(SERVER_GROUP)
    vms = without.of_type(INSTANCE)
    assert len(vms) == 2 and all(not vm.raw_inputs.get("schedulerHints") for vm in vms)


def test_zones_round_robin(under_mocks, net):
    p = _plan(under_mocks, net, 5, zones=("az-a", "az-b"))
    zones = [p.named(f"t-set-{i}").raw_inputs["availabilityZone"] for i in range(5)]
    assert zones == ["az-a", "az-b", "az-a", "az-b", "az-a"]
    none = _plan(under_mocks, net, 2)
    vms = none.of_type(INSTANCE)
    assert len(vms) == 2 and all("availabilityZone" not in vm.raw_inputs for vm in vms)


# Ordering of a step over the nodes.


def _upgrade(first, **order) -> list[StepSpec]:
    return [StepSpec(roles.UPGRADE_WORKER, env=_env, timeout=60, first=[first], **order)]


def _peers(p: Planned, i: int, count: int, role: Role = Role.UPGRADE) -> set[str]:
    """The commands of `role` on other nodes that node i's command waits for."""
    others = {command_name(f"t-set-{j}", role) for j in range(count) if j != i}
    return p.deps(command_name(f"t-set-{i}", Role.UPGRADE)) & others


def test_all_at_once(under_mocks, net):
    p = _plan(under_mocks, net, 4, specs=lambda first: _upgrade(first))
    for i in range(4):
        assert _peers(p, i, 4) == set()
        assert "first" in p.deps(f"t-set-{i}-upgrade")
    assert [n.index for n in p.ran] == [0, 1, 2, 3]


def test_one_after_another(under_mocks, net):
    p = _plan(under_mocks, net, 4, specs=lambda first: _upgrade(first, chain=Role.UPGRADE))
    assert "first" in p.deps("t-set-0-upgrade") and _peers(p, 0, 4) == set()
    for i in range(1, 4):
        assert _peers(p, i, 4) == {f"t-set-{i - 1}-upgrade"}
        assert "first" not in p.deps(f"t-set-{i}-upgrade")


def test_chained_on_another_role(under_mocks, net):
    """A master's token waits for the previous master's join: the chain names a role other
    than the step's own, and the nodes' steps run in the order given."""

    def specs(first):
        return [
            StepSpec(roles.TOKEN, env=_env, timeout=60, chain=Role.JOIN, first=[first]),
            StepSpec(
                roles.JOIN,
                env=_env,
                timeout=60,
                after=lambda n: [n.steps[Role.TOKEN]],
                chain=Role.JOIN,
                first=[first],
            ),
        ]

    p = _plan(under_mocks, net, 3, specs=specs)
    assert "first" in p.deps("t-set-0-token")
    for i in (1, 2):
        assert f"t-set-{i - 1}-join" in p.deps(f"t-set-{i}-token")
        assert {f"t-set-{i}-token", f"t-set-{i - 1}-join"} <= p.deps(f"t-set-{i}-join")
    assert set(p.ran[2].steps) == {Role.READY, Role.STEP_KIT, Role.TOKEN, Role.JOIN}


def test_lanes(under_mocks, net):
    p = _plan(under_mocks, net, 5, specs=lambda first: _upgrade(first, chain=Role.UPGRADE, lanes=2))
    for i in (0, 1):
        assert "first" in p.deps(f"t-set-{i}-upgrade") and _peers(p, i, 5) == set()
    for i in (2, 3, 4):
        assert _peers(p, i, 5) == {f"t-set-{i - 2}-upgrade"}
        assert "first" not in p.deps(f"t-set-{i}-upgrade")


def test_only_some_nodes_in_the_order_given(under_mocks, net):
    """As discovery's etcd-leave: every member but the first, the last one first."""

    def specs(first):
        return [
            StepSpec(roles.ETCD_LEAVE, env=_env, timeout=60, chain=Role.ETCD_LEAVE, first=[first])
        ]

    p = _plan(under_mocks, net, 4, specs=specs, only=[3, 2, 1])
    leave = sorted(r.name for r in p.of_type(COMMAND) if role_of(r.name) is Role.ETCD_LEAVE)
    assert leave == ["t-set-1-etcd-leave", "t-set-2-etcd-leave", "t-set-3-etcd-leave"]
    assert [n.index for n in p.ran] == [3, 2, 1]
    assert "first" in p.deps("t-set-3-etcd-leave")
    assert "t-set-3-etcd-leave" in p.deps("t-set-2-etcd-leave")
    assert "t-set-2-etcd-leave" in p.deps("t-set-1-etcd-leave")
    assert "first" not in p.deps("t-set-1-etcd-leave")
    assert Role.ETCD_LEAVE not in p.node_set.nodes[0].steps


def test_a_step_runs_where_it_is_told(under_mocks, net):
    """`on`: the command connects there (the first master, the jump host), not to its node."""

    def specs(first):
        on = _access().to_jump_host()
        return [
            StepSpec(roles.DRAIN, env=_env, timeout=60, on=on),
            StepSpec(roles.JOIN, env=_env, timeout=60),
        ]

    p = _plan(under_mocks, net, 2, specs=specs)
    address = p.named("t-set-1-ready").raw_inputs["connection"]["host"]
    assert address.startswith("10.0.0.")
    assert p.named("t-set-1-drain").raw_inputs["connection"]["host"] == "203.0.113.9"
    assert p.named("t-set-1-join").raw_inputs["connection"]["host"] == address


# Modes: what run_step makes of each row's mode.


def _one_step(under_mocks, step: roles.Step, *, label=None, timeout=90):
    """run_step for `step` under a bare parent, its instance a stand-in with an id."""

    def build():
        parent = pulumi.ComponentResource("test:index:Parent", "p")
        vm = random.RandomId("vm", byte_length=4)
        run_step(
            step,
            command_name("n-0", step.role),
            connection=_access().to_node("10.0.0.5"),
            env={"NODE": "n-0"},
            timeout=timeout,
            parent=parent,
            after=[vm],
            instance=vm if step.per_vm else None,
            label=label,
        )

    regs = under_mocks(build).registrations
    by_name = {r.name: r for r in regs}
    return by_name[command_name("n-0", step.role)], by_name["vm"]


def _delete_script(cmd) -> str:
    line = cmd.raw_inputs["delete"]
    encoded = re.fullmatch(r"echo (\S+) \| base64 -d \| sudo bash -s", line).group(1)
    return base64.b64decode(encoded).decode()


def _run_once(cmd, vm, step):
    assert cmd.raw_inputs["create"] == RUN
    assert cmd.raw_inputs["update"] == "true"  # an update is a no-op
    assert cmd.options["ignoreChanges"] == ["connection", "stdin"]
    assert "delete" not in cmd.raw_inputs


def _apply(cmd, vm, step):
    assert cmd.raw_inputs["create"] == RUN and cmd.raw_inputs["update"] == RUN
    assert "ignoreChanges" not in cmd.options


def _day_2(cmd, vm, step):
    assert "create" not in cmd.raw_inputs
    assert cmd.raw_inputs["update"] == f"{RUN}  # {step.role.value}"
    assert "ignoreChanges" not in cmd.options


def _on_delete(cmd, vm, step):
    assert "create" not in cmd.raw_inputs and "update" not in cmd.raw_inputs
    text = _delete_script(cmd)
    assert text.startswith("export NODE=n-0\n")
    assert (SCRIPTS / step.script).read_text().splitlines()[0] in text


MODES = {
    Mode.RUN_ONCE: (roles.JOIN, _run_once),
    Mode.APPLY: (roles.APISERVER, _apply),
    Mode.DAY_2: (roles.UPGRADE_WORKER, _day_2),
    Mode.ON_DELETE: (roles.DRAIN, _on_delete),
    # Once per generation: the name carries the generation, the command never runs again.
    Mode.PER_GENERATION: (roles.ENCRYPTION_ADD, _run_once),
}


def test_every_mode_is_covered():
    assert set(MODES) == set(Mode)
    assert all(step.mode is mode for mode, (step, _) in MODES.items())


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_makes_the_command(under_mocks, mode):
    step, check = MODES[mode]
    cmd, vm = _one_step(under_mocks, step)
    check(cmd, vm, step)
    assert cmd.type == COMMAND and cmd.parent.endswith("::test:index:Parent::p")
    assert vm.urn in cmd.dependencies
    assert cmd.raw_inputs.get("triggers") == ([vm.id] if step.per_vm else None)
    assert cmd.raw_inputs["addPreviousOutputInEnv"] is False
    minutes = f"{math.ceil(90 / 60) + 5}m"
    assert cmd.options["customTimeouts"] == {
        "create": minutes,
        "update": minutes,
        "delete": minutes,
    }


def test_day_2_label_on_the_command_line(under_mocks):
    cmd, _ = _one_step(under_mocks, roles.UPGRADE_WORKER, label="kubernetes 1.31.2")
    assert cmd.raw_inputs["update"] == f"{RUN}  # kubernetes 1.31.2"
    assert "create" not in cmd.raw_inputs


def test_a_run_once_label_is_on_its_create(under_mocks):
    cmd, _ = _one_step(under_mocks, roles.JOIN, label="why")
    assert cmd.raw_inputs["create"] == f"{RUN}  # why" and cmd.raw_inputs["update"] == "true"


@pytest.mark.parametrize("step", [s for s in STEPS if s.mode is not Mode.ON_DELETE], ids=str)
def test_secret_stdout_rows(under_mocks, step):
    cmd, _ = _one_step(under_mocks, step)
    # (the SDK itself always marks `connection` secret)
    secret = cmd.options["additionalSecretOutputs"]
    assert "connection" in secret
    if step.secret_stdout:
        assert "stdout" in secret and cmd.raw_inputs["logging"] == "stderr"
    else:
        assert "stdout" not in secret and cmd.raw_inputs["logging"] == "stdoutAndStderr"


def test_secret_stdout_rows_exist():
    assert {s.role for s in STEPS if s.secret_stdout} == {Role.TOKEN, Role.UPGRADE_CREDENTIAL}


def test_per_vm_rows_through_the_set_are_triggered_by_their_instance(under_mocks, net):
    def specs(first):
        return [
            StepSpec(roles.INIT, env=_env, timeout=60),  # not per VM
            StepSpec(roles.JOIN, env=_env, timeout=60),  # per VM
        ]

    p = _plan(under_mocks, net, 2, specs=specs)
    for i in range(2):
        vm = p.named(f"t-set-{i}")
        assert p.named(f"t-set-{i}-join").raw_inputs["triggers"] == [vm.id]
        assert "triggers" not in p.named(f"t-set-{i}-init").raw_inputs
        assert p.named(f"t-set-{i}-ready").raw_inputs["triggers"] == [vm.id]
    assert p.named("t-set-0").id != p.named("t-set-1").id


def test_a_label_per_node(under_mocks, net):
    def specs(first):
        return [
            StepSpec(
                roles.NETWORK_POLICY, env=_env, timeout=60, label=lambda n: f"policy off {n.name}"
            )
        ]

    p = _plan(under_mocks, net, 2, specs=specs)
    for i in range(2):
        cmd = p.named(f"t-set-{i}-network-policy")
        assert cmd.raw_inputs["update"] == f"{RUN}  # policy off t-set-{i}"


# The table.


def test_every_role_has_a_row():
    assert {s.role for s in STEPS} == set(Role)


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_every_row_names_scripts_that_exist(step):
    assert (SCRIPTS / step.script).is_file(), step.script
    for used in step.uses:
        assert (SCRIPTS / used).is_file(), used
    assert step.revision >= 1


@pytest.mark.parametrize("step", STEPS, ids=str)
@pytest.mark.parametrize("owner", ["t-set-0", "dev-worker-join-12", "dev"])
def test_every_row_name_reads_back_as_its_role(step, owner):
    generation = 3 if step.role in GENERATIONAL else None
    assert (step.mode is Mode.PER_GENERATION) == (generation is not None)
    name = command_name(owner, step.role, generation)
    assert role_of(name) is step.role
