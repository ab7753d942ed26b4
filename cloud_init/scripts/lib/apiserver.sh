# Shared by the scripts that change what a running kube-apiserver reads (its flags' files, the
# encryption configuration). The kubelet restarts a static pod when its manifest changes, not
# when a file the pod mounts does; so these scripts write a digest of what the API server is
# to run with into an annotation of its manifest, and wait for a ready pod that carries it.
# Not run on its own: sourced after lib/common.sh (inlined when shipped, cloud_init.script).
# shellcheck shell=bash

# wait_for DEADLINE COMMAND...: COMMAND again every DELAY_MS (the caller sets it) until it
# succeeds; 1 once the next try would start past DEADLINE (a now_ms instant).
wait_for() {
  local deadline=$1
  shift
  until "$@"; do
    (($(now_ms) + DELAY_MS < deadline)) || return 1
    sleep "$(ms_to_s "$DELAY_MS")"
  done
}

# manifest_annotation MANIFEST KEY: the value of annotation KEY in MANIFEST, empty if none.
manifest_annotation() { sed -n "s|^    $2: \"\\(.*\\)\"\$|\\1|p" "$1"; }

# annotate_manifest MANIFEST KEY VALUE: written beside the manifest as a dotfile (the kubelet
# skips those) and renamed over it, so the kubelet never reads half of it.
annotate_manifest() {
  local manifest=$1 key=$2 value=$3 anchor='^  annotations:$'
  local tmp=${manifest%/*}/.${manifest##*/}.annotate add="    $key: \"$value\""
  if ! grep -q "$anchor" "$manifest"; then
    anchor='^metadata:$' add="  annotations:\\n$add"
  fi
  awk -v anchor="$anchor" -v add="$add" -v drop="    $key: " \
    'index($0, drop) == 1 { next } { print } $0 ~ anchor && !done { print add; done = 1 }' \
    "$manifest" >"$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$manifest"
}

# apiserver_pod_runs KEY VALUE: a ready kube-apiserver pod made from the manifest annotated so.
apiserver_pod_runs() {
  local pods
  pods=$(crictl pods --name kube-apiserver --state ready -o json 2>/dev/null) || return 1
  grep -qF "\"$1\": \"$2\"" <<<"$pods"
}
