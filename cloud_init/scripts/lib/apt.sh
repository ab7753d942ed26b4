# The Kubernetes apt repository, as node-install-kubernetes.sh sets it up at boot and
# upgrade-node.sh moves it to the next minor (docs/node-bootstrap.md, "apt contract"): one
# source line, signed by one keyring, whose key must have K8S_APT_KEY_FINGERPRINT.
# Not run on its own: sourced after lib/common.sh (die, log); inlined when a script is shipped.
# shellcheck shell=bash

# pkgs.k8s.io's signing key, the same for every minor. The program passes
# cloud_init.versions.KUBERNETES_APT_KEY_FINGERPRINT in the environment; this is the fallback.
K8S_APT_KEY_FINGERPRINT=${K8S_APT_KEY_FINGERPRINT:-DE15B14486CD377B9E876E1A234654DA9A296436}
K8S_APT_KEYRING=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
K8S_APT_SOURCE=/etc/apt/sources.list.d/kubernetes.list

# k8s_apt_channel BASE VERSION: the repository of VERSION's minor, e.g.
# https://pkgs.k8s.io/core:/stable:/v1.34/deb/ (BASE empty: pkgs.k8s.io; a mirror has its layout).
k8s_apt_channel() {
  local base=${1:-https://pkgs.k8s.io} version=$2
  printf '%s/core:/stable:/v%s/deb/\n' "${base%/}" "${version%.*}"
}

# k8s_apt_line CHANNEL KEYRING: the one line of the source file.
k8s_apt_line() { printf 'deb [signed-by=%s] %s /\n' "$2" "$1"; }

# k8s_apt_use CHANNEL KEYRING SOURCE_FILE TIMEOUT [ROOT]: point apt at CHANNEL (the files are
# written under ROOT, tests only; the line names KEYRING as apt sees it). Nothing happens when
# the source file already names it and the keyring is there. Otherwise the channel's key is
# downloaded (within TIMEOUT seconds), accepted only with K8S_APT_KEY_FINGERPRINT (a mirror
# must serve pkgs.k8s.io's key), installed, and the source line is written last: it says that
# the key for it is in place. Fetching the key again on a new minor also renews a key file
# whose expiry pkgs.k8s.io has since extended.
k8s_apt_use() {
  local channel=$1 timeout=$4 root=${5:-} line tmp fingerprints
  local keyring=$root$2 source_file=$root$3
  line=$(k8s_apt_line "$channel" "$2")
  if [[ -f $source_file && $(<"$source_file") == "$line" && -s $keyring ]]; then
    log "apt source already at $channel"
    return 0
  fi
  tmp=$(mktemp -d)
  if ! curl -fsSL --retry 5 --retry-delay 3 --retry-all-errors --connect-timeout 10 \
    --max-time "$timeout" -o "$tmp/Release.key" "${channel}Release.key"; then
    rm -rf "$tmp"
    die 1 "could not download ${channel}Release.key within ${timeout}s: check the node's egress or packageMirror"
  fi
  fingerprints=$(GNUPGHOME=$tmp timeout 60 gpg --batch --with-colons --show-keys "$tmp/Release.key" |
    sed -n 's/^fpr:\([^:]*:\)\{8\}\([^:]*\):.*/\2/p' || true)
  if ! grep -qx "$K8S_APT_KEY_FINGERPRINT" <<<"$fingerprints"; then
    rm -rf "$tmp"
    die 1 "${channel}Release.key is not the Kubernetes release key (want $K8S_APT_KEY_FINGERPRINT, got: ${fingerprints//$'\n'/ }); check packageMirror"
  fi
  mkdir -p "$(dirname "$keyring")" "$(dirname "$source_file")"
  if ! GNUPGHOME=$tmp timeout 60 gpg --batch --yes --dearmor -o "$tmp/keyring.gpg" "$tmp/Release.key"; then
    rm -rf "$tmp"
    die 1 "could not dearmor ${channel}Release.key"
  fi
  chmod 0644 "$tmp/keyring.gpg"
  # Same directory, then rename: apt never reads half a keyring or half a line.
  mv -f "$tmp/keyring.gpg" "$keyring.new"
  mv -f "$keyring.new" "$keyring"
  printf '%s\n' "$line" >"$source_file.new"
  mv -f "$source_file.new" "$source_file"
  rm -rf "$tmp"
  log "apt source switched to $channel"
}
