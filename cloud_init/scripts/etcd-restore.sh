#!/usr/bin/env bash
# Restore an etcd snapshot into a fresh data directory, ready for etcd to start on it.
# See docs/etcd-backup-restore.md for the whole procedure (stop etcd first, start it after).
#
# In the step kit of every master and of the discovery node (cloud_init.steps), run by
# /usr/local/sbin/etcd-restore.sh.
#
# Usage: etcd-restore.sh [--force] [SNAPSHOT]
#   --force   DATA_DIR is not empty: move it aside to DATA_DIR.before-restore-<UTC time>
#             (never deleted) instead of refusing
# Environment:
#   SNAPSHOT                     snapshot file (or the argument)
#   DATA_DIR                     etcd data directory (default /var/lib/etcd, kubeadm's)
#   NAME                         this member's name (default: short hostname)
#   INITIAL_ADVERTISE_PEER_URLS  this member's peer URL, e.g. https://10.0.0.11:2380 (required)
#   INITIAL_CLUSTER              every member of the restored cluster, name=peerURL,...
#                                (default NAME=INITIAL_ADVERTISE_PEER_URLS: a one-member cluster)
#   TOKEN                        initial cluster token (default etcd-cluster)
#   DATA_OWNER                   optional user:group to own the restored directory (etcd:etcd
#                                for Debian's etcd-server on the discovery node)
#   TIMEOUT                      seconds allowed for the restore (default 600)
#   ETCDCTL, ETCDUTL             binaries; etcdutl (etcd >= 3.5) is used when found, else
#                                `etcdctl snapshot restore` (etcd 3.4)
# Exit: 0 restored, 1 restore failed, 2 bad usage, 3 refused (DATA_DIR in use or not empty).
set -euo pipefail

PROG=etcd-restore
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {

  force=0
  args=()
  for a in "$@"; do
    case "$a" in
      --force) force=1 ;;
      -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
      -*) die 2 "unknown option $a (see --help)" ;;
      *) args+=("$a") ;;
    esac
  done
  ((${#args[@]} <= 1)) || die 2 "one snapshot file at most, got: ${args[*]}"
  SNAPSHOT="${args[0]:-${SNAPSHOT:-}}"
  DATA_DIR="${DATA_DIR:-/var/lib/etcd}"
  NAME="${NAME:-$(hostname -s)}"
  INITIAL_ADVERTISE_PEER_URLS="${INITIAL_ADVERTISE_PEER_URLS:-}"
  TOKEN="${TOKEN:-etcd-cluster}"
  DATA_OWNER="${DATA_OWNER:-}"
  TIMEOUT="${TIMEOUT:-600}"
  ETCDCTL="${ETCDCTL:-etcdctl}"
  ETCDUTL="${ETCDUTL:-$(command -v etcdutl || true)}"
  export ETCDCTL_API=3

  [[ -n "$SNAPSHOT" ]] || die 2 "no snapshot: pass the file as argument or SNAPSHOT=..."
  [[ -r "$SNAPSHOT" ]] || die 2 "cannot read snapshot $SNAPSHOT"
  [[ -n "$INITIAL_ADVERTISE_PEER_URLS" ]] ||
    die 2 "INITIAL_ADVERTISE_PEER_URLS must be this member's peer URL, e.g. https://10.0.0.11:2380"
  INITIAL_CLUSTER="${INITIAL_CLUSTER:-$NAME=$INITIAL_ADVERTISE_PEER_URLS}"
  [[ ",$INITIAL_CLUSTER," == *",$NAME=$INITIAL_ADVERTISE_PEER_URLS,"* ]] ||
    die 2 "INITIAL_CLUSTER=$INITIAL_CLUSTER does not contain $NAME=$INITIAL_ADVERTISE_PEER_URLS"
  [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die 2 "TIMEOUT=$TIMEOUT: must be whole seconds"
  DATA_DIR="${DATA_DIR%/}"
  [[ -n "$DATA_DIR" && "$DATA_DIR" != / ]] || die 2 "DATA_DIR must not be /"

  # A running etcd holds a lock (fcntl/OFD, listed in /proc/locks) on its WAL files: never pull a
  # directory from under it.
  if [[ -d "$DATA_DIR/member/wal" ]]; then
    for wal in "$DATA_DIR"/member/wal/*.wal; do
      [[ -e "$wal" ]] || continue
      inode="$(stat -c %i "$wal")"
      if awk -v ino="$inode" '{ n = split($6, f, ":"); if (f[n] == ino) found = 1 }
            END { exit !found }' /proc/locks; then
        die 3 "$wal is locked: etcd is still running on $DATA_DIR. Stop it first" \
          "(master: move /etc/kubernetes/manifests/etcd.yaml away; discovery:" \
          "systemctl stop etcd) and run this again."
      fi
    done
  fi

  if [[ -d "$DATA_DIR" ]] && [[ -n "$(ls -A "$DATA_DIR")" ]]; then
    ((force)) || die 3 "$DATA_DIR is not empty; it would be replaced. Re-run with --force to" \
      "move it aside (it is kept, not deleted)."
  fi

  if [[ -n "$ETCDUTL" ]]; then
    tool=("$ETCDUTL")
  else
    tool=("$ETCDCTL")
  fi
  command -v "${tool[0]}" >/dev/null || die 2 "${tool[0]} not found: install etcd-client (or etcdutl)"

  # Restore next to DATA_DIR (same filesystem), then swap it in with renames.
  staging="$DATA_DIR.restoring"
  rm -rf "$staging"
  mkdir -p "$(dirname "$DATA_DIR")"
  echo "etcd-restore: checking $SNAPSHOT"
  timeout "$TIMEOUT" "${tool[@]}" snapshot status "$SNAPSHOT" -w table ||
    die 1 "$SNAPSHOT is not a readable etcd snapshot"
  echo "etcd-restore: restoring as member $NAME ($INITIAL_ADVERTISE_PEER_URLS) of $INITIAL_CLUSTER"
  if ! timeout "$TIMEOUT" "${tool[@]}" snapshot restore "$SNAPSHOT" --data-dir "$staging" \
    --name "$NAME" --initial-cluster "$INITIAL_CLUSTER" \
    --initial-advertise-peer-urls "$INITIAL_ADVERTISE_PEER_URLS" \
    --initial-cluster-token "$TOKEN"; then
    rm -rf "$staging"
    die 1 "restore of $SNAPSHOT failed or took over ${TIMEOUT}s; $DATA_DIR was not touched"
  fi
  chmod 0700 "$staging"
  [[ -z "$DATA_OWNER" ]] || chown -R "$DATA_OWNER" "$staging"

  if [[ -d "$DATA_DIR" ]]; then
    if [[ -n "$(ls -A "$DATA_DIR")" ]]; then
      aside="$DATA_DIR.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
      mv "$DATA_DIR" "$aside"
      echo "etcd-restore: moved the old data directory to $aside"
    else
      rmdir "$DATA_DIR"
    fi
  fi
  mv "$staging" "$DATA_DIR"

  cat <<EOF
etcd-restore: restored $SNAPSHOT into $DATA_DIR as member $NAME.
Next steps:
  1. Start etcd on $DATA_DIR with --name $NAME and peer URL $INITIAL_ADVERTISE_PEER_URLS
     (the directory now holds the membership; --initial-cluster flags are ignored):
       master:    mv /etc/kubernetes/etcd.yaml /etc/kubernetes/manifests/etcd.yaml
       discovery: systemctl start etcd
  2. Check it serves: etcdctl --endpoints https://127.0.0.1:2379 --cacert ... --cert ... --key ...
       endpoint status -w table
  3. Every other member listed in INITIAL_CLUSTER must be restored from the SAME snapshot with
     the same INITIAL_CLUSTER and TOKEN before the cluster has quorum; a one-member cluster
     grows again with 'etcdctl member add' (see docs/etcd-backup-restore.md).
EOF
}

main "$@" </dev/null
