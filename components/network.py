"""PrivateNetwork: the cluster's network, its way out, and one security group per role."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_openstack as openstack

from rules import names

API_PORT = 6443
# The VIP's port: haproxy runs on the masters next to kube-apiserver, which already holds
# 6443 on every address of its node.
VIP_PORT = 8443
ETCD_PORTS = (2379, 2380)
KUBELET_PORT = 10250
VXLAN_PORT = 8472
NODE_PORTS = (30000, 32767)
# VRRP is IP protocol 112: keepalived's adverts between masters.
VRRP_PROTOCOL = "112"


@dataclass(frozen=True)
class Rule:
    """One ingress rule: who (a CIDR or another role's group) may reach which ports."""

    description: str
    protocol: str
    ports: tuple[int, int] | None
    cidr: str | None = None
    group: str | None = None

    @property
    def key(self) -> str:
        """A name that stays put when other rules come and go (no list indexes)."""
        ports = "all" if self.ports is None else "-".join(map(str, sorted(set(self.ports))))
        source = (
            f"from-{self.group}" if self.group else "from-" + (self.cidr or "").replace("/", "-")
        )
        return f"{self.protocol}-{ports}-{source}"


@dataclass(frozen=True)
class FirewallArgs:
    """Who may reach the nodes, as Cluster translated the settings."""

    subnet: str  # the node subnet's range, or SUBNET when only the cloud knows it
    ssh_allowed_cidrs: tuple[str, ...]
    api_allowed_cidrs: tuple[str, ...]
    node_port_allowed_cidrs: tuple[str, ...]
    through_jump_host: bool  # commands reach the nodes through the discovery node
    bastion_cidr: str | None  # the operator's bastion, when its address is known
    endpoint_kind: str  # vip / octavia / master
    vrrp: bool  # keepalived moves a VIP between several masters
    gateway: bool  # some pool serves HTTP(S) from anywhere


def role_rules(fw: FirewallArgs) -> dict[str, list[Rule]]:
    """Least-privilege ingress per role, as data: the security groups are built from this.

    Roles: discovery (etcd for discovery and flannel, SSH jump host), master, worker.
    Egress stays open (the cloud's default rules): nodes install packages at first boot.
    """
    rules = {
        "discovery": _discovery_rules(fw),
        "master": _kube_node_rules(fw) + _master_rules(fw),
        "worker": _kube_node_rules(fw) + _worker_rules(fw),
    }
    return {role: _one_per_key(rs) for role, rs in rules.items()}


def _discovery_rules(fw: FirewallArgs) -> list[Rule]:
    rules = [Rule("ssh to the jump host", "tcp", (22, 22), cidr=c) for c in fw.ssh_allowed_cidrs]
    rules += [
        Rule(f"discovery etcd from {role}s", "tcp", (2379, 2379), group=role)
        for role in ("master", "worker")
    ]
    rules.append(Rule("discovery etcd peers", "tcp", ETCD_PORTS, group="discovery"))
    if fw.bastion_cidr is not None:
        rules.append(Rule("ssh from the bastion", "tcp", (22, 22), cidr=fw.bastion_cidr))
    return rules


def _kube_node_rules(fw: FirewallArgs) -> list[Rule]:
    """What masters and workers alike accept: SSH for the commands, kubelet, flannel, ICMP."""
    # Without the jump host's floating IP, commands come from the operator's bastion or from
    # where Pulumi runs (sshAllowedCidrs) straight to every node.
    commands_from = [] if fw.through_jump_host else list(fw.ssh_allowed_cidrs)
    if fw.bastion_cidr is not None:
        commands_from.append(fw.bastion_cidr)
    rules = [Rule("ssh from the jump host", "tcp", (22, 22), group="discovery")]
    rules += [Rule("ssh for remote commands", "tcp", (22, 22), cidr=cidr) for cidr in commands_from]
    # metrics-server runs on workers, and flannel masquerades its scrapes with the
    # worker's own address: kubelets answer masters and workers alike.
    rules += [
        Rule(f"kubelet from {peer}s", "tcp", (KUBELET_PORT, KUBELET_PORT), group=peer)
        for peer in ("master", "worker")
    ]
    for peer in ("master", "worker"):
        rules.append(
            Rule(f"flannel vxlan from {peer}s", "udp", (VXLAN_PORT, VXLAN_PORT), group=peer)
        )
        rules.append(Rule(f"icmp from {peer}s", "icmp", None, group=peer))
    return rules


def _master_rules(fw: FirewallArgs) -> list[Rule]:
    port = endpoint_port(fw.endpoint_kind)
    rules = []
    # 6443 itself: haproxy's backends, and pods reaching the `kubernetes` Service.
    for peer in ("master", "worker"):
        rules.append(Rule(f"api from {peer}s", "tcp", (API_PORT, API_PORT), group=peer))
        if port != API_PORT:
            rules.append(Rule(f"api endpoint from {peer}s", "tcp", (port, port), group=peer))
    rules += [
        Rule("api from allowed cidr", "tcp", (port, port), cidr=c) for c in fw.api_allowed_cidrs
    ]
    if fw.endpoint_kind == "octavia":
        # Octavia's amphorae health-check and forward from addresses in the cluster subnet.
        rules.append(
            Rule("api from the load balancer", "tcp", (API_PORT, API_PORT), cidr=fw.subnet)
        )
    rules.append(Rule("stacked etcd between masters", "tcp", ETCD_PORTS, group="master"))
    if fw.vrrp:
        rules.append(Rule("vrrp between masters", VRRP_PROTOCOL, None, group="master"))
    return rules


def _worker_rules(fw: FirewallArgs) -> list[Rule]:
    rules = [
        Rule("nodeports", "tcp", NODE_PORTS, cidr=cidr)
        for cidr in [fw.subnet, *fw.node_port_allowed_cidrs]
    ]
    if fw.gateway:
        rules += [
            Rule(f"gateway {port}", "tcp", (port, port), cidr="0.0.0.0/0") for port in (80, 443)
        ]
    return rules


def _one_per_key(rules: list[Rule]) -> list[Rule]:
    """Two sources can be the same rule (an allowed CIDR that is the cluster's own network):
    the first of them is kept, or the engine would see one resource name twice."""
    kept: dict[str, Rule] = {}
    for rule in rules:
        kept.setdefault(rule.key, rule)
    return list(kept.values())


def endpoint_port(kind: str) -> int:
    """The API endpoint's port: 8443 on the VIP (haproxy), else kube-apiserver's own 6443."""
    return VIP_PORT if kind == "vip" else API_PORT


# A rule's source that is the cluster's subnet, whose range an existing subnet only tells at
# plan time (a resource name cannot wait for it).
SUBNET = "subnet"


@dataclass(frozen=True)
class ExistingNetwork:
    network_id: str  # a name or an id
    subnet_id: str


@dataclass(frozen=True)
class NetworkArgs:
    """The network as Cluster translated the settings: made (cidr, mtu, DNS), or the
    operator's existing one; and the firewall."""

    cluster: str
    external_network: str
    firewall: FirewallArgs
    cidr: IPv4Network | None = None
    mtu: int | None = None
    dns_nameservers: tuple[str, ...] = ()
    existing: ExistingNetwork | None = None


class PrivateNetwork(pulumi.ComponentResource):
    """Network, subnet, router to the external network (or the operator's existing network
    and subnet), and per-role security groups."""

    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    cidr: pulumi.Output[str]
    external_network_id: pulumi.Output[str]
    security_groups: dict[str, openstack.networking.SecGroup]
    # What a VM waits for before it boots: the way out its bootstrap downloads through.
    way_out: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openstack-k8s:index:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        external = openstack.networking.get_network_output(
            name=args.external_network, external=True
        )
        self.external_network_id = external.id
        if args.existing is None:
            self._create(name, args, external)
        else:
            self._existing(args.existing)

        # Groups first, then rules: rules name other roles' groups as their source.
        self.security_groups = {
            role: openstack.networking.SecGroup(
                f"{name}-sg-{role}",
                name=f"{args.cluster}-{role}",
                description=f"openstack-k8s {args.cluster}: {role} nodes",
                opts=child,
            )
            for role in ("discovery", "master", "worker")
        }
        for role, rules in role_rules(args.firewall).items():
            for rule in rules:
                openstack.networking.SecGroupRule(
                    f"{name}-sg-{role}-{rule.key}",
                    description=rule.description,
                    direction="ingress",
                    ethertype="IPv4",
                    protocol=rule.protocol,
                    port_range_min=rule.ports[0] if rule.ports else None,
                    port_range_max=rule.ports[1] if rule.ports else None,
                    remote_ip_prefix=self.cidr if rule.cidr == SUBNET else rule.cidr,
                    remote_group_id=self.security_groups[rule.group].id if rule.group else None,
                    security_group_id=self.security_groups[role].id,
                    opts=child,
                )
        self.register_outputs({"networkId": self.network_id, "subnetId": self.subnet_id})

    def _create(self, name: str, args: NetworkArgs, external) -> None:
        child = pulumi.ResourceOptions(parent=self)
        cidr = args.cidr
        network = openstack.networking.Network(
            f"{name}-net",
            name=f"{args.cluster}-net",
            admin_state_up=True,
            mtu=args.mtu,
            opts=child,
        )
        subnet = openstack.networking.Subnet(
            f"{name}-subnet",
            name=f"{args.cluster}-subnet",
            network_id=network.id,
            cidr=str(cidr),
            ip_version=4,
            dns_nameservers=list(args.dns_nameservers) or None,
            opts=child,
        )
        router = openstack.networking.Router(
            f"{name}-router",
            name=f"{args.cluster}-router",
            external_network_id=external.id,
            opts=child,
        )
        self.way_out = [
            openstack.networking.RouterInterface(
                f"{name}-router-interface", router_id=router.id, subnet_id=subnet.id, opts=child
            )
        ]
        self.network_id, self.subnet_id = network.id, subnet.id
        self.cidr = pulumi.Output.from_input(str(cidr))

    def _existing(self, given: ExistingNetwork) -> None:
        """The operator's network and subnet, read from the cloud. Its way out (a router, or
        a package mirror inside the network) is the operator's: nothing is waited for."""
        subnet = (
            openstack.networking.get_subnet_output(subnet_id=given.subnet_id)
            if names.is_id(given.subnet_id)
            else openstack.networking.get_subnet_output(name=given.subnet_id)
        )
        network = (
            openstack.networking.get_network_output(network_id=given.network_id)
            if names.is_id(given.network_id)
            else openstack.networking.get_network_output(name=given.network_id)
        )
        self.way_out = []
        self.network_id, self.subnet_id = network.id, subnet.id
        # Checked against podCidr and serviceCidr by cluster.check_existing_subnet, before any
        # resource was registered.
        self.cidr = subnet.cidr
