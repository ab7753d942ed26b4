"""openstack-k8s: a Kubernetes cluster on OpenStack, one per stack.

Config is read and validated once (settings.py); a bad value stops here, before any
resource is registered, with one line naming the key.
"""

import pulumi

import python_version

if python_version.problem():
    # Before the imports an older Python cannot run; RunError: one line, not a traceback.
    raise pulumi.RunError(python_version.problem())

import settings as config  # noqa: E402
from components.cluster import Cluster, check_existing_subnet  # noqa: E402

try:
    settings = config.from_pulumi()
    # What only the cloud knows (an existing subnet's range) is read and checked here too,
    # before the first resource.
    check_existing_subnet(settings)
except config.ConfigError as e:
    # RunError: the CLI shows the one line, not a traceback. The ConfigError stays its
    # cause for tools/plan, which exits 2 on it as on any other.
    raise pulumi.RunError(str(e)) from e

cluster = Cluster(settings.name, settings)

pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("apiEndpoint", cluster.api_endpoint)
pulumi.export("discoveryAddress", cluster.discovery_address)
pulumi.export("masterAddresses", cluster.master_addresses)
pulumi.export("workerAddresses", cluster.worker_addresses)
pulumi.export("sshConfig", cluster.ssh_config)
