#!/bin/bash
# One fake for every tool the upgrade scripts call, chosen by the name it is invoked as
# (symlinked into a bin dir as kubeadm, kubectl, apt-get, apt-mark, dpkg-query, systemctl, curl
# and gpg). All of them share one state directory, $FAKE_STATE, so a change made by one is what
# the others report: apt-get install changes dpkg-query and `kubeadm version`, `kubeadm upgrade
# apply` changes the cluster version kubectl reads, restarting the kubelet changes the version
# the Node reports. Bash, not Python: a script run makes dozens of calls and each must be cheap.
#
# State files (written by tests/cloud_init/scripts/test_upgrade_scripts.py):
#   pkgs/<pkg>             installed deb version, e.g. 1.33.2-1.1
#   held/<pkg>             exists while the package is held
#   apt_source_file        path of the kubernetes.list the scripts write
#   apt_index              repository URL of the last successful `apt-get update`
#   released               versions the repositories hold, one a line
#   cluster                version in kubeadm-config
#   manifest_dir           dir of this node's static pod manifests
#   node                   this machine's Node name
#   nodes/<name>/{version,ready,unschedulable}
#   served_fingerprint     optional: the fingerprint of the key curl "downloads"
#   kubelet_active         true | false;  kubelet_broken: exists -> restart leaves it inactive
#   fail                   lines "COUNT PREFIX": a call whose line starts with PREFIX fails
#                          while COUNT > 0
# Every call is appended to calls.log in the state dir, one line of argv joined by spaces.
set -euo pipefail

S=$FAKE_STATE
tool=${0##*/}
line="$tool $*"

# Read stdin like an interactive tool might: a script fed through `bash -s` that lets its
# commands inherit that stdin would lose the rest of its own text here.
[[ -t 0 ]] || while IFS= read -r _; do :; done

printf '%s\n' "$line" >>"$S/calls.log"

die() { printf '%s\n' "$1" >&2; exit "${2:-1}"; }
upstream() { local v=${1#v}; printf '%s' "${v%%-*}"; }
minor() { local v; v=$(upstream "$1"); printf '%s' "${v%.*}"; }
arg_after() { # value following option $1 in the remaining args
  local want=$1; shift
  while (($#)); do [[ $1 == "$want" ]] && { printf '%s' "$2"; return; }; shift; done
  return 1
}

if [[ -f $S/fail ]]; then
  out="" hit=no
  while read -r count prefix; do
    if [[ $hit == no && $count -gt 0 && $line == "$prefix"* ]]; then
      hit=yes
      count=$((count - 1))
    fi
    out+="$count $prefix"$'\n'
  done <"$S/fail"
  printf '%s' "$out" >"$S/fail"
  [[ $hit == no ]] || die "fake $tool: failing on demand: $line"
fi

write_manifest() {
  local m
  m="$(<"$S/manifest_dir")/kube-apiserver.yaml"
  [[ -f $m ]] || return 0
  printf 'spec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v%s\n' "$1" >"$m"
}

case $tool in
apt-get)
  if [[ " $* " == *" update "* ]]; then
    src=$(<"$(<"$S/apt_source_file")")
    [[ $src =~ ^deb\ \[signed-by=([^]]+)\]\ ([^ ]+)\ /$ ]] || die "E: Malformed entry: $src" 100
    key=${BASH_REMATCH[1]} url=${BASH_REMATCH[2]}
    [[ -f $key && $(<"$key") == dearmored:* ]] || die "W: GPG error: $url InRelease: NO_PUBKEY" 100
    printf '%s' "$url" >"$S/apt_index"
    exit 0
  fi
  [[ " $* " == *" install "* ]] || die "fake apt-get: unexpected $*" 64
  specs=()
  while (($#)); do
    case $1 in
    -o) shift ;; # its value, e.g. DPkg::Lock::Timeout=120, is no package
    -*) ;;
    *=*) specs+=("$1") ;;
    esac
    shift
  done
  for spec in "${specs[@]}"; do
    pkg=${spec%%=*} want=${spec#*=}
    want=${want%-\*}
    [[ ! -e $S/held/$pkg ]] ||
      die "E: Held packages were changed and -y was used without --allow-change-held-packages." 100
    grep -qx "$want" "$S/released" && [[ $(<"$S/apt_index") == */core:/stable:/v$(minor "$want")/deb/ ]] ||
      die "E: Version '${spec#*=}' for '$pkg' was not found" 100
  done
  for spec in "${specs[@]}"; do
    want=${spec#*=}
    printf '%s' "${want%-\*}-1.1" >"$S/pkgs/${spec%%=*}"
  done
  ;;
apt-mark)
  cmd=$1; shift
  case $cmd in
  showhold) for f in "$S"/held/*; do [[ -e $f ]] && printf '%s\n' "${f##*/}"; done; true ;;
  hold) for p in "$@"; do : >"$S/held/$p"; done ;;
  unhold) for p in "$@"; do rm -f "$S/held/$p"; done ;;
  *) die "fake apt-mark: unexpected $cmd" 64 ;;
  esac
  ;;
dpkg-query)
  pkg=${*: -1}
  [[ -f $S/pkgs/$pkg ]] || die "dpkg-query: no packages found matching $pkg"
  printf '%s' "$(<"$S/pkgs/$pkg")"
  ;;
kubeadm)
  have=$(upstream "$(<"$S/pkgs/kubeadm")")
  case "$*" in
  "version -o short") printf 'v%s\n' "$have" ;;
  "upgrade plan"*) printf '[upgrade/versions] Cluster version: v%s\n[upgrade/versions] kubeadm version: v%s\n' "$(<"$S/cluster")" "$have" ;;
  "upgrade apply"*)
    want=$(upstream "${*: -1}")
    [[ $want == "$have" ]] || die "the specified version to upgrade to v$want is higher than the kubeadm version v$have"
    printf '%s' "$want" >"$S/cluster"
    write_manifest "$want"
    ;;
  "upgrade node") write_manifest "$(<"$S/cluster")" ;;
  "config images list --kubernetes-version "*)
    # The pause tag per minor, as kubeadm's constants have it.
    want=$(upstream "${*: -1}")
    case $(minor "$want") in 1.3[123]) pause=3.10 ;; *) pause=3.10.1 ;; esac
    printf 'registry.k8s.io/kube-apiserver:v%s\nregistry.k8s.io/pause:%s\nregistry.k8s.io/etcd:3.5.21-0\n' "$want" "$pause"
    ;;
  *) die "fake kubeadm: unexpected $*" 64 ;;
  esac
  ;;
kubectl)
  rest=() jsonpath=""
  while (($#)); do
    case $1 in
    --kubeconfig | -n) shift 2; continue ;;
    jsonpath=*) jsonpath=${1#jsonpath=} ;;
    esac
    rest+=("$1"); shift
  done
  if [[ "${rest[*]:0:3}" == "get configmap kubeadm-config" ]]; then
    printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v%s\n' "$(<"$S/cluster")"
    exit 0
  fi
  if [[ ${rest[0]} == get ]]; then name=${rest[2]}; else name=${rest[1]}; fi
  n=$S/nodes/$name
  [[ -d $n ]] || die "Error from server (NotFound): nodes \"$name\" not found"
  case ${rest[0]} in
  get)
    out=""
    while [[ $jsonpath =~ ^[^{]*(\{[^}]*\})(.*)$ ]]; do
      field=${BASH_REMATCH[1]} jsonpath=${BASH_REMATCH[2]}
      case $field in
      *'" "'*) out+=" " ;;
      *kubeletVersion*) out+=$(<"$n/version") ;;
      *Ready*) out+=$(<"$n/ready") ;;
      esac
    done
    printf '%s' "$out"
    ;;
  cordon | drain) printf true >"$n/unschedulable" ;;
  uncordon) printf false >"$n/unschedulable" ;;
  *) die "fake kubectl: unexpected ${rest[*]}" 64 ;;
  esac
  ;;
systemctl)
  case "$*" in
  daemon-reload | "restart containerd") ;;
  "restart kubelet")
    if [[ -e $S/kubelet_broken ]]; then printf false >"$S/kubelet_active"; exit 0; fi
    printf true >"$S/kubelet_active"
    printf 'v%s' "$(upstream "$(<"$S/pkgs/kubelet")")" >"$S/nodes/$(<"$S/node")/version"
    ;;
  "is-active"*kubelet)
    active=$(<"$S/kubelet_active")
    [[ " $* " == *" --quiet "* ]] || { [[ $active == true ]] && echo active || echo inactive; }
    [[ $active == true ]] || exit 3
    ;;
  *) die "fake systemctl: unexpected $*" 64 ;;
  esac
  ;;
curl)
  out=$(arg_after -o "$@")
  fpr=DE15B14486CD377B9E876E1A234654DA9A296436
  [[ ! -f $S/served_fingerprint ]] || fpr=$(<"$S/served_fingerprint")
  printf -- 'KEY %s %s\n' "$fpr" "${*: -1}" >"$out"
  ;;
gpg)
  if [[ " $* " == *" --show-keys "* ]]; then
    read -r _ fpr _ <"${*: -1}"
    printf 'pub:-:255:22:234654DA9A296436:1690000000:::-:::scSC::::::23::0:\nfpr:::::::::%s:\n' "$fpr"
    exit 0
  fi
  [[ " $* " == *" --dearmor "* ]] || die "fake gpg: unexpected $*" 64
  out=$(arg_after -o "$@")
  printf 'dearmored:%s\n' "$(<"${*: -1}")" >"$out"
  ;;
*) die "fake: no such tool $tool" 64 ;;
esac
