#!/usr/bin/env bash
# Take one verified etcd snapshot, keep the newest KEEP locally, and upload it to Swift when
# configured. Run by etcd-backup.service (timer) on every master and on the discovery node;
# safe to run by hand at any time (runs are serialized by a lock in BACKUP_DIR).
#
# In the step kit (cloud_init.steps), run by /usr/local/sbin/etcd-backup.sh; environment from
# /etc/default/etcd-backup.
#
# Environment:
#   ETCDCTL_ENDPOINTS  the ONE etcd client URL to snapshot, e.g. https://127.0.0.1:2379
#   ETCD_CACERT, ETCD_CERT, ETCD_KEY   client TLS files (CA, client cert, client key)
#   NAME               member name, prefixes the snapshot files (default: short hostname)
#   BACKUP_DIR         where snapshots live (default /var/backups/etcd)
#   KEEP               how many of this NAME's snapshots to keep locally (default 24)
#   SWIFT_CONTAINER    optional: upload each snapshot to this existing Swift container
#   OPENSTACK_RC       file of OS_* variables (application credential) used for the upload;
#                      required with SWIFT_CONTAINER
#   TIMEOUT            seconds allowed for the snapshot and its check (default 300)
#   UPLOAD_TIMEOUT     seconds allowed for the upload (default 600)
#   ETCDCTL, ETCDUTL   binaries (default etcdctl; etcdutl when on PATH: etcd >= 3.5 moved
#                      `snapshot status` there)
#
# Snapshot file: BACKUP_DIR/NAME-<UTC YYYYmmddTHHMMSS.mmmZ>.db, written under a temporary name
# and renamed once `snapshot status` has read it back. Swift object: the same file name.
# Exit: 0 snapshot taken (and uploaded), 1 snapshot failed, 2 bad configuration,
#       3 snapshot kept locally but the upload failed.
set -euo pipefail

PROG=etcd-backup
# Status lines on stdout, where callers and tests have always read them.
LOG_FD=1
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "${BASH_SOURCE[0]%/*}/lib/common.sh" # inlined when shipped (cloud_init.script)

main() {

  : "${ETCDCTL_ENDPOINTS:?ETCDCTL_ENDPOINTS must be the etcd client URL to snapshot}"
  : "${ETCD_CACERT:?ETCD_CACERT must name the etcd CA certificate}"
  : "${ETCD_CERT:?ETCD_CERT must name the client certificate}"
  : "${ETCD_KEY:?ETCD_KEY must name the client key}"
  NAME="${NAME:-$(hostname -s)}"
  BACKUP_DIR="${BACKUP_DIR:-/var/backups/etcd}"
  KEEP="${KEEP:-24}"
  SWIFT_CONTAINER="${SWIFT_CONTAINER:-}"
  OPENSTACK_RC="${OPENSTACK_RC:-}"
  TIMEOUT="${TIMEOUT:-300}"
  UPLOAD_TIMEOUT="${UPLOAD_TIMEOUT:-600}"
  ETCDCTL="${ETCDCTL:-etcdctl}"
  ETCDUTL="${ETCDUTL:-$(command -v etcdutl || true)}"
  export ETCDCTL_API=3 ETCDCTL_ENDPOINTS

  [[ "$ETCDCTL_ENDPOINTS" == *,* ]] &&
    die 2 "ETCDCTL_ENDPOINTS=$ETCDCTL_ENDPOINTS: a snapshot is taken from exactly one endpoint"
  [[ "$NAME" =~ ^[A-Za-z0-9._-]+$ ]] || die 2 "NAME=$NAME: use letters, digits, '.', '_', '-'"
  [[ "$KEEP" =~ ^[1-9][0-9]*$ ]] || die 2 "KEEP=$KEEP: must be a whole number >= 1"
  [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die 2 "TIMEOUT=$TIMEOUT: must be whole seconds"
  [[ "$UPLOAD_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die 2 "UPLOAD_TIMEOUT=$UPLOAD_TIMEOUT: must be whole seconds"
  for f in "$ETCD_CACERT" "$ETCD_CERT" "$ETCD_KEY"; do
    [[ -r "$f" ]] || die 2 "cannot read $f (TLS file for etcd; is this the right node role?)"
  done
  command -v "$ETCDCTL" >/dev/null || die 2 "$ETCDCTL not found: install the etcd-client package"
  if [[ -n "$SWIFT_CONTAINER" ]]; then
    [[ -n "$OPENSTACK_RC" && -r "$OPENSTACK_RC" ]] ||
      die 2 "SWIFT_CONTAINER is set but OPENSTACK_RC='$OPENSTACK_RC' is not a readable file"
    command -v openstack >/dev/null ||
      die 2 "SWIFT_CONTAINER is set but the openstack CLI is missing: install python3-openstackclient"
  fi

  mkdir -p "$BACKUP_DIR"
  chmod 0700 "$BACKUP_DIR"
  exec 9>"$BACKUP_DIR/.lock"
  flock -w 60 9 || die 1 "another etcd-backup has held $BACKUP_DIR/.lock for 60s; try again later"

  stamp="$(date -u +%Y%m%dT%H%M%S.%3NZ)"
  final="$BACKUP_DIR/$NAME-$stamp.db"
  part="$BACKUP_DIR/.$NAME-$stamp.db.part"
  trap 'rm -f "$part" "$part.part"' EXIT

  tls=(--cacert "$ETCD_CACERT" --cert "$ETCD_CERT" --key "$ETCD_KEY")
  log "snapshot of $ETCDCTL_ENDPOINTS -> $final"
  dial=$((TIMEOUT < 10 ? TIMEOUT : 10))
  if ! timeout "$TIMEOUT" "$ETCDCTL" "${tls[@]}" --dial-timeout="${dial}s" \
    --command-timeout="${TIMEOUT}s" snapshot save "$part" >"$part.log" 2>&1; then
    cat "$part.log" >&2
    rm -f "$part.log"
    die 1 "snapshot of $ETCDCTL_ENDPOINTS failed or took over ${TIMEOUT}s; is etcd up" \
      "('$ETCDCTL ${tls[*]} endpoint health') and are the certificates right?"
  fi
  rm -f "$part.log"

  # Read the file back before it may replace an older good snapshot.
  if [[ -n "$ETCDUTL" ]]; then
    status=("$ETCDUTL" snapshot status "$part" -w table)
  else
    status=("$ETCDCTL" snapshot status "$part" -w table)
  fi
  if ! out="$(timeout "$TIMEOUT" "${status[@]}" 2>&1)"; then
    echo "$out" >&2
    die 1 "snapshot $part is unreadable ('${status[*]}' failed); nothing was kept"
  fi
  echo "$out"
  mv -f "$part" "$final"
  log "saved $final ($(stat -c %s "$final") bytes)"

  # Retention: file names sort by time; keep the newest KEEP of this member's snapshots.
  mapfile -t old < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$NAME-*.db" -printf '%f\n' |
    sort -r | tail -n "+$((KEEP + 1))")
  for f in "${old[@]}"; do
    rm -f "$BACKUP_DIR/$f"
    log "removed old snapshot $f (KEEP=$KEEP)"
  done

  if [[ -n "$SWIFT_CONTAINER" ]]; then
    object="$(basename "$final")"
    log "uploading $object to Swift container $SWIFT_CONTAINER"
    if ! (
      set -a
      # shellcheck source=/dev/null
      . "$OPENSTACK_RC"
      set +a
      timeout "$UPLOAD_TIMEOUT" openstack object create --name "$object" \
        "$SWIFT_CONTAINER" "$final" >/dev/null
    ); then
      die 3 "upload of $object to container $SWIFT_CONTAINER failed or took over" \
        "${UPLOAD_TIMEOUT}s (snapshot kept in $BACKUP_DIR); check the credential in" \
        "$OPENSTACK_RC and that the container exists ('openstack container show $SWIFT_CONTAINER')"
    fi
    log "uploaded $SWIFT_CONTAINER/$object"
  fi
}

main "$@" </dev/null
