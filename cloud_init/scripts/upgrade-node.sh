#!/usr/bin/env bash
# Upgrade this node's Kubernetes in place to TARGET_VERSION (one kubeadm upgrade step).
#
# Run as root on the node being upgraded, fed on stdin (`sudo bash -s`) by a remote command:
# the first master once, then each other master in turn, then workers (cordoned and drained
# from the first master by upgrade-cordon.sh, uncordoned by upgrade-uncordon.sh).
#
# Every step looks at the machine's real state first and is skipped when already done, so a
# re-run after a failure picks up where the last run stopped:
#   0. refuse (before any change) a downgrade, a skipped minor, or, on a master/worker, a
#      cluster whose control plane is not at TARGET_VERSION yet (first master goes first);
#   1. point apt at the target minor's repository (pkgs.k8s.io has one per minor);
#   2. kubeadm package at TARGET_VERSION            (kubeadm version -o short);
#   3. first-master: kubeadm upgrade plan + apply   (kubeadm-config and local kube-apiserver);
#      master/worker: kubeadm upgrade node          (local kube-apiserver / kubelet package);
#   4. kubelet + kubectl packages at TARGET_VERSION (dpkg-query);
#   5. containerd's sandbox_image at the pause tag `kubeadm config images list` names for
#      TARGET_VERSION (its registry kept), containerd restarted when it changed;
#   6. daemon-reload, restart kubelet, wait until it is active and the Node reports the target
#      version (the kubelet's reported version: a restart is skipped when it already does);
#   7. kubeadm, kubelet and kubectl held (apt-mark showhold).
#
# Environment:
#   TARGET_VERSION   required, e.g. 1.34.1 (a leading "v" is accepted)
#   ROLE             required: first-master | master | worker
#   PACKAGE_MIRROR   optional, default https://pkgs.k8s.io (serves /core:/stable:/vX.Y/deb/)
#   UPGRADE_TIMEOUT  optional, seconds for the whole run, default 1800
#   NODE_NAME        optional, this node's Node name, default: lower-cased hostname
#   K8S_APT_KEY_FINGERPRINT  fingerprint the repository key must have (default: pkgs.k8s.io's,
#                    as in node-install-kubernetes.sh)
# Paths, overridable for tests only (production uses the defaults):
#   KUBECONFIG       default /etc/kubernetes/admin.conf on the first master, else
#                    /etc/kubernetes/kubelet.conf (nodes may read their Node and kubeadm-config)
#   APT_SOURCE_FILE  default /etc/apt/sources.list.d/kubernetes.list
#   APT_KEYRING      default /etc/apt/keyrings/kubernetes-apt-keyring.gpg
#   MANIFEST_DIR     default /etc/kubernetes/manifests
#   CONTAINERD_CONFIG  default /etc/containerd/config.toml (as node-prepare.sh writes it)
#   POLL_INTERVAL    default 5 (seconds between checks while waiting)
#
# Exit status: 0 upgraded (or already at target), 1 a step failed or timed out (re-run after
# fixing the cause), 2 refused: bad input or a version step kubeadm cannot take.
set -euo pipefail

PROG=upgrade-node
# Status lines on stdout, where callers and tests have always read them.
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/apt.sh
source "${BASH_SOURCE[0]%/*}/lib/apt.sh" # inlined when shipped (cloud_init.script)

# 1: a step failed or timed out (re-run after fixing the cause); 2: refused before any change.
fail() { die 1 "$@"; }
refuse() { die 2 "refused: $*"; }

# Run a command within what is left of UPGRADE_TIMEOUT; name the step when it fails.
run() {
  local left rc=0
  left=$(ms_left "$DEADLINE")
  ((left > 0)) || fail "out of time (UPGRADE_TIMEOUT=${UPGRADE_TIMEOUT}s) before: $*; re-run to continue"
  log "+ $*"
  timeout --kill-after=10 "$(ms_to_s "$left")" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    fail "timed out (UPGRADE_TIMEOUT=${UPGRADE_TIMEOUT}s) in: $*; re-run to continue"
  elif ((rc != 0)); then
    fail "failed (exit $rc): $*; see the output above, fix the cause and re-run"
  fi
}

# Read-only query, bounded; prints nothing and returns non-zero when it cannot answer.
query() {
  local left
  left=$(ms_left "$DEADLINE")
  ((left > 1000)) || left=1000
  timeout --kill-after=5 "$(ms_to_s $((left < 60000 ? left : 60000)))" "$@" 2>/dev/null
}

# "v1.33.2", "1.33.2-1.1" -> "1.33.2"; empty when it is not a version.
upstream() {
  local v=${1#v}
  v=${v%%-*}
  [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && printf '%s' "$v"
  return 0
}

# Same rule as cloud_init.upgrade.check_step, applied to what the node really runs.
check_step() {
  local what=$1 cur=$2 c t
  IFS=. read -r -a c <<<"$cur"
  IFS=. read -r -a t <<<"$TARGET"
  if ((t[0] != c[0])); then
    refuse "kubernetesVersion $TARGET: changing the major version from $cur ($what) is not supported"
  fi
  if ((t[1] < c[1] || (t[1] == c[1] && t[2] < c[2]))); then
    refuse "kubernetesVersion $TARGET: downgrade from $cur ($what) refused; kubeadm cannot downgrade a cluster"
  fi
  if ((t[1] > c[1] + 1)); then
    refuse "kubernetesVersion $TARGET: skips a minor version from $cur ($what); kubeadm upgrades one minor at a time, so upgrade to ${c[0]}.$((c[1] + 1)).x first"
  fi
}

kubeadm_version() { upstream "$(query kubeadm version -o short || true)"; }
# shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not a shell expansion.
pkg_version() { upstream "$(query dpkg-query -W -f '${Version}' "$1" || true)"; }

cluster_version() {
  query kubectl --kubeconfig "$KUBECONFIG" -n kube-system get configmap kubeadm-config \
    -o jsonpath='{.data.ClusterConfiguration}' |
    sed -n 's/^kubernetesVersion:[[:space:]]*//p' | tr -d "\"'" || true
}

# The version of the kubelet that is running, as the Node reports it to the API server.
reported_kubelet_version() {
  upstream "$(query kubectl --kubeconfig "$KUBECONFIG" get node "$NODE_NAME" \
    -o jsonpath='{.status.nodeInfo.kubeletVersion}' || true)"
}

# Image tag of this node's kube-apiserver static pod; empty on a worker.
local_apiserver_version() {
  local manifest=$MANIFEST_DIR/kube-apiserver.yaml
  [[ -f $manifest ]] || return 0
  upstream "$(sed -n 's/^[[:space:]]*image:[[:space:]]*[^[:space:]]*kube-apiserver:\([^[:space:]]*\).*/\1/p' "$manifest" | head -n 1)"
}

APT_UPDATED=no
apt_update_once() {
  [[ $APT_UPDATED == yes ]] && return 0
  run apt-get -q -o DPkg::Lock::Timeout=120 update
  APT_UPDATED=yes
}

install_pkgs() {
  local p specs=()
  for p in "$@"; do specs+=("$p=$TARGET-*"); done
  apt_update_once
  run apt-mark unhold "$@"
  run apt-get install -y -q -o DPkg::Lock::Timeout=120 \
    -o Dpkg::Options::=--force-confold "${specs[@]}"
  run apt-mark hold "$@"
  for p in "$@"; do
    [[ $(pkg_version "$p") == "$TARGET" ]] ||
      fail "$p is not at $TARGET after apt-get install (dpkg reports '$(pkg_version "$p")')"
  done
}

preflight() {
  local v
  v=$(kubeadm_version)
  [[ -n $v ]] || fail "cannot read 'kubeadm version -o short': is kubeadm installed on this node?"
  check_step kubeadm "$v"
  v=$(pkg_version kubelet)
  [[ -n $v ]] || fail "cannot read the kubelet package version (dpkg-query -W kubelet)"
  check_step kubelet "$v"
  if [[ $ROLE != first-master ]]; then
    v=$(upstream "$(cluster_version)")
    [[ -n $v ]] || fail "cannot read the cluster version (kubeadm-config in kube-system) with $KUBECONFIG; is the API server reachable from $NODE_NAME?"
    [[ $v == "$TARGET" ]] ||
      refuse "the control plane runs $v, not $TARGET: upgrade the first master (ROLE=first-master) before $ROLE $NODE_NAME"
  fi
}

apt_source() {
  local left
  left=$(ms_left "$DEADLINE")
  ((left > 0)) || fail "out of time (UPGRADE_TIMEOUT=${UPGRADE_TIMEOUT}s) before the apt source; re-run to continue"
  left=$(((left + 999) / 1000))
  k8s_apt_use "$(k8s_apt_channel "$PACKAGE_MIRROR" "$TARGET")" "$APT_KEYRING" "$APT_SOURCE_FILE" "$((left < 120 ? left : 120))"
}

kubeadm_package() {
  if [[ $(kubeadm_version) == "$TARGET" ]]; then
    log "kubeadm already at $TARGET"
    return 0
  fi
  install_pkgs kubeadm
  [[ $(kubeadm_version) == "$TARGET" ]] ||
    fail "kubeadm reports '$(kubeadm_version)' after installing $TARGET"
}

control_plane() {
  if [[ $ROLE == first-master ]]; then
    if [[ $(upstream "$(cluster_version)") == "$TARGET" && $(local_apiserver_version) == "$TARGET" ]]; then
      log "control plane already at $TARGET"
      return 0
    fi
    run kubeadm upgrade plan "v$TARGET"
    run kubeadm upgrade apply -y "v$TARGET"
  elif [[ $ROLE == master && $(local_apiserver_version) == "$TARGET" ]]; then
    log "this master's control plane already at $TARGET"
  elif [[ $ROLE == worker && $(pkg_version kubelet) == "$TARGET" ]]; then
    # upgrade node comes before the kubelet package, so a kubelet at target means it ran.
    log "kubeadm upgrade node already done (kubelet package at $TARGET)"
  else
    run kubeadm upgrade node
  fi
}

kubelet_packages() {
  if [[ $(pkg_version kubelet) == "$TARGET" && $(pkg_version kubectl) == "$TARGET" ]]; then
    log "kubelet and kubectl packages already at $TARGET"
    return 0
  fi
  install_pkgs kubelet kubectl
}

# The kubelet's pod sandboxes use containerd's sandbox_image: it must follow the pause image of
# the new Kubernetes version, or kubeadm warns and the kubelet's image GC may remove it.
sandbox_image() {
  local current tag want pending=$CONTAINERD_CONFIG.restart-pending
  if [[ ! -f $CONTAINERD_CONFIG ]]; then
    log "no $CONTAINERD_CONFIG: containerd keeps its own sandbox image"
    return 0
  fi
  current=$(sed -n 's/^[[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONTAINERD_CONFIG" | head -n 1)
  if [[ -z $current ]]; then
    log "no sandbox_image in $CONTAINERD_CONFIG: containerd keeps its own sandbox image"
    return 0
  fi
  tag=$(query kubeadm config images list --kubernetes-version "v$TARGET" |
    sed -n 's#^.*/pause:\([^[:space:]]*\)$#\1#p' | head -n 1 || true)
  [[ -n $tag ]] || fail "'kubeadm config images list --kubernetes-version v$TARGET' names no pause image"
  want="${current%:*}:$tag"
  if [[ $current != "$want" ]]; then
    # The marker survives a failed restart: the re-run restarts containerd even though the
    # file already says the new image.
    : >"$pending"
    sed "s#^\([[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*\)\"[^\"]*\"#\1\"$want\"#" \
      "$CONTAINERD_CONFIG" >"$CONTAINERD_CONFIG.new"
    mv -f "$CONTAINERD_CONFIG.new" "$CONTAINERD_CONFIG"
    log "sandbox image $current -> $want"
  fi
  if [[ -e $pending ]]; then
    run systemctl restart containerd
    rm -f "$pending"
  else
    log "sandbox image already $want"
  fi
}

kubelet_restart() {
  if [[ $(reported_kubelet_version) == "$TARGET" ]] && query systemctl is-active --quiet kubelet; then
    log "kubelet already running $TARGET"
    return 0
  fi
  run systemctl daemon-reload
  run systemctl restart kubelet
  log "waiting for the kubelet to be active and to report $TARGET"
  until query systemctl is-active --quiet kubelet && [[ $(reported_kubelet_version) == "$TARGET" ]]; do
    if passed "$DEADLINE"; then
      fail "kubelet on $NODE_NAME not active at $TARGET within UPGRADE_TIMEOUT=${UPGRADE_TIMEOUT}s (Node reports '$(reported_kubelet_version)'); check 'journalctl -u kubelet' on the node, then re-run"
    fi
    sleep "$POLL_INTERVAL"
  done
}

holds() {
  local held p missing=()
  held=$(query apt-mark showhold || true)
  for p in kubeadm kubelet kubectl; do
    grep -qx "$p" <<<"$held" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) || run apt-mark hold "${missing[@]}"
}

main() {
  TARGET=$(upstream "${TARGET_VERSION:-}")
  [[ -n $TARGET ]] || refuse "TARGET_VERSION='${TARGET_VERSION:-}' is not a version like 1.34.1"
  ROLE=${ROLE:-}
  case $ROLE in
    first-master | master | worker) ;;
    *) refuse "ROLE='$ROLE' must be first-master, master or worker" ;;
  esac
  PACKAGE_MIRROR=${PACKAGE_MIRROR:-https://pkgs.k8s.io}
  export DEBIAN_FRONTEND=noninteractive
  UPGRADE_TIMEOUT=${UPGRADE_TIMEOUT:-1800}
  DEADLINE=$(deadline_in "$(seconds_env UPGRADE_TIMEOUT 1800)")
  NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
  if [[ $ROLE == first-master ]]; then
    KUBECONFIG=${KUBECONFIG:-/etc/kubernetes/admin.conf}
  else
    KUBECONFIG=${KUBECONFIG:-/etc/kubernetes/kubelet.conf}
  fi
  APT_SOURCE_FILE=${APT_SOURCE_FILE:-$K8S_APT_SOURCE}
  APT_KEYRING=${APT_KEYRING:-$K8S_APT_KEYRING}
  MANIFEST_DIR=${MANIFEST_DIR:-/etc/kubernetes/manifests}
  CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
  POLL_INTERVAL=${POLL_INTERVAL:-5}

  log "$ROLE $NODE_NAME -> $TARGET"
  preflight
  apt_source
  kubeadm_package
  control_plane
  kubelet_packages
  sandbox_image
  kubelet_restart
  holds
  log "$ROLE $NODE_NAME is at $TARGET"
}

# Fed through `bash -s`: reading the whole body before running it, and giving every command
# /dev/null as stdin, keeps apt-get or kubeadm from swallowing the rest of the script.
main "$@" </dev/null
