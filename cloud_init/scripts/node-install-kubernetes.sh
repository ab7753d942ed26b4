#!/usr/bin/env bash
# Installs kubeadm, kubelet and kubectl at exactly KUBERNETES_VERSION from the pkgs.k8s.io apt
# repository (or a mirror with the same layout) and holds them against unattended upgrades,
# and cri-tools (crictl) from the same repository: kubeadm >= 1.32 no longer depends on it.
# Does NOT run kubeadm: init/join are remote commands run once cloud-init is done.
#
# Contract with the rolling-upgrade scripts (docs/node-bootstrap.md): the apt source is the one
# line in /etc/apt/sources.list.d/kubernetes.list, signed by the keyring
# /etc/apt/keyrings/kubernetes-apt-keyring.gpg; the same key signs every minor's repository.
#
# Inputs (environment):
#   KUBERNETES_VERSION   required, MAJOR.MINOR.PATCH (e.g. 1.33.5)
#   PACKAGE_MIRROR       optional base URL replacing https://pkgs.k8s.io (same layout)
#   K8S_APT_KEY_FINGERPRINT  fingerprint the repository key must have (default: pkgs.k8s.io's)
#   DOWNLOAD_TIMEOUT     seconds for the key download, retries included (default 120)
#   APT_LOCK_TIMEOUT     seconds to wait for the dpkg lock (default 300)
#   NODE_ROOT            prefix for files written (tests only; default: the real root)
# Exit status: 0 installed (or already at the version); 1 failure; 2 bad input.
set -euo pipefail

PROG=node-install-kubernetes
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/apt.sh
source "${BASH_SOURCE[0]%/*}/lib/apt.sh" # inlined when shipped (cloud_init.script)

main() {
  NODE_ROOT=${NODE_ROOT:-}
  DOWNLOAD_TIMEOUT=${DOWNLOAD_TIMEOUT:-120}
  APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-300}
  PACKAGES=(kubeadm kubelet kubectl)
  # Not pinned to a version: the minor's repository carries the cri-tools of that minor.
  TOOLS=(cri-tools)

  version=${KUBERNETES_VERSION:-}
  [[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] ||
    die 2 "KUBERNETES_VERSION must be MAJOR.MINOR.PATCH (e.g. 1.33.5), got '${version}'"
  repo=$(k8s_apt_channel "${PACKAGE_MIRROR:-}" "$version")

  installed_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
  }

  all_installed=yes
  for pkg in "${PACKAGES[@]}"; do
    # pkgs.k8s.io versions look like 1.33.5-1.1: the Kubernetes version plus a package revision.
    [[ "$(installed_version "$pkg")" == "${version}-"* ]] || all_installed=no
  done
  for pkg in "${TOOLS[@]}"; do
    [[ -n "$(installed_version "$pkg")" ]] || all_installed=no
  done
  if [[ $all_installed == yes ]] && [[ -f "$NODE_ROOT$K8S_APT_SOURCE" ]] &&
    [[ "$(<"$NODE_ROOT$K8S_APT_SOURCE")" == "$(k8s_apt_line "$repo" "$K8S_APT_KEYRING")" ]]; then
    log "kubeadm, kubelet, kubectl already at ${version}"
    exit 0
  fi

  k8s_apt_use "$repo" "$K8S_APT_KEYRING" "$K8S_APT_SOURCE" "$DOWNLOAD_TIMEOUT" "$NODE_ROOT"

  apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@"
  }
  apt_get update -q || die 1 "apt-get update failed: is ${repo} reachable from the node?"
  apt-mark unhold "${PACKAGES[@]}" >/dev/null
  versions=()
  for pkg in "${PACKAGES[@]}"; do
    versions+=("${pkg}=${version}-*")
  done
  apt_get install -y --no-install-recommends --allow-downgrades "${versions[@]}" "${TOOLS[@]}" ||
    die 1 "could not install ${versions[*]} ${TOOLS[*]} from ${repo}: does the repository carry ${version}?"
  apt-mark hold "${PACKAGES[@]}" >/dev/null
  for pkg in "${PACKAGES[@]}"; do
    [[ "$(installed_version "$pkg")" == "${version}-"* ]] ||
      die 1 "${pkg} is at '$(installed_version "$pkg")' after install, wanted ${version}"
  done
  systemctl enable kubelet >/dev/null
  log "kubeadm, kubelet, kubectl ${version} installed and held"
}

main "$@" </dev/null
