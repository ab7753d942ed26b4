"""Values more than one part of the program must agree on, named once.

settings.py, the cloud-init builders and the node scripts (through their environment) take
them from here."""

# flannel's VXLAN encapsulation: a pod's MTU is the network's minus this.
VXLAN_OVERHEAD = 50

# What keeps ordinary pods off the masters (kubeadm's own taint).
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

# Fingerprint of the pkgs.k8s.io (isv:kubernetes) repository signing key, the same for every
# minor's repository; the node scripts get it as K8S_APT_KEY_FINGERPRINT (lib/apt.sh).
KUBERNETES_APT_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"
