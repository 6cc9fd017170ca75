# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/bash-template: for each word of `input` (glob patterns, default *.template*), renders the
# file with render.sh and writes <output><name without its first .template> when output ends in /
# (default ./), else the file `output` itself. The render sees only exported variables. With
# error-on-empty set to anything, an unset variable or any error output fails the step, naming
# them (Wercker exited the shell); otherwise errors are ignored. The error output is kept in a
# temporary file outside the source tree (Wercker used a random name in the working directory).

_wl_bash_template_main() {
  local input output err strict file out
  input=${WERCKER_BASH_TEMPLATE_INPUT:-"*.template*"}
  output=${WERCKER_BASH_TEMPLATE_OUTPUT:-./}
  strict=""
  if [ -n "${WERCKER_BASH_TEMPLATE_ERROR_ON_EMPTY:-}" ]; then strict=-u; fi
  err=$(mktemp) || fail "bash-template: mktemp failed"
  # shellcheck disable=SC2086 # input is a list of glob patterns, expanded as Wercker did
  for file in $input; do
    case $output in
      */) out="$output$(printf '%s' "$file" | sed 's/\.template//')" ;;
      *) out=$output ;;
    esac
    info "rendering $file to $out"
    sh "$WERCKER_STEP_ROOT/render.sh" "$file" $strict >"$out" 2>"$err"
    if [ -n "$strict" ] && [ -s "$err" ]; then
      cat "$err" >&2
      fail "bash-template: rendering $file failed: $(head -n 3 "$err")"
    fi
  done
  rm -f "$err"
  success "templates rendered"
}

_wl_bash_template_main
