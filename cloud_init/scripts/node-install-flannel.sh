#!/usr/bin/env bash
# Installs flanneld (and, when its checksum is known, the flannel CNI plugin) at pinned versions,
# verified by sha256, makes the standard CNI plugins visible in CNI_BIN_DIR, and starts the
# flanneld unit (written by cloud-init next to this script). Re-running changes nothing.
#
# Inputs (environment):
#   FLANNELD_VERSION, FLANNELD_PATH        release tag and asset path under github.com/
#                                          ({arch} is replaced by the node's Debian arch)
#   FLANNELD_SHA256_<ARCH>                 expected digest (e.g. FLANNELD_SHA256_AMD64), required
#   FLANNEL_CNI_VERSION, FLANNEL_CNI_PATH  the same for the flannel CNI plugin
#   FLANNEL_CNI_SHA256_<ARCH>              expected digest; empty: the plugin is not installed and
#                                          flanneld's unit writes a bridge conflist instead
#   PACKAGE_MIRROR     optional: download from ${PACKAGE_MIRROR}/github.com/<path> instead
#   ARCH               Debian architecture (default: dpkg --print-architecture)
#   BIN_DIR            where flanneld goes (default /usr/local/bin)
#   CNI_BIN_DIR        where containerd finds CNI plugins (default /opt/cni/bin)
#   DISTRO_CNI_DIR     where Debian/Ubuntu's containernetworking-plugins put them (/usr/lib/cni)
#   DOWNLOAD_TIMEOUT   seconds per download, retries included (default 300)
#   START_FLANNELD     "no" to skip enabling/starting the unit (default yes)
# Exit status: 0 installed; 1 download or checksum failure; 2 bad input.
set -euo pipefail

PROG=node-install-flannel
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {
  ARCH=${ARCH:-$(dpkg --print-architecture)}
  BIN_DIR=${BIN_DIR:-/usr/local/bin}
  CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
  DISTRO_CNI_DIR=${DISTRO_CNI_DIR:-/usr/lib/cni}
  DOWNLOAD_TIMEOUT=${DOWNLOAD_TIMEOUT:-300}
  START_FLANNELD=${START_FLANNELD:-yes}

  arch_upper=${ARCH^^}

  # install_asset NAME VERSION PATH SHA256 DEST: downloads the release asset, checks its digest
  # and installs it; does nothing when DEST already has that digest.
  install_asset() {
    local name=$1 version=$2 path=$3 sha=$4 dest=$5 url tmp got
    [[ $sha =~ ^[0-9a-f]{64}$ ]] || die 2 "no valid sha256 for ${name} on ${ARCH}: '${sha}'"
    if [[ -f $dest ]] && [[ "$(sha256sum "$dest" | cut -d' ' -f1)" == "$sha" ]]; then
      return 0
    fi
    path=${path//\{version\}/$version}
    path=${path//\{arch\}/$ARCH}
    if [[ -n ${PACKAGE_MIRROR:-} ]]; then
      url="${PACKAGE_MIRROR%/}/github.com/${path}"
    else
      url="https://github.com/${path}"
    fi
    tmp=$(mktemp "${dest}.XXXXXX")
    if ! curl -fsSL --retry 5 --retry-delay 3 --retry-all-errors --connect-timeout 10 \
      --max-time "$DOWNLOAD_TIMEOUT" -o "$tmp" "$url"; then
      rm -f "$tmp"
      die 1 "could not download ${name} ${version} from ${url} within ${DOWNLOAD_TIMEOUT}s"
    fi
    got=$(sha256sum "$tmp" | cut -d' ' -f1)
    if [[ $got != "$sha" ]]; then
      rm -f "$tmp"
      die 1 "checksum mismatch for ${name} ${version} from ${url}: expected ${sha}, got ${got}; nothing installed"
    fi
    chmod 0755 "$tmp"
    mv -f "$tmp" "$dest"
    log "installed ${name} ${version} (${ARCH}) at ${dest}"
  }

  : "${FLANNELD_VERSION:?FLANNELD_VERSION is required}" "${FLANNELD_PATH:?FLANNELD_PATH is required}"
  sha_var="FLANNELD_SHA256_${arch_upper}"
  mkdir -p "$BIN_DIR" "$CNI_BIN_DIR"
  install_asset flanneld "$FLANNELD_VERSION" "$FLANNELD_PATH" "${!sha_var:-}" "$BIN_DIR/flanneld"

  cni_sha_var="FLANNEL_CNI_SHA256_${arch_upper}"
  if [[ -n ${!cni_sha_var:-} ]]; then
    : "${FLANNEL_CNI_VERSION:?FLANNEL_CNI_VERSION is required}" "${FLANNEL_CNI_PATH:?FLANNEL_CNI_PATH is required}"
    install_asset flannel-cni-plugin "$FLANNEL_CNI_VERSION" "$FLANNEL_CNI_PATH" \
      "${!cni_sha_var}" "$CNI_BIN_DIR/flannel"
  fi

  # containerd is configured to look in CNI_BIN_DIR only; Debian/Ubuntu's containernetworking-plugins
  # install to /usr/lib/cni. Link what the pod network uses unless a package (kubernetes-cni)
  # already put a real binary there.
  for plugin in bridge host-local portmap loopback; do
    if [[ ! -e "$CNI_BIN_DIR/$plugin" ]]; then
      [[ -x "$DISTRO_CNI_DIR/$plugin" ]] ||
        die 1 "CNI plugin '${plugin}' is in neither ${CNI_BIN_DIR} nor ${DISTRO_CNI_DIR}: install containernetworking-plugins"
      ln -s "$DISTRO_CNI_DIR/$plugin" "$CNI_BIN_DIR/$plugin"
    fi
  done

  if [[ $START_FLANNELD != no ]]; then
    systemctl daemon-reload
    systemctl enable flanneld.service >/dev/null
    # --no-block: flanneld waits (and retries) until the discovery etcd answers; the VMs boot in
    # parallel, so cloud-init must not wait for it.
    systemctl start --no-block flanneld.service
  fi
}

main "$@" </dev/null
