"""ControlPlane: the masters, the one API endpoint in front of them, kubeadm init on the
first, control-plane joins on the rest (one after another)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random
from pulumi_command import remote

from cloud_init import kubeadm
from cloud_init.ha import Master, ha_cloud_config
from cloud_init.kubeconfig import ca_cert_hash
from components.apiserver import (
    RotatingMaster,
    api_server_config,
    reconfigure_master,
    rotate_encryption_key,
)
from components.backup import etcd_backup
from cloud_init.userdata import tar_b64
from components.commands import Access, node_command
from components.kube_node import (
    KUBEADM_INIT_CONFIG,
    KUBEADM_INIT_FILE,
    FlannelClient,
    JoinTarget,
    flannel_certificate,
    join_node,
    kube_user_data,
    network_policy_command,
    upgrade_credential,
    upgrade_master,
)
from components.machine import (
    BootedNode,
    NodeImage,
    anti_affinity_group,
    boot_node,
    machine_port,
    port_address,
)
from components.network import API_PORT, VIP_PORT, PrivateNetwork, endpoint_kind, endpoint_port
from components.pki import KubernetesPki
from components.roles import Role, command_name
from settings import Settings

MASTER_TAINTS = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
# keepalived's virtual router id: one per cluster network, any fixed value will do.
VRRP_ROUTER_ID = 51
# The Octavia provider behind `endpoint: octavia`.
OCTAVIA_PROVIDER = "amphora"


def api_listener_cidrs(settings: Settings, subnet: pulumi.Output[str]) -> pulumi.Output[list[str]]:
    """Who may open a connection to the API load balancer: never the whole world by default."""
    return subnet.apply(
        lambda net: list(dict.fromkeys([net, *map(str, settings.api_allowed_cidrs)]))
    )


@dataclass(frozen=True)
class ApiEndpoint:
    """What stands in front of the masters: its kind, its private address, and what the
    masters' user-data and the floating IP need of it."""

    kind: str  # vip / octavia / master
    address: pulumi.Output[str] | None  # None: the first master's own
    vip_port: openstack.networking.Port | None = None
    vrrp_password: pulumi.Output[str] | None = None
    lb: openstack.loadbalancer.LoadBalancer | None = None


@dataclass(frozen=True)
class MasterInputs:
    """What every master is built from, once the endpoint and all master ports exist."""

    names: list[str]
    ports: list[openstack.networking.Port]
    addresses: list[pulumi.Output[str]]
    endpoint: pulumi.Output[str]  # host:port every node joins through
    sans: pulumi.Output[list[str]]
    group: openstack.compute.ServerGroup
    masters: pulumi.Output[list[Master]]  # every master's name and address, for keepalived


class ControlPlane(pulumi.ComponentResource):
    """Masters behind a VIP (keepalived + haproxy), an Octavia load balancer, or, with one
    master, that master's own address; a floating IP on the endpoint when asked."""

    endpoint_address: pulumi.Output[str]
    public_address: pulumi.Output[str]
    master_addresses: pulumi.Output[list[str]]
    join_target: JoinTarget

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        network: PrivateNetwork,
        pki: KubernetesPki,
        flannel: FlannelClient,
        access: Access,
        discovery_ready: list[pulumi.Resource],
        ssh_keys: pulumi.Output[list[str]],
        image: NodeImage,
        backup_rc: pulumi.Output[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("openstack-k8s:index:ControlPlane", name, None, opts)
        self._name, self._settings, self._network, self._pki = name, settings, network, pki
        self._flannel, self._access, self._ssh_keys, self._image, self._backup_rc = (
            flannel,
            access,
            ssh_keys,
            image,
            backup_rc,
        )
        self._apiserver = api_server_config(name, settings, self)
        # The endpoint's own address comes first: every master's port must allow it.
        api = self._endpoint()
        m = self._masters(api)
        endpoint_ready = (
            self._octavia(name, settings, api.lb, network, m.addresses)
            if api.lb is not None
            else []
        )

        init, first, init_config = self._first_master(api, m, [*discovery_ready, *endpoint_ready])
        joining = [
            self._boot_master(i, api, m, [*self._pki.files(), *self._apiserver.files])
            for i in range(1, len(m.names))
        ]
        rotated = self._rotate_encryption_key(m, first, init, joining)
        previous = init
        upgraded = upgrade_master(
            settings,
            node=m.names[0],
            first=True,
            connection=first.connection,
            parent=self,
            after=[init],
        )
        # API server changes reach running masters one at a time, the first one first; after
        # a key rotation, so that the file they install is already in place.
        reconfigured = reconfigure_master(
            settings,
            node=m.names[0],
            first=True,
            connection=first.connection,
            config=self._apiserver,
            kubeadm_config=init_config,
            parent=self,
            after=[init, *rotated],
        )
        for i in range(1, len(m.names)):
            previous, upgraded, reconfigured = self._join_master(
                i, m, joining[i - 1], previous, upgraded, reconfigured, rotated
            )
        # Made as soon as the API answers (off the path to a ready cluster); workers still
        # upgrade only after the last master, which they wait for themselves.
        credential = upgrade_credential(
            settings,
            connection=self.join_target.first_master,
            node=m.names[0],
            parent=self,
            after=[init],
        )
        self.join_target = dataclasses.replace(
            self.join_target, upgrade_credential=credential, control_plane_upgraded=upgraded
        )
        self.initialized = init
        self.register_outputs(
            {
                "endpoint": self.endpoint_address,
                "publicEndpoint": self.public_address,
                "masterAddresses": self.master_addresses,
            }
        )

    def _endpoint(self) -> ApiEndpoint:
        """The VIP's port (and its VRRP password), or the Octavia load balancer."""
        name, settings, network = self._name, self._settings, self._network
        child = pulumi.ResourceOptions(parent=self)
        kind = endpoint_kind(settings)
        if kind == "vip":
            vip_port = openstack.networking.Port(
                f"{name}-vip",
                name=f"{settings.name}-api-vip",
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
                name=f"{settings.name}-api",
                vip_subnet_id=network.subnet_id,
                # Amphorae, not the cloud's default: OVN load balancers know neither HTTPS
                # health monitors nor allowed CIDRs, and without them init never runs and
                # the API is open to every address.
                loadbalancer_provider=OCTAVIA_PROVIDER,
                opts=child,
            )
            return ApiEndpoint(kind, lb.vip_address, lb=lb)
        return ApiEndpoint(kind, None)

    def _masters(self, api: ApiEndpoint) -> MasterInputs:
        """Every master's port, the endpoint's floating IP, and what init and joins share."""
        name, settings, network = self._name, self._settings, self._network
        names = [f"{name}-{i}" for i in range(settings.masters.count)]
        ports = [
            machine_port(
                n,
                network=network,
                role="master",
                parent=self,
                allowed_addresses=[api.address] if api.kind == "vip" else (),
            )
            for n in names
        ]
        addresses = [port_address(p) for p in ports]
        self.master_addresses = pulumi.Output.all(*addresses)
        self.endpoint_address = api.address if api.address is not None else addresses[0]
        # The port the endpoint's address lives on: where the floating IP goes.
        fip_port = (
            api.vip_port.id if api.vip_port else api.lb.vip_port_id if api.lb else ports[0].id
        )
        public = self.endpoint_address
        if settings.control_plane.floating_ip:
            fip = openstack.networking.FloatingIp(
                f"{name}-fip",
                pool=settings.external_network,
                description=f"{settings.name} API",
                opts=pulumi.ResourceOptions(parent=self),
            )
            openstack.networking.FloatingIpAssociate(
                f"{name}-fip-association",
                floating_ip=fip.address,
                port_id=fip_port,
                opts=pulumi.ResourceOptions(parent=self, depends_on=network.way_out),
            )
            public = fip.address
        dns = settings.control_plane.dns_name
        self.public_address = pulumi.Output.from_input(dns) if dns else public
        sans = pulumi.Output.all(self.endpoint_address, public, *addresses).apply(
            lambda a: sorted(set(a) | ({dns} if dns else set()))
        )
        api_port = endpoint_port(settings)
        endpoint = self.endpoint_address.apply(lambda a: f"{a}:{api_port}")
        # Always made, even for one master: adding a scheduler hint later would replace the VM.
        group = anti_affinity_group(name, self, settings.masters.server_group_policy)
        masters = pulumi.Output.all(*addresses).apply(
            lambda a: [Master(name=n, address=x) for n, x in zip(names, a, strict=True)]
        )
        return MasterInputs(
            names=names,
            ports=ports,
            addresses=addresses,
            endpoint=endpoint,
            sans=sans,
            group=group,
            masters=masters,
        )

    def _boot_master(
        self, i: int, api: ApiEndpoint, m: MasterInputs, files: list[tuple[str, pulumi.Output[str]]]
    ) -> tuple[BootedNode, remote.Command]:
        """One master's VM, its ready gate and backups, and its PKI (and, on the first, the
        init config) delivered by a command, not in user-data (readable from the metadata
        service)."""
        settings, node, address = self._settings, m.names[i], m.addresses[i]
        extra = []
        if api.kind == "vip":
            extra.append(
                pulumi.Output.all(
                    masters=m.masters,
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
        user_data = kube_user_data(
            settings,
            role="master",
            node=node,
            flannel=self._flannel,
            ssh_keys=self._ssh_keys,
            network_cidr=self._network.cidr,
            extra=pulumi.Output.all(*extra),
        )
        vm = boot_node(
            node,
            settings,
            settings.masters,
            role="master",
            index=i,
            image=self._image,
            port=m.ports[i],
            address=address,
            user_data=user_data,
            network=self._network,
            access=self._access,
            parent=self,
            server_group=m.group,
        )
        etcd_backup(
            settings,
            node=node,
            role="master",
            connection=vm.connection,
            after=vm.ready,
            instance=vm.instance,
            parent=self,
            openstack_rc=self._backup_rc,
        )
        flannel_certificate(
            node, flannel=self._flannel, connection=vm.connection, parent=self, after=[vm.ready]
        )
        kubeadm_files = node_command(
            command_name(node, Role.KUBEADM_FILES),
            connection=vm.connection,
            script_name="master-kubeadm-files.sh",
            env={
                "KUBEADM_FILES_TAR_B64": pulumi.Output.secret(
                    pulumi.Output.all(*[c for _, c in files]).apply(
                        lambda contents, paths=[p for p, _ in files]: tar_b64(
                            zip(paths, contents, strict=True)
                        )
                    )
                )
            },
            # Only the VM, not its bootstrap: the files go in while cloud-init still runs,
            # off the path to kubeadm init. The bound covers the VM's boot.
            timeout=settings.timeouts.ready,
            parent=self,
            depends_on=[vm.instance],
            instance=vm.instance,
        )
        return vm, kubeadm_files

    def _init_config(self, i: int, m: MasterInputs) -> pulumi.Output[str]:
        """kubeadm's Init- and ClusterConfiguration as the i-th master would be initialised
        with: what `kubeadm init` runs on the first, and what regenerates any master's API
        server when its flags change."""
        settings, node = self._settings, m.names[i]
        return pulumi.Output.all(address=m.addresses[i], endpoint=m.endpoint, sans=m.sans).apply(
            lambda v: kubeadm.init_config(
                cluster_name=settings.name,
                node_name=node,
                node_ip=v["address"],
                kubernetes_version=settings.kubernetes_version,
                endpoint=v["endpoint"],
                cert_sans=v["sans"],
                pod_cidr=str(settings.pod_cidr),
                service_cidr=str(settings.service_cidr),
                image_repository=settings.image_repository,
                labels={},
                taints=MASTER_TAINTS,
                external_cloud=settings.cloud_controller.enabled,
                api_server_args=self._apiserver.args,
                api_server_volumes=self._apiserver.volumes,
            )
        )

    def _first_master(
        self, api: ApiEndpoint, m: MasterInputs, after: list[pulumi.Resource]
    ) -> tuple[remote.Command, BootedNode, pulumi.Output[str]]:
        """kubeadm init on the first master, with the program's PKI and init config."""
        settings, node = self._settings, m.names[0]
        init_config = self._init_config(0, m)
        vm, kubeadm_files = self._boot_master(
            0,
            api,
            m,
            [*self._pki.files(), *self._apiserver.files, (KUBEADM_INIT_FILE, init_config)],
        )
        init = node_command(
            command_name(node, Role.INIT),
            connection=vm.connection,
            script_name="master-init.sh",
            # The CA is ours (installed by kubeadm-files): a retry's `kubeadm reset` must
            # not throw it away.
            env={
                "KUBEADM_INIT_CONFIG": KUBEADM_INIT_CONFIG,
                "INIT_TIMEOUT": str(settings.timeouts.init),
                "PRESERVE_PKI": "true",
            },
            timeout=settings.timeouts.init,
            parent=self,
            depends_on=[vm.ready, kubeadm_files, *after],
        )
        # The other nodes get theirs with their join.
        network_policy_command(
            settings, node=node, connection=vm.connection, parent=self, after=[init]
        )
        self.join_target = JoinTarget(
            endpoint=m.endpoint,
            ca_cert_hash=self._pki.ca.public_key.apply(ca_cert_hash),
            first_master=vm.connection,
            initialized=init,
        )
        return init, vm, init_config

    def _rotate_encryption_key(
        self,
        m: MasterInputs,
        first: BootedNode,
        init: remote.Command,
        joining: list[tuple[BootedNode, remote.Command]],
    ) -> list[remote.Command]:
        """keyGeneration > 1: the rotation from the previous key, through every master (a
        master that has not joined yet is left alone: it starts with the new key from its PKI
        files, and joins only once the rotation is over, so it never serves Secrets it cannot
        read). Returns its last step, or nothing."""
        rotation = self._apiserver.rotation
        if rotation is None:
            return []
        masters = [RotatingMaster(node=m.names[0], connection=first.connection, after=[init])]
        masters += [
            RotatingMaster(node=m.names[i], connection=vm.connection, after=[kubeadm_files])
            for i, (vm, kubeadm_files) in enumerate(joining, start=1)
        ]
        return [rotate_encryption_key(self._name, rotation, masters, self)]

    def _join_master(
        self,
        i: int,
        m: MasterInputs,
        booted: tuple[BootedNode, remote.Command],
        previous: pulumi.Resource,
        upgraded: pulumi.Resource,
        reconfigured: pulumi.Resource,
        rotated: list[remote.Command],
    ) -> tuple[remote.Command, ...]:
        """A control-plane join after the previous master's (stacked etcd grows one member at
        a time: concurrent member adds race) and after a key rotation, and its upgrade after
        the previous master's."""
        settings, node = self._settings, m.names[i]
        vm, kubeadm_files = booted
        join = join_node(
            settings,
            node=node,
            address=m.addresses[i],
            connection=vm.connection,
            target=self.join_target,
            ready=vm.ready,
            parent=self,
            control_plane=True,
            labels={},
            taints=MASTER_TAINTS,
            instance=vm.instance,
            after=[previous, kubeadm_files, *rotated],
        )
        upgraded = upgrade_master(
            settings,
            node=node,
            first=False,
            connection=vm.connection,
            parent=self,
            after=[upgraded, join],
        )
        reconfigured = reconfigure_master(
            settings,
            node=node,
            first=False,
            connection=vm.connection,
            config=self._apiserver,
            kubeadm_config=self._init_config(i, m),
            parent=self,
            after=[join, reconfigured],
        )
        return join, upgraded, reconfigured

    def _octavia(self, name, settings, lb, network, addresses) -> list[pulumi.Resource]:
        """TCP listener on the API port, an HTTPS /readyz monitor, one member per master."""
        child = pulumi.ResourceOptions(parent=self)
        listener = openstack.loadbalancer.Listener(
            f"{name}-lb-listener",
            loadbalancer_id=lb.id,
            protocol="TCP",
            protocol_port=API_PORT,
            # The amphora forwards from its own address, so the masters' security group
            # cannot tell clients apart: the listener admits only the cluster's network
            # (nodes reach the API through it) and apiAllowedCidrs.
            allowed_cidrs=api_listener_cidrs(settings, network.cidr),
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
