"""The one settings model: stack config in, validated settings out.

Only this module reads Pulumi config. Everything else (components, cloud-init builders,
tools) receives a `Settings` object, validated once, before any resource is registered.
A bad value raises `ConfigError` whose message is one line that names the config key.
"""
from __future__ import annotations

import json
import re
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "openstack-k8s"

# The oldest minor whose kubeadm speaks kubeadm.k8s.io/v1beta4, and the newest this release
# has pinned add-on and package versions for.
OLDEST_MINOR = 31
DEFAULT_KUBERNETES_VERSION = "1.33.5"

# VXLAN costs 50 bytes per packet; pods still need an IPv6-legal 1280 on their side.
VXLAN_OVERHEAD = 50
# What nodes assume when network.mtu is unset: Neutron's usual VXLAN tenant MTU. A smaller
# real MTU (OVN's 1442) still works: flannel takes the interface's MTU - 50.
DEFAULT_TENANT_MTU = 1450
MIN_POD_MTU = 1280

_DNS_LABEL = r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$"
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$")


class ConfigError(ValueError):
    """Invalid stack config. `str()` is one line: `<project>:<key>: <why>`."""

    def __init__(self, key: str, why: str):
        self.key = key
        self.why = why
        super().__init__(f"{PROJECT}:{key}: {why}")


class _Model(BaseModel):
    """camelCase config keys, unknown keys rejected, values frozen once validated."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class NetworkSettings(_Model):
    cidr: IPv4Network = IPv4Network("10.10.0.0/22")
    # Empty: the subnet hands out the cloud's own resolvers (what air-gapped clouds want).
    dns_nameservers: list[IPv4Address] = []
    # None: keep the cloud's tenant-network MTU (flannel derives its own from the interface).
    mtu: Optional[int] = Field(default=None, le=9000)

    @field_validator("cidr")
    @classmethod
    def _room_for_nodes(cls, v: IPv4Network) -> IPv4Network:
        if v.prefixlen > 28:
            raise ValueError(f"/{v.prefixlen} is too small for a cluster (at most /28)")
        if not v.is_private:
            raise ValueError(f"{v} is not a private range")
        return v

    @field_validator("mtu")
    @classmethod
    def _fits_vxlan(cls, v: Optional[int]) -> Optional[int]:
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


class DiscoverySettings(_Model):
    count: Literal[1, 3] = 1
    flavor: str = "m1.small"
    volume_size: Optional[int] = Field(default=None, ge=10, le=2000)


class MasterSettings(_Model):
    count: Literal[1, 3, 5, 7] = 1
    flavor: str = "m1.medium"
    volume_size: Optional[int] = Field(default=None, ge=10, le=2000)


TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(_Model):
    key: str = Field(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
    value: str = Field(default="", pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
    effect: TaintEffect


class WorkerPoolSettings(_Model):
    name: str = Field(pattern=_DNS_LABEL)
    count: int = Field(ge=0, le=1000)
    flavor: str = "m1.medium"
    volume_size: Optional[int] = Field(default=None, ge=10, le=2000)
    labels: dict[str, str] = {}
    taints: list[Taint] = []
    # A floating IP on every node of the pool (gateway pools serve traffic from outside).
    floating_ip: bool = False
    # Marks the pool as ingress gateway: a label and a taint only ingress pods tolerate.
    gateway: bool = False

    @field_validator("labels")
    @classmethod
    def _label_syntax(cls, v: dict[str, str]) -> dict[str, str]:
        key = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
        val = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
        for k, value in v.items():
            if not key.match(k):
                raise ValueError(f"label key {k!r} is not a valid Kubernetes label key")
            if not val.match(value):
                raise ValueError(f"label value {value!r} (key {k}) is not a valid label value")
            prefix = k.split("/", 1)[0] if "/" in k else ""
            if prefix.endswith(("kubernetes.io", "k8s.io")) and prefix not in ("node.kubernetes.io", "kubelet.kubernetes.io"):
                raise ValueError(f"label {k!r} is reserved: the kubelet may not set it on its own Node")
        return v


class ControlPlaneSettings(_Model):
    # vip: keepalived + haproxy on the masters; octavia: a load balancer in front of them.
    # Unset: vip with several masters, the master's own address with one.
    endpoint: Optional[Literal["vip", "octavia"]] = None
    floating_ip: bool = True
    dns_name: Optional[str] = Field(
        default=None, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
    )


class BackupSettings(_Model):
    # systemd OnCalendar expression (checked against systemd's grammar, no systemd needed).
    schedule: str = "hourly"
    keep: int = Field(default=24, ge=1, le=1000)
    # Swift container for off-node copies; None keeps snapshots on the node only.
    container: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


    @field_validator("schedule")
    @classmethod
    def _on_calendar(cls, v: str) -> str:
        from cloud_init.backup import validate_schedule

        return validate_schedule(v)


class EtcdSettings(_Model):
    backup: BackupSettings = BackupSettings()


class UpgradeSettings(_Model):
    # Workers of one pool upgraded at the same time.
    max_unavailable: int = Field(default=1, ge=1, le=100)


class TimeoutSettings(_Model):
    """Bounds, in seconds, on what remote commands wait for."""

    ready: int = Field(default=1200, ge=60, le=7200)
    init: int = Field(default=900, ge=60, le=7200)
    join: int = Field(default=900, ge=60, le=7200)
    drain: int = Field(default=300, ge=10, le=7200)
    upgrade: int = Field(default=1800, ge=60, le=14400)


class StorageClassSettings(_Model):
    name: str = Field(default="cinder", pattern=r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    # Cinder volume type; None: the cloud's default type.
    volume_type: Optional[str] = Field(default=None, min_length=1)
    default: bool = True


class CsiSettings(_Model):
    """The Cinder CSI driver and its StorageClass (off for clouds without Cinder)."""

    enabled: bool = True
    storage_class: StorageClassSettings = StorageClassSettings()


class CloudControllerSettings(_Model):
    """openstack-cloud-controller-manager: node addresses, provider ids, LoadBalancer Services."""

    enabled: bool = True
    # LoadBalancer Services through Octavia (off for clouds without Octavia).
    load_balancers: bool = True
    lb_provider: Literal["amphora", "ovn"] = "amphora"


class MetricsServerSettings(_Model):
    enabled: bool = True


class OpenStackCredentialSettings(_Model):
    """What the in-cluster OpenStack integration authenticates with."""

    # create: a dedicated application credential made by the program for this cluster;
    # given: one you made, as applicationCredentialId / applicationCredentialSecret (--secret).
    application_credential: Literal["create", "given"] = "create"
    application_credential_id: Optional[str] = Field(default=None, min_length=1)
    application_credential_secret: Optional[str] = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _given_needs_both(self) -> "OpenStackCredentialSettings":
        if self.application_credential == "given":
            for key in ("application_credential_id", "application_credential_secret"):
                if not getattr(self, key):
                    raise ConfigError(f"openstack.{to_camel(key)}", "is required when openstack.applicationCredential is given")
        return self


class Settings(_Model):
    """Everything a stack can say, validated. Keys are the camelCase config keys."""

    cluster_name: Optional[str] = Field(default=None, pattern=_DNS_LABEL)
    external_network: str = Field(min_length=1)
    image: str = Field(min_length=1)
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    network: NetworkSettings = NetworkSettings()
    pod_cidr: IPv4Network = IPv4Network("10.244.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.96.0.0/12")
    discovery: DiscoverySettings = DiscoverySettings()
    masters: MasterSettings = MasterSettings()
    worker_pools: list[WorkerPoolSettings] = [WorkerPoolSettings(name="general", count=2)]
    api_allowed_cidrs: list[IPv4Network] = []
    ssh_allowed_cidrs: list[IPv4Network] = Field(min_length=1)
    node_port_allowed_cidrs: list[IPv4Network] = []
    ssh_public_keys: list[str] = []
    package_mirror: Optional[str] = Field(default=None, pattern=r"^(https?|file)://[^\s'\"]+[^/\s'\"]$")
    image_repository: Optional[str] = Field(default=None, pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")
    control_plane: ControlPlaneSettings = ControlPlaneSettings()
    etcd: EtcdSettings = EtcdSettings()
    upgrade: UpgradeSettings = UpgradeSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    cloud_controller: CloudControllerSettings = CloudControllerSettings()
    csi: CsiSettings = CsiSettings()
    metrics_server: MetricsServerSettings = MetricsServerSettings()
    openstack: OpenStackCredentialSettings = OpenStackCredentialSettings()

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        m = re.fullmatch(r"1\.(\d{1,2})\.(\d{1,3})", v)
        if not m:
            raise ValueError(f"{v!r} is not a Kubernetes release like {DEFAULT_KUBERNETES_VERSION} (no 'v', no suffix)")
        if int(m.group(1)) < OLDEST_MINOR:
            raise ValueError(f"{v} is older than 1.{OLDEST_MINOR}, the first with kubeadm's v1beta4 config")
        return v

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, v: IPv4Network) -> IPv4Network:
        # flannel hands each node a /24 out of it.
        if v.prefixlen > 22:
            raise ValueError(f"{v} leaves room for at most {2 ** max(0, 24 - v.prefixlen)} nodes' /24s; use /22 or wider")
        return v

    @field_validator("service_cidr")
    @classmethod
    def _service_cidr(cls, v: IPv4Network) -> IPv4Network:
        if not 12 <= v.prefixlen <= 27:
            raise ValueError(f"{v}: the API server accepts /12 to /27 service ranges")
        return v

    @field_validator("ssh_public_keys")
    @classmethod
    def _ssh_keys(cls, v: list[str]) -> list[str]:
        for i, key in enumerate(v):
            if not _SSH_KEY.match(key.strip()):
                raise ValueError(f"entry {i} is not an OpenSSH public key line ('ssh-ed25519 AAAA... comment')")
        return [k.strip() for k in v]

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
    def _addons_pinned(self) -> "Settings":
        if self.cloud_controller.enabled or self.csi.enabled or self.metrics_server.enabled:
            from addons.versions import tags_for

            try:
                tags_for(self.kubernetes_version)
            except ValueError as e:
                raise ConfigError("kubernetesVersion", str(e).split(": ", 1)[1]) from None
        return self

    @property
    def addon_features(self) -> dict[str, bool]:
        return {
            "cloud_controller": self.cloud_controller.enabled,
            "cinder_csi": self.csi.enabled,
            "metrics_server": self.metrics_server.enabled,
        }

    @model_validator(mode="after")
    def _ranges_apart(self) -> "Settings":
        ranges = {"network.cidr": self.network.cidr, "podCidr": self.pod_cidr, "serviceCidr": self.service_cidr}
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if ranges[a].overlaps(ranges[b]):
                    raise ConfigError(b, f"{ranges[b]} overlaps {a} {ranges[a]}")
        nodes = self.masters.count + sum(p.count for p in self.worker_pools)
        room = 2 ** (24 - self.pod_cidr.prefixlen)
        if nodes > room:
            raise ConfigError("podCidr", f"{self.pod_cidr} has {room} node subnets (/24) for {nodes} nodes")
        hosts = self.network.cidr.num_addresses - 16  # gateway, DHCP ports, VIP, LB, reserve
        if nodes + self.discovery.count > hosts:
            raise ConfigError("network.cidr", f"{self.network.cidr} has about {hosts} addresses for {nodes + self.discovery.count} nodes")
        return self

    @property
    def name(self) -> str:
        return self.cluster_name or "k8s"

    @property
    def minor(self) -> int:
        return int(self.kubernetes_version.split(".")[1])


# What a value must look like, for errors where pydantic would only quote a regex or a list.
_HINTS = {
    "name": "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 20 characters",
    "clusterName": "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 20 characters",
    "packageMirror": "must be an http(s):// or file:// URL without a trailing slash",
    "imageRepository": "must be a registry path like registry.example.com/kubernetes",
    "dnsName": "must be a fully qualified DNS name like api.example.com",
    "schedule": "must be a systemd OnCalendar expression such as hourly or *-*-* 00/6:00:00",
    "container": "must be a Swift container name",
    "key": "must be a Kubernetes taint key",
    "value": "must be a Kubernetes taint value",
    "masters.count": "must be odd: 1, 3, 5 or 7 (etcd keeps quorum with a majority)",
    "discovery.count": "must be 1 or 3",
}


def _key_of(loc: tuple) -> str:
    """pydantic's error location -> the config key a user types: workerPools[0].count."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + str(part)
    return key or "(config)"


def load(raw: dict[str, Any], stack: Optional[str] = None) -> Settings:
    """Validate raw project config (keys without the project prefix) into Settings.

    The cluster name defaults to the stack name, so two stacks never collide in one project.
    """
    data = dict(raw)
    if stack and "clusterName" not in data:
        data["clusterName"] = stack
    try:
        return Settings.model_validate(data)
    except ConfigError:
        raise
    except ValidationError as e:
        err = e.errors()[0]
        key = _key_of(err["loc"])
        if err["type"] == "missing":
            raise ConfigError(key, "is required") from None
        if err["type"] == "extra_forbidden":
            raise ConfigError(key, "is not a known config key (see the README's config reference)") from None
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError):
            raise inner from None
        msg = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        if err["type"] in ("string_pattern_mismatch", "literal_error"):
            msg = _HINTS.get(key, _HINTS.get(key.rsplit(".", 1)[-1], msg))
        if err["type"] in ("literal_error", "int_parsing", "greater_than_equal", "less_than_equal",
                           "string_pattern_mismatch", "ip_v4_network", "ip_v4_address", "bool_parsing",
                           "string_too_short", "too_short"):
            msg = f"{msg} (got {json.dumps(given, default=str)})"
        raise ConfigError(key, msg) from None


def raw_from_pulumi(config: dict[str, str]) -> dict[str, Any]:
    """The project's keys out of the engine's config bag (`project:key` -> string).

    Structured values arrive as JSON text; scalars stay strings for pydantic to coerce.
    """
    raw: dict[str, Any] = {}
    prefix = PROJECT + ":"
    for k, v in config.items():
        if not k.startswith(prefix):
            continue
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        raw[k[len(prefix):]] = v
    return raw


def engine_config() -> dict[str, str]:
    """Every config value the engine handed this process: the CLI passes them as JSON in
    PULUMI_CONFIG; set_all_config (the mock engine, tools/plan) sets them in the runtime."""
    from pulumi.runtime.config import CONFIG, get_config_env

    return {**get_config_env(), **CONFIG.get()}


def from_pulumi() -> Settings:
    """Read and validate this stack's config: the only place the program reads config."""
    import pulumi

    return load(raw_from_pulumi(engine_config()), pulumi.get_stack())
