# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/virtualenv: creates a virtualenv at virtualenv_location ($HOME/venv) with
# python_location (`python` on PATH, else `python3`) and activates it in the pipeline shell, so
# later steps use it. Uses `virtualenv` when on PATH, else `python -m venv`; no
# --no-site-packages (the default since virtualenv 20, which rejects the flag). An existing
# virtualenv there is reused. Exports PIP_DOWNLOAD_CACHE ($WERCKER_CACHE_DIR/pip-download-cache);
# with install_wheel: true (default) runs `pip install wheel` and exports PIP_WHEEL_DIR and
# PIP_FIND_LINKS ($WERCKER_CACHE_DIR/pip-wheels) and PIP_USE_WHEEL=true, else PIP_FIND_LINKS is
# the download cache.

_wl_virtualenv_main() {
  local python location cache
  python=${WERCKER_VIRTUALENV_PYTHON_LOCATION:-}
  if [ -z "$python" ]; then
    python=$(command -v python || command -v python3 || true)
  fi
  if [ -z "$python" ]; then
    fail "virtualenv: there is no python in this box (neither python nor python3 on PATH); use a box with Python, or set python_location"
  fi
  if [ ! -f "$python" ]; then
    fail "virtualenv: python_location $python is not a file; set it to the path of a Python interpreter"
  fi
  if ! "$python" --version 2>&1 | grep -Eq 'Python [23]\.'; then
    fail "virtualenv: $python --version does not report Python 2 or 3; set python_location to a Python interpreter"
  fi
  location=${WERCKER_VIRTUALENV_VIRTUALENV_LOCATION:-$HOME/venv}
  if [ -f "$location/bin/activate" ]; then
    info "reusing the virtualenv in $location"
  elif command -v virtualenv >/dev/null 2>&1; then
    info "virtualenv -p $python $location"
    virtualenv -p "$python" "$location" || fail "virtualenv: virtualenv -p $python $location failed; see its errors above"
  else
    info "$python -m venv $location"
    "$python" -m venv "$location" ||
      fail "virtualenv: neither virtualenv nor $python -m venv can create a virtualenv in this box; install virtualenv (pip install virtualenv) or Debian's python3-venv (install-packages: python3-venv)"
  fi
  # shellcheck disable=SC1091 # written by virtualenv or venv just above
  . "$location/bin/activate" || fail "virtualenv: could not activate $location"
  cache=${WERCKER_CACHE_DIR:-$HOME/.cache}
  mkdir -p "$cache/pip-download-cache"
  PIP_DOWNLOAD_CACHE="$cache/pip-download-cache"
  export PIP_DOWNLOAD_CACHE
  if [ "${WERCKER_VIRTUALENV_INSTALL_WHEEL-true}" = true ]; then
    pip install wheel ||
      fail "virtualenv: pip install wheel failed (PyPI unreachable from this box?); set install_wheel: false to skip it"
    mkdir -p "$cache/pip-wheels"
    PIP_WHEEL_DIR="$cache/pip-wheels"
    PIP_FIND_LINKS="$cache/pip-wheels"
    PIP_USE_WHEEL=true
    export PIP_WHEEL_DIR PIP_FIND_LINKS PIP_USE_WHEEL
  else
    PIP_FIND_LINKS="$cache/pip-download-cache"
    export PIP_FIND_LINKS
  fi
  success "virtualenv $location is active"
}

_wl_virtualenv_main
