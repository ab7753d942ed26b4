#!/usr/bin/env bash
# master-encryption-rotate.sh: one step of rotating the key that encrypts Secrets in etcd,
# on one running master, in the order Kubernetes documents for several API servers (each
# step goes through every master, one after another, before the next step starts):
#   add      the new key as a reading key, the old one still first (still writing)
#   promote  the new key first (writing), the old one still reading
#   rewrite  (once, on the first master) every Secret written again, now with the new key
#   drop     the new key only
# identity stays last throughout, so Secrets written before encryption was on still read.
#
# kube-apiserver reads its EncryptionConfiguration only when it starts, and the kubelet
# restarts a static pod when its manifest changes, not when a file it mounts does. So a step
# writes the file's sha256 into an annotation of kube-apiserver's manifest (the kubelet then
# replaces the pod), and waits for a ready kube-apiserver pod carrying that annotation, then
# for /readyz. (--encryption-provider-config-automatic-reload would spare the restart, but
# adding the flag would reconfigure every master of every stack, rotation or not.) The next
# `kubeadm init phase control-plane` or `kubeadm upgrade` writes the manifest without the
# annotation: that is one more restart, with the same file.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   PHASE                  required: add, promote, drop or rewrite.
#   KEY_NAME               required: the new key's name, key<generation>.
#   ENCRYPTION_CONFIG_B64  add/promote/drop, required: base64 EncryptionConfiguration of
#                          this step, installed 0600 as encryption/config.yaml.
#   FINAL_CONFIG_B64       add/promote/drop, required: base64 EncryptionConfiguration with
#                          the new key only. A master that already has it (made at this
#                          generation, or past its drop) keeps it: no step goes back.
#   ROTATE_TIMEOUT         seconds in all (default 600).
#   KUBERNETES_DIR         default /etc/kubernetes.
#   API_URL                default https://127.0.0.1:6443 (this master's kube-apiserver).
#   RETRY_DELAY            seconds between checks (default 5).
# A master without a kube-apiserver manifest (it has not joined yet) is left alone: it
# starts with the file its PKI brought, the new key only.
# Exit status: 0 done (or already), 1 kube-apiserver did not come back or the Secrets were
# not all rewritten (stderr says what to check; a re-run goes on from there), 2 bad input.
set -euo pipefail

PROG=master-encryption-rotate
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)
# shellcheck source-path=SCRIPTDIR source=lib/apiserver.sh
source "${BASH_SOURCE[0]%/*}/lib/apiserver.sh" # inlined when shipped (cloud_init.script)

ANNOTATION=openstack-k8s.io/encryption-config-sha256

# decode NAME PATH: the base64 value of $NAME into PATH, refused unless an EncryptionConfiguration.
decode() {
  local name=$1 path=$2
  [[ -n ${!name:-} ]] || die 2 "$name is not set"
  base64 -d <<<"${!name}" >"$path" 2>/dev/null || die 2 "$name is not base64"
  grep -qx 'kind: EncryptionConfiguration' "$path" || die 2 "$name is not an EncryptionConfiguration"
}

annotated_hash() { manifest_annotation "$MANIFEST" "$ANNOTATION"; }
annotate() { annotate_manifest "$MANIFEST" "$ANNOTATION" "$1"; }
pod_runs() { apiserver_pod_runs "$ANNOTATION" "$1"; }

api_ready() { curl -fsk --max-time 5 "$API_URL/readyz" >/dev/null 2>&1; }

# A config holding a key this rotation does not know would lose it: the Secrets under it
# could no longer be read (keyGeneration lowered, or the file changed by hand).
known_keys_only() {
  local line
  while IFS= read -r line; do
    [[ $line != *"secret: "* ]] || grep -qxF -- "$line" "$1" ||
      die 2 "$CONFIG holds a key that $KEY_NAME's rotation does not carry (was apiServer.encryption.keyGeneration" \
        "lowered?); nothing changed"
  done <"$CONFIG"
}

install_phase() {
  local deadline=$1 want hash
  STAGE=$(mktemp -d)
  trap 'rm -rf "$STAGE"' EXIT
  decode ENCRYPTION_CONFIG_B64 "$STAGE/step.yaml"
  decode FINAL_CONFIG_B64 "$STAGE/final.yaml"
  MANIFEST=$DIR/manifests/kube-apiserver.yaml
  CONFIG=$DIR/encryption/config.yaml
  if [[ ! -f $MANIFEST ]]; then
    log "no kube-apiserver on $(hostname) yet: it starts with $KEY_NAME from its PKI files; nothing to do"
    return 0
  fi
  want=$STAGE/step.yaml
  if cmp -s "$STAGE/final.yaml" "$CONFIG"; then
    want=$STAGE/final.yaml
  elif [[ $PHASE == add && -f $CONFIG ]]; then
    known_keys_only "$want"
  fi
  read -r hash _ < <(sha256sum "$want")
  if cmp -s "$want" "$CONFIG" && [[ $(annotated_hash) == "$hash" ]] && pod_runs "$hash"; then
    wait_for "$deadline" api_ready || die 1 "kube-apiserver on $(hostname) runs with $KEY_NAME ($PHASE) but did" \
      "not answer $API_URL/readyz within ROTATE_TIMEOUT; check 'crictl ps -a --name kube-apiserver' and its logs"
    log "kube-apiserver already runs with $KEY_NAME ($PHASE)"
    return 0
  fi
  cmp -s "$want" "$CONFIG" || install -D -m 0600 "$want" "$CONFIG"
  [[ $(annotated_hash) == "$hash" ]] || annotate "$hash"
  log "installed $CONFIG ($PHASE $KEY_NAME); waiting for the kubelet to restart kube-apiserver"
  wait_for "$deadline" pod_runs "$hash" || die 1 "the kubelet did not restart kube-apiserver on $(hostname) with" \
    "$KEY_NAME ($PHASE) within ROTATE_TIMEOUT; check 'journalctl -u kubelet' and 'crictl pods --name kube-apiserver'," \
    "then run pulumi up again (it goes on from here)"
  wait_for "$deadline" api_ready || die 1 "kube-apiserver on $(hostname) did not answer $API_URL/readyz within" \
    "ROTATE_TIMEOUT with $KEY_NAME ($PHASE); check 'crictl ps -a --name kube-apiserver' and its logs," \
    "then run pulumi up again (it goes on from here)"
  log "kube-apiserver ready with $KEY_NAME ($PHASE)"
}

# One pass over every Secret, bounded by what is left of the deadline. A Secret changed
# between get and replace fails with a conflict: it was written with the new key anyway,
# and the next pass rewrites it again.
rewrite_once() {
  local left
  left=$(ms_left "$1")
  ((left > 0)) || return 1
  timeout "$(ms_to_s "$left")" kubectl --kubeconfig "$ADMIN_CONF" get secrets --all-namespaces -o json |
    timeout "$(ms_to_s "$left")" kubectl --kubeconfig "$ADMIN_CONF" replace -f - >/dev/null
}

rewrite_secrets() {
  local deadline=$1 marker=$DIR/encryption/rewritten
  ADMIN_CONF=$DIR/admin.conf
  [[ -f $ADMIN_CONF ]] || die 2 "$ADMIN_CONF is missing: the rewrite runs on the first master"
  if [[ -f $marker && $(<"$marker") == "$KEY_NAME" ]]; then
    log "every Secret already rewritten with $KEY_NAME"
    return 0
  fi
  wait_for "$deadline" rewrite_once "$deadline" || die 1 "could not rewrite every Secret with $KEY_NAME within" \
    "ROTATE_TIMEOUT (every master still reads both keys: nothing is lost); check 'kubectl get secrets -A'," \
    "then run pulumi up again"
  printf '%s\n' "$KEY_NAME" >"$marker"
  log "every Secret rewritten with $KEY_NAME"
}

main() {
  [[ ${KEY_NAME:-} =~ ^key[0-9]+$ ]] || die 2 "KEY_NAME must be key<generation>, got '${KEY_NAME:-}'"
  DIR=${KUBERNETES_DIR:-/etc/kubernetes}
  API_URL=${API_URL:-https://127.0.0.1:6443}
  DELAY_MS=$(seconds_env RETRY_DELAY 5)
  local bound deadline
  bound=$(seconds_env ROTATE_TIMEOUT 600) # on its own: a bad value must stop the script here
  deadline=$(deadline_in "$bound")
  case ${PHASE:-} in
    add | promote | drop) install_phase "$deadline" ;;
    rewrite) rewrite_secrets "$deadline" ;;
    *) die 2 "PHASE must be add, promote, drop or rewrite, got '${PHASE:-}'" ;;
  esac
}

main "$@" </dev/null
