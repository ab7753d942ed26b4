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
from octavia.db import api as db_apis
from octavia.db import repositories
from octavia.network import data_models as network_models
from octavia.network.drivers.neutron import utils as neutron_utils
from octavia.network.drivers.noop_driver.driver import NoopNetworkDriver

AMPHORAE = repositories.AmphoraRepository()


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

    # Octavia's flows compare network ids from three sources: the VIP (a real Neutron port, so a
    # real network id), the members' subnets (get_subnet) and the amphora's NICs
    # (get_plugged_networks). The noop answers invent a network per subnet and keep the NICs in
    # a side sqlite file that never sees this amphora, so CalculateDelta wanted to plug the VIP's
    # real network with no vnic type recorded for it: KeyError on the last member's delete. So
    # every lookup of a Neutron object answers from Neutron, and an amphora's NIC is its VIP.

    def _neutron_model(self, kind, resource_id, noop_answer):
        neutron = clients.NeutronAuth.get_neutron_client().network
        found = getattr(neutron, f"find_{kind}")(resource_id, ignore_missing=True)
        if found is None:
            # Octavia's own noop objects (an amphora's VRRP port) exist nowhere else.
            return noop_answer(resource_id)
        return getattr(neutron_utils, f"convert_{kind}_to_model")(found)

    def get_network(self, network_id, context=None):
        return self._neutron_model("network", network_id, super().get_network)

    def get_subnet(self, subnet_id, context=None):
        return self._neutron_model("subnet", subnet_id, super().get_subnet)

    def get_port(self, port_id, context=None):
        return self._neutron_model("port", port_id, super().get_port)

    def get_plugged_networks(self, compute_id):
        session = db_apis.get_session()
        with session.begin():
            amphora = AMPHORAE.get(session, compute_id=compute_id)
            vip = amphora.load_balancer.vip if amphora and amphora.load_balancer else None
            if vip is None or not vip.network_id:
                return []
            return [
                network_models.Interface(
                    compute_id=compute_id,
                    network_id=vip.network_id,
                    port_id=vip.port_id,
                    fixed_ips=[
                        network_models.FixedIP(subnet_id=vip.subnet_id, ip_address=vip.ip_address)
                    ],
                    vnic_type="normal",
                )
            ]
