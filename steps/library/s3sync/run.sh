# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/s3sync: syncs $WERCKER_ROOT/<source_dir> to `bucket_url` (s3://bucket/prefix/) like
# `s3cmd sync <opts> [--delete-removed] ./ <bucket_url>`: new and changed files (size or MD5) are
# uploaded, and with delete_removed empty or true (the default) remote files that are gone
# locally are deleted. `opts` defaults to --acl-public (objects readable by anyone); sync.py
# understands --acl-public, --acl-private, --dry-run, --exclude=GLOB and warns about other s3cmd
# flags. Wercker ran a bundled s3cmd; this runs sync.py (shipped here) with the box's python3 and
# boto3. Differences: a failed sync fails the step (Wercker's check was masked); the keys go to
# python3 in its environment, no ~/.s3cfg is written; region and endpoint_url are new (other
# regions, S3-compatible stores). The working directory is restored afterwards.

_wl_s3sync_main() {
  local key_id secret bucket dir back err status
  key_id=${WERCKER_S3SYNC_KEY_ID:-}
  secret=${WERCKER_S3SYNC_KEY_SECRET:-}
  bucket=${WERCKER_S3SYNC_BUCKET_URL:-}
  if [ -z "$key_id" ]; then fail "s3sync: the key-id option is empty; set key-id: \$AWS_ACCESS_KEY_ID"; fi
  if [ -z "$secret" ]; then fail "s3sync: the key-secret option is empty; set key-secret: \$AWS_SECRET_ACCESS_KEY"; fi
  if [ -z "$bucket" ]; then fail "s3sync: the bucket-url option is empty; set bucket-url, e.g. bucket-url: s3://my-bucket/site/"; fi
  if ! command -v python3 >/dev/null 2>&1; then
    fail "s3sync: python3 is not in this box; use a box with python3 and boto3 (e.g. python:3 after pip install boto3)"
  fi
  if ! python3 -c 'import boto3' >/dev/null 2>&1; then
    fail "s3sync: python3 in this box has no boto3; install it first (pip install boto3, or install-packages: python3-boto3)"
  fi
  case ${WERCKER_S3SYNC_SOURCE_DIR:-} in
    /*) dir=$WERCKER_S3SYNC_SOURCE_DIR ;;
    *) dir="${WERCKER_ROOT:-$PWD}/${WERCKER_S3SYNC_SOURCE_DIR:-}" ;;
  esac
  back=$PWD
  cd "$dir" || fail "s3sync: source-dir $dir is not a directory (source-dir is relative to \$WERCKER_ROOT)"
  set --
  case ${WERCKER_S3SYNC_DELETE_REMOVED:-} in
    '' | true) set -- --delete-removed ;;
  esac
  if [ -n "${WERCKER_S3SYNC_REGION:-}" ]; then set -- "$@" --region "$WERCKER_S3SYNC_REGION"; fi
  if [ -n "${WERCKER_S3SYNC_ENDPOINT_URL:-}" ]; then set -- "$@" --endpoint-url "$WERCKER_S3SYNC_ENDPOINT_URL"; fi
  err=$(mktemp) || fail "s3sync: mktemp failed"
  info "sync $dir to $bucket"
  # shellcheck disable=SC2086 # opts is a list of s3cmd flags, split as Wercker did
  AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret \
    python3 "$WERCKER_STEP_ROOT/sync.py" ${WERCKER_S3SYNC_OPTS---acl-public} "$@" --verbose ./ "$bucket" 2>"$err"
  status=$?
  cd "$back" || true
  cat "$err" >&2
  if [ "$status" -ne 0 ]; then
    fail "s3sync: syncing $dir to $bucket failed: $(tail -n 1 "$err")"
  fi
  rm -f "$err"
  success "synced to $bucket"
}

_wl_s3sync_main
