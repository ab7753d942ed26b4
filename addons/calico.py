"""Calico in policy-only mode next to flannel ("canal"): Kubernetes NetworkPolicy enforced by
felix on every node, and workload pods kept off the OpenStack metadata service.

Rendering only (data, like addons.manifests). flannel keeps doing what it does: flanneld on
each node (etcd backend on the discovery node) leases the node's /24 and carries pod traffic
over VXLAN. Calico adds no networking (CALICO_NETWORKING_BACKEND=none, no IP pools, no BGP,
no IPIP): it only

- runs felix in the calico-node DaemonSet, which programs iptables for every pod's cali*
  interface from NetworkPolicies (and Calico's own policies), reading the Kubernetes API
  (DATASTORE_TYPE=kubernetes: Calico's objects are CRDs, no etcd of its own);
- installs, from its install-cni init container, the CNI plugins and a conflist that sorts
  before the node's own 10-flannel.conflist (containerd uses the first file): the flannel CNI
  plugin, which reads /run/flannel/subnet.env (so addresses stay flannel's lease, allocated
  by host-local), delegating to the calico plugin, which makes the pod's cali* veth and
  records it as a workload endpoint for felix; then portmap for hostPorts. This is the shape
  of Calico's canal-etcd manifest, with the kubernetes datastore.

The calico/cni image ships the flannel CNI plugin (built from projectcalico/flannel-cni-plugin,
cni-plugin/Makefile) next to calico, calico-ipam and the standard host-local, loopback,
portmap and tuning. Nodes do not install the flannel plugin themselves (cloud_init/versions.py:
no published digest), so install-cni brings it; the standard plugins are skipped
(SKIP_CNI_BINARIES) so that the node keeps the distribution's, which its bridge conflist uses.

Objects mirror Calico's manifests/canal.yaml at the pinned release (addons.versions),
reduced to felix: no flannel container (flanneld runs on the host), no calico-kube-controllers
(with the kubernetes datastore Calico's nodes and endpoints are Kubernetes Nodes and Pods;
there are no Calico IPAM blocks to collect), no BPF bootstrap (iptables data plane).
"""

from __future__ import annotations

import copy
import json

from addons import manifests as _m

FEATURE = "network_policy"
CALICO_GROUP = "crd.projectcalico.org"
CALICO_API = f"{CALICO_GROUP}/v1"

# containerd's CRI plugin loads the first conflist of /etc/cni/net.d in lexical order; the
# node writes 10-flannel.conflist (cloud_init.node.CNI_CONFLIST).
CNI_CONF_NAME = "05-canal.conflist"
# The node's bridge conflist is named cbr0 too: host-local keeps its allocations per network
# name (/var/lib/cni/networks/cbr0), so pods started on the bridge before Calico came and
# pods started through Calico never get the same address from the node's /24.
CNI_NETWORK_NAME = "cbr0"
# What install-cni leaves in /etc/cni/net.d besides the conflist: the CNI plugin's kubeconfig.
CNI_KUBECONFIG = "calico-kubeconfig"
# The node files Calico's DaemonSet writes and nothing removes: node-network-policy.sh removes
# them when network policy is turned off.
CNI_FILES = (CNI_CONF_NAME, CNI_KUBECONFIG)
CNI_SERVICE_ACCOUNT = "calico-cni-plugin"
NODE_SERVICE_ACCOUNT = "calico-node"
FLANNEL_SUBNET_ENV = "/run/flannel/subnet.env"
# The node's own plugins (distribution packages, linked by node-install-flannel.sh), left alone.
NODE_CNI_PLUGINS = ("host-local", "loopback", "portmap", "tuning")

METADATA_CIDR = "169.254.169.254/32"
# Calico applies tiers by ascending order: kube-admin (adminnetworkpolicy before v3.32, the
# cluster admins' AdminNetworkPolicies) at 1,000, then ours, then default at 1,000,000 (users'
# NetworkPolicies and Calico NetworkPolicies without a tier). An admin tier can still grant a
# workload the metadata service; a user's NetworkPolicy cannot.
TIER = "openstack-k8s"
TIER_ORDER = 100_000
# Calico v3.31 (the CRD backend) takes a policy's tier from its name's prefix and refuses a
# tiered name without it; v3.32 reads spec.tier and accepts the prefixed name as a plain name.
METADATA_POLICY = f"{TIER}.metadata-service"
# Pods of ours that read the metadata service from the pod network, by namespace and labels.
# Host-network pods (the cloud controller manager, the Cinder CSI node plugin) have no
# workload endpoint, so no policy applies to them. The Cinder CSI controller reads
# [Metadata] search-order = configDrive,metadataService of cloud.conf.
METADATA_EXEMPT = ((_m.NAMESPACE, {"app": "csi-cinder-controllerplugin"}),)

# Calico's CRDs in crd.projectcalico.org that calico-node reads or writes (the resources of
# canal.yaml's calico-node ClusterRole): plural, kind, scope. Calico's IPAM-only kinds
# (ipamconfigs, ipamhandles) and kube-controllers' configuration are left out: nothing here
# runs calico-ipam or kube-controllers.
CRDS = (
    ("bgpconfigurations", "BGPConfiguration", "Cluster"),
    ("bgpfilters", "BGPFilter", "Cluster"),
    ("bgppeers", "BGPPeer", "Cluster"),
    ("blockaffinities", "BlockAffinity", "Cluster"),
    ("caliconodestatuses", "CalicoNodeStatus", "Cluster"),
    ("clusterinformations", "ClusterInformation", "Cluster"),
    ("felixconfigurations", "FelixConfiguration", "Cluster"),
    ("globalnetworkpolicies", "GlobalNetworkPolicy", "Cluster"),
    ("globalnetworksets", "GlobalNetworkSet", "Cluster"),
    ("hostendpoints", "HostEndpoint", "Cluster"),
    ("ipamblocks", "IPAMBlock", "Cluster"),
    ("ippools", "IPPool", "Cluster"),
    ("ipreservations", "IPReservation", "Cluster"),
    ("networkpolicies", "NetworkPolicy", "Namespaced"),
    ("networksets", "NetworkSet", "Namespaced"),
    ("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy", "Cluster"),
    ("stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy", "Namespaced"),
    ("stagednetworkpolicies", "StagedNetworkPolicy", "Namespaced"),
    ("tiers", "Tier", "Cluster"),
)

# What felix watches besides Calico's own kinds differs by release. A missing API (no such
# CRD installed) is fine: felix's syncer treats NotFound as "in sync, retry later". A
# Forbidden is not: felix would never be in sync, never ready. So each release's kinds are
# granted list/watch, whether or not their CRDs exist in the cluster.
_RELEASE_WATCHES = {
    "v3.31": [
        (["policy.networking.k8s.io"], ["adminnetworkpolicies", "baselineadminnetworkpolicies"])
    ],
    "v3.32": [
        (["policy.networking.k8s.io"], ["clusternetworkpolicies"]),
        (["kubevirt.io"], ["virtualmachineinstancemigrations"]),
    ],
}


def calico_line(tag: str) -> str:
    """'v3.32.1' -> 'v3.32': the release line whose RBAC applies."""
    major_minor = ".".join(tag.split(".")[:2])
    if major_minor not in _RELEASE_WATCHES:
        raise ValueError(
            f"no RBAC known for Calico {tag}; known lines: {', '.join(_RELEASE_WATCHES)}"
        )
    return major_minor


def _meta(name: str, namespaced: bool = True, **extra) -> dict:
    return _m._meta(name, FEATURE, namespaced=namespaced, **extra)


def crd_objects() -> list[dict]:
    """The CRDs, with open schemas.

    Calico's published CRDs carry full OpenAPI schemas (thousands of lines per release,
    generated from its Go types) that we cannot vendor. `type: object` with
    x-kubernetes-preserve-unknown-fields is still structural, so the API server stores
    whatever calico-node writes, and nothing prunes a field Calico knows and we do not.
    Validation of what we ourselves write (the Tier and the metadata policy) is the tests'.
    """
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": dict(open_object),
            "status": dict(open_object),
        },
    }
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": _meta(f"{plural}.{CALICO_GROUP}", namespaced=False),
            "spec": {
                "group": CALICO_GROUP,
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": kind.lower(),
                },
                "scope": scope,
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    }
                ],
            },
        }
        for plural, kind, scope in CRDS
    ]


def _calico_node_rules(line: str) -> list[dict]:
    rule = _m._rule
    calico_kinds = [plural for plural, _, _ in CRDS]
    rules = [
        # install-cni and calico-node mint (and renew) the CNI plugin's token.
        rule([""], ["serviceaccounts/token"], ["create"], [CNI_SERVICE_ACCOUNT]),
        # What felix polices: pods, their namespaces and service accounts, NetworkPolicies,
        # Services and their endpoints (policy rules may name a Service).
        rule([""], ["pods", "namespaces", "serviceaccounts"], ["get", "list", "watch"]),
        rule([""], ["endpoints", "services"], ["get", "list", "watch"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        rule(["networking.k8s.io"], ["networkpolicies"], ["list", "watch"]),
        # Calico's node is the Kubernetes Node: its configuration lives in annotations.
        rule([""], ["nodes"], ["get", "list", "watch"]),
        rule([""], ["nodes/status"], ["patch", "update"]),
        # Startup reads kubeadm's ClusterConfiguration (kube-system/kubeadm-config).
        rule([""], ["configmaps"], ["get"]),
        rule([CALICO_GROUP], calico_kinds, ["get", "list", "watch"]),
        # Startup creates the built-in tiers, the default FelixConfiguration, BGPConfiguration
        # and ClusterInformation; no IP pool (NO_DEFAULT_POOLS): addresses are flannel's.
        rule([CALICO_GROUP], ["tiers"], ["create"]),
        rule(
            [CALICO_GROUP],
            ["felixconfigurations", "bgpconfigurations", "clusterinformations"],
            ["create", "update"],
        ),
        rule([CALICO_GROUP], ["caliconodestatuses"], ["update"]),
    ]
    rules += [
        rule(groups, resources, ["get", "list", "watch"])
        for groups, resources in _RELEASE_WATCHES[line]
    ]
    return rules


def rbac_objects(line: str) -> list[dict]:
    """calico-node (felix, install-cni) and the CNI plugin, each with only what it uses."""
    binding = _m._binding
    sa = lambda name: {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name)}  # noqa: E731
    role = lambda name, rules: {  # noqa: E731
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(name, namespaced=False),
        "rules": rules,
    }
    return [
        sa(NODE_SERVICE_ACCOUNT),
        sa(CNI_SERVICE_ACCOUNT),
        role(NODE_SERVICE_ACCOUNT, _calico_node_rules(line)),
        # The CNI plugin reads the pod (labels, service account) and its namespace, and
        # writes the pod's address into its status.
        role(
            CNI_SERVICE_ACCOUNT,
            [
                _m._rule([""], ["pods", "nodes", "namespaces"], ["get"]),
                _m._rule([""], ["pods/status"], ["patch"]),
            ],
        ),
        binding(
            "ClusterRoleBinding",
            NODE_SERVICE_ACCOUNT,
            FEATURE,
            "ClusterRole",
            NODE_SERVICE_ACCOUNT,
            NODE_SERVICE_ACCOUNT,
        ),
        binding(
            "ClusterRoleBinding",
            CNI_SERVICE_ACCOUNT,
            FEATURE,
            "ClusterRole",
            CNI_SERVICE_ACCOUNT,
            CNI_SERVICE_ACCOUNT,
        ),
    ]


def cni_conflist() -> dict:
    """The template install-cni writes as CNI_CONF_NAME; it fills in the __NAMES__."""
    return {
        "name": CNI_NETWORK_NAME,
        "cniVersion": "0.3.1",
        "plugins": [
            {
                # Reads FLANNEL_SUBNET/NETWORK/MTU from flanneld's lease and hands the
                # delegate host-local IPAM on the node's /24, a route to the pod network and
                # flannel's MTU.
                "type": "flannel",
                "subnetFile": FLANNEL_SUBNET_ENV,
                "delegate": {
                    "type": "calico",
                    # host-local brings only the route to the pod network; the pod still
                    # needs its default route (through the cali* veth's host side).
                    "include_default_routes": True,
                    "datastore_type": "kubernetes",
                    "nodename": "__KUBERNETES_NODE_NAME__",
                    "log_level": "info",
                    "log_file_path": "/var/log/calico/cni/cni.log",
                    "policy": {"type": "k8s"},
                    "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"},
                },
            },
            # flanneld masquerades leaving traffic (--ip-masq); portmap serves hostPorts.
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def _env(name: str, value: str) -> dict:
    return {"name": name, "value": value}


def _node_name_env(name: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}


def _mount(name: str, path: str, read_only: bool = False) -> dict:
    mount = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount


def daemonset(images: dict) -> dict:
    labels = {"k8s-app": "calico-node"}
    install_cni = {
        "name": "install-cni",
        "image": images["calico_cni"],
        "imagePullPolicy": "IfNotPresent",
        "command": ["/opt/cni/bin/install"],
        "env": [
            _env("CNI_CONF_NAME", CNI_CONF_NAME),
            # install-cni deletes CNI_OLD_CONF_NAME (10-calico.conflist unless told): it is
            # this very file, so nothing else of the node's is touched.
            _env("CNI_OLD_CONF_NAME", CNI_CONF_NAME),
            _env("CNI_NETWORK_CONFIG", json.dumps(cni_conflist(), indent=2, sort_keys=True)),
            _node_name_env("KUBERNETES_NODE_NAME"),
            # The token in calico-kubeconfig is the CNI plugin's, not calico-node's.
            _env("CALICO_CNI_SERVICE_ACCOUNT", CNI_SERVICE_ACCOUNT),
            _env("SKIP_CNI_BINARIES", ",".join(NODE_CNI_PLUGINS)),
            # An init container must end.
            _env("SLEEP", "false"),
        ],
        "volumeMounts": [
            _mount("cni-bin-dir", "/host/opt/cni/bin"),
            _mount("cni-net-dir", "/host/etc/cni/net.d"),
        ],
        "securityContext": {"privileged": True},
    }
    felix_probe = lambda flag, **kw: {  # noqa: E731
        "exec": {"command": ["/bin/calico-node", flag]},
        "periodSeconds": 10,
        "timeoutSeconds": 10,
        **kw,
    }
    calico_node = {
        "name": "calico-node",
        "image": images["calico_node"],
        "imagePullPolicy": "IfNotPresent",
        "env": [
            _env("DATASTORE_TYPE", "kubernetes"),
            _env("WAIT_FOR_DATASTORE", "true"),
            _node_name_env("NODENAME"),
            # calico-node renews the token install-cni wrote, for this account.
            _env("CALICO_CNI_SERVICE_ACCOUNT", CNI_SERVICE_ACCOUNT),
            # Policy only: flannel routes and encapsulates.
            _env("CALICO_NETWORKING_BACKEND", "none"),
            _env("CLUSTER_TYPE", "k8s,canal"),
            # No node address to detect (no BGP), no IP pool to create (flannel's IPAM).
            _env("IP", ""),
            _env("NO_DEFAULT_POOLS", "true"),
            _env("CALICO_DISABLE_FILE_LOGGING", "true"),
            _env("FELIX_INTERFACEPREFIX", "cali"),
            # Pods reach their own node (kubelet probes, node-local DNS) whatever their policy.
            _env("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
            _env("FELIX_IPINIPENABLED", "false"),
            _env("FELIX_IPV6SUPPORT", "false"),
            _env("FELIX_HEALTHENABLED", "true"),
            _env("FELIX_LOGSEVERITYSCREEN", "info"),
        ],
        "securityContext": {"privileged": True},
        "resources": {"requests": {"cpu": "250m"}},
        "livenessProbe": felix_probe("-felix-live", initialDelaySeconds=10, failureThreshold=6),
        "readinessProbe": felix_probe("-felix-ready"),
        "volumeMounts": [
            # Where calico-node renews the CNI plugin's kubeconfig.
            _mount("cni-net-dir", "/host/etc/cni/net.d"),
            _mount("lib-modules", "/lib/modules", read_only=True),
            # Shared with kube-proxy and flanneld, who write iptables too.
            _mount("xtables-lock", "/run/xtables.lock"),
            _mount("var-run-calico", "/var/run/calico"),
            # calico-node writes the node's name here; the CNI plugin reads it.
            _mount("var-lib-calico", "/var/lib/calico"),
        ],
    }
    host_path = _m._host_path
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta("calico-node"),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "hostNetwork": True,
                    # Every node, whatever its taints: a node without felix runs its pods
                    # unpoliced.
                    "tolerations": [{"operator": "Exists"}],
                    "serviceAccountName": NODE_SERVICE_ACCOUNT,
                    "priorityClassName": "system-node-critical",
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [install_cni],
                    "containers": [calico_node],
                    "volumes": [
                        host_path("lib-modules", "/lib/modules", "Directory"),
                        host_path("var-run-calico", "/var/run/calico", "DirectoryOrCreate"),
                        host_path("var-lib-calico", "/var/lib/calico", "DirectoryOrCreate"),
                        host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                        host_path("cni-bin-dir", "/opt/cni/bin", "DirectoryOrCreate"),
                        host_path("cni-net-dir", "/etc/cni/net.d", "DirectoryOrCreate"),
                    ],
                },
            },
        },
    }


def _exempt_selector() -> str:
    """Calico selector of every workload endpoint but METADATA_EXEMPT's.

    Calico labels a pod's endpoint with its namespace as projectcalico.org/namespace.
    """
    exempt = []
    for namespace, labels in METADATA_EXEMPT:
        terms = [f"projectcalico.org/namespace == '{namespace}'"]
        terms += [f"{k} == '{v}'" for k, v in sorted(labels.items())]
        exempt.append("(" + " && ".join(terms) + ")")
    return f"!({' || '.join(exempt)})" if exempt else "all()"


def metadata_objects() -> list[dict]:
    """Our tier, and in it the policy that keeps workload pods off the metadata service.

    The metadata service hands any caller on the node's network the instance's identity and
    user-data, which here holds the node's bootstrap material: a pod must not read it.

    The policy denies egress to METADATA_CIDR, then Passes everything else to the next tier.
    Pass, not Allow: Allow would end policy evaluation for the pod's egress here, and the
    users' own NetworkPolicies (default tier) would never apply to it. Pass leaves the pod to
    them, and, with none selecting it, to Calico's namespace profiles, which allow, as
    Kubernetes does without a NetworkPolicy. The tier's defaultAction is Pass too, so a pod
    this tier selects is never dropped by the tier's end.
    """
    tier = {
        "apiVersion": CALICO_API,
        "kind": "Tier",
        "metadata": _meta(TIER, namespaced=False),
        "spec": {"order": TIER_ORDER, "defaultAction": "Pass"},
    }
    policy = {
        "apiVersion": CALICO_API,
        "kind": "GlobalNetworkPolicy",
        "metadata": _meta(METADATA_POLICY, namespaced=False),
        "spec": {
            "tier": TIER,
            "order": 10,
            "selector": _exempt_selector(),
            "types": ["Egress"],
            "egress": [
                {"action": "Deny", "destination": {"nets": [METADATA_CIDR]}},
                {"action": "Pass"},
            ],
        },
    }
    return [tier, policy]


def network_policy_objects(*, images: dict, calico_release: str) -> list[dict]:
    """Every object of the feature, CRDs first; calico_release is the calico/node tag."""
    line = calico_line(calico_release)
    return [*crd_objects(), *rbac_objects(line), daemonset(images), *metadata_objects()]
