"""NodeSet: a group of nodes and their lifecycle, the one loop every node goes through.

Discovery members, masters and every worker pool are configurations of it: the group's VMs
(GroupSpec), how each node's user-data is made, and the steps each node then runs (rows of
components/roles.STEPS, with the environment, order and trigger each configuration gives).

A set is built in three phases, because the nodes must know each other before any boots:
`open` makes the ports (every address known: user-data can name its peers), then `boot`,
then `run` for each group of steps. Node i of a set named `<set>` is `<set>-<i>`: the names are the
state's keys and never change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_openstack as openstack
from pulumi_command import remote

from components.commands import Access, Env, run_step, step_kit
from components.machine import (
    GroupSpec,
    anti_affinity_group,
    boot_node,
    floating_ip,
    machine_port,
    port_address,
)
from components.network import PrivateNetwork
from components.roles import RERUNS, Role, Step, command_name


@dataclass
class Node:
    """One booted node, and the commands of the steps it ran so far (by role)."""

    index: int
    name: str
    address: pulumi.Output[str]
    instance: openstack.compute.Instance
    connection: remote.ConnectionArgs
    steps: dict[Role, remote.Command] = field(default_factory=dict)

    @property
    def ready(self) -> remote.Command:
        """The node's ready gate: cloud-init finished on it."""
        return self.steps[Role.READY]


def _nothing(node: Node) -> Sequence[pulumi.Resource]:
    return ()


@dataclass(frozen=True)
class StepSpec:
    """A row of the table as one configuration runs it: the step, its environment and
    bound for each node, what it waits for, and its order over the nodes.

    Order: with `chain`, node i waits for the command of role `chain` on node i - `lanes`
    (one after another with lanes=1; `lanes` at a time otherwise), and a node with no such
    predecessor waits for `first` instead. Without `chain`, every node goes at once."""

    step: Step
    env: Callable[[Node], Env]
    timeout: int
    after: Callable[[Node], Sequence[pulumi.Resource]] = _nothing
    chain: Role | None = None
    lanes: int = 1
    first: Sequence[pulumi.Resource] = ()
    # Where the command runs: the node itself, unless given (the first master, the jump host).
    on: remote.ConnectionArgs | None = None
    label: Callable[[Node], str | None] | None = None


class NodeSet(pulumi.ComponentResource):
    """`group.count` nodes named `<name>-<i>`, each on its own port in its role's security
    group. `type_` keeps each configuration's own type token (and with it every URN)."""

    names: list[str]
    ports: list[openstack.networking.Port]
    addresses: list[pulumi.Output[str]]
    public_addresses: list[pulumi.Output[str]]  # the group's floating IPs
    reachable: list[pulumi.Resource]  # their associations: the nodes are reachable then
    nodes: list[Node]

    def __init__(
        self,
        type_: str,
        name: str,
        group: GroupSpec,
        *,
        network: PrivateNetwork,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_, name, None, opts)
        self._name, self._group, self._network = name, group, network
        self.names = [f"{name}-{i}" for i in range(group.count)]
        self.nodes = []

    def open(self, allowed_addresses: Sequence[pulumi.Input[str]] = ()) -> None:
        """Every node's port (its address known before any node boots), the group's floating
        IPs and server group. `allowed_addresses`: what every port may also answer for (the
        VIP keepalived moves between masters)."""
        self.ports = [
            machine_port(
                n,
                network=self._network,
                role=self._group.role,
                parent=self,
                allowed_addresses=allowed_addresses,
            )
            for n in self.names
        ]
        self.addresses = [port_address(p) for p in self.ports]
        made = self._floating_ips()
        self.public_addresses = [fip.address for fip, _ in made]
        self.reachable = [association for _, association in made]
        policy = self._group.server_group
        self._server_group = anti_affinity_group(self._name, self, policy) if policy else None

    def _floating_ips(self) -> list[tuple]:
        """The group's floating IPs and their associations: on the first node (the set's
        own), or on every node."""
        fips = self._group.floating_ips
        if fips is None:
            return []
        owners = self.names if fips.every_node else [self._name]
        return [
            floating_ip(
                f"{owner}-fip",
                pool=fips.pool,
                description=fips.description.format(node=owner),
                port_id=port.id,
                network=self._network,
                parent=self,
            )
            for owner, port in zip(owners, self.ports, strict=False)
        ]

    def boot(
        self,
        user_data: Callable[[int], pulumi.Output[str]],
        *,
        access: Access,
        after: Sequence[pulumi.Resource] = (),
        jump_host_first: bool = False,
    ) -> list[Node]:
        """Every node's VM and ready gate. With jump_host_first, node 0 is the jump host:
        reached straight, where the others are reached through it."""
        for i, (name, port, address) in enumerate(
            zip(self.names, self.ports, self.addresses, strict=True)
        ):
            vm = boot_node(
                name,
                self._group,
                index=i,
                port=port,
                address=address,
                user_data=user_data(i),
                network=self._network,
                access=access,
                parent=self,
                server_group=self._server_group,
                jump_host=jump_host_first and i == 0,
                depends_on=after,
            )
            kit = step_kit(
                name,
                self._group.role,
                connection=vm.connection,
                instance=vm.instance,
                timeout=self._group.ready_timeout,
                parent=self,
                after=[vm.ready],
            )
            steps = {Role.READY: vm.ready, Role.STEP_KIT: kit}
            self.nodes.append(Node(i, name, address, vm.instance, vm.connection, steps))
        return self.nodes

    def run(self, specs: Sequence[StepSpec], *, only: Sequence[int] | None = None) -> list[Node]:
        """The steps, node after node (each node's in the given order), on every node or on
        `only` those (in that order). Returns the nodes it ran on."""
        nodes = [self.nodes[i] for i in only] if only is not None else self.nodes
        for k, node in enumerate(nodes):
            for spec in specs:
                node.steps[spec.step.role] = self._command(spec, node, nodes[:k])
        return nodes

    def _command(self, spec: StepSpec, node: Node, before: list[Node]) -> remote.Command:
        waits = list(spec.after(node))
        if spec.step.mode in RERUNS:
            # It runs the node's installed copy of its script: after the kit is there (and,
            # when a revision is raised, after the new kit is).
            waits.append(node.steps[Role.STEP_KIT])
        previous = before[-spec.lanes] if spec.chain and len(before) >= spec.lanes else None
        if previous is not None and spec.chain in previous.steps:
            waits.append(previous.steps[spec.chain])
        else:
            waits += spec.first
        step = spec.step
        return run_step(
            step,
            command_name(node.name, step.role),
            connection=spec.on if spec.on is not None else node.connection,
            env=spec.env(node),
            timeout=spec.timeout,
            parent=self,
            after=waits,
            instance=node.instance if step.per_vm else None,
            label=spec.label(node) if spec.label else None,
        )
