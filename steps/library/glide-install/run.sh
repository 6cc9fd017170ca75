# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/glide-install: prints `glide --version`, then `glide install` in the working directory.
# Wercker shipped a glide binary inside the package; this uses $WERCKER_STEP_ROOT/glide when a
# package carries one, else `glide` on the box's PATH.

_wl_glide_install_main() {
  local glide
  if [ -x "${WERCKER_STEP_ROOT:-}/glide" ]; then
    glide="$WERCKER_STEP_ROOT/glide"
  elif command -v glide >/dev/null 2>&1; then
    glide=glide
  else
    fail "glide-install: glide is not in this box; use a box with glide on PATH (glide is archived upstream: Go modules and \`go mod download\` in a script step replace it)"
  fi
  "$glide" --version
  "$glide" install ||
    fail "glide-install: glide install failed; see glide's errors above (a dependency's repository unreachable from this box?)"
  success "glide install done"
}

_wl_glide_install_main
