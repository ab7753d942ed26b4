"""Every service's configuration, as data: {file: {section: {option: value}}}.

Settings follow what DevStack's lib/ scripts set for a single node, cut down to what a fake
cloud needs: Nova's fake virt driver, Neutron ML2/OVN on userspace Open vSwitch, Octavia's
amphora provider with noop amphora/compute/network drivers, Cinder's fake volume driver.
Default quotas are unlimited, so the admin project fits 100+ workers.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

REGION = "RegionOne"
ADMIN_PASSWORD = "osk8s-admin"
SERVICE_USER = "osk8s-service"
SERVICE_PASSWORD = "osk8s-service"
CONTROLLER_HOST = "osk8s-controller"

# Fixed ports on 127.0.0.1 (the script checks they are free before it starts anything);
# OSK8S_OPENSTACK_PORT_OFFSET moves them all, for a second control plane beside the first.
_BASE_PORTS = {
    "keystone": 25000,
    "glance": 29292,
    "placement": 28778,
    "nova": 28774,
    "neutron": 29696,
    "cinder": 28776,
    "octavia": 29876,
    "rabbitmq": 25672,
    "rabbitmq-dist": 25673,
    "epmd": 24369,
    "ovn-nb": 26641,
    "ovn-sb": 26642,
}
PORTS = {
    name: port + int(os.environ.get("OSK8S_OPENSTACK_PORT_OFFSET", "0"))
    for name, port in _BASE_PORTS.items()
}

# (catalog type, service name, path under the API's root) per API.
CATALOG = [
    ("identity", "keystone", "keystone", "/v3"),
    ("image", "glance", "glance", ""),
    ("placement", "placement", "placement", ""),
    ("compute", "nova", "nova", "/v2.1"),
    ("network", "neutron", "neutron", ""),
    ("load-balancer", "octavia", "octavia", ""),
    ("block-storage", "cinder", "cinder", "/v3/%(project_id)s"),
    # Nova's [cinder] catalog_info and older clients look Cinder up by this type.
    ("volumev3", "cinderv3", "cinder", "/v3/%(project_id)s"),
]


def url(service: str) -> str:
    return f"http://127.0.0.1:{PORTS[service]}"


AUTH_URL = url("keystone") + "/v3"


@dataclass(frozen=True)
class Layout:
    run: Path  # everything the control plane writes: data, logs, configs, sockets, PIDs
    venv: Path  # the OpenStack venv
    computes: int  # fake compute hosts, each with its own Open vSwitch and OVN chassis

    @property
    def etc(self) -> Path:
        return self.run / "etc"

    @property
    def mysql_socket(self) -> Path:
        return self.run / "mysql" / "mysqld.sock"

    def compute_host(self, index: int) -> str:
        return f"osk8s-compute-{index}"

    def ovs_dir(self, index: int) -> Path:
        return self.run / f"ovs-{index}"

    def ovn_dir(self) -> Path:
        return self.run / "ovn"

    def db(self, name: str) -> str:
        return f"mysql+pymysql://root@localhost/{name}?unix_socket={self.mysql_socket}&charset=utf8"

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{PORTS['rabbitmq']}/"

    def venv_etc(self, *parts: str) -> str:
        return str(self.venv.joinpath("etc", *parts))


DATABASES = [
    "keystone",
    "glance",
    "placement",
    "nova_api",
    "nova_cell0",
    "nova",
    "neutron",
    "octavia",
    "cinder",
]


def _auth() -> dict[str, str]:
    """A keystoneauth password section for the one service user every service uses."""
    return {
        "auth_type": "password",
        "auth_url": AUTH_URL,
        "username": SERVICE_USER,
        "password": SERVICE_PASSWORD,
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": REGION,
    }


def _authtoken() -> dict[str, str]:
    return {**_auth(), "www_authenticate_uri": AUTH_URL, "interface": "public"}


def _common(layout: Layout, name: str) -> dict[str, dict[str, str]]:
    return {
        # Stop within seconds: oslo.service otherwise waits up to 60 s for running requests.
        "DEFAULT": {
            "transport_url": layout.transport_url,
            "debug": "False",
            "graceful_shutdown_timeout": "5",
        },
        "database": {"connection": layout.db(name), "max_pool_size": "10", "max_overflow": "20"},
        "keystone_authtoken": _authtoken(),
        "oslo_concurrency": {"lock_path": str(layout.run / "lock" / name)},
        "oslo_messaging_notifications": {"driver": "noop"},
    }


def _merge(*parts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for part in parts:
        for section, options in part.items():
            merged.setdefault(section, {}).update(options)
    return merged


def keystone(layout: Layout) -> dict[str, dict[str, str]]:
    keys = layout.run / "keystone"
    return {
        "DEFAULT": {"debug": "False"},
        "database": {"connection": layout.db("keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": str(keys / "fernet-keys")},
        "fernet_receipts": {"key_repository": str(keys / "fernet-keys")},
        "credential": {"key_repository": str(keys / "credential-keys")},
        # bcrypt's cheapest cost: the tests authenticate a lot, nothing here is a real secret.
        "identity": {"password_hash_rounds": "4"},
    }


def glance(layout: Layout) -> dict[str, dict[str, str]]:
    data = layout.run / "glance"
    return _merge(
        _common(layout, "glance"),
        {
            "DEFAULT": {"enabled_backends": "file:file", "workers": "1"},
            "glance_store": {"default_backend": "file"},
            "file": {"filesystem_store_datadir": f"{data}/images/"},
            "os_glance_staging_store": {"filesystem_store_datadir": f"{data}/staging/"},
            "os_glance_tasks_store": {"filesystem_store_datadir": f"{data}/tasks/"},
            "paste_deploy": {
                "flavor": "keystone",
                "config_file": layout.venv_etc("glance", "glance-api-paste.ini"),
            },
        },
    )


def placement(layout: Layout) -> dict[str, dict[str, str]]:
    return {
        "DEFAULT": {"debug": "False"},
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": layout.db("placement")},
        "keystone_authtoken": _authtoken(),
    }


def nova(layout: Layout) -> dict[str, dict[str, str]]:
    return _merge(
        _common(layout, "nova"),
        {
            "DEFAULT": {
                "host": CONTROLLER_HOST,
                "my_ip": "127.0.0.1",
                "state_path": str(layout.run / "nova"),
                "compute_driver": "fake.FakeDriver",
                # The fake driver plugs no VIF, so Neutron never says a port is up.
                "vif_plugging_is_fatal": "False",
                "vif_plugging_timeout": "0",
                "enabled_apis": "osapi_compute",
                "osapi_compute_workers": "1",
                "instance_name_template": "instance-%08x",
                "allow_resize_to_same_host": "True",
            },
            "wsgi": {"api_paste_config": layout.venv_etc("nova", "api-paste.ini")},
            "api_database": {"connection": layout.db("nova_api")},
            "placement": _auth(),
            "neutron": _auth(),
            "cinder": {**_auth(), "os_region_name": REGION},
            "service_user": {**_auth(), "send_service_user_token": "True"},
            "conductor": {"workers": "1"},
            # New fake hosts are found without a manual discover_hosts.
            "scheduler": {"workers": "1", "discover_hosts_in_cells_interval": "5"},
            "quota": {
                "instances": "-1",
                "cores": "-1",
                "ram": "-1",
                "server_groups": "-1",
                "server_group_members": "-1",
                "key_pairs": "-1",
            },
        },
    )


def nova_compute(layout: Layout, index: int) -> dict[str, dict[str, str]]:
    """What differs per fake compute host (read after nova.conf)."""
    state = layout.run / "nova" / layout.compute_host(index)
    return {
        "DEFAULT": {
            # Must equal the OVN chassis' hostname: Neutron binds a port only to a live chassis.
            "host": layout.compute_host(index),
            "state_path": str(state),
            "instances_path": str(state / "instances"),
        }
    }


def neutron(layout: Layout) -> dict[str, dict[str, str]]:
    return _merge(
        _common(layout, "neutron"),
        {
            "DEFAULT": {
                "host": CONTROLLER_HOST,
                "core_plugin": "ml2",
                "service_plugins": "ovn-router",
                "auth_strategy": "keystone",
                "api_paste_config": layout.venv_etc("neutron", "api-paste.ini"),
                "state_path": str(layout.run / "neutron"),
                "allow_overlapping_ips": "True",
                "dhcp_agent_notification": "False",
                "notify_nova_on_port_status_changes": "True",
                "notify_nova_on_port_data_changes": "True",
                "api_workers": "1",
                "rpc_workers": "0",
                "rpc_state_report_workers": "0",
            },
            "nova": _auth(),
            "quotas": {
                f"quota_{item}": "-1"
                for item in (
                    "network",
                    "subnet",
                    "port",
                    "router",
                    "floatingip",
                    "security_group",
                    "security_group_rule",
                )
            },
        },
    )


def ml2(layout: Layout) -> dict[str, dict[str, str]]:
    return {
        "ml2": {
            "type_drivers": "flat,geneve",
            "tenant_network_types": "geneve",
            "mechanism_drivers": "ovn",
            "extension_drivers": "port_security",
            "overlay_ip_version": "4",
        },
        "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": "38"},
        # The external network `public` is flat on a physical network of the same name.
        "ml2_type_flat": {"flat_networks": "public"},
        "securitygroup": {"enable_security_group": "True"},
        "ovn": {
            "ovn_nb_connection": f"tcp:127.0.0.1:{PORTS['ovn-nb']}",
            "ovn_sb_connection": f"tcp:127.0.0.1:{PORTS['ovn-sb']}",
            "ovn_l3_scheduler": "leastloaded",
            "ovn_metadata_enabled": "False",
            "enable_distributed_floating_ip": "False",
        },
    }


def octavia(layout: Layout) -> dict[str, dict[str, str]]:
    certs = layout.run / "octavia" / "certs"
    return _merge(
        _common(layout, "octavia"),
        {
            # Not the noop_driver provider: its objects never leave PENDING_CREATE.
            "api_settings": {
                "auth_strategy": "keystone",
                "enabled_provider_drivers": "amphora:The Octavia amphora driver (noop amphorae here).",
                "default_provider_driver": "amphora",
            },
            "service_auth": _auth(),
            "controller_worker": {
                "amphora_driver": "amphora_noop_driver",
                "compute_driver": "compute_noop_driver",
                # noop, but the VIP is a real Neutron port (clients read its security groups).
                "network_driver": "osk8s_vip_network_driver",
                "volume_driver": "volume_noop_driver",
                "image_driver": "image_noop_driver",
                "loadbalancer_topology": "SINGLE",
                "amp_image_tag": "amphora",
                "amp_flavor_id": "osk8s-amphora",
                "amp_boot_network_list": "00000000-0000-0000-0000-000000000001",
                "workers": "1",
                "client_ca": str(certs / "ca.pem"),
            },
            # A throwaway CA on disk: the amphora flows sign a server certificate per amphora.
            "certificates": {
                "cert_generator": "local_cert_generator",
                "cert_manager": "local_cert_manager",
                "ca_certificate": str(certs / "ca.pem"),
                "ca_private_key": str(certs / "ca.key"),
                "ca_private_key_passphrase": "osk8s-octavia-ca",
                "server_certs_key_passphrase": "osk8s-octavia-server-keys-32char",
                "storage_path": str(layout.run / "octavia" / "cert-store"),
            },
            "haproxy_amphora": {
                "client_cert": str(certs / "client.pem"),
                "server_ca": str(certs / "ca.pem"),
                "base_path": str(layout.run / "octavia" / "amphora"),
                "base_cert_dir": str(layout.run / "octavia" / "amphora-certs"),
            },
            "oslo_messaging": {"topic": "octavia_prov"},
            "task_flow": {"jobboard_enabled": "False"},
            "health_manager": {"heartbeat_key": "osk8s-insecure"},
        },
    )


def cinder(layout: Layout) -> dict[str, dict[str, str]]:
    return _merge(
        _common(layout, "cinder"),
        {
            "DEFAULT": {
                "host": CONTROLLER_HOST,
                "my_ip": "127.0.0.1",
                "auth_strategy": "keystone",
                "api_paste_config": layout.venv_etc("cinder", "api-paste.ini"),
                "state_path": str(layout.run / "cinder"),
                "image_conversion_dir": str(layout.run / "cinder" / "conversion"),
                "enabled_backends": "fake",
                "glance_api_servers": url("glance"),
                "osapi_volume_workers": "1",
                "quota_volumes": "-1",
                "quota_gigabytes": "-1",
                "quota_snapshots": "-1",
                "quota_backups": "-1",
            },
            "fake": {
                "volume_backend_name": "fake",
                "volume_driver": "osk8s_cinder.FakeVolumeDriver",
            },
            "nova": _auth(),
            "service_user": {**_auth(), "send_service_user_token": "True"},
            "coordination": {"backend_url": f"file://{layout.run / 'cinder' / 'coordination'}"},
        },
    )


def files(layout: Layout) -> dict[Path, dict[str, dict[str, str]]]:
    etc = layout.etc
    out = {
        etc / "keystone" / "keystone.conf": keystone(layout),
        etc / "glance" / "glance-api.conf": glance(layout),
        etc / "placement" / "placement.conf": placement(layout),
        etc / "nova" / "nova.conf": nova(layout),
        etc / "neutron" / "neutron.conf": neutron(layout),
        etc / "neutron" / "ml2_conf.ini": ml2(layout),
        etc / "octavia" / "octavia.conf": octavia(layout),
        etc / "cinder" / "cinder.conf": cinder(layout),
    }
    for index in range(1, layout.computes + 1):
        out[etc / "nova" / f"compute-{index}.conf"] = nova_compute(layout, index)
    return out


def write(layout: Layout) -> None:
    for path, sections in files(layout).items():
        parser = configparser.RawConfigParser()
        parser.optionxform = str  # option names are case-sensitive in oslo.config
        for section, options in sections.items():
            if section != "DEFAULT":
                parser.add_section(section)
            for key, value in options.items():
                parser.set(section, key, value)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            parser.write(handle)
    # Nova's WSGI app loads its paste pipeline from the first file of its config directory.
    paste = Path(layout.venv_etc("nova", "api-paste.ini")).read_text()
    (layout.etc / "nova" / "api-paste.ini").write_text(paste)
