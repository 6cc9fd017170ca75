# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/pip-install: `<pip_command> install -r <requirements_file> <packages_list> <extra_args>`.
# A missing requirements file fails (set requirements_file: "" to skip it). When the virtualenv
# step enabled wheels (PIP_USE_WHEEL=true) and auto_run_wheel is true, `pip wheel` runs first.
# cleanup_wheel_dir (the option Wercker's script read) or cleanup_wheel_cache (the one it declared)
# set to true deletes the wheels in $PIP_WHEEL_DIR first (Wercker deleted from the wrong variable).
# Outside a virtualenv Wercker prefixed `sudo`, which its `alias sudo=""` removed: pip runs as is.

_wl_pip_install_main() {
  local pip req cleanup
  pip=${WERCKER_PIP_INSTALL_PIP_COMMAND:-pip}
  req=${WERCKER_PIP_INSTALL_REQUIREMENTS_FILE-requirements.txt}
  if ! command -v "$pip" >/dev/null 2>&1; then
    fail "pip-install: $pip is not in this box; use a box with Python and pip, run the virtualenv step first, or set pip_command (e.g. pip3)"
  fi
  set --
  if [ -n "$req" ]; then
    if [ ! -f "$req" ]; then
      fail "pip-install: requirements file $req not found in $(pwd); set requirements_file to its path, or requirements_file: \"\" to install only packages_list"
    fi
    set -- -r "$req"
  fi
  # shellcheck disable=SC2086 # a space-separated list, split as Wercker did
  set -- "$@" ${WERCKER_PIP_INSTALL_PACKAGES_LIST:-}
  if [ "$#" -eq 0 ]; then
    fail "pip-install: nothing to install: requirements_file is empty and so is packages_list"
  fi
  if [ -n "${PIP_DOWNLOAD_CACHE:-}" ]; then info "PIP_DOWNLOAD_CACHE: $PIP_DOWNLOAD_CACHE"; fi
  if [ -n "${PIP_FIND_LINKS:-}" ]; then info "PIP_FIND_LINKS: $PIP_FIND_LINKS"; fi
  cleanup=${WERCKER_PIP_INSTALL_CLEANUP_WHEEL_DIR:-${WERCKER_PIP_INSTALL_CLEANUP_WHEEL_CACHE:-}}
  if [ "$cleanup" = true ]; then
    if [ -z "${PIP_WHEEL_DIR:-}" ]; then
      fail "pip-install: cleanup_wheel_dir needs PIP_WHEEL_DIR, which the virtualenv step sets with install_wheel: true"
    fi
    info "removing the wheels in $PIP_WHEEL_DIR"
    rm -f "$PIP_WHEEL_DIR"/*.whl
  fi
  if [ "${WERCKER_PIP_INSTALL_AUTO_RUN_WHEEL-true}" = true ] && [ "${PIP_USE_WHEEL:-}" = true ]; then
    info "$pip wheel $*"
    # shellcheck disable=SC2086 # extra arguments, split as Wercker did
    "$pip" wheel "$@" ${WERCKER_PIP_INSTALL_EXTRA_WHEEL_ARGS:-} ||
      fail "pip-install: pip wheel failed; see pip's errors above (a package that does not build, or PyPI unreachable from this box)"
  fi
  info "$pip install $*"
  # shellcheck disable=SC2086 # extra arguments, split as Wercker did
  "$pip" install "$@" ${WERCKER_PIP_INSTALL_EXTRA_ARGS:-} ||
    fail "pip-install: pip install failed; see pip's errors above (a package that does not build, or PyPI unreachable from this box: PIP_INDEX_URL or PIP_FIND_LINKS can point to a local index)"
  success "pip install done"
}

_wl_pip_install_main
