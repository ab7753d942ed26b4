"""ClusterAddons: what makes the cluster an OpenStack cluster from the inside: the cloud
controller manager (node metadata, LoadBalancer Services through Octavia), the Cinder CSI
driver with its StorageClass, metrics-server, and NetworkPolicy enforced by Calico next to
flannel (with pods kept off the metadata service). Applied through a Kubernetes provider
built from the cluster's own kubeconfig, after the last master's upgrade step: at bring-up
that step has nothing to do, and on a version bump the control plane is at the new version
before any add-on image follows it (Kubernetes' version-skew policy: no component newer than
the API server it talks to); workers upgrade after the add-ons rolled out."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from addons import addon_objects, cloud_conf, cloud_conf_secret, images, needs_cloud_conf
from addons.manifests import object_key
from addons.resources import create, pod_images
from components import roles
from components.commands import run_step
from components.credentials import CloudCredential, application_credential
from components.network import PrivateNetwork
from components.roles import command_name


# Octavia deletes a load balancer in a minute or two, Cinder a volume in seconds; many of
# them queue up behind each other.
CLEANUP_TIMEOUT = 600


@dataclass(frozen=True)
class AddonArgs:
    """The add-ons as Cluster translated the settings."""

    cluster: str
    # The Kubernetes provider's identity of the cluster: the same for as long as the cluster
    # lives, whatever the stack is called.
    cluster_identifier: str
    kubernetes_version: str
    image_repository: str | None
    features: dict[str, bool]
    storage_class: dict
    lb_enabled: bool
    lb_provider: str | None
    # The credential the cloud controller and the CSI driver use: None, one is made here.
    given_credential: CloudCredential | None


class ClusterAddons(pulumi.ComponentResource):
    """Typed Kubernetes resources, one per object, so each shows in preview and plan.

    `rolled_out`: the objects whose pods run an image pinned per Kubernetes minor (the
    DaemonSets and Deployments): what worker upgrades wait for."""

    rolled_out: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        args: AddonArgs,
        *,
        kubeconfig: pulumi.Output[str],
        network: PrivateNetwork,
        control_plane_upgraded: pulumi.Resource,
        first_master: remote.ConnectionArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("openstack-k8s:index:ClusterAddons", name, None, opts)
        features = args.features
        provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=kubeconfig,
            # Without it, any change of the kubeconfig (a renewed certificate, a new endpoint
            # address, one still unknown in a preview) replaces the provider and with it every
            # object it made, and creating them again fails with AlreadyExists. A changed
            # identifier does the same: it is made of what a `pulumi stack rename` keeps.
            cluster_identifier=args.cluster_identifier,
            opts=pulumi.ResourceOptions(parent=self),
        )
        objects = addon_objects(
            kubernetes_version=args.kubernetes_version,
            image_repository=args.image_repository,
            storage_class=args.storage_class,
            features=features,
            cluster_name=args.cluster,
        )
        if needs_cloud_conf(features):
            objects.append(cloud_conf_secret(self._cloud_conf(name, args, network)))
        # Every object, not only those with pinned images: nothing is applied through the
        # API while kubeadm restarts the API servers one after another. The last master's
        # upgrade comes after kubeadm init and after every control-plane join.
        created = create(
            objects,
            prefix=name,
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[control_plane_upgraded]
            ),
        )
        pinned = set(images(args.kubernetes_version, args.image_repository).values())
        self.rolled_out = [created[object_key(o)] for o in objects if pod_images(o) & pinned]
        if features["cloud_controller"] or features["cinder_csi"]:
            self._cleanup(name, first_master, list(created.values()))
        self.register_outputs({})

    def _cleanup(
        self, name: str, first_master: remote.ConnectionArgs, objects: list[pulumi.Resource]
    ) -> None:
        """`<addons>-cloud-cleanup`: depends on every add-on object, so it is deleted (and
        runs) before any of them: the cloud controller and the CSI driver must still be there
        to delete their load balancers and volumes, or Neutron refuses to delete the subnet.
        Calico's objects too: without its DaemonSet and the CNI plugin's RBAC, a CSI
        controller pod restarted during the cleanup could not get its network."""
        run_step(
            roles.CLOUD_CLEANUP,
            command_name(name, roles.Role.CLOUD_CLEANUP),
            connection=first_master,
            env={"CLEANUP_TIMEOUT": str(CLEANUP_TIMEOUT)},
            timeout=CLEANUP_TIMEOUT,
            parent=self,
            after=objects,
        )

    def _cloud_conf(
        self, name: str, args: AddonArgs, network: PrivateNetwork
    ) -> pulumi.Output[str]:
        """cloud.conf from an application credential, and ids from the program's own network."""
        credential = args.given_credential or application_credential(
            f"{name}-openstack",
            parent=self,
            description=f"openstack-k8s {args.cluster}: cloud controller manager and Cinder CSI",
        )
        conf = pulumi.Output.all(
            credential.id,
            credential.secret,
            credential.auth_url,
            credential.region,
            network.subnet_id,
            network.external_network_id,
        ).apply(
            lambda v: cloud_conf(
                auth={
                    "auth_url": v[2],
                    "application_credential_id": v[0],
                    "application_credential_secret": v[1],
                },
                region=v[3] or None,
                subnet_id=v[4],
                floating_network_id=v[5],
                lb_enabled=args.lb_enabled,
                lb_provider=args.lb_provider,
            )
        )
        return pulumi.Output.secret(conf)
