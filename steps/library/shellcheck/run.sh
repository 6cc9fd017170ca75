# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/shellcheck: `shellcheck [--exclude=..] [--format=..] [--shell=..] <files>`, `files`
# split on `separator` and each part glob-expanded in the working directory. Differences from
# Wercker's step: findings fail the step (its status was masked there, a known surprise); the
# flags are separate arguments (they were glued together); IFS is restored afterwards. Uses
# $WERCKER_STEP_ROOT/shellcheck when a package carries one, else `shellcheck` on PATH.

_wl_shellcheck_main() {
  local bin files sep part status IFS
  if [ -x "${WERCKER_STEP_ROOT:-}/shellcheck" ]; then
    bin="$WERCKER_STEP_ROOT/shellcheck"
  elif command -v shellcheck >/dev/null 2>&1; then
    bin=shellcheck
  else
    fail "shellcheck: shellcheck is not in this box; use a box that has it (e.g. koalaman/shellcheck-alpine) or install it first (install-packages: shellcheck)"
  fi
  info "$("$bin" --version | sed -n 's/^version: /shellcheck /p')"
  files=${WERCKER_SHELLCHECK_FILES-*.sh}
  if [ -z "$files" ]; then
    fail "shellcheck: the files option is empty; list the scripts to check (default *.sh)"
  fi
  sep=${WERCKER_SHELLCHECK_SEPARATOR:-" "}
  set --
  if [ -n "${WERCKER_SHELLCHECK_EXCLUDE:-}" ]; then set -- "$@" "--exclude=$WERCKER_SHELLCHECK_EXCLUDE"; fi
  if [ -n "${WERCKER_SHELLCHECK_FORMAT:-}" ]; then set -- "$@" "--format=$WERCKER_SHELLCHECK_FORMAT"; fi
  if [ -n "${WERCKER_SHELLCHECK_SHELL:-}" ]; then set -- "$@" "--shell=$WERCKER_SHELLCHECK_SHELL"; fi
  IFS=$sep
  # shellcheck disable=SC2086 # split on the separator and glob-expanded, as Wercker did
  for part in $files; do
    set -- "$@" "$part"
  done
  IFS=$(printf ' \t\nx')
  IFS=${IFS%x}
  info "shellcheck $*"
  "$bin" "$@"
  status=$?
  if [ "$status" -ne 0 ]; then
    fail "shellcheck: findings in the checked scripts (shellcheck exit $status); see above"
  fi
  success "shellcheck: no findings"
}

_wl_shellcheck_main
