"""Cluster: composes network, discovery node, control plane and worker pools; owns the PKI,
the deploy key and the join material; hands out the kubeconfig."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
import pulumi_tls as tls

from addons import needs_cloud_conf
from addons.gateway import gateway_labels_taints
from cloud_init import apiserver as apiserver_files
from cloud_init.backup import openstack_rc_file
from cloud_init.kubeconfig import ADMIN_GROUP, ADMIN_USER, admin_kubeconfig
from components.addons import AddonArgs, ClusterAddons
from components.apiserver import ApiServerArgs, AuditArgs
from components.backup import BackupArgs
from components.commands import SSH_USER, Bastion, Timeouts
from components.control_plane import ControlPlane, ControlPlaneArgs
from components.credentials import (
    application_credential,
    given_credential,
    swift_writer_rules,
)
from components.discovery import AccessArgs, DiscoveryArgs, DiscoveryNode
from components.kube_node import FlannelClient, KubeArgs, UpgradeGate, taint_dicts
from components.machine import FloatingIps, GroupSpec, NodeImage
from components.network import (
    SUBNET,
    ExistingNetwork,
    FirewallArgs,
    NetworkArgs,
    PrivateNetwork,
    endpoint_port,
)
from components.node_set import NodeSet
from components.pki import (
    ADMIN_HOURS,
    KubernetesPki,
    Pem,
    ADMIN_RENEWAL_HOURS,
    certificate_authority,
    kubernetes_pki,
    signed_certificate,
)
from components.worker_pool import PoolArgs, worker_pool
from rules import names
from settings import NodeGroupSettings, Settings

# Discovery members always spread: soft, so that a small cloud still boots three.
DISCOVERY_SPREAD = "soft-anti-affinity"


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


@dataclass(frozen=True)
class ClusterKeys:
    """The deploy key (its private half; the public one is in ssh_keys), the discovery etcd's
    CA and flannel's client certificate, the Kubernetes PKI."""

    deploy_key: pulumi.Output[str]
    ssh_keys: pulumi.Output[list[str]]
    discovery_ca: Pem
    flannel: Pem
    pki: KubernetesPki


class Cluster(pulumi.ComponentResource):
    """A Kubernetes cluster on OpenStack, as one stack describes it. The one reader of
    Settings: every component gets its own arguments, translated here once."""

    kubeconfig: pulumi.Output[str]
    api_endpoint: pulumi.Output[str]
    discovery_address: pulumi.Output[str]
    master_addresses: pulumi.Output[list[str]]
    worker_addresses: pulumi.Output[dict]
    ssh_config: pulumi.Output[str]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openstack-k8s:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = PrivateNetwork(f"{name}-network", network_args(settings), opts=child)
        image = node_image(settings)
        keys = self._keys(name, settings)
        ssh_keys, discovery_ca, pki = keys.ssh_keys, keys.discovery_ca, keys.pki
        backup = backup_args(settings, self._backup_rc(name, settings))
        kube = kube_args(settings)
        discovery = DiscoveryNode(
            f"{name}-discovery",
            discovery_args(settings, image, backup),
            network=network,
            etcd_ca=discovery_ca,
            deploy_key=keys.deploy_key,
            ssh_keys=ssh_keys,
            opts=child,
        )
        flannel = FlannelClient(
            endpoints=discovery.endpoints, etcd_ca=discovery_ca.cert, cert=keys.flannel
        )
        control_plane = ControlPlane(
            f"{name}-master",
            control_plane_args(settings, image, backup),
            kube,
            network=network,
            pki=pki,
            flannel=flannel,
            access=discovery.access,
            discovery_ready=discovery.ready,
            ssh_keys=ssh_keys,
            opts=child,
        )
        self.api_endpoint = control_plane.api_endpoint
        self.kubeconfig = self._kubeconfig(name, settings, pki)
        gate = self._addons(name, settings, network, control_plane)
        pools = {
            pool.name: worker_pool(
                f"{name}-worker-{pool.name}",
                pool_args(settings, pool, image),
                kube,
                network=network,
                flannel=flannel,
                access=discovery.access,
                target=control_plane.join_target,
                gate=gate,
                ssh_keys=ssh_keys,
                opts=child,
            )
            for pool in settings.worker_pools
        }
        self._outputs(name, settings, discovery, control_plane, pools)

    def _addons(self, name, settings, network, control_plane: ControlPlane) -> UpgradeGate:
        """The add-ons, if any, and what worker upgrades wait for: the control plane, and the
        add-ons' rollout of the images of the new version."""
        rolled_out: tuple[pulumi.Resource, ...] = ()
        if any(settings.addon_features.values()):
            addons = ClusterAddons(
                f"{name}-addons",
                addon_args(settings),
                kubeconfig=self.kubeconfig,
                network=network,
                control_plane_upgraded=control_plane.upgraded,
                first_master=control_plane.join_target.first_master,
                opts=pulumi.ResourceOptions(parent=self),
            )
            rolled_out = tuple(addons.rolled_out)
        return control_plane.upgrade_gate(rolled_out)

    def _keys(self, name: str, settings: Settings) -> ClusterKeys:
        # The key remote commands log in with; only its public half goes to the nodes.
        deploy_key = tls.PrivateKey(
            f"{name}-deploy-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self)
        )
        discovery_ca = certificate_authority(
            f"{name}-discovery-ca", "openstack-k8s discovery etcd", self
        )
        return ClusterKeys(
            deploy_key=deploy_key.private_key_openssh,
            ssh_keys=deploy_key.public_key_openssh.apply(
                lambda k: [*settings.ssh_public_keys, k.strip()]
            ),
            discovery_ca=discovery_ca,
            flannel=signed_certificate(
                f"{name}-flannel",
                ca=discovery_ca,
                common_name="flannel",
                uses=["client_auth"],
                parent=self,
            ),
            pki=kubernetes_pki(name, self),
        )

    def _outputs(self, name, settings, discovery, control_plane, pools) -> None:
        self.discovery_address = discovery.jump_host
        self.master_addresses = control_plane.master_addresses
        self.worker_addresses = (
            pulumi.Output.all(**{k: pulumi.Output.all(*p.addresses) for k, p in pools.items()})
            if pools
            else pulumi.Output.from_input({})
        )
        sets: list[NodeSet] = [discovery, control_plane, *pools.values()]
        self.ssh_config = self._ssh_config(name, settings, discovery, sets)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "apiEndpoint": self.api_endpoint,
                "discoveryAddress": self.discovery_address,
            }
        )

    def _ssh_config(
        self, name: str, settings: Settings, discovery: DiscoveryNode, sets: list[NodeSet]
    ) -> pulumi.Output[str]:
        """`ssh <node>` for every node, through the jump host (or the bastion) when needed."""
        node_names = [n for s in sets for n in s.names]
        node_addresses = pulumi.Output.all(*[a for s in sets for a in s.addresses])
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


def node_image(settings: Settings) -> NodeImage:
    """The image every node boots, by id: a name is looked up once, at plan time."""
    return NodeImage(
        name=settings.image,
        id=pulumi.Output.from_input(settings.image)
        if names.is_id(settings.image)
        else openstack.images.get_image_output(name=settings.image, most_recent=True).id,
    )


# Settings -> each component's arguments: the one translation, read once per stack.


def network_args(settings: Settings) -> NetworkArgs:
    net = settings.network
    existing = net.existing
    return NetworkArgs(
        cluster=settings.name,
        external_network=settings.external_network,
        firewall=firewall_args(settings),
        cidr=net.cidr if existing is None else None,
        mtu=net.mtu,
        dns_nameservers=tuple(str(a) for a in net.dns_nameservers),
        existing=None
        if existing is None
        else ExistingNetwork(network_id=existing.network_id, subnet_id=existing.subnet_id),
    )


def firewall_args(settings: Settings) -> FirewallArgs:
    bastion = settings.access.bastion
    kind = settings.endpoint_kind
    return FirewallArgs(
        subnet=SUBNET if settings.network.existing is not None else str(settings.network.cidr),
        ssh_allowed_cidrs=tuple(map(str, settings.ssh_allowed_cidrs)),
        api_allowed_cidrs=tuple(map(str, settings.api_allowed_cidrs)),
        node_port_allowed_cidrs=tuple(map(str, settings.node_port_allowed_cidrs)),
        through_jump_host=settings.access.through == "jump-host",
        bastion_cidr=f"{bastion.address}/32"
        if bastion is not None and bastion.address is not None
        else None,
        endpoint_kind=kind,
        vrrp=settings.masters.count > 1 and kind == "vip",
        gateway=any(p.gateway for p in settings.worker_pools),
    )


def kube_args(settings: Settings) -> KubeArgs:
    t = settings.timeouts
    return KubeArgs(
        kubernetes_version=settings.kubernetes_version,
        package_mirror=settings.package_mirror,
        image_repository=settings.image_repository,
        pod_cidr=str(settings.pod_cidr),
        node_mtu=settings.network.node_mtu,
        external_cloud=settings.cloud_controller.enabled,
        network_policy=settings.network_policy.enabled,
        timeouts=Timeouts(
            ready=t.ready, init=t.init, join=t.join, drain=t.drain, upgrade=t.upgrade
        ),
    )


def backup_args(settings: Settings, openstack_rc: pulumi.Output[str] | None) -> BackupArgs:
    b = settings.etcd.backup
    return BackupArgs(
        schedule=b.schedule, keep=b.keep, container=b.container, openstack_rc=openstack_rc
    )


# What a node group's settings and its GroupSpec share by name (flavor, volume, metadata,
# ...): taken over as they are, so a new per-node option is a field of both and no line here.
_SHARED = [
    f.name for f in dataclasses.fields(GroupSpec) if f.name in NodeGroupSettings.model_fields
]


def _group(settings: Settings, role: str, group, image: NodeImage, **extra) -> GroupSpec:
    """A node group's settings (discovery, masters, a pool) as the spec of its VMs."""
    return GroupSpec(
        role=role,
        count=group.count,
        cluster=settings.name,
        image=image,
        ready_timeout=settings.timeouts.ready,
        **{name: getattr(group, name) for name in _SHARED},
        **extra,
    )


def discovery_args(settings: Settings, image: NodeImage, backup: BackupArgs) -> DiscoveryArgs:
    d, b = settings.discovery, settings.access.bastion
    jump_ip = FloatingIps(settings.external_network, False, f"{settings.name} jump host")
    return DiscoveryArgs(
        group=_group(
            settings,
            "discovery",
            d,
            image,
            zones=tuple(d.availability_zones),
            # Always made, even for one member: adding a scheduler hint later would replace
            # the VM.
            server_group=DISCOVERY_SPREAD,
            floating_ips=jump_ip if d.floating_ip else None,
        ),
        pod_cidr=str(settings.pod_cidr),
        access=AccessArgs(
            bastion=None
            if b is None
            else Bastion(
                host=b.host,
                user=b.user,
                port=b.port,
                private_key=pulumi.Output.secret(b.private_key) if b.private_key else None,
            ),
            direct=settings.access.direct,
        ),
        backup=backup,
    )


def control_plane_args(
    settings: Settings, image: NodeImage, backup: BackupArgs
) -> ControlPlaneArgs:
    m, cp = settings.masters, settings.control_plane
    return ControlPlaneArgs(
        group=_group(
            settings,
            "master",
            m,
            image,
            zones=tuple(m.availability_zones),
            # Always made, even for one master: adding a scheduler hint later would replace
            # the VM.
            server_group=m.server_group_policy,
        ),
        cluster=settings.name,
        endpoint_kind=settings.endpoint_kind,
        api_port=endpoint_port(settings.endpoint_kind),
        external_network=settings.external_network,
        floating_ip=cp.floating_ip,
        dns_name=cp.dns_name,
        api_allowed_cidrs=tuple(map(str, settings.api_allowed_cidrs)),
        service_cidr=str(settings.service_cidr),
        apiserver=apiserver_args(settings),
        backup=backup,
    )


def audit_policy(settings: Settings) -> str:
    """The default policy, or the stack's own file (read and checked with the config)."""
    return settings.api_server.audit.policy_text or apiserver_files.default_audit_policy()


def apiserver_args(settings: Settings) -> ApiServerArgs:
    a = settings.api_server
    audit = a.audit
    return ApiServerArgs(
        encryption_provider=a.encryption.provider if a.encryption.enabled else None,
        key_generation=a.encryption.key_generation,
        audit=AuditArgs(
            policy=audit_policy(settings),
            max_age_days=audit.max_age_days,
            max_backups=audit.max_backups,
            max_size_mb=audit.max_size_mb,
        )
        if audit.enabled
        else None,
        oidc=a.oidc.model_dump() if a.oidc else None,
    )


def pool_args(settings: Settings, pool, image: NodeImage) -> PoolArgs:
    labels = {"openstack-k8s.io/pool": pool.name, **pool.labels}
    taints = taint_dicts(pool.taints)
    if pool.gateway:
        gateway_labels, gateway_taints = gateway_labels_taints()
        labels.update(gateway_labels)
        taints += gateway_taints
    gateway_ip = FloatingIps(settings.external_network, True, "{node} gateway")
    return PoolArgs(
        group=_group(
            settings,
            "worker",
            pool,
            image,
            zones=(pool.availability_zone,) if pool.availability_zone else (),
            # None: no server group (a group added to a running pool would replace its VMs).
            server_group=pool.server_group_policy,
            floating_ips=gateway_ip if pool.floating_ip else None,
        ),
        labels=labels,
        taints=taints,
        lanes=settings.upgrade.lanes(pool.count),
    )


def addon_args(settings: Settings) -> AddonArgs:
    features, given = settings.addon_features, settings.openstack
    csi = settings.csi.storage_class
    return AddonArgs(
        cluster=settings.name,
        cluster_identifier=f"{pulumi.get_project()}/{settings.name}",
        kubernetes_version=settings.kubernetes_version,
        image_repository=settings.image_repository,
        features=features,
        storage_class={
            "name": csi.name,
            "reclaim_policy": csi.reclaim_policy,
            "volume_type": csi.volume_type,
            "default": csi.default,
        },
        lb_enabled=settings.cloud_controller.load_balancers,
        lb_provider=settings.cloud_controller.lb_provider,
        given_credential=given_credential(
            given.application_credential_id, given.application_credential_secret
        )
        if needs_cloud_conf(features) and given.application_credential != "create"
        else None,
    )


def check_existing_subnet(settings: Settings) -> str | None:
    """The range of network.existing's subnet, read from the cloud and checked against
    podCidr and serviceCidr (settings.check_subnet: a ConfigError naming the key). A plain
    invoke, so that the program can call it before it registers any resource: a refusal then
    leaves nothing half made, as every other config error does. None without an existing
    network."""
    given = settings.network.existing
    if given is None:
        return None
    subnet = (
        openstack.networking.get_subnet(subnet_id=given.subnet_id)
        if names.is_id(given.subnet_id)
        else openstack.networking.get_subnet(name=given.subnet_id)
    )
    return settings.check_subnet(subnet.cidr)
