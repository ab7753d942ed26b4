#!/usr/bin/env bash
# node-join.sh: join this node to the cluster with `kubeadm join` (every master but the first,
# and every worker), retrying until a deadline, doing nothing on a node that already joined.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   KUBEADM_JOIN_CONFIG_B64  required: base64 of the complete kubeadm JoinConfiguration
#                            (bootstrap token and CA pin inside). It reaches disk only as a
#                            0600 file under RUNTIME_DIR (tmpfs), removed on every exit path,
#                            and never appears on a command line or in the output.
#   JOIN_TIMEOUT             seconds for the whole join, retries included (default 600).
#   RETRY_DELAY              first pause between attempts in seconds, doubled after each
#                            failure up to RETRY_DELAY_MAX (defaults 5 and 60).
#   PRESERVE_PKI             "true" on control-plane nodes whose CA and service-account keys
#                            cloud-init placed under KUBERNETES_DIR/pki: `kubeadm reset` wipes
#                            that directory, so it is saved first and restored after each reset.
#   KUBELET_GRACE            seconds an installed kubelet gets to turn active before the node
#                            counts as half-joined and is reset (default 30).
#   RESET_TIMEOUT            bound on each `kubeadm reset -f` (default 120).
#   KUBERNETES_DIR           default /etc/kubernetes.
#   RUNTIME_DIR              where the join config is written, default /run.
# Exit status: 0 joined (or already was), 1 not joined by the deadline (stderr says what to
# check), 2 bad input.
set -euo pipefail

WORK=""

PROG=node-join
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

kubelet_active_within() {
  local until=$(($(now_ms) + $1))
  while :; do
    systemctl is-active --quiet kubelet && return 0
    (($(now_ms) < until)) || return 1
    sleep 1
  done
}

reset_node() {
  timeout "$RESET_TIMEOUT" kubeadm reset -f >>"$WORK/reset.log" 2>&1 ||
    echo "node-join: kubeadm reset -f failed; see the next attempt's output" >&2
  if [[ $PRESERVE_PKI == true && -d $WORK/pki ]]; then
    mkdir -p "$PKI_DIR"
    cp -a "$WORK/pki/." "$PKI_DIR/"
  fi
}

api_endpoint() {
  sed -nE "s/^[[:space:]]*apiServerEndpoint:[[:space:]]*[\"']?([^\"' ]+).*/\1/p" "$1" | head -n 1
}

explain_failure() {
  local attempts=$1 endpoint=$2 host port reach
  {
    echo "node-join: $(hostname) did not join within JOIN_TIMEOUT=${JOIN_TIMEOUT:-600}s ($attempts attempts)."
    echo "  last kubeadm join output:"
    tail -n 20 "$WORK/join.log" 2>/dev/null | redact | indent
    echo "  what to check:"
    if [[ -n $endpoint ]]; then
      host=${endpoint%:*} port=${endpoint##*:}
      host=${host#[} host=${host%]}
      reach="NOT reachable"
      # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
      timeout 3 bash -c ': </dev/tcp/"$1"/"$2"' _ "$host" "$port" 2>/dev/null && reach="reachable"
      echo "  - API endpoint $endpoint is $reach from this node (security group on its port,"
      echo "    the VIP or load balancer, kube-apiserver on the first master)."
    fi
    echo "  - the bootstrap token: it lives TOKEN_TTL; an expired one fails discovery with"
    echo "    'token id ... is invalid' or 'could not find a JWS signature'. A plain 'pulumi up'"
    echo "    retries with the same token; past its lifetime, mint a fresh one with"
    echo "    pulumi up --replace \"\$(pulumi stack --show-urns | grep -o 'urn:[^ ]*::$(hostname)-token')\""
    echo "  - the CA pin: 'public key ... not pinned' means caCertHashes is not the cluster CA's."
    echo "  - kubelet on this node (journalctl -u kubelet, last lines):"
    timeout 10 journalctl -u kubelet --no-pager -n 20 2>&1 | redact | indent || true
  } >&2
}

main() {
  umask 077
  local timeout_ms delay_ms max_delay_ms grace_ms
  timeout_ms=$(seconds_env JOIN_TIMEOUT 600)
  delay_ms=$(seconds_env RETRY_DELAY 5)
  max_delay_ms=$(seconds_env RETRY_DELAY_MAX 60)
  grace_ms=$(seconds_env KUBELET_GRACE 30)
  RESET_TIMEOUT=$(ms_to_s "$(seconds_env RESET_TIMEOUT 120)")
  KUBERNETES_DIR=${KUBERNETES_DIR:-/etc/kubernetes}
  PKI_DIR=$KUBERNETES_DIR/pki
  PRESERVE_PKI=${PRESERVE_PKI:-false}
  [[ -n ${KUBEADM_JOIN_CONFIG_B64:-} ]] || die 2 "KUBEADM_JOIN_CONFIG_B64 is not set"
  local deadline=$(($(now_ms) + timeout_ms))

  if [[ -e $KUBERNETES_DIR/kubelet.conf ]] && kubelet_active_within "$grace_ms"; then
    echo "node-join: $(hostname) already joined ($KUBERNETES_DIR/kubelet.conf present, kubelet active): nothing to do"
    return 0
  fi

  WORK=$(mktemp -d "${RUNTIME_DIR:-/run}/node-join.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  trap 'exit 129' HUP INT TERM
  local cfg=$WORK/join.yaml
  printf '%s' "$KUBEADM_JOIN_CONFIG_B64" | base64 -d >"$cfg" 2>/dev/null ||
    die 2 "KUBEADM_JOIN_CONFIG_B64 is not valid base64"
  unset KUBEADM_JOIN_CONFIG_B64
  [[ -s $cfg ]] || die 2 "KUBEADM_JOIN_CONFIG_B64 decodes to an empty file"
  local endpoint
  endpoint=$(api_endpoint "$cfg")
  if [[ $PRESERVE_PKI == true && -d $PKI_DIR ]]; then
    cp -a "$PKI_DIR" "$WORK/pki"
  fi

  if [[ -e $KUBERNETES_DIR/kubelet.conf ]]; then
    echo "node-join: kubelet.conf present but kubelet not active: resetting a half-done join"
    reset_node
  fi

  local attempt=0 rc left
  while :; do
    left=$((deadline - $(now_ms)))
    ((left > 0)) || break
    attempt=$((attempt + 1))
    echo "node-join: attempt $attempt: kubeadm join (${endpoint:-endpoint from config}, $(ms_to_s "$left")s left)"
    rc=0
    timeout "$(ms_to_s "$left")" kubeadm join --config "$cfg" >"$WORK/join.log" 2>&1 || rc=$?
    if ((rc == 0)); then
      echo "node-join: $(hostname) joined the cluster after $attempt attempt(s)"
      return 0
    fi
    ((rc == 124)) && echo "node-join: attempt $attempt timed out at the deadline" >&2
    echo "node-join: attempt $attempt failed (exit $rc):" >&2
    tail -n 10 "$WORK/join.log" | redact | indent >&2
    reset_node
    left=$((deadline - $(now_ms)))
    ((left > 0)) || break
    sleep "$(ms_to_s $((delay_ms < left ? delay_ms : left)))"
    delay_ms=$((delay_ms * 2 < max_delay_ms ? delay_ms * 2 : max_delay_ms))
  done
  explain_failure "$attempt" "$endpoint"
  exit 1
}

main "$@" </dev/null
