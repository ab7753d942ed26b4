"""DiscoveryNode: the cluster's private etcd (flannel's network config and leases) and the
SSH jump host every remote command goes through."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from cloud_init import userdata
from cloud_init.discovery import (
    REMOVE_MEMBER_SCRIPT,
    DiscoveryMember,
    DiscoverySpec,
    discovery_cloud_config,
    etcd_cert_env,
    remove_member_env,
)
from components.backup import etcd_backup
from components.commands import SSH_USER, Access, Bastion, certificate_command, delete_command
from components.machine import (
    BootedNode,
    NodeImage,
    anti_affinity_group,
    boot_node,
    machine_port,
    port_address,
)
from components.network import PrivateNetwork
from components.pki import Pem, signed_certificate
from components.roles import Role, command_name
from settings import Settings

ETCD_CLIENT_PORT = 2379


MEMBER_LEAVE_TIMEOUT = 90


def access(
    settings: Settings, deploy_key: pulumi.Output[str], jump_host: pulumi.Output[str]
) -> Access:
    """How remote commands reach the nodes: settings.access, with the deploy key."""
    b = settings.access.bastion
    bastion = (
        None
        if b is None
        else Bastion(
            host=b.host,
            user=b.user,
            port=b.port,
            private_key=pulumi.Output.secret(b.private_key) if b.private_key else None,
        )
    )
    return Access(
        private_key=deploy_key, jump_host=jump_host, bastion=bastion, direct=settings.access.direct
    )


class DiscoveryNode(pulumi.ComponentResource):
    """1 or 3 etcd members; the first one has the floating IP and is the jump host."""

    endpoints: pulumi.Output[list[str]]
    jump_host: pulumi.Output[str]
    access: Access
    ready: list[pulumi.Resource]
    addresses: list[pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        network: PrivateNetwork,
        etcd_ca: Pem,
        deploy_key: pulumi.Output[str],
        ssh_keys: pulumi.Output[list[str]],
        image: NodeImage,
        backup_rc: pulumi.Output[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("openstack-k8s:index:DiscoveryNode", name, None, opts)
        count = settings.discovery.count
        names = [f"{name}-{i}" for i in range(count)]
        ports = [machine_port(n, network=network, role="discovery", parent=self) for n in names]
        self.addresses = [port_address(p) for p in ports]

        reachable: list[pulumi.Resource] = []
        if settings.discovery.floating_ip:
            floating_ip = openstack.networking.FloatingIp(
                f"{name}-fip",
                pool=settings.external_network,
                description=f"{settings.name} jump host",
                opts=pulumi.ResourceOptions(parent=self),
            )
            reachable = [
                openstack.networking.FloatingIpAssociate(
                    f"{name}-fip-association",
                    floating_ip=floating_ip.address,
                    port_id=ports[0].id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=network.way_out),
                )
            ]
            self.jump_host = floating_ip.address
        else:
            self.jump_host = self.addresses[0]
        self.access = access(settings, deploy_key, self.jump_host)
        # Always made, even for one member: adding a scheduler hint later would replace the VM.
        group = anti_affinity_group(name, self)

        members = pulumi.Output.all(*self.addresses).apply(
            lambda addrs: tuple(
                DiscoveryMember(name=n, address=a) for n, a in zip(names, addrs, strict=True)
            )
        )
        self.ready, vms, renewed = [], [], []
        for i, (node, port, address) in enumerate(zip(names, ports, self.addresses, strict=True)):
            vm, cert = self._member(
                i,
                settings,
                node=node,
                port=port,
                address=address,
                members=members,
                etcd_ca=etcd_ca,
                ssh_keys=ssh_keys,
                image=image,
                network=network,
                group=group,
                after=reachable,
                backup_rc=backup_rc,
            )
            self.ready.append(vm.ready)
            vms.append(vm)
            # A renewed certificate restarts etcd: one member at a time keeps the quorum.
            renewed.append(
                certificate_command(
                    command_name(node, Role.ETCD_RENEWAL),
                    connection=vm.connection,
                    env=pulumi.Output.all(cert.cert, cert.key, etcd_ca.cert).apply(
                        lambda v: etcd_cert_env(cert_pem=v[0], key_pem=v[1], ca_pem=v[2])
                    ),
                    what="etcd member certificate",
                    parent=self,
                    depends_on=[vm.ready, *renewed[-1:]],
                )
            )
        self._leaving(names, vms)

        self.endpoints = pulumi.Output.all(*self.addresses).apply(
            lambda addrs: [f"https://{a}:{ETCD_CLIENT_PORT}" for a in addrs]
        )
        self.register_outputs({"jumpHost": self.jump_host, "endpoints": self.endpoints})

    def _member(
        self,
        i: int,
        settings: Settings,
        *,
        node: str,
        port: openstack.networking.Port,
        address: pulumi.Output[str],
        members: pulumi.Output[tuple],
        etcd_ca: Pem,
        ssh_keys: pulumi.Output[list[str]],
        image: NodeImage,
        network: PrivateNetwork,
        group: openstack.compute.ServerGroup,
        after: list[pulumi.Resource],
        backup_rc: pulumi.Output[str] | None,
    ) -> tuple[BootedNode, Pem]:
        """One etcd member: its certificate, its user-data, its VM and ready gate, its backups."""
        # Serving, peer and local etcdctl certificate in one: this member's identity.
        cert = signed_certificate(
            f"{node}-etcd",
            ca=etcd_ca,
            common_name=node,
            uses=["server_auth", "client_auth"],
            dns_names=[node, "localhost"],
            ip_addresses=address.apply(lambda a: [a, "127.0.0.1"]),
            parent=self,
        )
        spec = pulumi.Output.all(
            address=address, members=members, ca=etcd_ca.cert, cert=cert.cert, key=cert.key
        ).apply(
            lambda v, node=node: DiscoverySpec(
                name=node,
                address=v["address"],
                members=v["members"],
                ca_cert_pem=v["ca"],
                cert_pem=v["cert"],
                key_pem=v["key"],
                pod_cidr=str(settings.pod_cidr),
                seed_timeout=settings.timeouts.ready // 2,
            )
        )
        user_data = pulumi.Output.all(spec=spec, keys=ssh_keys).apply(
            lambda v, node=node: userdata.render(
                userdata.merge(
                    userdata.common(
                        hostname=node, user=SSH_USER, ssh_keys=v["keys"], jump_host=True
                    ),
                    discovery_cloud_config(v["spec"]),
                ),
                node=node,
            )
        )
        node_vm = boot_node(
            node,
            settings,
            settings.discovery,
            role="discovery",
            index=i,
            image=image,
            port=port,
            address=address,
            user_data=pulumi.Output.secret(user_data),
            network=network,
            access=self.access,
            parent=self,
            server_group=group,
            # The first member is the jump host itself, reached over its floating IP.
            jump_host=i == 0,
            depends_on=after,
        )
        etcd_backup(
            settings,
            node=node,
            role="discovery",
            connection=node_vm.connection,
            after=node_vm.ready,
            instance=node_vm.instance,
            parent=self,
            openstack_rc=backup_rc,
        )
        return node_vm, cert

    def _leaving(self, names: list[str], vms: list[BootedNode]) -> None:
        """`<member>-etcd-leave` for every member but the first: when discovery shrinks (3 to 1),
        the leaving members are removed from etcd, from the first member, one at a time, before
        their VMs go (and before the first member's, on destroy)."""
        after: list[pulumi.Resource] = []
        for i in reversed(range(1, len(names))):
            env = self.addresses[i].apply(
                lambda a, n=names[i]: remove_member_env(
                    DiscoveryMember(name=n, address=a), timeout=MEMBER_LEAVE_TIMEOUT
                )
            )
            leave = delete_command(
                command_name(names[i], Role.ETCD_LEAVE),
                connection=self.access.to_jump_host(),
                script_name=REMOVE_MEMBER_SCRIPT,
                env=env,
                timeout=MEMBER_LEAVE_TIMEOUT,
                parent=self,
                depends_on=[vms[i].instance, vms[0].ready, *after],
            )
            after = [leave]
