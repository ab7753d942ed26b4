"""In-cluster add-ons: OpenStack cloud controller manager, Cinder CSI, metrics-server.

Rendering only (data, no Pulumi resources) lives in versions, cloud_conf, manifests and
gateway; resources turns the rendered objects into pulumi_kubernetes resources.
"""

from addons.cloud_conf import cloud_conf, read_cloud_conf
from addons.gateway import gateway_labels_taints, gateway_pod_scheduling
from addons.manifests import addon_objects, cloud_conf_secret, needs_cloud_conf
from addons.versions import SUPPORTED_MINORS, image_list, images, tags_for

__all__ = [
    "SUPPORTED_MINORS",
    "addon_objects",
    "cloud_conf",
    "cloud_conf_secret",
    "gateway_labels_taints",
    "gateway_pod_scheduling",
    "image_list",
    "images",
    "needs_cloud_conf",
    "read_cloud_conf",
    "tags_for",
]
