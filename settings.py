"""The one settings model: stack config in, validated settings out.

Only this module reads Pulumi config. Everything else (components, cloud-init builders,
tools) receives a `Settings` object, validated once, before any resource is registered.
A bad value raises `ConfigError` whose message is one line that names the config key.

Every field carries its own rule (an Annotated type or validator from rules/), so an error
always explains the field it names. Numbers and booleans are strict: Pulumi hands nested
values over as JSON, and `true` is not a count nor `1` a flag.
"""

from __future__ import annotations

import json
import os
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ValidationInfo,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cloud_init import constants
from rules import addresses, names, rollout, ssh, urls, versions
from rules import files as file_rules
from rules import labels as label_rules
from rules import metadata as metadata_rules
from rules import text as text_rules
from rules import schedule as schedules

PROJECT = "openstack-k8s"

OLDEST_MINOR = versions.OLDEST_MINOR
DEFAULT_KUBERNETES_VERSION = versions.DEFAULT

# VXLAN's cost per packet (cloud_init.constants, which the nodes get too); pods still need an
# IPv6-legal 1280 on their side.
VXLAN_OVERHEAD = constants.VXLAN_OVERHEAD
# What nodes assume when network.mtu is unset: Neutron's usual VXLAN tenant MTU. A smaller
# real MTU (OVN's 1442) still works: flannel takes the interface's MTU - 50.
DEFAULT_TENANT_MTU = 1450
MIN_POD_MTU = 1280

# Addresses of the node subnet that no port of ours can have: the network and broadcast
# addresses and the gateway (the router interface), plus the DHCP agents' ports (one per
# agent serving the network: 1 by default, up to 3 on clouds with HA DHCP; OVN's metadata
# port takes one the same way).
NEUTRON_RESERVED = 3
DHCP_PORTS = 3
# An Octavia load balancer in front of the API: its VIP port and, with the amphora driver
# in active-standby, one port per amphora.
OCTAVIA_PORTS = 3
# flannel leases node subnets from the second /24 of its network on (its SubnetMin default).
FLANNEL_UNUSED_SUBNETS = 1


class ConfigError(ValueError):
    """Invalid stack config. `str()` is one line: `<project>:<key>: <why>`."""

    def __init__(self, key: str, why: str, namespace: str = PROJECT):
        self.key = key
        self.why = why
        super().__init__(f"{namespace}:{key}: {why}")


def _matches(pattern: str, hint: str) -> AfterValidator:
    """A string rule: the field's own words when the value does not match."""
    compiled = re.compile(pattern)

    def check(v: str) -> str:
        if not compiled.match(v):
            raise ValueError(f"{hint} (got {json.dumps(v)})")
        return v

    return AfterValidator(check)


def _one_of(allowed: tuple, hint: str) -> AfterValidator:
    def check(v):
        if v not in allowed:
            raise ValueError(f"{hint} (got {json.dumps(v)})")
        return v

    return AfterValidator(check)


# Strict: a JSON number or boolean of the right kind, nothing coerced.
Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
# Names the cloud looks up (image, flavor, external network, volume type): never blank.
CloudName = Annotated[str, AfterValidator(names.not_blank)]
DnsLabel = Annotated[str, AfterValidator(names.dns_label)]
ClusterRange = Annotated[IPv4Network, AfterValidator(addresses.cluster_range)]
Resolver = Annotated[IPv4Address, AfterValidator(addresses.resolver)]
SshKey = Annotated[str, AfterValidator(ssh.public_key)]
VolumeSize = Annotated[Count, Field(ge=10, le=2000)] | None
DnsName = Annotated[
    str,
    _matches(
        r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        "must be a fully qualified DNS name like api.example.com",
    ),
]
SwiftContainer = Annotated[
    str,
    _matches(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$",
        "must be a Swift container name: letters, digits, '_', '.' and '-', at most 256 characters",
    ),
]
RegistryPath = Annotated[str, AfterValidator(urls.image_repository)]
# Secrets must arrive as Pulumi secrets (`--secret`): see load().
SECRET = {"secret": True}
# The one kind of value that may span lines (a PEM private key): it is the SSH client's, and
# reaches no node. Every other string is refused with a control character in it (load()).
MULTILINE = {"multiline": True}


class _Model(BaseModel):
    """camelCase config keys only (snake_case is an unknown key), unknown keys rejected,
    values frozen once validated."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class ExistingNetwork(_Model):
    """The operator's own network and subnet (ids or names): nothing of it is created."""

    network_id: CloudName
    subnet_id: CloudName


class NetworkSettings(_Model):
    cidr: Annotated[IPv4Network, AfterValidator(addresses.private_range)] = IPv4Network(
        "10.10.0.0/22"
    )
    # Empty: the subnet hands out the cloud's own resolvers (what air-gapped clouds want).
    dns_nameservers: Annotated[list[Resolver], AfterValidator(addresses.no_repeats)] = []
    # None: keep the cloud's tenant-network MTU (flannel derives its own from the interface).
    mtu: Annotated[Count, Field(le=9000)] | None = None
    # Nodes get ports on this subnet; no network, subnet or router is made.
    existing: ExistingNetwork | None = None

    @model_validator(mode="after")
    def _existing_is_whole(self) -> NetworkSettings:
        if self.existing is not None:
            for field, key in (("cidr", "cidr"), ("dns_nameservers", "dnsNameservers")):
                if field in self.model_fields_set:
                    raise ConfigError(
                        f"network.{key}",
                        "is the existing subnet's own with network.existing: remove it",
                    )
        return self

    @field_validator("mtu")
    @classmethod
    def _fits_vxlan(cls, v: int | None) -> int | None:
        if v is not None and v - VXLAN_OVERHEAD < MIN_POD_MTU:
            raise ValueError(
                f"{v} is too small for VXLAN: pods would get {v - VXLAN_OVERHEAD}, "
                f"need at least {MIN_POD_MTU + VXLAN_OVERHEAD}"
            )
        return v

    @property
    def node_mtu(self) -> int:
        """The MTU nodes expect on their private interface."""
        return self.mtu or DEFAULT_TENANT_MTU


ServerGroupPolicy = Literal["soft-anti-affinity", "anti-affinity"]
Zones = Annotated[list[CloudName], AfterValidator(addresses.no_repeats)]


class NodeGroupSettings(_Model):
    """What discovery, masters and every worker pool say about their VMs."""

    flavor: CloudName = "m1.medium"
    volume_size: VolumeSize = None
    # The boot volume's Cinder type (the cloud's default when unset).
    volume_type: CloudName | None = None
    # Nova server metadata on every VM of the group (next to the program's own two keys).
    metadata: Annotated[dict[str, str], AfterValidator(metadata_rules.server_metadata)] = {}

    @field_validator("volume_type")
    @classmethod
    def _type_needs_a_volume(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("volume_size") is None:
            raise ValueError(
                "is given without volumeSize: the node would boot from the image, with no volume to type"
            )
        return v

    def zone(self, index: int) -> str | None:
        """The availability zone of the group's index-th node (None: the cloud picks)."""
        return None


class SpreadGroupSettings(NodeGroupSettings):
    """Discovery members and masters: spread round-robin over availabilityZones, so three
    members over three zones survive the loss of one."""

    availability_zones: Zones = []

    def zone(self, index: int) -> str | None:
        zones = self.availability_zones
        return zones[index % len(zones)] if zones else None


class DiscoverySettings(SpreadGroupSettings):
    count: Annotated[Count, _one_of((1, 3), "must be 1 or 3")] = 1
    flavor: CloudName = "m1.small"
    # The jump host's floating IP; without one, `access` says how commands reach the nodes.
    floating_ip: Flag = True


class BastionSettings(_Model):
    """The operator's own SSH bastion, through which remote commands reach every node."""

    host: Annotated[
        str,
        _matches(
            r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
            "must be a host name (at most 253 characters) or an IPv4 address",
        ),
    ]
    user: Annotated[str, _matches(r"^[a-z_][a-z0-9_-]{0,31}$", "must be a user name like ops")]
    port: Annotated[Count, Field(ge=1, le=65535)] = 22
    # The key the bastion accepts (a Pulumi secret); without it, the operator's ssh-agent.
    private_key: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, json_schema_extra=SECRET | MULTILINE
    )

    @field_validator("host")
    @classmethod
    def _reachable(cls, v: str) -> str:
        try:
            address = IPv4Address(v)
        except ValueError:
            return v
        if (
            address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_unspecified
        ):
            raise ValueError(
                f"{v} is not an address a bastion can have (loopback, link-local, multicast or 0.0.0.0)"
            )
        return v

    @property
    def address(self) -> IPv4Address | None:
        """The bastion's address when it is given as one: SSH from it is then allowed."""
        try:
            return IPv4Address(self.host)
        except ValueError:
            return None


class AccessSettings(_Model):
    """How remote commands reach the nodes when the discovery node has no floating IP."""

    bastion: BastionSettings | None = None
    # Pulumi runs inside the cluster's network: nodes are dialled at their own addresses.
    direct: Flag = False

    @model_validator(mode="after")
    def _one_way(self) -> AccessSettings:
        if self.bastion is not None and self.direct:
            raise ConfigError("access.direct", "and access.bastion are two ways in: give one")
        return self

    @property
    def through(self) -> str:
        """jump-host (the discovery node's floating IP), bastion or direct."""
        return "bastion" if self.bastion is not None else "direct" if self.direct else "jump-host"


class MasterSettings(SpreadGroupSettings):
    count: Annotated[
        Count,
        _one_of((1, 3, 5, 7), "must be odd: 1, 3, 5 or 7 (etcd keeps quorum with a majority)"),
    ] = 1
    # Strict spreading (anti-affinity) fails a boot when there are fewer hypervisors than masters.
    server_group_policy: ServerGroupPolicy = "soft-anti-affinity"


TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(_Model):
    key: Annotated[
        str,
        AfterValidator(
            lambda k: label_rules.not_ours(label_rules.qualified_name(k, "taint key"), "taint key")
        ),
    ]
    value: str = ""
    effect: TaintEffect

    @model_validator(mode="after")
    def _value(self) -> Taint:
        label_rules.label_value(self.value, self.key, "taint")
        return self


class WorkerPoolSettings(NodeGroupSettings):
    name: DnsLabel
    count: Annotated[Count, Field(ge=0, le=1000)]
    availability_zone: CloudName | None = None
    # None: no server group (a group added to a running pool would replace its VMs).
    server_group_policy: ServerGroupPolicy | None = None

    def zone(self, index: int) -> str | None:
        return self.availability_zone

    labels: Annotated[dict[str, str], AfterValidator(label_rules.pool_labels)] = {}
    taints: list[Taint] = []
    # A floating IP on every node of the pool (gateway pools serve traffic from outside).
    floating_ip: Flag = False
    # Marks the pool as ingress gateway: a label and a taint only ingress pods tolerate.
    gateway: Flag = False

    @field_validator("taints")
    @classmethod
    def _taints_unique(cls, v: list[Taint]) -> list[Taint]:
        label_rules.unique_taints([(t.key, t.effect) for t in v])
        return v

    @property
    def schedulable(self) -> bool:
        """Whether ordinary pods (Deployments without tolerations) can land on this pool."""
        hard = {"NoSchedule", "NoExecute"}
        return (
            self.count > 0 and not self.gateway and not any(t.effect in hard for t in self.taints)
        )


class ControlPlaneSettings(_Model):
    # vip: keepalived + haproxy on the masters; octavia: a load balancer in front of them.
    # Unset: vip with several masters, the master's own address with one.
    endpoint: Literal["vip", "octavia"] | None = None
    floating_ip: Flag = True
    dns_name: DnsName | None = None


class EncryptionSettings(_Model):
    # Secrets encrypted in etcd with a key the program generates (a Pulumi secret).
    enabled: Flag = True
    provider: Literal["secretbox", "aescbc"] = "secretbox"
    # Raise by one to rotate the key: the next up adds the new key on every master, makes it
    # the writing key, rewrites every Secret with it, then drops the old one (docs/lifecycle.md).
    key_generation: Annotated[Count, Field(ge=1, le=1000)] = 1


class AuditSettings(_Model):
    enabled: Flag = True
    max_age_days: Annotated[Count, Field(ge=1, le=3650)] = 30
    max_backups: Annotated[Count, Field(ge=1, le=1000)] = 10
    max_size_mb: Annotated[Count, Field(ge=1, le=10000)] = 100
    # "default": metadata for most, no bodies of Secrets; or a path to your own policy file.
    policy: Annotated[
        str,
        _matches(
            r"^(default|[^\x00\n]+\.ya?ml)$", "must be default or a path to a .yaml policy file"
        ),
    ] = "default"
    # The policy file's text, read and checked once, with the config (None: "default").
    _policy_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_policy(self) -> AuditSettings:
        if self.policy != "default":
            key = "apiServer.audit.policy"
            try:
                text, policy = file_rules.yaml_document(self.policy)
            except ValueError as e:
                raise ConfigError(key, str(e)) from None
            if (
                not isinstance(policy, dict)
                or policy.get("kind") != "Policy"
                or policy.get("apiVersion") != "audit.k8s.io/v1"
            ):
                raise ConfigError(
                    key, f"{self.policy} is not an audit.k8s.io/v1 Policy (kind: Policy)"
                )
            self._policy_text = text
        return self

    @property
    def policy_text(self) -> str | None:
        """The stack's own policy file's text; None for the default policy."""
        return self._policy_text


class OidcSettings(_Model):
    issuer_url: Annotated[str, AfterValidator(urls.issuer_url)]
    client_id: CloudName
    username_claim: CloudName = "sub"
    groups_claim: CloudName | None = None
    # A CA bundle on the masters for an issuer whose certificate the system does not trust.
    ca_file: (
        Annotated[str, _matches(r"^/[^\s]*$", "must be an absolute path on the masters")] | None
    ) = None


class ApiServerSettings(_Model):
    encryption: EncryptionSettings = EncryptionSettings()
    audit: AuditSettings = AuditSettings()
    # Off unless set.
    oidc: OidcSettings | None = None


def _given_credential(model: Any, prefix: str) -> None:
    """`<prefix>applicationCredential`: create, or given with both its id and secret, which
    create refuses (a credential given but never used looks like it is in use)."""
    mode = f"{prefix}applicationCredential"
    for field in ("application_credential_id", "application_credential_secret"):
        key = f"{prefix}{to_camel(field)}"
        if model.application_credential == "given" and not getattr(model, field):
            raise ConfigError(key, f"is required when {mode} is given")
        if model.application_credential == "create" and getattr(model, field) is not None:
            raise ConfigError(
                key,
                f"is only used with {mode}: given "
                "(it is create, so the program makes its own); remove it, or set "
                f"{mode} to given",
            )


class BackupSettings(_Model):
    # systemd OnCalendar expression: systemd's grammar, and it must fire again (no systemd needed).
    schedule: Annotated[str, AfterValidator(schedules.on_calendar)] = "hourly"
    keep: Annotated[Count, Field(ge=1, le=1000)] = 24
    # Swift container for off-node copies; None keeps snapshots on the node only.
    container: SwiftContainer | None = None
    # What uploads authenticate with: create, an application credential the program makes,
    # limited to this container; given, one you made (a run that logs in with a restricted
    # application credential, as CI does, cannot make one).
    application_credential: Literal["create", "given"] = "create"
    application_credential_id: CloudName | None = None
    application_credential_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, json_schema_extra=SECRET
    )

    @model_validator(mode="after")
    def _given_needs_both(self) -> BackupSettings:
        _given_credential(self, "etcd.backup.")
        if self.application_credential == "given" and self.container is None:
            raise ConfigError(
                "etcd.backup.applicationCredential",
                "is given, but snapshots stay on the nodes without etcd.backup.container: "
                "set the container, or remove the credential",
            )
        return self


class EtcdSettings(_Model):
    backup: BackupSettings = BackupSettings()


class UpgradeSettings(_Model):
    # Workers of one pool upgraded at the same time: a count, or a percentage of the pool
    # (rounded up, at least one), as kubespray's rolling upgrades take it.
    max_unavailable: Annotated[int | str, BeforeValidator(rollout.max_unavailable)] = "20%"

    def lanes(self, pool_size: int) -> int:
        """How many workers of a pool of pool_size upgrade at once."""
        return rollout.lanes(self.max_unavailable, pool_size)


def _seconds(default: int, low: int, high: int):
    return Field(default=default, ge=low, le=high)


class TimeoutSettings(_Model):
    """Bounds, in seconds, on what remote commands wait for."""

    ready: Count = _seconds(1200, 60, 7200)
    init: Count = _seconds(900, 60, 7200)
    join: Count = _seconds(900, 60, 7200)
    drain: Count = _seconds(300, 10, 7200)
    upgrade: Count = _seconds(1800, 60, 14400)


class StorageClassSettings(_Model):
    name: Annotated[
        str,
        _matches(
            r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit",
        ),
    ] = "cinder"
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    # Cinder volume type; None: the cloud's default type.
    volume_type: CloudName | None = None
    default: Flag = True


class CsiSettings(_Model):
    """The Cinder CSI driver and its StorageClass (off for clouds without Cinder)."""

    enabled: Flag = True
    storage_class: StorageClassSettings = StorageClassSettings()


class CloudControllerSettings(_Model):
    """openstack-cloud-controller-manager: node addresses, provider ids, LoadBalancer Services."""

    enabled: Flag = True
    # LoadBalancer Services through Octavia (off for clouds without Octavia).
    load_balancers: Flag = True
    lb_provider: Literal["amphora", "ovn"] = "amphora"


class MetricsServerSettings(_Model):
    enabled: Flag = True


class NetworkPolicySettings(_Model):
    # Calico in policy-only mode next to flannel (canal): NetworkPolicy enforced, and pods kept
    # off the metadata service.
    enabled: Flag = True


class OpenStackCredentialSettings(_Model):
    """What the in-cluster OpenStack integration authenticates with."""

    # create: a dedicated application credential made by the program for this cluster;
    # given: one you made, as applicationCredentialId / applicationCredentialSecret (--secret).
    application_credential: Literal["create", "given"] = "create"
    application_credential_id: CloudName | None = None
    application_credential_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, json_schema_extra=SECRET
    )

    @model_validator(mode="after")
    def _given_needs_both(self) -> OpenStackCredentialSettings:
        _given_credential(self, "openstack.")
        return self


class Settings(_Model):
    """Everything a stack can say, validated. Keys are the camelCase config keys."""

    # Required: every resource is named after it, and a name that followed the stack's name
    # would rebuild the whole cluster on `pulumi stack rename` (see load()).
    cluster_name: DnsLabel
    external_network: CloudName
    image: CloudName
    kubernetes_version: Annotated[str, AfterValidator(versions.kubernetes_release)] = (
        DEFAULT_KUBERNETES_VERSION
    )
    network: NetworkSettings = NetworkSettings()
    pod_cidr: ClusterRange = IPv4Network("10.244.0.0/16")
    service_cidr: ClusterRange = IPv4Network("10.96.0.0/12")
    discovery: DiscoverySettings = DiscoverySettings()
    access: AccessSettings = AccessSettings()
    api_server: ApiServerSettings = ApiServerSettings()
    masters: MasterSettings = MasterSettings()
    worker_pools: list[WorkerPoolSettings] = [WorkerPoolSettings(name="general", count=2)]
    # Each CIDR is one security-group rule per port: a repeat would register one rule twice.
    api_allowed_cidrs: Annotated[list[IPv4Network], AfterValidator(addresses.no_repeats)] = []
    ssh_allowed_cidrs: Annotated[
        list[IPv4Network], Field(min_length=1), AfterValidator(addresses.no_repeats)
    ]
    node_port_allowed_cidrs: Annotated[list[IPv4Network], AfterValidator(addresses.no_repeats)] = []
    ssh_public_keys: Annotated[list[SshKey], AfterValidator(addresses.no_repeats)] = []
    package_mirror: Annotated[str, AfterValidator(urls.mirror_prefix)] | None = None
    image_repository: RegistryPath | None = None
    control_plane: ControlPlaneSettings = ControlPlaneSettings()
    etcd: EtcdSettings = EtcdSettings()
    upgrade: UpgradeSettings = UpgradeSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    cloud_controller: CloudControllerSettings = CloudControllerSettings()
    csi: CsiSettings = CsiSettings()
    metrics_server: MetricsServerSettings = MetricsServerSettings()
    network_policy: NetworkPolicySettings = NetworkPolicySettings()
    openstack: OpenStackCredentialSettings = OpenStackCredentialSettings()

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, v: IPv4Network) -> IPv4Network:
        # flannel hands each node a /24 out of it, never the first one.
        if v.prefixlen > 22:
            room = max(0, 2 ** max(0, 24 - v.prefixlen) - FLANNEL_UNUSED_SUBNETS)
            raise ValueError(f"{v} leaves room for at most {room} nodes' /24s; use /22 or wider")
        return v

    @field_validator("service_cidr")
    @classmethod
    def _service_cidr(cls, v: IPv4Network) -> IPv4Network:
        if not 12 <= v.prefixlen <= 27:
            raise ValueError(f"{v}: the API server accepts /12 to /27 service ranges")
        return v

    @field_validator("worker_pools")
    @classmethod
    def _unique_pools(cls, v: list[WorkerPoolSettings]) -> list[WorkerPoolSettings]:
        seen = set()
        for pool in v:
            if pool.name in seen:
                raise ValueError(f"pool name {pool.name!r} is used twice")
            seen.add(pool.name)
        return v

    @model_validator(mode="after")
    def _addons_pinned(self) -> Settings:
        if any(self.addon_features.values()):
            from addons.versions import tags_for

            try:
                tags_for(self.kubernetes_version)
            except ValueError as e:
                raise ConfigError("kubernetesVersion", str(e).split(": ", 1)[1]) from None
        return self

    @model_validator(mode="after")
    def _addons_have_a_worker(self) -> Settings:
        # The CSI controller and metrics-server are Deployments without tolerations: they
        # never run on masters (control-plane taint) nor on tainted or gateway pools.
        wanting = [
            k
            for k, on in (("csi", self.csi.enabled), ("metricsServer", self.metrics_server.enabled))
            if on
        ]
        if wanting and not any(p.schedulable for p in self.worker_pools):
            raise ConfigError(
                "workerPools",
                f"no worker can run the add-ons' Deployments ({', '.join(wanting)}): every pool is "
                f"empty, a gateway or tainted NoSchedule/NoExecute; add a pool with count >= 1 and "
                f"no such taint, or set {' and '.join(k + '.enabled' for k in wanting)} to false",
            )
        return self

    @property
    def addon_features(self) -> dict[str, bool]:
        return {
            "cloud_controller": self.cloud_controller.enabled,
            "cinder_csi": self.csi.enabled,
            "metrics_server": self.metrics_server.enabled,
            "network_policy": self.network_policy.enabled,
        }

    @property
    def created_credentials(self) -> list[str]:
        """The config keys of the application credentials the program makes (create), for
        what uses them: the cloud controller or Cinder CSI, and Swift uploads of snapshots."""
        out = []
        if (self.cloud_controller.enabled or self.csi.enabled) and (
            self.openstack.application_credential == "create"
        ):
            out.append("openstack.applicationCredential")
        backup = self.etcd.backup
        if backup.container is not None and backup.application_credential == "create":
            out.append("etcd.backup.applicationCredential")
        return out

    @property
    def endpoint_kind(self) -> str:
        """vip / octavia / master: what stands behind the API endpoint."""
        if self.control_plane.endpoint is not None:
            return self.control_plane.endpoint
        return "vip" if self.masters.count > 1 else "master"

    @property
    def subnet_ports(self) -> dict[str, int]:
        """Every port the program makes on the node subnet, by what it is for."""
        ports = {
            "discovery": self.discovery.count,
            "master": self.masters.count,
            "worker": sum(p.count for p in self.worker_pools),
        }
        if self.endpoint_kind == "vip":
            ports["VIP"] = 1
        elif self.endpoint_kind == "octavia":
            ports["load balancer"] = OCTAVIA_PORTS
        return ports

    @model_validator(mode="after")
    def _a_way_in(self) -> Settings:
        through = self.access.through
        if not self.discovery.floating_ip and through == "jump-host":
            raise ConfigError(
                "discovery.floatingIp",
                "false needs another way in for the remote commands: "
                "access.bastion {host, user} or access.direct: true",
            )
        if self.discovery.floating_ip and through != "jump-host":
            raise ConfigError(
                f"access.{through}",
                "is for a discovery node without a floating IP: "
                "set discovery.floatingIp: false too",
            )
        return self

    @model_validator(mode="after")
    def _ranges_apart(self) -> Settings:
        # An existing subnet's range is only known to the cloud: checked when it is read
        # (check_subnet), at plan time.
        existing = self.network.existing is not None
        ranges = {"podCidr": self.pod_cidr, "serviceCidr": self.service_cidr}
        if not existing:
            ranges = {"network.cidr": self.network.cidr, **ranges}
        names_ = list(ranges)
        for i, a in enumerate(names_):
            for b in names_[i + 1 :]:
                if ranges[a].overlaps(ranges[b]):
                    raise ConfigError(b, f"{ranges[b]} overlaps {a} {ranges[a]}")
        nodes = self.masters.count + sum(p.count for p in self.worker_pools)
        room = 2 ** (24 - self.pod_cidr.prefixlen) - FLANNEL_UNUSED_SUBNETS
        if nodes > room:
            raise ConfigError(
                "podCidr",
                f"{self.pod_cidr} has {room} node subnets (/24) for {nodes} nodes "
                f"(flannel never leases the first /24); use a wider podCidr",
            )
        ports = self.subnet_ports
        hosts = self.network.cidr.num_addresses - NEUTRON_RESERVED - DHCP_PORTS
        if not existing and sum(ports.values()) > hosts:
            need = sum(ports.values()) + NEUTRON_RESERVED + DHCP_PORTS
            wide = 32 - max(0, need - 1).bit_length()
            used = ", ".join(f"{n} {what}" for what, n in ports.items() if n)
            raise ConfigError(
                "network.cidr",
                f"{self.network.cidr} has {hosts} addresses for {sum(ports.values())} ports ({used}; "
                f"Neutron keeps {NEUTRON_RESERVED + DHCP_PORTS} for network, gateway, broadcast and "
                f"DHCP); use /{wide} or wider",
            )
        return self

    def check_subnet(self, cidr: str) -> str:
        """An existing subnet's range, read from the cloud: pods and Services must not share it."""
        net = IPv4Network(cidr)
        for key, other in (("podCidr", self.pod_cidr), ("serviceCidr", self.service_cidr)):
            if net.overlaps(other):
                raise ConfigError(
                    key,
                    f"{other} overlaps the existing subnet {self.network.existing.subnet_id} ({net}); "
                    f"choose another {key}",
                )
        return cidr

    @property
    def name(self) -> str:
        return self.cluster_name

    @property
    def minor(self) -> int:
        return int(self.kubernetes_version.split(".")[1])


def _key_of(loc: tuple) -> str:
    """pydantic's error location -> the config key a user types: workerPools[0].count."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + str(part)
    return key or "(config)"


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """alias -> FieldInfo of a model's fields."""
    return {f.alias or to_camel(name): f for name, f in model.model_fields.items()}


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds (itself, in a list or Optional), if any."""
    todo = [annotation]
    while todo:
        a = todo.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        todo.extend(getattr(a, "__args__", ()))
    return None


def _marked_paths(mark: str, model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Dotted keys (list indexes left out) of every field whose json_schema_extra has `mark`."""
    model = model or Settings
    out = []
    for alias, f in _fields(model).items():
        key = f"{prefix}{alias}"
        if (f.json_schema_extra or {}).get(mark):
            out.append(key)
        sub = _nested_model(f.annotation)
        if sub is not None:
            out += _marked_paths(mark, sub, key + ".")
    return out


def _secret_paths() -> list[str]:
    """Dotted keys of every field marked SECRET: what must arrive as a Pulumi secret."""
    return _marked_paths("secret")


def _one_line_values(value: Any, key: str, multiline: set[str]) -> None:
    """Every string of the config, and every key of a map (labels), holds no control
    character: one rule for all of them, since each reaches a node (rules.text)."""
    if isinstance(value, str):
        if re.sub(r"\[\d+\]", "", key) not in multiline:
            try:
                text_rules.one_line(value)
            except ValueError as e:
                raise ConfigError(key, str(e)) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            found = text_rules.control_character(str(k))
            if found:
                raise ConfigError(key, f"the key {k!r} contains {found}")
            _one_line_values(v, f"{key}.{k}", multiline)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _one_line_values(v, f"{key}[{i}]", multiline)


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _no_empty_values(value: Any, key: str, top: bool = True) -> None:
    """A YAML key left without a value (`image:`) arrives as null (the CLI passes the text
    "null" for a top-level one): say so, instead of validating the word "null"."""
    if value is None or (top and value == "null"):
        raise ConfigError(
            key,
            "has no value (an empty key in the stack file); give it one, or remove the line to use the default",
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _no_empty_values(v, f"{key}.{k}", top=False)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_empty_values(v, f"{key}[{i}]", top=False)


def _flat_key(key: str, value: Any) -> None:
    """`masters.count: 3` at the top of a stack file is one key named "masters.count"."""
    head = re.split(r"[.\[]", key, maxsplit=1)[0]
    if head == key or head not in _fields(Settings):
        return
    shown = value if isinstance(value, str) else json.dumps(value)
    nested = (
        f" ({PROJECT}:{head}: {{{key[len(head) + 1 :]}: {shown}}})" if key[len(head)] == "." else ""
    )
    raise ConfigError(
        key,
        f"is a nested key written flat; nest it under {head} in the stack file{nested}, "
        f"or run: pulumi config set --path '{key}' {shown}",
    )


def _unknown_key_hint(loc: tuple) -> str:
    """'did you mean' for snake_case spellings of known keys."""
    model: type[BaseModel] | None = Settings
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        f = _fields(model).get(part)
        model = _nested_model(f.annotation) if f else None
    last = str(loc[-1])
    if model is not None and to_camel(last) in _fields(model) and to_camel(last) != last:
        return f"is not a known config key; did you mean {to_camel(last)}? (keys are camelCase)"
    return ""


def load(
    raw: dict[str, Any], stack: str | None = None, secret_keys: set[str] | None = None
) -> Settings:
    """Validate raw project config (keys without the project prefix) into Settings.

    `stack` only shapes the advice when clusterName is missing. `secret_keys` are the
    `project:key` names the engine marks secret (None when unknown, as under the mock engine):
    a secret field given outside them is refused, since it sits in plain text in the stack file.
    """
    multiline = set(_marked_paths("multiline"))
    for key, value in raw.items():
        _no_empty_values(value, key)
        _one_line_values(value, key, multiline)
        _flat_key(key, value)
    _required_name(raw, stack)
    if secret_keys is not None:
        _secrets_kept_secret(raw, secret_keys)
    try:
        return Settings.model_validate(raw)
    except ConfigError:
        raise
    except ValidationError as e:
        raise _config_error(e.errors()[0]) from None


def _required_name(raw: dict[str, Any], stack: str | None) -> None:
    if "clusterName" not in raw:
        suggested = names.suggest_dns_label(stack or "")
        where = f"Pulumi.{stack}.yaml" if stack else "the stack file"
        raise ConfigError(
            "clusterName",
            f"is required: add `{PROJECT}:clusterName: {suggested}` to {where} (every "
            f"resource is named after it, so it must not change with the stack's name)",
        )


def _secrets_kept_secret(raw: dict[str, Any], secret_keys: set[str]) -> None:
    for path in _secret_paths():
        top = path.split(".", 1)[0]
        if _lookup(raw, path) is not None and f"{PROJECT}:{top}" not in secret_keys:
            raise ConfigError(
                path,
                f"is a secret in plain text; set it with: pulumi config set --secret --path '{path}' <value>",
            )


# What a required key without a default is for, where "is required" alone would not say.
# sshAllowedCidrs has no default, and the shipped dev stack none either: a stack plans only
# once its user has said where they connect from, so no example opens SSH to the internet.
_REQUIRED = {
    "sshAllowedCidrs": (
        "is required: the addresses you run Pulumi, ssh and kubectl from (your own, as a /32; "
        "0.0.0.0/0 opens the jump host to the internet); set it and apiAllowedCidrs with: "
        "pulumi config set --path 'sshAllowedCidrs[0]' <address>/32"
    ),
}


def _config_error(err: dict[str, Any]) -> ConfigError:
    """pydantic's first error as one line naming the key."""
    key = _key_of(err["loc"])
    if err["type"] == "missing":
        return ConfigError(key, _REQUIRED.get(key, "is required"))
    if err["type"] == "extra_forbidden":
        return ConfigError(
            key,
            _unknown_key_hint(err["loc"])
            or "is not a known config key (see the README's config reference)",
        )
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):
        return inner
    if err["type"] == "value_error":
        # Our own rules: the message is the field's rule, with the value where it helps.
        return ConfigError(key, err["msg"].removeprefix("Value error, "))
    given = json.dumps(err.get("input"), default=str)
    return ConfigError(key, f"{err['msg']} (got {given})")


# Namespaces a stack file legitimately holds besides the project's: the providers' and Pulumi's.
OTHER_NAMESPACES = {"pulumi", "openstack", "kubernetes", "command", "tls", "random"}


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (typos in a namespace are one or two edits away)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def check_namespace(key: str) -> None:
    """Refuse a `namespace:key` whose namespace is a typo of the project's (`openstack-k8:masters`):
    the engine would hand it over, and the program would ignore it without a word."""
    namespace, sep, rest = key.partition(":")
    if (
        sep
        and namespace != PROJECT
        and namespace not in OTHER_NAMESPACES
        and _distance(namespace.lower(), PROJECT) <= 2
    ):
        raise ConfigError(
            rest,
            f"namespace {namespace!r} is not this project's; did you mean {PROJECT}:{rest}?",
            namespace=namespace,
        )


def raw_from_pulumi(config: dict[str, str]) -> dict[str, Any]:
    """The project's keys out of the engine's config bag (`project:key` -> string).

    Structured values arrive as JSON text; scalars stay strings. Other namespaces are the
    providers' (ignored here), unless they are a typo of the project's (check_namespace).
    """
    raw: dict[str, Any] = {}
    prefix = PROJECT + ":"
    for k, v in config.items():
        if not k.startswith(prefix):
            check_namespace(k)
            continue
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        raw[k[len(prefix) :]] = v
    return raw


def engine_config() -> dict[str, str]:
    """Every config value the engine handed this process: the CLI passes them as JSON in
    PULUMI_CONFIG; set_all_config (the mock engine, tools/plan) sets them in the runtime."""
    from pulumi.runtime.config import CONFIG, get_config_env

    return {**get_config_env(), **CONFIG.get()}


def engine_secret_keys() -> set[str] | None:
    """The keys the CLI marks secret (PULUMI_CONFIG_SECRET_KEYS, always set by the Python
    language host); None where no CLI ran the program (the mock engine knows no secrets)."""
    if "PULUMI_CONFIG_SECRET_KEYS" not in os.environ:
        return None
    return set(json.loads(os.environ["PULUMI_CONFIG_SECRET_KEYS"] or "[]"))


# Where the OpenStack provider (gophercloud) and the openstack CLI look for clouds.yaml,
# in their order: the first file that names the cloud is the one used.
CLOUDS_FILES = ("clouds.yaml", "~/.config/openstack/clouds.yaml", "/etc/openstack/clouds.yaml")
APPLICATION_CREDENTIAL_AUTH = "v3applicationcredential"


def clouds_files(env: dict[str, str]) -> list[Path]:
    first = [env["OS_CLIENT_CONFIG_FILE"]] if env.get("OS_CLIENT_CONFIG_FILE") else []
    return [Path(p).expanduser() for p in (*first, *CLOUDS_FILES)]


def application_credential_login(
    env: dict[str, str], provider_config: dict[str, str], clouds: list[Path]
) -> str | None:
    """What says this run logs in to OpenStack with an application credential (the
    provider's own config, the OS_* variables, or the clouds.yaml entry OS_CLOUD names),
    in words for a message; None for a login by password or token."""
    for key in ("applicationCredentialId", "applicationCredentialName"):
        if provider_config.get(f"openstack:{key}"):
            return f"openstack:{key} is set"
    if env.get("OS_AUTH_TYPE", "").lower() == APPLICATION_CREDENTIAL_AUTH:
        return f"OS_AUTH_TYPE is {APPLICATION_CREDENTIAL_AUTH}"
    for var in ("OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME"):
        if env.get(var):
            return f"{var} is set"
    cloud = provider_config.get("openstack:cloud") or env.get("OS_CLOUD")
    for path in clouds if cloud else ():
        if not path.is_file():
            continue
        entry = ((yaml.safe_load(path.read_text()) or {}).get("clouds") or {}).get(cloud)
        if entry is None:
            continue
        if str(entry.get("auth_type", "")).lower() == APPLICATION_CREDENTIAL_AUTH:
            return f"cloud {cloud} in {path} has auth_type {APPLICATION_CREDENTIAL_AUTH}"
        return None
    return None


def check_login(settings: Settings, login: str | None) -> None:
    """Keystone refuses a restricted application credential (the default of `openstack
    application credential create`) the making of another one: `pulumi up` would stop at
    the first credential, halfway through building the cluster. Refused here instead,
    before anything is registered, with what to give."""
    if login is None or not settings.created_credentials:
        return
    key = settings.created_credentials[0]
    raise ConfigError(
        key,
        f"is create, but this run logs in with an application credential ({login}), and "
        "Keystone lets an application credential make another only if it was created "
        f"--unrestricted; make it yourself and set {key} to given with its id and secret "
        "(docs/ci.md), or log in with a password",
    )


def from_pulumi() -> Settings:
    """Read and validate this stack's config: the only place the program reads config."""
    import pulumi

    config = engine_config()
    secret_keys = engine_secret_keys()
    settings = load(raw_from_pulumi(config), pulumi.get_stack(), secret_keys)
    # Only under the CLI (which always says which keys are secret): the offline plan logs
    # in nowhere, and stays the same whatever the shell it runs in.
    if secret_keys is not None:
        env = dict(os.environ)
        check_login(settings, application_credential_login(env, config, clouds_files(env)))
    return settings
