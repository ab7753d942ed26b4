"""ControlPlane: the masters, the one API endpoint in front of them, kubeadm init on the
first, control-plane joins on the rest (one after another), and the admin kubeconfig."""
from __future__ import annotations

import dataclasses

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random

from cloud_init import kubeadm
from cloud_init.ha import Master, ha_cloud_config
from cloud_init.kubeconfig import ca_cert_hash
from components.backup import etcd_backup
from components.commands import Access, node_command, ready_gate
from cloud_init.userdata import tar_b64
from components.kube_node import (
    KUBEADM_INIT_CONFIG, KUBEADM_INIT_FILE, FlannelClient, JoinTarget, join_node, kube_user_data, upgrade_credential,
    upgrade_master,
)
from components.machine import NodeImage, anti_affinity_group, machine_instance, machine_port, port_address
from components.network import API_PORT, VIP_PORT, PrivateNetwork, endpoint_kind, endpoint_port
from components.pki import KubernetesPki
from settings import Settings

MASTER_TAINTS = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
# keepalived's virtual router id: one per cluster network, any fixed value will do.
VRRP_ROUTER_ID = 51
# The Octavia provider behind `endpoint: octavia`.
OCTAVIA_PROVIDER = "amphora"


def api_listener_cidrs(settings: Settings) -> list[str]:
    """Who may open a connection to the API load balancer: never the whole world by default."""
    cidrs = [str(settings.network.cidr), *map(str, settings.api_allowed_cidrs)]
    return list(dict.fromkeys(cidrs))


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
        child = pulumi.ResourceOptions(parent=self)
        kind = endpoint_kind(settings)
        names = [f"{name}-{i}" for i in range(settings.masters.count)]

        # The endpoint's own address comes first: every master's port must allow it.
        lb = vip_port = None
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
            vip = port_address(vip_port)
            # VRRP's PASS authentication is a plain-text word on the wire (only masters may
            # speak VRRP at all, by security group); it still should not be guessable.
            vrrp_password = random.RandomPassword(
                f"{name}-vrrp-password", length=8, special=False, opts=child
            ).result
        elif kind == "octavia":
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
            vip = lb.vip_address

        ports = [
            machine_port(
                n, network=network, role="master", parent=self,
                allowed_addresses=[vip] if kind == "vip" else (),
            )
            for n in names
        ]
        addresses = [port_address(p) for p in ports]
        self.master_addresses = pulumi.Output.all(*addresses)
        self.endpoint_address = addresses[0] if kind == "master" else vip
        # The port the endpoint's address lives on: where the floating IP goes.
        fip_port = vip_port.id if vip_port else lb.vip_port_id if lb else ports[0].id

        public = self.endpoint_address
        if settings.control_plane.floating_ip:
            fip = openstack.networking.FloatingIp(
                f"{name}-fip", pool=settings.external_network, description=f"{settings.name} API", opts=child
            )
            openstack.networking.FloatingIpAssociate(
                f"{name}-fip-association",
                floating_ip=fip.address,
                port_id=fip_port,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[network.router_interface]),
            )
            public = fip.address
        self.public_address = pulumi.Output.from_input(settings.control_plane.dns_name) if settings.control_plane.dns_name else public

        endpoint_ready: list[pulumi.Resource] = []
        if lb is not None:
            endpoint_ready = self._octavia(name, settings, lb, network, addresses)

        sans = pulumi.Output.all(self.endpoint_address, public, *addresses).apply(
            lambda a: sorted(set(a) | ({settings.control_plane.dns_name} if settings.control_plane.dns_name else set()))
        )
        api_port = endpoint_port(settings)
        endpoint = self.endpoint_address.apply(lambda a: f"{a}:{api_port}")
        masters = pulumi.Output.all(*addresses).apply(lambda a: [Master(name=n, address=x) for n, x in zip(names, a)])
        # Always made, even for one master: adding a scheduler hint later would replace the VM.
        group = anti_affinity_group(name, self)

        previous = None
        init = None
        for i, (node, port, address) in enumerate(zip(names, ports, addresses)):
            files = list(pki.files())
            if i == 0:
                files.append((KUBEADM_INIT_FILE, pulumi.Output.all(address=address, endpoint=endpoint, sans=sans).apply(
                    lambda v, node=node: kubeadm.init_config(
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
                    )
                )))
            extra = []
            if kind == "vip":
                extra.append(pulumi.Output.all(masters=masters, vip=vip, password=vrrp_password).apply(
                    lambda v, i=i: ha_cloud_config(
                        me=v["masters"][i], masters=v["masters"], vip=v["vip"], port=VIP_PORT, backend_port=API_PORT,
                        interface_cidr=str(settings.network.cidr), router_id=VRRP_ROUTER_ID,
                        auth_pass=v["password"],
                    )
                ))
            user_data = kube_user_data(
                settings, role="master", node=node, flannel=flannel, ssh_keys=ssh_keys,
                extra=pulumi.Output.all(*extra),
            )
            instance = machine_instance(
                node, cluster=settings.name, role="master", flavor=settings.masters.flavor,
                volume_size=settings.masters.volume_size, image=image, port=port,
                user_data=user_data, network=network, parent=self, server_group=group,
            )
            connection = access.to_node(address)
            ready = ready_gate(node, access=access, address=address, instance=instance,
                               timeout=settings.timeouts.ready, parent=self)
            etcd_backup(settings, node=node, role="master", connection=connection, after=ready, instance=instance,
                        parent=self, openstack_rc=backup_rc)
            # The PKI travels with a command, not in user-data (readable from the metadata service).
            kubeadm_files = node_command(
                f"{node}-kubeadm-files", connection=connection, script_name="master-kubeadm-files.sh",
                env={"KUBEADM_FILES_TAR_B64": pulumi.Output.secret(
                    pulumi.Output.all(*[c for _, c in files]).apply(
                        lambda contents, paths=[p for p, _ in files]: tar_b64(zip(paths, contents))))},
                # Only the VM, not its bootstrap: the files go in while cloud-init still runs,
                # off the path to kubeadm init. The bound covers the VM's boot.
                timeout=settings.timeouts.ready, parent=self, depends_on=[instance], instance=instance,
            )
            if i == 0:
                init = node_command(
                    f"{node}-init", connection=connection, script_name="master-init.sh",
                    # The CA is ours (installed by kubeadm-files): a retry's `kubeadm reset` must
                    # not throw it away.
                    env={"KUBEADM_INIT_CONFIG": KUBEADM_INIT_CONFIG, "INIT_TIMEOUT": str(settings.timeouts.init),
                         "PRESERVE_PKI": "true"},
                    timeout=settings.timeouts.init, parent=self,
                    depends_on=[ready, kubeadm_files, *discovery_ready, *endpoint_ready],
                )
                self.join_target = JoinTarget(
                    endpoint=endpoint,
                    ca_cert_hash=pki.ca.public_key.apply(ca_cert_hash),
                    first_master=connection,
                    initialized=init,
                )
                previous = init
                upgraded = upgrade_master(settings, node=node, first=True, connection=connection,
                                          parent=self, after=[init])
            else:
                # stacked etcd grows one member at a time: concurrent member adds race.
                previous = join_node(
                    settings, node=node, address=address, connection=connection, target=self.join_target,
                    ready=ready, parent=self, control_plane=True, labels={}, taints=MASTER_TAINTS,
                    instance=instance, after=[previous, kubeadm_files],
                )
                # Masters upgrade one after another, after the first has upgraded the cluster.
                upgraded = upgrade_master(settings, node=node, first=False, connection=connection,
                                          parent=self, after=[upgraded, previous])
        # Made as soon as the API answers (off the path to a ready cluster); workers still
        # upgrade only after the last master, which they wait for themselves.
        credential = upgrade_credential(settings, connection=self.join_target.first_master, node=names[0],
                                        parent=self, after=[init])
        self.join_target = dataclasses.replace(
            self.join_target, upgrade_credential=credential, control_plane_upgraded=upgraded)
        self.initialized = init
        self.register_outputs({
            "endpoint": self.endpoint_address,
            "publicEndpoint": self.public_address,
            "masterAddresses": self.master_addresses,
        })

    def _octavia(self, name, settings, lb, network, addresses) -> list[pulumi.Resource]:
        """TCP listener on the API port, an HTTPS /readyz monitor, one member per master."""
        child = pulumi.ResourceOptions(parent=self)
        listener = openstack.loadbalancer.Listener(
            f"{name}-lb-listener", loadbalancer_id=lb.id, protocol="TCP", protocol_port=API_PORT,
            # The amphora forwards from its own address, so the masters' security group
            # cannot tell clients apart: the listener admits only the cluster's network
            # (nodes reach the API through it) and apiAllowedCidrs.
            allowed_cidrs=api_listener_cidrs(settings),
            # kubectl exec/logs streams live long: keep idle connections open.
            timeout_client_data=3_600_000, timeout_member_data=3_600_000, opts=child,
        )
        pool = openstack.loadbalancer.Pool(
            f"{name}-lb-pool", listener_id=listener.id, protocol="TCP", lb_method="ROUND_ROBIN", opts=child
        )
        monitor = openstack.loadbalancer.Monitor(
            f"{name}-lb-monitor", pool_id=pool.id, type="HTTPS", url_path="/readyz", expected_codes="200",
            http_method="GET", delay=10, timeout=5, max_retries=3, max_retries_down=3, opts=child,
        )
        members = [
            openstack.loadbalancer.Member(
                f"{name}-{i}-lb-member", pool_id=pool.id, address=address, protocol_port=API_PORT,
                subnet_id=network.subnet_id, opts=child,
            )
            for i, address in enumerate(addresses)
        ]
        return [listener, monitor, *members]
