"""Octavia's noop network driver, except that a load balancer's VIP is a real Neutron port.

With `network_noop_driver` the VIP port Octavia reports does not exist in Neutron, and the
Pulumi/Terraform provider reads the VIP port's security groups after a create (404). The real
`allowed_address_pairs_driver` cannot run with noop compute (it plugs ports into the amphora's
Nova server). So the VIP port is created and deleted in Neutron, in the load balancer's
project, on the VIP subnet (with the VIP address if one was asked for); amphorae stay noop.

Registered for stevedore by the dist-info next to this file (this directory is on the
services' PYTHONPATH): network_driver = osk8s_vip_network_driver.
"""

from octavia.common import clients
from octavia.network.drivers.noop_driver.driver import NoopNetworkDriver


class NeutronVipNetworkDriver(NoopNetworkDriver):
    def allocate_vip(self, loadbalancer):
        vip = loadbalancer.vip
        if not vip.port_id:
            neutron = clients.NeutronAuth.get_neutron_client().network
            fixed_ip = {"subnet_id": vip.subnet_id}
            if vip.ip_address:
                fixed_ip["ip_address"] = vip.ip_address
            subnet = neutron.get_subnet(vip.subnet_id)
            port = neutron.create_port(
                name=f"octavia-lb-{loadbalancer.id}",
                network_id=subnet.network_id,
                fixed_ips=[fixed_ip],
                project_id=loadbalancer.project_id,
                device_owner="Octavia",
                device_id=f"lb-{loadbalancer.id}",
            )
            vip.port_id = port.id
            vip.network_id = port.network_id
            vip.ip_address = port.fixed_ips[0]["ip_address"]
        return super().allocate_vip(loadbalancer)

    def deallocate_vip(self, vip):
        if vip.port_id:
            neutron = clients.NeutronAuth.get_neutron_client().network
            port = neutron.find_port(vip.port_id, ignore_missing=True)
            if port is not None and port.name.startswith("octavia-lb-"):
                neutron.delete_port(port.id)
        super().deallocate_vip(vip)
