#!/usr/bin/env bash
# master-apiserver-config.sh: bring a running master's kube-apiserver to the stack's
# hardening settings (encryption at rest, audit log, OIDC): install the files it reads, then
# let kubeadm regenerate its static pod from a ClusterConfiguration with the new flags, and
# mark the manifest with a digest of the flags and files (the kubelet restarts a static pod
# when its manifest changes, not when a file it mounts does: a new audit policy alone would
# otherwise never be read), then wait for the pod that carries the mark. On
# the first master the configuration is also stored in the cluster (kubeadm-config), so
# control-plane joins and `kubeadm upgrade` keep the flags. A master whose files and
# manifest already say all of it is left alone (what happens right after bring-up).
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   FILES_TAR_B64        required: base64 gzip tar of paths under KUBERNETES_DIR (the
#                        encryption config, the audit policy), written 0600.
#   KUBEADM_CONFIG_B64   required: base64 Init- and ClusterConfiguration for this master.
#   APISERVER_FLAGS      the flags that configuration gives kube-apiserver, `--name=value`
#                        a line: when the manifest has all of them and no file changed,
#                        nothing is done.
#   FIRST_MASTER         "true": also `kubeadm init phase upload-config kubeadm`.
#   ENCRYPTED            "true": after the first master turned encryption on, every Secret is
#                        written again, so that none stays in plain text in etcd.
#   RECONFIGURE_TIMEOUT  seconds in all (default 600).
#   KUBERNETES_DIR       default /etc/kubernetes.
#   API_URL              default https://127.0.0.1:6443 (this master's kube-apiserver).
#   RETRY_DELAY          seconds between checks (default 5).
# Exit status: 0 configured (or already), 1 the API server did not come back (stderr says
# what to check), 2 bad input.
set -euo pipefail

PROG=master-apiserver-config
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/apiserver.sh
source "${BASH_SOURCE[0]%/*}/lib/apiserver.sh" # inlined when shipped (cloud_init.script)

ANNOTATION=openstack-k8s.io/apiserver-config-sha256

already_configured() {
  local manifest=$DIR/manifests/kube-apiserver.yaml flag
  [[ -f $manifest ]] || return 1
  while IFS= read -r flag; do
    [[ -z $flag ]] || grep -qxF -- "    - $flag" "$manifest" || return 1
  done <<<"${APISERVER_FLAGS:-}"
}

# Install the files; 0 when every one was already in place, 1 when one changed.
install_files() {
  local changed=0 f rel
  base64 -d <<<"$FILES_TAR_B64" | tar -xzf - -C "$STAGE" || die 2 "FILES_TAR_B64 is not a gzip tar"
  while IFS= read -r f; do
    rel=${f#"$STAGE"/}
    [[ $rel == /* || $rel == *..* ]] && die 2 "refusing path $rel"
    FILES+=("$rel")
    if ! cmp -s "$f" "$DIR/$rel"; then
      install -D -m 0600 "$f" "$DIR/$rel"
      log "installed $DIR/$rel"
      changed=1
    fi
  done < <(find "$STAGE" -type f | sort)
  rm -rf "$STAGE"
  return "$changed"
}

# What kube-apiserver is to run with: its flags and the files they name.
config_digest() {
  local rel
  {
    printf '%s\n' "${APISERVER_FLAGS:-}"
    for rel in "${FILES[@]}"; do
      printf '%s\n' "$rel"
      cat "$DIR/$rel"
    done
  } | sha256sum | cut -d' ' -f1
}

api_ready() { curl -fsk --max-time 5 "$API_URL/readyz" >/dev/null 2>&1; }

main() {
  [[ -n ${FILES_TAR_B64:-} ]] || die 2 "FILES_TAR_B64 is not set"
  [[ -n ${KUBEADM_CONFIG_B64:-} ]] || die 2 "KUBEADM_CONFIG_B64 is not set"
  DIR=${KUBERNETES_DIR:-/etc/kubernetes}
  API_URL=${API_URL:-https://127.0.0.1:6443}
  DELAY_MS=$(seconds_env RETRY_DELAY 5)
  local deadline config files_changed=0 digest
  FILES=()
  deadline=$(($(now_ms) + $(seconds_env RECONFIGURE_TIMEOUT 600)))
  STAGE=$(mktemp -d)
  config=$DIR/kubeadm/apiserver.yaml
  mkdir -p "$DIR/kubeadm" /var/log/kubernetes/audit
  (umask 077 && base64 -d <<<"$KUBEADM_CONFIG_B64" >"$config") || die 2 "KUBEADM_CONFIG_B64 is not base64"

  install_files || files_changed=1
  if ((files_changed == 0)) && already_configured; then
    log "kube-apiserver already runs with these flags and files"
    exit 0
  fi
  timeout 120 kubeadm init phase control-plane apiserver --config "$config" >&2 ||
    die 1 "kubeadm could not write the kube-apiserver manifest from $config"
  if [[ ${FIRST_MASTER:-false} == true ]]; then
    timeout 120 kubeadm init phase upload-config kubeadm --config "$config" --kubeconfig "$DIR/admin.conf" >&2 ||
      die 1 "kubeadm could not store the new ClusterConfiguration in the cluster"
  fi
  digest=$(config_digest)
  annotate_manifest "$DIR/manifests/kube-apiserver.yaml" "$ANNOTATION" "$digest"
  wait_for "$deadline" apiserver_pod_runs "$ANNOTATION" "$digest" || die 1 "the kubelet did not restart" \
    "kube-apiserver on $(hostname) with the new flags and files within RECONFIGURE_TIMEOUT; check" \
    "'journalctl -u kubelet' and 'crictl pods --name kube-apiserver', then run pulumi up again"
  wait_for "$deadline" api_ready || die 1 "kube-apiserver on $(hostname) did not answer $API_URL/readyz within" \
    "RECONFIGURE_TIMEOUT; check 'crictl ps -a --name kube-apiserver' and its logs (a bad flag or file)"
  if [[ ${FIRST_MASTER:-false} == true && ${ENCRYPTED:-false} == true ]]; then
    # Secrets written before encryption was on stay readable (identity is the last provider)
    # but sit in plain text until written again.
    timeout 300 kubectl --kubeconfig "$DIR/admin.conf" get secrets --all-namespaces -o json |
      timeout 300 kubectl --kubeconfig "$DIR/admin.conf" replace -f - >/dev/null ||
      die 1 "could not rewrite the Secrets with the encryption key; run this again"
    log "every Secret rewritten with the encryption key"
  fi
  log "kube-apiserver reconfigured"
}

main "$@" </dev/null
