"""Gateway pools: worker pools whose nodes carry floating IPs and serve ingress traffic.

A worker pool with `gateway: true` (and usually `floatingIp: true`) gets a label and a taint:
the taint keeps ordinary workloads off the nodes that face the internet, the label lets an
ingress controller (or any edge proxy) select them and tolerate the taint.

Why not `node-role.kubernetes.io/gateway`: the NodeRestriction admission plugin forbids a
kubelet to set labels under kubernetes.io / k8s.io (and their subdomains) on its own Node,
and kubeadm joins pass labels through the kubelet (`--node-labels`). `openstack-k8s.io/` is
not a subdomain of k8s.io, so the kubelet may set it at registration, before any pod
lands, with no controller to race against.
"""

GATEWAY_KEY = "openstack-k8s.io/gateway"


def gateway_labels_taints() -> tuple[dict, list]:
    """(labels, taints) for a gateway pool's nodes, in kubeadm JoinConfiguration shape.

    labels: {key: value} for the kubelet's node labels; taints: the list for
    nodeRegistration.taints.
    """
    labels = {GATEWAY_KEY: "true"}
    taints = [{"key": GATEWAY_KEY, "value": "true", "effect": "NoSchedule"}]
    return labels, taints


def gateway_pod_scheduling() -> dict:
    """Pod spec fragment that puts a workload (an ingress controller) on gateway nodes."""
    labels, taints = gateway_labels_taints()
    return {
        "nodeSelector": dict(labels),
        "tolerations": [
            {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
            for t in taints
        ],
    }
