#!/usr/bin/env bash
# master-init.sh: `kubeadm init` on the first master, once, bounded, and wait until the API
# answers. A first master that is already initialised is left alone; an init that died half
# way is reset and retried.
#
# Run as root by a pulumi-command remote.Command: `sudo bash -s`, stdin being
# `export KEY='value'` lines followed by this text. Inputs (environment):
#   KUBEADM_INIT_CONFIG  the InitConfiguration/ClusterConfiguration cloud-init wrote
#                        (default /etc/kubernetes/kubeadm/init.yaml).
#   INIT_TIMEOUT         seconds for everything, retries and the API wait included (default 600).
#   INIT_ATTEMPTS        kubeadm init attempts at most (default 3).
#   INIT_SKIP_PHASES     passed as --skip-phases when not empty (default: none).
#   INIT_UPLOAD_CERTS    "true" adds --upload-certs (control-plane joins fetch the certs with
#                        the certificateKey); default false.
#   API_GRACE            seconds an already-initialised master's API gets to answer again, e.g.
#                        after a reboot (default 120, within INIT_TIMEOUT).
#   RETRY_DELAY          seconds between attempts and between API probes (default 10).
#   KUBERNETES_DIR       default /etc/kubernetes.
#   INIT_MARKER          written once init and the API wait succeeded; default
#                        /var/lib/kubelet/kubeadm-init.done, a directory `kubeadm reset`
#                        empties, so a hand reset also forgets it.
#   PRESERVE_PKI         "true" when cloud-init placed the cluster's CA keys under
#                        KUBERNETES_DIR/pki: saved first, put back after each `kubeadm reset`
#                        (which wipes that directory), so a retry keeps the same CA.
#   RUNTIME_DIR          where that copy is kept while the script runs (default /run).
#   INIT_LOG             kubeadm's full output, 0600 (it prints join commands with tokens);
#                        default /var/log/kubeadm-init.log.
# A master with the marker is never reset by this script, even if its API is down: that is a
# running cluster to repair, not an init to redo.
# Exit status: 0 initialised (now or before) and the API answers, 1 not (stderr says what to
# check), 2 bad input.
set -euo pipefail

WORK=""

PROG=master-init
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

api_answers() {
  timeout 10 kubectl --kubeconfig "$ADMIN" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# Probe the API until it answers or `until` (epoch ms) passes.
wait_api() {
  local until=$1
  while :; do
    api_answers && return 0
    (($(now_ms) + DELAY_MS < until)) || return 1
    sleep "$(ms_to_s "$DELAY_MS")"
  done
}

half_done() {
  [[ -e $ADMIN || -e $K8S/kubelet.conf ]] || compgen -G "$K8S/manifests/*.yaml" >/dev/null
}

reset_node() {
  echo "master-init: a previous kubeadm init stopped half way: kubeadm reset -f"
  timeout 120 kubeadm reset -f >>"$LOG" 2>&1 || echo "master-init: kubeadm reset -f failed (see $LOG)" >&2
  if [[ -d $WORK/pki ]]; then
    mkdir -p "$K8S/pki"
    cp -a "$WORK/pki/." "$K8S/pki/"
  fi
}

mark_done() {
  mkdir -p "$(dirname "$MARKER")"
  : >"$MARKER"
}

main() {
  umask 077
  K8S=${KUBERNETES_DIR:-/etc/kubernetes}
  ADMIN=$K8S/admin.conf
  MARKER=${INIT_MARKER:-/var/lib/kubelet/kubeadm-init.done}
  local config=${KUBEADM_INIT_CONFIG:-/etc/kubernetes/kubeadm/init.yaml}
  LOG=${INIT_LOG:-/var/log/kubeadm-init.log}
  local log=$LOG attempts=${INIT_ATTEMPTS:-3}
  local timeout_ms grace_ms
  timeout_ms=$(seconds_env INIT_TIMEOUT 600)
  grace_ms=$(seconds_env API_GRACE 120)
  DELAY_MS=$(seconds_env RETRY_DELAY 10)
  [[ $attempts =~ ^[1-9][0-9]*$ ]] || die 2 "INIT_ATTEMPTS must be a positive whole number, got '$attempts'"
  local now deadline
  now=$(now_ms)
  deadline=$((now + timeout_ms))

  if [[ -e $MARKER ]]; then
    if wait_api $((now + (grace_ms < timeout_ms ? grace_ms : timeout_ms))); then
      echo "master-init: $(hostname) already initialised and its API answers: nothing to do"
      return 0
    fi
    die 1 "$(hostname) was initialised ($MARKER) but its API does not answer; not resetting a" \
      "running control plane. Check: systemctl status kubelet; journalctl -u kubelet;" \
      "crictl ps -a (kube-apiserver, etcd)."
  fi
  if [[ -e $ADMIN ]] && api_answers; then
    mark_done
    echo "master-init: $(hostname) already initialised and its API answers: nothing to do"
    return 0
  fi
  [[ -r $config ]] || die 1 "no kubeadm config at $config: cloud-init should have written it" \
    "(see /var/log/cloud-init-output.log)"

  WORK=$(mktemp -d "${RUNTIME_DIR:-/run}/master-init.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  trap 'exit 129' HUP INT TERM
  if [[ ${PRESERVE_PKI:-false} == true && -d $K8S/pki ]]; then
    cp -a "$K8S/pki" "$WORK/pki"
  fi

  local args=(init --config "$config")
  [[ -n ${INIT_SKIP_PHASES:-} ]] && args+=("--skip-phases=$INIT_SKIP_PHASES")
  [[ ${INIT_UPLOAD_CERTS:-false} == true ]] && args+=(--upload-certs)
  local attempt rc left
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    left=$((deadline - $(now_ms)))
    ((left > 0)) || break
    if half_done; then
      reset_node
      left=$((deadline - $(now_ms)))
      ((left > 0)) || break
    fi
    echo "master-init: attempt $attempt/$attempts: kubeadm ${args[*]} ($(ms_to_s "$left")s left)"
    rc=0
    timeout "$(ms_to_s "$left")" kubeadm "${args[@]}" >>"$log" 2>&1 || rc=$?
    if ((rc == 0)); then
      if wait_api "$deadline"; then
        mark_done
        echo "master-init: $(hostname) initialised; the API answers"
        return 0
      fi
      die 1 "kubeadm init succeeded but the API did not answer by INIT_TIMEOUT=${INIT_TIMEOUT:-600}s." \
        "Check: journalctl -u kubelet; crictl ps -a; $log."
    fi
    echo "master-init: attempt $attempt failed (exit $rc); last lines of $log:" >&2
    tail -n 15 "$log" | redact | indent >&2
    left=$((deadline - $(now_ms)))
    ((attempt < attempts && left > 0)) || break
    sleep "$(ms_to_s $((DELAY_MS < left ? DELAY_MS : left)))"
  done
  {
    echo "master-init: kubeadm init did not succeed on $(hostname) (INIT_TIMEOUT=${INIT_TIMEOUT:-600}s, INIT_ATTEMPTS=$attempts)."
    echo "  check: $log (full kubeadm output), journalctl -u kubelet, crictl ps -a, and the config $config."
    echo "  last kubelet log lines:"
    timeout 10 journalctl -u kubelet --no-pager -n 15 2>&1 | redact | indent || true
  } >&2
  exit 1
}

main "$@" </dev/null
