"""The add-ons' Kubernetes objects, as Python data.

Each object mirrors the upstream manifests at the pinned release (see addons.versions):
- openstack-cloud-controller-manager: kubernetes/cloud-provider-openstack
  manifests/controller-manager (DaemonSet on control-plane nodes + RBAC);
- Cinder CSI: manifests/cinder-csi-plugin (controller Deployment with the CSI sidecars,
  node DaemonSet, RBAC, CSIDriver) plus the cluster's default StorageClass;
- metrics-server: kubernetes-sigs/metrics-server components.yaml;
- network policy: Calico policy-only next to flannel, projectcalico/calico manifests/canal.yaml
  (addons.calico).

Objects are plain dicts (camelCase, exactly what the API server receives), so the tests
validate every one offline with kubernetes-validate against the stack's Kubernetes version,
and addons.resources turns each into one typed pulumi_kubernetes resource.

Namespaced objects live in kube-system (it always exists: no Namespace object). The
cloud.conf Secret is not among them: it carries credentials, so the caller builds it from a
secret Output with cloud_conf_secret().
"""

from addons import versions

NAMESPACE = "kube-system"
# The Secret both the CCM and Cinder CSI mount at /etc/config (upstream's name).
CLOUD_CONFIG_SECRET = "cloud-config"
CLOUD_CONFIG_DIR = "/etc/config"
CINDER_DRIVER = "cinder.csi.openstack.org"

FEATURES = ("cloud_controller", "cinder_csi", "metrics_server", "network_policy")
# Label on every object: which feature owns it (`kubectl get -A -l openstack-k8s.io/addon`).
ADDON_LABEL = "openstack-k8s.io/addon"
_FEATURE_LABEL = {
    "cloud_controller": "cloud-controller",
    "cinder_csi": "cinder-csi",
    "metrics_server": "metrics-server",
    "network_policy": "network-policy",
}

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"


def _meta(name: str, feature: str, namespaced: bool = True, **extra) -> dict:
    meta = {"name": name, "labels": {ADDON_LABEL: _FEATURE_LABEL[feature]}}
    if namespaced:
        meta["namespace"] = NAMESPACE
    meta.update(extra)
    return meta


def _rule(groups, resources, verbs, resource_names=None) -> dict:
    rule = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if resource_names:
        rule["resourceNames"] = list(resource_names)
    return rule


def _service_account(name: str, feature: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, feature)}


def _cluster_role(name: str, feature: str, rules: list, labels: dict | None = None) -> dict:
    meta = _meta(name, feature, namespaced=False)
    meta["labels"].update(labels or {})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta,
        "rules": rules,
    }


def _role(name: str, feature: str, rules: list) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(name, feature),
        "rules": rules,
    }


def _binding(kind: str, name: str, feature: str, role_kind: str, role: str, sa: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, feature, namespaced=(kind == "RoleBinding")),
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
    }


def _leases_role(name: str, feature: str) -> dict:
    # Leader election of a CSI sidecar (one active replica at a time).
    return _role(
        name,
        feature,
        [
            _rule(
                ["coordination.k8s.io"],
                ["leases"],
                ["get", "watch", "list", "delete", "update", "create", "patch"],
            )
        ],
    )


def _cloud_config_volume(name: str) -> dict:
    return {"name": name, "secret": {"secretName": CLOUD_CONFIG_SECRET}}


def _host_path(name: str, path: str, kind: str) -> dict:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


# --- openstack-cloud-controller-manager ------------------------------------------------


def cloud_controller_objects(*, images: dict, cluster_name: str = "kubernetes") -> list[dict]:
    """CCM: node addresses, provider ids, zones; LoadBalancer Services through Octavia."""
    feature = "cloud_controller"
    sa = "cloud-controller-manager"
    labels = {"k8s-app": "openstack-cloud-controller-manager"}
    rules = [
        _rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update"]),
        _rule([""], ["events"], ["create", "patch", "update"]),
        _rule([""], ["nodes"], ["get", "list", "watch", "patch", "update", "delete"]),
        _rule([""], ["nodes/status"], ["patch"]),
        _rule([""], ["services"], ["list", "patch", "update", "watch"]),
        _rule([""], ["services/status"], ["patch"]),
        _rule([""], ["serviceaccounts"], ["create", "get"]),
        _rule([""], ["serviceaccounts/token"], ["create"]),
        _rule([""], ["endpoints"], ["create", "get", "list", "watch", "update"]),
        _rule([""], ["configmaps"], ["get", "list", "watch"]),
    ]
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta("openstack-cloud-controller-manager", feature),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    # Masters only: they exist before any worker, and the CCM must run
                    # before a node can lose its "uninitialized" taint.
                    "nodeSelector": {CONTROL_PLANE_LABEL: ""},
                    "securityContext": {"runAsUser": 1001},
                    "tolerations": [
                        # Every node starts with --cloud-provider=external, hence tainted
                        # until this very controller initialises it.
                        {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                        {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                        # The pod network may not be up yet: the CCM uses the host's.
                        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                    ],
                    "serviceAccountName": sa,
                    "priorityClassName": "system-cluster-critical",
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "containers": [
                        {
                            "name": "openstack-cloud-controller-manager",
                            "image": images["cloud_controller_manager"],
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                "/bin/openstack-cloud-controller-manager",
                                "--v=1",
                                "--cluster-name=$(CLUSTER_NAME)",
                                "--cloud-config=$(CLOUD_CONFIG)",
                                "--cloud-provider=openstack",
                                "--use-service-account-credentials=false",
                                "--bind-address=127.0.0.1",
                            ],
                            "env": [
                                {"name": "CLOUD_CONFIG", "value": f"{CLOUD_CONFIG_DIR}/cloud.conf"},
                                # Prefix of the Octavia load balancers this cluster owns.
                                {"name": "CLUSTER_NAME", "value": cluster_name},
                            ],
                            "volumeMounts": [
                                {
                                    "name": "k8s-certs",
                                    "mountPath": "/etc/kubernetes/pki",
                                    "readOnly": True,
                                },
                                {
                                    "name": "ca-certs",
                                    "mountPath": "/etc/ssl/certs",
                                    "readOnly": True,
                                },
                                {
                                    "name": "cloud-config-volume",
                                    "mountPath": CLOUD_CONFIG_DIR,
                                    "readOnly": True,
                                },
                            ],
                            "resources": {"requests": {"cpu": "200m"}},
                        }
                    ],
                    "volumes": [
                        _host_path("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate"),
                        _host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
                        _cloud_config_volume("cloud-config-volume"),
                    ],
                },
            },
        },
    }
    return [
        _service_account(sa, feature),
        _cluster_role("system:cloud-controller-manager", feature, rules),
        _binding(
            "ClusterRoleBinding",
            "system:cloud-controller-manager",
            feature,
            "ClusterRole",
            "system:cloud-controller-manager",
            sa,
        ),
        # Only this one Secret, not every Secret of the cluster.
        _role(
            "system:cloud-controller-manager:secret-reader",
            feature,
            [_rule([""], ["secrets"], ["get", "list", "watch"], [CLOUD_CONFIG_SECRET])],
        ),
        _binding(
            "RoleBinding",
            "system:cloud-controller-manager:secret-reader",
            feature,
            "Role",
            "system:cloud-controller-manager:secret-reader",
            sa,
        ),
        daemonset,
    ]


# --- Cinder CSI -------------------------------------------------------------------------

_CSI_SOCKET_ENV = {"name": "ADDRESS", "value": "/var/lib/csi/sockets/pluginproxy/csi.sock"}
_CSI_SOCKET_MOUNT = {"name": "socket-dir", "mountPath": "/var/lib/csi/sockets/pluginproxy/"}


def _sidecar(name: str, image: str, args: list[str]) -> dict:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--csi-address=$(ADDRESS)", *args],
        "env": [dict(_CSI_SOCKET_ENV)],
        "volumeMounts": [dict(_CSI_SOCKET_MOUNT)],
    }


def _plugin_probe() -> dict:
    return {
        "httpGet": {"path": "/healthz", "port": "healthz"},
        "failureThreshold": 5,
        "initialDelaySeconds": 10,
        "timeoutSeconds": 10,
        "periodSeconds": 60,
    }


def storage_class_object(storage_class: dict) -> dict:
    """The StorageClass PVCs get: Cinder volumes of the given type, default or not."""
    name = storage_class.get("name") or "cinder"
    reclaim = storage_class.get("reclaim_policy") or "Delete"
    if reclaim not in ("Delete", "Retain"):
        raise ValueError(f"csi.storageClass.reclaimPolicy: {reclaim!r} is not Delete or Retain")
    default = bool(storage_class.get("default", True))
    obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta(
            name,
            "cinder_csi",
            namespaced=False,
            annotations={"storageclass.kubernetes.io/is-default-class": str(default).lower()},
        ),
        "provisioner": CINDER_DRIVER,
        "reclaimPolicy": reclaim,
        "allowVolumeExpansion": True,
        # Create the volume in the availability zone of the node the pod lands on.
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    if storage_class.get("volume_type"):
        obj["parameters"] = {"type": storage_class["volume_type"]}
    return obj


def cinder_csi_objects(
    *, images: dict, storage_class: dict, cluster_name: str = "kubernetes"
) -> list[dict]:
    """Cinder CSI: controller Deployment, node DaemonSet, RBAC, CSIDriver, StorageClass."""
    feature = "cinder_csi"
    controller_sa = "csi-cinder-controller-sa"
    node_sa = "csi-cinder-node-sa"
    controller_labels = {"app": "csi-cinder-controllerplugin"}
    node_labels = {"app": "csi-cinder-nodeplugin"}
    events = _rule([""], ["events"], ["list", "watch", "create", "update", "patch"])

    rbac = [
        _service_account(controller_sa, feature),
        _cluster_role(
            "csi-attacher-role",
            feature,
            [
                _rule([""], ["persistentvolumes"], ["get", "list", "watch", "patch"]),
                _rule(["storage.k8s.io"], ["csinodes"], ["get", "list", "watch"]),
                _rule(["storage.k8s.io"], ["volumeattachments"], ["get", "list", "watch", "patch"]),
                _rule(["storage.k8s.io"], ["volumeattachments/status"], ["patch"]),
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "csi-attacher-binding",
            feature,
            "ClusterRole",
            "csi-attacher-role",
            controller_sa,
        ),
        _leases_role("external-attacher-cfg", feature),
        _binding(
            "RoleBinding",
            "csi-attacher-role-cfg",
            feature,
            "Role",
            "external-attacher-cfg",
            controller_sa,
        ),
        _cluster_role(
            "csi-provisioner-role",
            feature,
            [
                _rule(
                    [""],
                    ["persistentvolumes"],
                    ["get", "list", "watch", "create", "delete", "patch"],
                ),
                _rule([""], ["persistentvolumeclaims"], ["get", "list", "watch", "update"]),
                _rule(["storage.k8s.io"], ["storageclasses"], ["get", "list", "watch"]),
                _rule([""], ["nodes"], ["get", "list", "watch"]),
                _rule(["storage.k8s.io"], ["csinodes"], ["get", "list", "watch"]),
                events,
                _rule(["snapshot.storage.k8s.io"], ["volumesnapshots"], ["get", "list"]),
                _rule(["snapshot.storage.k8s.io"], ["volumesnapshotcontents"], ["get", "list"]),
                _rule(["storage.k8s.io"], ["volumeattachments"], ["get", "list", "watch"]),
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "csi-provisioner-binding",
            feature,
            "ClusterRole",
            "csi-provisioner-role",
            controller_sa,
        ),
        _leases_role("external-provisioner-cfg", feature),
        _binding(
            "RoleBinding",
            "csi-provisioner-role-cfg",
            feature,
            "Role",
            "external-provisioner-cfg",
            controller_sa,
        ),
        _cluster_role(
            "csi-snapshotter-role",
            feature,
            [
                events,
                _rule(
                    ["snapshot.storage.k8s.io"], ["volumesnapshotclasses"], ["get", "list", "watch"]
                ),
                _rule(
                    ["snapshot.storage.k8s.io"],
                    ["volumesnapshotcontents"],
                    ["get", "list", "watch", "update", "patch"],
                ),
                _rule(
                    ["snapshot.storage.k8s.io"],
                    ["volumesnapshotcontents/status"],
                    ["update", "patch"],
                ),
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "csi-snapshotter-binding",
            feature,
            "ClusterRole",
            "csi-snapshotter-role",
            controller_sa,
        ),
        _leases_role("external-snapshotter-leaderelection", feature),
        _binding(
            "RoleBinding",
            "external-snapshotter-leaderelection",
            feature,
            "Role",
            "external-snapshotter-leaderelection",
            controller_sa,
        ),
        _cluster_role(
            "csi-resizer-role",
            feature,
            [
                _rule([""], ["persistentvolumes"], ["get", "list", "watch", "patch"]),
                _rule([""], ["persistentvolumeclaims"], ["get", "list", "watch"]),
                _rule([""], ["pods"], ["get", "list", "watch"]),
                _rule([""], ["persistentvolumeclaims/status"], ["patch"]),
                events,
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "csi-resizer-binding",
            feature,
            "ClusterRole",
            "csi-resizer-role",
            controller_sa,
        ),
        _leases_role("external-resizer-cfg", feature),
        _binding(
            "RoleBinding",
            "csi-resizer-role-cfg",
            feature,
            "Role",
            "external-resizer-cfg",
            controller_sa,
        ),
        _service_account(node_sa, feature),
        _cluster_role(
            "csi-nodeplugin-role",
            feature,
            [
                _rule([""], ["events"], ["get", "list", "watch", "create", "update", "patch"]),
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "csi-nodeplugin-binding",
            feature,
            "ClusterRole",
            "csi-nodeplugin-role",
            node_sa,
        ),
    ]

    plugin_env = [
        {"name": "CSI_ENDPOINT", "value": "unix://csi/csi.sock"},
        {"name": "CLOUD_CONFIG", "value": f"{CLOUD_CONFIG_DIR}/cloud.conf"},
    ]
    controller = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("csi-cinder-controllerplugin", feature),
        "spec": {
            "replicas": 1,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "selector": {"matchLabels": dict(controller_labels)},
            "template": {
                "metadata": {"labels": dict(controller_labels)},
                "spec": {
                    "serviceAccountName": controller_sa,
                    "priorityClassName": "system-cluster-critical",
                    "containers": [
                        _sidecar(
                            "csi-attacher",
                            images["csi_attacher"],
                            ["--timeout=3m", "--leader-election=true", "--default-fstype=ext4"],
                        ),
                        _sidecar(
                            "csi-provisioner",
                            images["csi_provisioner"],
                            [
                                "--timeout=3m",
                                "--default-fstype=ext4",
                                "--feature-gates=Topology=true",
                                "--extra-create-metadata",
                                "--leader-election=true",
                            ],
                        ),
                        _sidecar(
                            "csi-snapshotter",
                            images["csi_snapshotter"],
                            ["--timeout=3m", "--extra-create-metadata", "--leader-election=true"],
                        ),
                        _sidecar(
                            "csi-resizer",
                            images["csi_resizer"],
                            [
                                "--timeout=3m",
                                "--handle-volume-inuse-error=false",
                                "--leader-election=true",
                            ],
                        ),
                        _sidecar("liveness-probe", images["livenessprobe"], []),
                        {
                            "name": "cinder-csi-plugin",
                            "image": images["cinder_csi_plugin"],
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                "/bin/cinder-csi-plugin",
                                "--endpoint=$(CSI_ENDPOINT)",
                                "--cloud-config=$(CLOUD_CONFIG)",
                                "--cluster=$(CLUSTER_NAME)",
                                "--provide-node-service=false",
                            ],
                            "env": [
                                {"name": "CSI_ENDPOINT", "value": "unix://csi/csi.sock"},
                                {"name": "CLOUD_CONFIG", "value": f"{CLOUD_CONFIG_DIR}/cloud.conf"},
                                # Tags the Cinder volumes with the cluster they belong to.
                                {"name": "CLUSTER_NAME", "value": cluster_name},
                            ],
                            "ports": [
                                {"containerPort": 9808, "name": "healthz", "protocol": "TCP"}
                            ],
                            "livenessProbe": _plugin_probe(),
                            "volumeMounts": [
                                {"name": "socket-dir", "mountPath": "/csi"},
                                {
                                    "name": "secret-cinderplugin",
                                    "mountPath": CLOUD_CONFIG_DIR,
                                    "readOnly": True,
                                },
                            ],
                        },
                    ],
                    "volumes": [
                        {"name": "socket-dir", "emptyDir": {}},
                        _cloud_config_volume("secret-cinderplugin"),
                    ],
                },
            },
        },
    }
    registration = "/var/lib/kubelet/plugins/cinder.csi.openstack.org"
    node = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta("csi-cinder-nodeplugin", feature),
        "spec": {
            "selector": {"matchLabels": dict(node_labels)},
            "template": {
                "metadata": {"labels": dict(node_labels)},
                "spec": {
                    # Every node, gateways and masters included: any may mount a volume.
                    "tolerations": [{"operator": "Exists"}],
                    "serviceAccountName": node_sa,
                    "priorityClassName": "system-node-critical",
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": "node-driver-registrar",
                            "image": images["node_driver_registrar"],
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                "--csi-address=$(ADDRESS)",
                                "--kubelet-registration-path=$(DRIVER_REG_SOCK_PATH)",
                            ],
                            "env": [
                                {"name": "ADDRESS", "value": "/csi/csi.sock"},
                                {
                                    "name": "DRIVER_REG_SOCK_PATH",
                                    "value": f"{registration}/csi.sock",
                                },
                                {
                                    "name": "KUBE_NODE_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                },
                            ],
                            "volumeMounts": [
                                {"name": "socket-dir", "mountPath": "/csi"},
                                {"name": "registration-dir", "mountPath": "/registration"},
                            ],
                        },
                        {
                            "name": "liveness-probe",
                            "image": images["livenessprobe"],
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--csi-address=/csi/csi.sock"],
                            "volumeMounts": [{"name": "socket-dir", "mountPath": "/csi"}],
                        },
                        {
                            "name": "cinder-csi-plugin",
                            "image": images["cinder_csi_plugin"],
                            "imagePullPolicy": "IfNotPresent",
                            # Attaching and mounting block devices on the host.
                            "securityContext": {
                                "privileged": True,
                                "capabilities": {"add": ["SYS_ADMIN"]},
                                "allowPrivilegeEscalation": True,
                            },
                            "args": [
                                "/bin/cinder-csi-plugin",
                                "--endpoint=$(CSI_ENDPOINT)",
                                "--provide-controller-service=false",
                                "--cloud-config=$(CLOUD_CONFIG)",
                            ],
                            "env": [dict(e) for e in plugin_env],
                            "ports": [
                                {"containerPort": 9808, "name": "healthz", "protocol": "TCP"}
                            ],
                            "livenessProbe": _plugin_probe(),
                            "volumeMounts": [
                                {"name": "socket-dir", "mountPath": "/csi"},
                                {
                                    "name": "kubelet-dir",
                                    "mountPath": "/var/lib/kubelet",
                                    "mountPropagation": "Bidirectional",
                                },
                                {
                                    "name": "pods-probe-dir",
                                    "mountPath": "/dev",
                                    "mountPropagation": "HostToContainer",
                                },
                                {
                                    "name": "secret-cinderplugin",
                                    "mountPath": CLOUD_CONFIG_DIR,
                                    "readOnly": True,
                                },
                            ],
                        },
                    ],
                    "volumes": [
                        _host_path("socket-dir", registration, "DirectoryOrCreate"),
                        _host_path(
                            "registration-dir", "/var/lib/kubelet/plugins_registry/", "Directory"
                        ),
                        _host_path("kubelet-dir", "/var/lib/kubelet", "Directory"),
                        _host_path("pods-probe-dir", "/dev", "Directory"),
                        _cloud_config_volume("secret-cinderplugin"),
                    ],
                },
            },
        },
    }
    csi_driver = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": _meta(CINDER_DRIVER, feature, namespaced=False),
        "spec": {
            "attachRequired": True,
            "podInfoOnMount": True,
            "volumeLifecycleModes": ["Persistent"],
        },
    }
    return [*rbac, controller, node, csi_driver, storage_class_object(storage_class)]


# --- metrics-server ---------------------------------------------------------------------


def metrics_server_objects(*, images: dict, kubelet_insecure_tls: bool = True) -> list[dict]:
    """metrics-server: the metrics.k8s.io API behind `kubectl top` and autoscalers."""
    feature = "metrics_server"
    name = "metrics-server"
    labels = {"k8s-app": name}
    args = [
        "--cert-dir=/tmp",
        "--secure-port=10250",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
    ]
    if kubelet_insecure_tls:
        # kubeadm's kubelets serve a self-signed certificate unless serverTLSBootstrap is
        # on and their CSRs are approved; see docs/addons.md.
        args.append("--kubelet-insecure-tls")
    https_probe = {
        "httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, feature),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": images["metrics_server"],
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "ports": [{"containerPort": 10250, "name": "https", "protocol": "TCP"}],
                            "livenessProbe": https_probe,
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                "initialDelaySeconds": 20,
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [{"name": "tmp-dir", "mountPath": "/tmp"}],
                        }
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": name,
                    "volumes": [{"name": "tmp-dir", "emptyDir": {}}],
                },
            },
        },
    }
    return [
        _service_account(name, feature),
        _cluster_role(
            "system:aggregated-metrics-reader",
            feature,
            [_rule(["metrics.k8s.io"], ["pods", "nodes"], ["get", "list", "watch"])],
            labels={
                "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                "rbac.authorization.k8s.io/aggregate-to-view": "true",
            },
        ),
        _cluster_role(
            "system:metrics-server",
            feature,
            [
                _rule([""], ["nodes/metrics"], ["get"]),
                _rule([""], ["pods", "nodes"], ["get", "list", "watch"]),
            ],
        ),
        _binding(
            "RoleBinding",
            "metrics-server-auth-reader",
            feature,
            "Role",
            "extension-apiserver-authentication-reader",
            name,
        ),
        _binding(
            "ClusterRoleBinding",
            "metrics-server:system:auth-delegator",
            feature,
            "ClusterRole",
            "system:auth-delegator",
            name,
        ),
        _binding(
            "ClusterRoleBinding",
            "system:metrics-server",
            feature,
            "ClusterRole",
            "system:metrics-server",
            name,
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name, feature),
            "spec": {
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
                "selector": dict(labels),
            },
        },
        deployment,
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": _meta("v1beta1.metrics.k8s.io", feature, namespaced=False),
            "spec": {
                "group": "metrics.k8s.io",
                "groupPriorityMinimum": 100,
                # metrics-server serves a self-signed certificate (upstream default).
                "insecureSkipTLSVerify": True,
                "service": {"name": name, "namespace": NAMESPACE},
                "version": "v1beta1",
                "versionPriority": 100,
            },
        },
    ]


# --- entry points -----------------------------------------------------------------------


def addon_objects(
    *,
    kubernetes_version: str,
    image_repository: str | None,
    storage_class: dict,
    features: dict,
    cluster_name: str = "kubernetes",
    metrics_kubelet_insecure_tls: bool = True,
) -> list[dict]:
    """Every add-on object for the enabled features, in apply order, cloud.conf excluded.

    features: {cloud_controller, cinder_csi, metrics_server, network_policy: bool}; a feature
    that is off (or absent) contributes no object at all. storage_class: {name, reclaim_policy, volume_type,
    default}. An unsupported kubernetes_version raises ValueError naming kubernetesVersion.
    """
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"addons.features: unknown feature(s) {sorted(unknown)}")
    images = versions.images(kubernetes_version, image_repository)
    objects = []
    if features.get("cloud_controller"):
        objects += cloud_controller_objects(images=images, cluster_name=cluster_name)
    if features.get("cinder_csi"):
        objects += cinder_csi_objects(
            images=images, storage_class=storage_class, cluster_name=cluster_name
        )
    if features.get("metrics_server"):
        objects += metrics_server_objects(
            images=images, kubelet_insecure_tls=metrics_kubelet_insecure_tls
        )
    if features.get("network_policy"):
        # Imported here: addons.calico builds on this module's helpers.
        from addons.calico import network_policy_objects

        objects += network_policy_objects(
            images=images, calico_release=versions.tags_for(kubernetes_version)["calico_node"]
        )
    return objects


def needs_cloud_conf(features: dict) -> bool:
    """Whether the cloud.conf Secret is needed (the CCM or Cinder CSI is on)."""
    return bool(features.get("cloud_controller") or features.get("cinder_csi"))


def cloud_conf_secret(conf_text, ca_cert=None) -> dict:
    """The cloud.conf Secret; conf_text may be a (secret) pulumi Output: it is only placed.

    ca_cert (PEM, optional) lands next to it as ca.crt: render cloud.conf with
    ca_file=f"{CLOUD_CONFIG_DIR}/ca.crt" for clouds behind a private CA.
    """
    string_data = {"cloud.conf": conf_text}
    if ca_cert is not None:
        string_data["ca.crt"] = ca_cert
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": CLOUD_CONFIG_SECRET,
            "namespace": NAMESPACE,
            "labels": {ADDON_LABEL: "cloud-config"},
        },
        "type": "Opaque",
        "stringData": string_data,
    }


def object_key(obj: dict) -> str:
    """apiVersion/kind/[namespace/]name: unique per object in a cluster."""
    meta = obj["metadata"]
    parts = [obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]]
    return "/".join(p for p in parts if p)
