# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/kubectl: `kubectl <global options> <raw-global-args> <command> <command options>
# <raw-args>`, evaluated by the shell as Wercker did (so `command: apply -f x; echo done` runs
# both). Every non-empty option becomes --<option>=<value>; unlike Wercker, the value is quoted
# before the evaluation, so a `$` or a quote in a token or password is passed as is (command,
# raw-global-args and raw-args are still evaluated). `command` is required (undeclared, as in
# Wercker). debug: true prints the command line with the token and password hidden (Wercker
# printed them). Uses $WERCKER_STEP_ROOT/kubectl when a package carries one, else kubectl on PATH.

_wl_kubectl_quote() {
  # $1 as one single-quoted shell word.
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

_wl_kubectl_args() {
  # The --option=value words of this step for the options $@ that are set, quoted for eval.
  local opt var value shown
  for opt in "$@"; do
    var=WERCKER_KUBECTL_$(printf '%s' "$opt" | tr 'a-z-' 'A-Z_')
    eval "value=\${$var:-}"
    if [ -n "$value" ]; then
      printf ' --%s=%s' "$opt" "$(_wl_kubectl_quote "$value")"
    fi
  done
}

_wl_kubectl_main() {
  local bin global args line shown
  if [ -z "${WERCKER_KUBECTL_COMMAND:-}" ]; then
    fail "kubectl: command argument cannot be empty; set command, e.g. command: apply -f deployment.yml"
  fi
  if [ -x "${WERCKER_STEP_ROOT:-}/kubectl" ]; then
    bin="$WERCKER_STEP_ROOT/kubectl"
  elif command -v kubectl >/dev/null 2>&1; then
    bin=$(command -v kubectl)
  else
    fail "kubectl: kubectl is not in this box; use a box with kubectl on PATH (e.g. bitnami/kubectl), or install it in an earlier step"
  fi
  "$bin" version --client
  global=$(_wl_kubectl_args server token username password insecure-skip-tls-verify \
    certificate-authority client-certificate client-key)
  args=$(_wl_kubectl_args file output template patch interactive image timeout update-period \
    deployment-label-key poll-interval rollback replicas current-replicas resource-version pod \
    stdin tty grace-period selector all overwrite)
  line="$(_wl_kubectl_quote "$bin")$global ${WERCKER_KUBECTL_RAW_GLOBAL_ARGS:-} $WERCKER_KUBECTL_COMMAND$args ${WERCKER_KUBECTL_RAW_ARGS:-}"
  if [ "${WERCKER_KUBECTL_DEBUG:-}" = true ]; then
    shown=$(printf '%s' "$line" | sed -e "s/--token='[^']*'/--token=<hidden>/" -e "s/--password='[^']*'/--password=<hidden>/")
    debug "$shown"
  fi
  eval "$line"
}

_wl_kubectl_main
