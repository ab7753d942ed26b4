"""Cluster: composes network, discovery node, control plane and worker pools; owns the PKI,
the deploy key and the join material; hands out the kubeconfig."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_openstack as openstack
import pulumi_tls as tls

from cloud_init.backup import openstack_rc_file
from cloud_init.kubeconfig import ADMIN_GROUP, ADMIN_USER, admin_kubeconfig
from components.addons import ClusterAddons
from components.commands import SSH_USER
from components.control_plane import ControlPlane
from components.credentials import (
    application_credential,
    given_credential,
    swift_writer_rules,
)
from components.discovery import DiscoveryNode
from components.kube_node import FlannelClient
from components.machine import NodeImage
from components.network import PrivateNetwork, endpoint_port
from components.pki import (
    ADMIN_HOURS,
    ADMIN_RENEWAL_HOURS,
    certificate_authority,
    kubernetes_pki,
    signed_certificate,
)
from components.worker_pool import WorkerPool
from rules import names
from settings import Settings


def ssh_config(cluster: str, jump: str, nodes: list[tuple[str, str]], settings: Settings) -> str:
    """A ~/.ssh/config snippet: every node by name, the way remote commands reach it."""
    b = settings.access.bastion
    lines = []
    if b is not None:
        lines = [
            f"Host {cluster}-jump",
            f"  HostName {b.host}",
            f"  User {b.user}",
            f"  Port {b.port}",
            "",
        ]
    elif not settings.access.direct:
        lines = [f"Host {cluster}-jump", f"  HostName {jump}", f"  User {SSH_USER}", ""]
    proxied = bool(lines)
    for name, address in nodes:
        lines += [f"Host {name}", f"  HostName {address}", f"  User {SSH_USER}"]
        lines += [f"  ProxyJump {cluster}-jump", ""] if proxied else [""]
    return "\n".join(lines)


class Cluster(pulumi.ComponentResource):
    """A Kubernetes cluster on OpenStack, as one stack describes it."""

    kubeconfig: pulumi.Output[str]
    api_endpoint: pulumi.Output[str]
    discovery_address: pulumi.Output[str]
    master_addresses: pulumi.Output[list[str]]
    worker_addresses: pulumi.Output[dict]
    ssh_config: pulumi.Output[str]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openstack-k8s:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        network = PrivateNetwork(f"{name}-network", settings, opts=child)
        image = _node_image(settings)

        # The key remote commands log in with; only its public half goes to the nodes.
        deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=child)
        ssh_keys = deploy_key.public_key_openssh.apply(
            lambda k: [*settings.ssh_public_keys, k.strip()]
        )

        discovery_ca = certificate_authority(
            f"{name}-discovery-ca", "openstack-k8s discovery etcd", self
        )
        flannel_cert = signed_certificate(
            f"{name}-flannel",
            ca=discovery_ca,
            common_name="flannel",
            uses=["client_auth"],
            parent=self,
        )
        pki = kubernetes_pki(name, self)
        backup_rc = self._backup_rc(name, settings)

        discovery = DiscoveryNode(
            f"{name}-discovery",
            settings,
            network=network,
            etcd_ca=discovery_ca,
            deploy_key=deploy_key.private_key_openssh,
            ssh_keys=ssh_keys,
            image=image,
            backup_rc=backup_rc,
            opts=child,
        )
        flannel = FlannelClient(
            endpoints=discovery.endpoints, etcd_ca=discovery_ca.cert, cert=flannel_cert
        )
        control_plane = ControlPlane(
            f"{name}-master",
            settings,
            network=network,
            pki=pki,
            flannel=flannel,
            access=discovery.access,
            discovery_ready=discovery.ready,
            ssh_keys=ssh_keys,
            image=image,
            backup_rc=backup_rc,
            opts=child,
        )
        port = endpoint_port(settings)
        self.api_endpoint = control_plane.public_address.apply(lambda a: f"https://{a}:{port}")
        self.kubeconfig = self._kubeconfig(name, settings, pki)
        target = control_plane.join_target
        if any(settings.addon_features.values()):
            addons = ClusterAddons(
                f"{name}-addons",
                settings,
                kubeconfig=self.kubeconfig,
                network=network,
                control_plane_upgraded=target.control_plane_upgraded,
                first_master=target.first_master,
                opts=child,
            )
            # Workers upgrade once the add-ons run the images of the new version.
            target = dataclasses.replace(target, addons_rolled_out=tuple(addons.rolled_out))
        pools = {
            pool.name: WorkerPool(
                f"{name}-worker-{pool.name}",
                settings,
                pool,
                network=network,
                flannel=flannel,
                access=discovery.access,
                target=target,
                ssh_keys=ssh_keys,
                image=image,
                opts=child,
            )
            for pool in settings.worker_pools
        }

        self.discovery_address = discovery.jump_host
        self.master_addresses = control_plane.master_addresses
        self.worker_addresses = (
            pulumi.Output.all(**{k: p.addresses for k, p in pools.items()})
            if pools
            else pulumi.Output.from_input({})
        )

        self.ssh_config = self._ssh_config(name, settings, discovery, control_plane, pools)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "apiEndpoint": self.api_endpoint,
                "discoveryAddress": self.discovery_address,
            }
        )

    def _ssh_config(
        self,
        name: str,
        settings: Settings,
        discovery: DiscoveryNode,
        control_plane: ControlPlane,
        pools: dict[str, WorkerPool],
    ) -> pulumi.Output[str]:
        """`ssh <node>` for every node, through the jump host (or the bastion) when needed."""
        node_names = [
            *[f"{name}-discovery-{i}" for i in range(settings.discovery.count)],
            *[f"{name}-master-{i}" for i in range(settings.masters.count)],
            *[f"{name}-worker-{p.name}-{i}" for p in settings.worker_pools for i in range(p.count)],
        ]
        node_addresses = pulumi.Output.all(
            *discovery.addresses,
            *[control_plane.master_addresses],
            *[p.addresses for p in pools.values()],
        ).apply(lambda parts: _flatten(parts))
        return pulumi.Output.all(discovery.jump_host, node_addresses).apply(
            lambda v: ssh_config(name, v[0], list(zip(node_names, v[1], strict=True)), settings)
        )

    def _backup_rc(self, name: str, settings: Settings) -> pulumi.Output[str] | None:
        """An openrc for etcd snapshot uploads: an application credential that may put
        objects into the one Swift container, nothing else (made here, or given)."""
        given = settings.etcd.backup
        container = given.container
        if not container:
            return None
        backup = (
            application_credential(
                f"{name}-etcd-backup",
                parent=self,
                description=f"openstack-k8s {name}: etcd snapshots into Swift container {container}",
                access_rules=swift_writer_rules(container),
            )
            if given.application_credential == "create"
            else given_credential(
                given.application_credential_id, given.application_credential_secret
            )
        )
        return pulumi.Output.secret(
            pulumi.Output.all(backup.auth_url, backup.id, backup.secret, backup.region).apply(
                lambda v: openstack_rc_file(
                    auth_url=v[0], credential_id=v[1], credential_secret=v[2], region=v[3] or None
                )
            )
        )

    def _kubeconfig(self, name: str, settings: Settings, pki) -> pulumi.Output[str]:
        """The admin kubeconfig, from the program's CA and a client certificate it issues.

        Issued here, not read from the first master: kubeadm's admin.conf expires after a
        year and nothing renews it; this one is renewed by any `pulumi up` in the last
        ADMIN_RENEWAL_HOURS of its life.
        """
        admin = signed_certificate(
            f"{name}-admin",
            ca=pki.ca,
            common_name=ADMIN_USER,
            organization=ADMIN_GROUP,
            uses=["client_auth"],
            parent=self,
            validity_hours=ADMIN_HOURS,
            early_renewal_hours=ADMIN_RENEWAL_HOURS,
        )
        return pulumi.Output.secret(
            pulumi.Output.all(self.api_endpoint, pki.ca.cert, admin.cert, admin.key).apply(
                lambda v: admin_kubeconfig(
                    server=v[0], name=settings.name, ca_pem=v[1], cert_pem=v[2], key_pem=v[3]
                )
            )
        )


def _node_image(settings: Settings) -> NodeImage:
    """The image every node boots, by id: a name is looked up once, at plan time."""
    return NodeImage(
        name=settings.image,
        id=pulumi.Output.from_input(settings.image)
        if names.is_id(settings.image)
        else openstack.images.get_image_output(name=settings.image, most_recent=True).id,
    )


def _flatten(parts: list) -> list[str]:
    out: list[str] = []
    for p in parts:
        out += p if isinstance(p, list) else [p]
    return out
