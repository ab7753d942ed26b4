"""ControlPlane: the masters (a NodeSet), the one API endpoint in front of them, kubeadm
init on the first, control-plane joins on the rest (one after another), and the rotation of
the Secrets encryption key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random
from pulumi_command import remote

from cloud_init import kubeadm
from cloud_init.constants import CONTROL_PLANE_TAINT
from cloud_init.ha import Master, ha_cloud_config
from cloud_init.kubeconfig import ca_cert_hash
from cloud_init.userdata import tar_b64
from components import roles
from components.apiserver import (
    ApiServerArgs,
    RotatingMaster,
    api_server_config,
    apiserver_step,
    rotate_encryption_key,
)
from components.backup import BackupArgs, etcd_backup_step
from components.commands import Access
from components.kube_node import (
    KUBEADM_INIT_CONFIG,
    KUBEADM_INIT_FILE,
    FlannelClient,
    JoinTarget,
    KubeArgs,
    UpgradeGate,
    flannel_renewal_step,
    join_steps,
    kube_user_data,
    network_policy_step,
    upgrade_credential_step,
    upgrade_master_step,
)
from components.machine import GroupSpec, floating_ip, port_address
from components.network import API_PORT, VIP_PORT, PrivateNetwork
from components.node_set import Node, NodeSet, StepSpec
from components.pki import KubernetesPki

MASTER_TAINTS = [CONTROL_PLANE_TAINT]
# keepalived's virtual router id: one per cluster network, any fixed value will do.
VRRP_ROUTER_ID = 51
# The Octavia provider behind `endpoint: octavia`.
OCTAVIA_PROVIDER = "amphora"


def api_listener_cidrs(
    allowed: Sequence[str], subnet: pulumi.Output[str]
) -> pulumi.Output[list[str]]:
    """Who may open a connection to the API load balancer: never the whole world by default."""
    return subnet.apply(lambda net: list(dict.fromkeys([net, *allowed])))


@dataclass(frozen=True)
class ControlPlaneArgs:
    """The masters and their endpoint, as Cluster translated the settings."""

    group: GroupSpec
    cluster: str
    endpoint_kind: str  # vip / octavia / master (settings.endpoint_kind)
    api_port: int  # what the endpoint listens on
    external_network: str
    floating_ip: bool
    dns_name: str | None
    api_allowed_cidrs: tuple[str, ...]
    service_cidr: str
    apiserver: ApiServerArgs
    backup: BackupArgs


@dataclass(frozen=True)
class ApiEndpoint:
    """What stands in front of the masters: its kind, its private address, and what the
    masters' user-data and the floating IP need of it."""

    kind: str  # vip / octavia / master
    address: pulumi.Output[str] | None  # None: the first master's own
    vip_port: openstack.networking.Port | None = None
    vrrp_password: pulumi.Output[str] | None = None
    lb: openstack.loadbalancer.LoadBalancer | None = None


class ControlPlane(NodeSet):
    """Masters behind a VIP (keepalived + haproxy), an Octavia load balancer, or, with one
    master, that master's own address; a floating IP on the endpoint when asked."""

    endpoint_address: pulumi.Output[str]
    public_address: pulumi.Output[str]
    api_endpoint: pulumi.Output[str]  # https://<public address>:<port>, what kubeconfig names
    master_addresses: pulumi.Output[list[str]]
    join_target: JoinTarget
    # The token workers drain themselves with during an upgrade, made on the first master.
    upgrade_credential: remote.Command
    # The last master's upgrade: the whole control plane is at the new version.
    upgraded: remote.Command

    def __init__(
        self,
        name: str,
        args: ControlPlaneArgs,
        kube: KubeArgs,
        *,
        network: PrivateNetwork,
        pki: KubernetesPki,
        flannel: FlannelClient,
        access: Access,
        discovery_ready: list[pulumi.Resource],
        ssh_keys: pulumi.Output[list[str]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            "openstack-k8s:index:ControlPlane", name, args.group, network=network, opts=opts
        )
        self._args, self._kube, self._pki = args, kube, pki
        self._apiserver = api_server_config(name, args.apiserver, self)
        # The endpoint's own address comes first: every master's port must allow it.
        api = self._endpoint()
        self.open(allowed_addresses=[api.address] if api.kind == "vip" else ())
        self._front(api)
        endpoint_ready = self._octavia(api.lb, self.addresses) if api.lb is not None else []
        self.boot(lambda i: self._user_data(i, api, flannel, ssh_keys), access=access)
        self._bring_up([*discovery_ready, *endpoint_ready], flannel)
        self.register_outputs(
            {
                "endpoint": self.endpoint_address,
                "publicEndpoint": self.public_address,
                "masterAddresses": self.master_addresses,
            }
        )

    def _bring_up(self, init_after: list[pulumi.Resource], flannel: FlannelClient) -> None:
        """Every master's PKI (and the first's init config), init on the first, the key
        rotation, joins one after another, then the steps that keep them current."""
        kube, first = self._kube, self.nodes[0]
        self.run([self._kubeadm_files(), etcd_backup_step(self._args.backup, role="master")])
        self.run([flannel_renewal_step(flannel, after=lambda n: [n.ready])])
        self.run(
            [self._init(init_after), network_policy_step(kube, after=roles.Role.INIT)], only=[0]
        )
        self.join_target = JoinTarget(
            endpoint=self._endpoint_hostport,
            ca_cert_hash=self._pki.ca.public_key.apply(ca_cert_hash),
            first_master=first.connection,
            initialized=first.steps[roles.Role.INIT],
        )
        rotated = self._rotate_encryption_key()
        joined_after = lambda n: [n.steps[roles.Role.KUBEADM_FILES], *rotated]  # noqa: E731
        self.run(
            join_steps(
                kube,
                self.join_target,
                control_plane=True,
                labels={},
                taints=MASTER_TAINTS,
                after=joined_after,
            ),
            only=range(1, len(self.nodes)),
        )
        # API server changes reach running masters one at a time, the first one first; after
        # a key rotation, so that the file they install is already in place.
        self.run(
            [
                upgrade_master_step(kube),
                apiserver_step(self._apiserver, self._init_config, first=rotated),
            ]
        )
        # Made as soon as the API answers (off the path to a ready cluster); workers still
        # upgrade only after the last master, which they wait for themselves.
        self.run(
            [upgrade_credential_step(kube, after=lambda n: [n.steps[roles.Role.INIT]])], only=[0]
        )
        self.upgrade_credential = first.steps[roles.Role.UPGRADE_CREDENTIAL]
        self.upgraded = self.nodes[-1].steps[roles.Role.UPGRADE]

    def upgrade_gate(self, addons_rolled_out: Sequence[pulumi.Resource] = ()) -> UpgradeGate:
        """What worker upgrades wait for: the token made on the first master, the last
        master's upgrade, and the add-ons that roll out images of the new version."""
        return UpgradeGate(
            credential=self.upgrade_credential,
            control_plane_upgraded=self.upgraded,
            addons_rolled_out=tuple(addons_rolled_out),
        )

    def _endpoint(self) -> ApiEndpoint:
        """The VIP's port (and its VRRP password), or the Octavia load balancer."""
        name, args, network = self._name, self._args, self._network
        child = pulumi.ResourceOptions(parent=self)
        kind = args.endpoint_kind
        if kind == "vip":
            vip_port = openstack.networking.Port(
                f"{name}-vip",
                name=f"{args.cluster}-api-vip",
                network_id=network.network_id,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=network.subnet_id)],
                security_group_ids=[network.security_groups["master"].id],
                admin_state_up=True,
                opts=child,
            )
            # VRRP's PASS authentication is a plain-text word on the wire (only masters may
            # speak VRRP at all, by security group); it still should not be guessable.
            vrrp_password = random.RandomPassword(
                f"{name}-vrrp-password", length=8, special=False, opts=child
            ).result
            return ApiEndpoint(
                kind, port_address(vip_port), vip_port=vip_port, vrrp_password=vrrp_password
            )
        if kind == "octavia":
            lb = openstack.loadbalancer.LoadBalancer(
                f"{name}-lb",
                name=f"{args.cluster}-api",
                vip_subnet_id=network.subnet_id,
                # Amphorae, not the cloud's default: OVN load balancers know neither HTTPS
                # health monitors nor allowed CIDRs, and without them init never runs and
                # the API is open to every address.
                loadbalancer_provider=OCTAVIA_PROVIDER,
                opts=child,
            )
            return ApiEndpoint(kind, lb.vip_address, lb=lb)
        return ApiEndpoint(kind, None)

    def _front(self, api: ApiEndpoint) -> None:
        """The endpoint's addresses: private, public (its floating IP or DNS name), the
        certificate's SANs, and host:port every node joins through."""
        args, addresses = self._args, self.addresses
        self.master_addresses = pulumi.Output.all(*addresses)
        self.endpoint_address = api.address if api.address is not None else addresses[0]
        # The port the endpoint's address lives on: where the floating IP goes.
        fip_port = (
            api.vip_port.id if api.vip_port else api.lb.vip_port_id if api.lb else self.ports[0].id
        )
        public = self.endpoint_address
        if args.floating_ip:
            fip, _ = floating_ip(
                f"{self._name}-fip",
                pool=args.external_network,
                description=f"{args.cluster} API",
                port_id=fip_port,
                network=self._network,
                parent=self,
            )
            public = fip.address
        dns = args.dns_name
        self.public_address = pulumi.Output.from_input(dns) if dns else public
        self.api_endpoint = self.public_address.apply(lambda a: f"https://{a}:{args.api_port}")
        self._sans = pulumi.Output.all(self.endpoint_address, public, *addresses).apply(
            lambda a: sorted(set(a) | ({dns} if dns else set()))
        )
        self._endpoint_hostport = self.endpoint_address.apply(lambda a: f"{a}:{args.api_port}")
        self._masters = pulumi.Output.all(*addresses).apply(
            lambda a: [Master(name=n, address=x) for n, x in zip(self.names, a, strict=True)]
        )

    def _user_data(self, i: int, api: ApiEndpoint, flannel, ssh_keys) -> pulumi.Output[str]:
        """A master's cloud-config: the node's, and keepalived + haproxy behind a VIP. Its
        PKI is not in it (readable from the metadata service): kubeadm-files brings it."""
        extra = []
        if api.kind == "vip":
            extra.append(
                pulumi.Output.all(
                    masters=self._masters,
                    vip=api.address,
                    password=api.vrrp_password,
                    cidr=self._network.cidr,
                ).apply(
                    lambda v: ha_cloud_config(
                        me=v["masters"][i],
                        masters=v["masters"],
                        vip=v["vip"],
                        port=VIP_PORT,
                        backend_port=API_PORT,
                        interface_cidr=v["cidr"],
                        router_id=VRRP_ROUTER_ID,
                        auth_pass=v["password"],
                    )
                )
            )
        return kube_user_data(
            self._kube,
            role="master",
            node=self.names[i],
            flannel=flannel,
            ssh_keys=ssh_keys,
            network_cidr=self._network.cidr,
            extra=pulumi.Output.all(*extra),
        )

    def _kubeadm_files(self) -> StepSpec:
        """The shared PKI and the API server's files (and, on the first master, the init
        config) onto every master by a command, not in user-data (readable from the metadata
        service). Only after the VM, not its bootstrap: the files go in while cloud-init
        still runs, off the path to kubeadm init. The bound covers the VM's boot."""
        common = [*self._pki.files(), *self._apiserver.files]

        def env(n: Node) -> dict:
            files = common + ([(KUBEADM_INIT_FILE, self._init_config(n))] if n.index == 0 else [])
            paths = [p for p, _ in files]
            tar = pulumi.Output.all(*[c for _, c in files]).apply(
                lambda contents: tar_b64(zip(paths, contents, strict=True))
            )
            return {"KUBEADM_FILES_TAR_B64": pulumi.Output.secret(tar)}

        return StepSpec(
            roles.KUBEADM_FILES,
            env=env,
            timeout=self._kube.timeouts.ready,
            after=lambda n: [n.instance],
        )

    def _init(self, after: list[pulumi.Resource]) -> StepSpec:
        """kubeadm init on the first master, with the program's PKI and init config. The CA
        is ours (installed by kubeadm-files): a retry's `kubeadm reset` must not throw it
        away."""
        t = self._kube.timeouts
        return StepSpec(
            roles.INIT,
            env=lambda n: {
                "KUBEADM_INIT_CONFIG": KUBEADM_INIT_CONFIG,
                "INIT_TIMEOUT": str(t.init),
                "PRESERVE_PKI": "true",
            },
            timeout=t.init,
            after=lambda n: [n.ready, n.steps[roles.Role.KUBEADM_FILES], *after],
        )

    def _init_config(self, n: Node) -> pulumi.Output[str]:
        """kubeadm's Init- and ClusterConfiguration as master n would be initialised with:
        what `kubeadm init` runs on the first, and what regenerates any master's API server
        when its flags change."""
        args, kube = self._args, self._kube
        return pulumi.Output.all(
            address=n.address, endpoint=self._endpoint_hostport, sans=self._sans
        ).apply(
            lambda v: kubeadm.init_config(
                cluster_name=args.cluster,
                node_name=n.name,
                node_ip=v["address"],
                kubernetes_version=kube.kubernetes_version,
                endpoint=v["endpoint"],
                cert_sans=v["sans"],
                pod_cidr=kube.pod_cidr,
                service_cidr=args.service_cidr,
                image_repository=kube.image_repository,
                labels={},
                taints=MASTER_TAINTS,
                external_cloud=kube.external_cloud,
                api_server_args=self._apiserver.args,
                api_server_volumes=self._apiserver.volumes,
            )
        )

    def _rotate_encryption_key(self) -> list[remote.Command]:
        """keyGeneration > 1: the rotation from the previous key, through every master (a
        master that has not joined yet is left alone: it starts with the new key from its PKI
        files, and joins only once the rotation is over, so it never serves Secrets it cannot
        read). Returns its last step, or nothing."""
        rotation = self._apiserver.rotation
        if rotation is None:
            return []
        masters = [
            RotatingMaster(
                node=n.name,
                connection=n.connection,
                after=[n.steps[roles.Role.INIT if n.index == 0 else roles.Role.KUBEADM_FILES]],
            )
            for n in self.nodes
        ]
        return [rotate_encryption_key(self._name, rotation, masters, self)]

    def _octavia(self, lb, addresses) -> list[pulumi.Resource]:
        """TCP listener on the API port, an HTTPS /readyz monitor, one member per master."""
        name, network, child = self._name, self._network, pulumi.ResourceOptions(parent=self)
        listener = openstack.loadbalancer.Listener(
            f"{name}-lb-listener",
            loadbalancer_id=lb.id,
            protocol="TCP",
            protocol_port=API_PORT,
            # The amphora forwards from its own address, so the masters' security group
            # cannot tell clients apart: the listener admits only the cluster's network
            # (nodes reach the API through it) and apiAllowedCidrs.
            allowed_cidrs=api_listener_cidrs(self._args.api_allowed_cidrs, network.cidr),
            # kubectl exec/logs streams live long: keep idle connections open.
            timeout_client_data=3_600_000,
            timeout_member_data=3_600_000,
            opts=child,
        )
        pool = openstack.loadbalancer.Pool(
            f"{name}-lb-pool",
            listener_id=listener.id,
            protocol="TCP",
            lb_method="ROUND_ROBIN",
            opts=child,
        )
        monitor = openstack.loadbalancer.Monitor(
            f"{name}-lb-monitor",
            pool_id=pool.id,
            type="HTTPS",
            url_path="/readyz",
            expected_codes="200",
            http_method="GET",
            delay=10,
            timeout=5,
            max_retries=3,
            max_retries_down=3,
            opts=child,
        )
        members = [
            openstack.loadbalancer.Member(
                f"{name}-{i}-lb-member",
                pool_id=pool.id,
                address=address,
                protocol_port=API_PORT,
                subnet_id=network.subnet_id,
                opts=child,
            )
            for i, address in enumerate(addresses)
        ]
        return [listener, monitor, *members]
