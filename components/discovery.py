"""DiscoveryNode: the cluster's private etcd (flannel's network config and leases) and the
SSH jump host every remote command goes through. A NodeSet of 1 or 3 members, with what is
its own: each member's etcd certificate, and the removal of members that leave."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from cloud_init import userdata
from cloud_init.discovery import (
    DiscoveryMember,
    DiscoverySpec,
    discovery_cloud_config,
    etcd_cert_env,
    remove_member_env,
)
from components import roles
from components.backup import BackupArgs, etcd_backup_step
from components.commands import SSH_USER, Access, Bastion
from components.kube_node import certificate_step
from components.machine import GroupSpec
from components.network import PrivateNetwork
from components.node_set import NodeSet, StepSpec
from components.pki import Pem, signed_certificate

ETCD_CLIENT_PORT = 2379
MEMBER_LEAVE_TIMEOUT = 90


@dataclass(frozen=True)
class AccessArgs:
    """How remote commands reach the nodes (settings.access): through the jump host, the
    operator's bastion, or straight."""

    bastion: Bastion | None = None
    direct: bool = False


@dataclass(frozen=True)
class DiscoveryArgs:
    group: GroupSpec
    pod_cidr: str
    access: AccessArgs
    backup: BackupArgs


class DiscoveryNode(NodeSet):
    """The first member has the floating IP and is the jump host."""

    endpoints: pulumi.Output[list[str]]
    jump_host: pulumi.Output[str]
    access: Access
    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        args: DiscoveryArgs,
        *,
        network: PrivateNetwork,
        etcd_ca: Pem,
        deploy_key: pulumi.Output[str],
        ssh_keys: pulumi.Output[list[str]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            "openstack-k8s:index:DiscoveryNode", name, args.group, network=network, opts=opts
        )
        self.open()
        self.jump_host = self.public_addresses[0] if self.public_addresses else self.addresses[0]
        self.access = Access(
            private_key=deploy_key,
            jump_host=self.jump_host,
            bastion=args.access.bastion,
            direct=args.access.direct,
        )
        certs = [self._certificate(i, etcd_ca) for i in range(len(self.names))]
        members = pulumi.Output.all(*self.addresses).apply(
            lambda addrs: tuple(
                DiscoveryMember(name=n, address=a) for n, a in zip(self.names, addrs, strict=True)
            )
        )
        self.boot(
            lambda i: self._user_data(i, args, members, etcd_ca, certs[i], ssh_keys),
            access=self.access,
            after=self.reachable,
            jump_host_first=True,
        )
        self.ready = [n.ready for n in self.nodes]
        self.run(
            [
                etcd_backup_step(args.backup, role="discovery"),
                # A renewed certificate restarts etcd: one member at a time keeps the quorum.
                certificate_step(
                    roles.ETCD_RENEWAL,
                    "etcd member certificate",
                    lambda n: pulumi.Output.all(
                        certs[n.index].cert, certs[n.index].key, etcd_ca.cert
                    ).apply(lambda v: etcd_cert_env(cert_pem=v[0], key_pem=v[1], ca_pem=v[2])),
                    after=lambda n: [n.ready],
                    chain=True,
                ),
            ]
        )
        self._leaving()
        self.endpoints = pulumi.Output.all(*self.addresses).apply(
            lambda addrs: [f"https://{a}:{ETCD_CLIENT_PORT}" for a in addrs]
        )
        self.register_outputs({"jumpHost": self.jump_host, "endpoints": self.endpoints})

    def _certificate(self, i: int, etcd_ca: Pem) -> Pem:
        """Serving, peer and local etcdctl certificate in one: the member's identity."""
        node = self.names[i]
        return signed_certificate(
            f"{node}-etcd",
            ca=etcd_ca,
            common_name=node,
            uses=["server_auth", "client_auth"],
            dns_names=[node, "localhost"],
            ip_addresses=self.addresses[i].apply(lambda a: [a, "127.0.0.1"]),
            parent=self,
        )

    def _user_data(
        self, i: int, args: DiscoveryArgs, members, etcd_ca: Pem, cert: Pem, ssh_keys
    ) -> pulumi.Output[str]:
        """A member's cloud-config: its etcd (naming every member) and the jump host's sshd."""
        node = self.names[i]
        spec = pulumi.Output.all(
            address=self.addresses[i],
            members=members,
            ca=etcd_ca.cert,
            cert=cert.cert,
            key=cert.key,
        ).apply(
            lambda v: DiscoverySpec(
                name=node,
                address=v["address"],
                members=v["members"],
                ca_cert_pem=v["ca"],
                cert_pem=v["cert"],
                key_pem=v["key"],
                pod_cidr=args.pod_cidr,
                seed_timeout=args.group.ready_timeout // 2,
            )
        )
        user_data = pulumi.Output.all(spec=spec, keys=ssh_keys).apply(
            lambda v: userdata.render(
                userdata.merge(
                    userdata.common(
                        hostname=node, user=SSH_USER, ssh_keys=v["keys"], jump_host=True
                    ),
                    discovery_cloud_config(v["spec"]),
                ),
                node=node,
            )
        )
        return pulumi.Output.secret(user_data)

    def _leaving(self) -> None:
        """`<member>-etcd-leave` for every member but the first: when discovery shrinks (3 to
        1), the leaving members are removed from etcd, from the first member, one at a time,
        before their VMs go (and before the first member's, on destroy)."""
        first = self.nodes[0]
        self.run(
            [
                StepSpec(
                    roles.ETCD_LEAVE,
                    env=lambda n: n.address.apply(
                        lambda a: remove_member_env(
                            DiscoveryMember(name=n.name, address=a), timeout=MEMBER_LEAVE_TIMEOUT
                        )
                    ),
                    timeout=MEMBER_LEAVE_TIMEOUT,
                    after=lambda n: [n.instance, first.ready],
                    chain=roles.Role.ETCD_LEAVE,
                    on=self.access.to_jump_host(),
                )
            ],
            only=list(reversed(range(1, len(self.nodes)))),
        )
