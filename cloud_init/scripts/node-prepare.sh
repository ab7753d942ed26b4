#!/usr/bin/env bash
# Prepares a master or worker for Kubernetes: kernel modules, sysctls, swap off, containerd.
# Runs from cloud-init's runcmd on first boot; safe to re-run (changes nothing the second time).
#
# Inputs (environment):
#   SANDBOX_IMAGE   pause image containerd uses for pod sandboxes (e.g. registry.k8s.io/pause:3.10);
#                   must match what kubeadm expects; empty keeps containerd's default.
#   CNI_BIN_DIR     where containerd looks for CNI plugins (default /opt/cni/bin).
#   NODE_ROOT       prefix for every file written (tests only; default: the real root).
#   APT_LOCK_TIMEOUT seconds to wait for the dpkg lock (default 300).
#   CONTAINERD_MIN_VERSION  the oldest containerd the Kubernetes version supports (default
#                   1.6.36): an older one (Debian 12 ships 1.6.20) fails the boot here.
# Exit status: 0 prepared; 1 a step failed (message on stderr).
set -euo pipefail

PROG=node-prepare
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  NODE_ROOT=${NODE_ROOT:-}
  SANDBOX_IMAGE=${SANDBOX_IMAGE:-}
  CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
  APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-300}
  CONTAINERD_MIN_VERSION=${CONTAINERD_MIN_VERSION:-1.6.36}

  # Writes $2 to $1 only when it differs; prints "changed" when it wrote.
  put_file() {
    local path=$1 content=$2
    if [[ -f $path ]] && [[ "$(cat "$path")" == "$content" ]]; then
      return 0
    fi
    mkdir -p "$(dirname "$path")"
    printf '%s\n' "$content" >"$path.tmp"
    mv "$path.tmp" "$path"
    echo changed
  }

  # Kernel modules: overlay for containerd's snapshotter, br_netfilter so bridged pod traffic
  # goes through iptables (kube-proxy, flannel's masquerading).
  put_file "$NODE_ROOT/etc/modules-load.d/k8s.conf" "$(printf '%s\n' overlay br_netfilter)" >/dev/null
  modprobe overlay
  modprobe br_netfilter

  sysctl_changed=$(put_file "$NODE_ROOT/etc/sysctl.d/90-kubernetes.conf" "$(printf '%s\n' \
    'net.ipv4.ip_forward = 1' \
    'net.bridge.bridge-nf-call-iptables = 1' \
    'net.bridge.bridge-nf-call-ip6tables = 1')")
  if [[ -n $sysctl_changed ]]; then
    sysctl --system >/dev/null
  fi

  # The kubelet refuses to run with swap on (by default): off now and after reboots.
  swapoff -a
  fstab="$NODE_ROOT/etc/fstab"
  if [[ -f $fstab ]] && grep -Eq '^[^#].*[[:space:]]swap[[:space:]]' "$fstab"; then
    sed -E -i 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# disabled for kubelet: \1/' "$fstab"
    log "swap entries commented out in /etc/fstab"
  fi

  if ! dpkg-query -W -f='${Status}' containerd 2>/dev/null | grep -q 'install ok installed'; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" \
      install -y --no-install-recommends containerd
  fi
  # The distribution's containerd, checked instead of trusted: Kubernetes supports 1.6 only from
  # 1.6.36 on (and 1.7, 2.x). Refusing here names the cause at boot; an older one would start
  # and fail later in ways that are hard to trace (sandbox image, cgroup and CRI API errors).
  have=$(containerd --version | awk '{ print $3 }')
  have=${have#v}
  have=${have%%[~+-]*}
  if ! printf '%s\n%s\n' "$CONTAINERD_MIN_VERSION" "$have" | sort -V -C; then
    die 1 "containerd ${have:-(unknown)} is older than ${CONTAINERD_MIN_VERSION}, the oldest" \
      "this Kubernetes version supports; boot the nodes from an image whose distribution ships" \
      "containerd >= ${CONTAINERD_MIN_VERSION} or 1.7 (Ubuntu 22.04 or 24.04, Debian 13)"
  fi

  # A minimal version-2 config: containerd fills every unset key with its defaults. The cgroup
  # driver must match the kubelet's (systemd); bin_dir is explicit because distro builds differ
  # on where they look for CNI plugins (/usr/lib/cni on some, /opt/cni/bin upstream).
  sandbox_line=
  if [[ -n $SANDBOX_IMAGE ]]; then
    sandbox_line="  sandbox_image = \"$SANDBOX_IMAGE\""
  fi
  config=$(
    cat <<EOF
version = 2

[plugins."io.containerd.grpc.v1.cri"]
$sandbox_line

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CNI_BIN_DIR"
  conf_dir = "/etc/cni/net.d"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
EOF
  )
  containerd_changed=$(put_file "$NODE_ROOT/etc/containerd/config.toml" "$config")
  mkdir -p "$NODE_ROOT$CNI_BIN_DIR" "$NODE_ROOT/etc/cni/net.d"
  systemctl enable containerd >/dev/null
  if [[ -n $containerd_changed ]]; then
    systemctl restart containerd
    log "containerd configured (SystemdCgroup = true${SANDBOX_IMAGE:+, sandbox $SANDBOX_IMAGE})"
  fi
}

main "$@" </dev/null
