# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/golint: `golint ./...`, lines matching the extended regex `exclude` removed, the rest
# saved to lint_results.txt in the working directory and counted. threshold-fail (default 10,
# when unset) or more fails the step; threshold-warn (default 5) or more warns; the step message
# says which. Differences: a missing golint fails (Wercker counted 0 and passed), and the "tidying
# soon" message is no longer overwritten by the "fairly tidy" one. Uses $WERCKER_STEP_ROOT/golint
# when a package carries one, else `golint` on PATH.

_wl_golint_main() {
  local bin count warn_at fail_at
  if [ -x "${WERCKER_STEP_ROOT:-}/golint" ]; then
    bin="$WERCKER_STEP_ROOT/golint"
  elif command -v golint >/dev/null 2>&1; then
    bin=golint
  else
    fail "golint: golint is not in this box; use a Go box with golint on PATH (go install golang.org/x/lint/golint@latest in an earlier step)"
  fi
  fail_at=${WERCKER_GOLINT_THRESHOLD_FAIL-10}
  warn_at=${WERCKER_GOLINT_THRESHOLD_WARN-5}
  if [ -n "${WERCKER_GOLINT_EXCLUDE:-}" ]; then
    "$bin" ./... | grep -vE -- "$WERCKER_GOLINT_EXCLUDE" >lint_results.txt
  else
    "$bin" ./... >lint_results.txt
  fi
  count=$(wc -l <lint_results.txt | tr -d ' ')
  cat lint_results.txt
  if [ -n "$fail_at" ] && [ "$count" -ge "$fail_at" ]; then
    fail "Time to tidy up: $count lint warnings."
  fi
  if [ -n "$warn_at" ] && [ "$count" -ge "$warn_at" ]; then
    setMessage "You should be tidying soon: $count lint warnings."
    warn "You should be tidying soon: $count lint warnings."
  elif [ "$count" -gt 0 ]; then
    setMessage "You are fairly tidy: $count lint warnings."
    info "You are fairly tidy: $count lint warnings."
  fi
  success "golint: $count warnings"
}

_wl_golint_main
