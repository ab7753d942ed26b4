"""openstack-k8s: a Kubernetes cluster on OpenStack, one per stack.

Config is read and validated once (settings.py); a bad value stops here, before any
resource is registered, with one line naming the key.
"""

import pulumi

import settings as config
from components.cluster import Cluster

try:
    settings = config.from_pulumi()
except config.ConfigError as e:
    # RunError: the CLI shows the one line, not a traceback.
    raise pulumi.RunError(str(e)) from None

cluster = Cluster(settings.name, settings)

pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("apiEndpoint", cluster.api_endpoint)
pulumi.export("discoveryAddress", cluster.discovery_address)
pulumi.export("masterAddresses", cluster.master_addresses)
pulumi.export("workerAddresses", cluster.worker_addresses)
pulumi.export("sshConfig", cluster.ssh_config)
