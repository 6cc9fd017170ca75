# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/install-packages: `apt-get install -y <packages>`, 3 attempts.
# The package lists live in $WERCKER_CACHE_DIR/wercker/apt-lists (given to apt-get with
# -o Dir::State::Lists, where Wercker replaced /var/lib/apt/lists by a symlink) and are refreshed
# when the stamp $WERCKER_CACHE_DIR/wercker/aptupdated is missing or older than a day. After a
# failed attempt, `clear-cache: true` (the default) drops the lists and the stamp.

_wl_install_packages_stale() {
  # True when the stamp file $1 is missing or was last touched more than a day ago.
  [ -z "$(find "$1" -mtime -1 2>/dev/null)" ]
}

_wl_install_packages_main() {
  local packages clear lists stamp attempt
  packages=${WERCKER_INSTALL_PACKAGES_PACKAGES:-}
  clear=${WERCKER_INSTALL_PACKAGES_CLEAR_CACHE-true}
  lists=""
  stamp=""
  if [ -z "$packages" ]; then
    fail "install-packages: the packages option is empty; list the apt packages to install, e.g. packages: curl unzip"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "install-packages: apt-get is not in this box (the step needs a Debian or Ubuntu box); use such a box, or a script step with the box's own package manager (apk add, yum install...)"
  fi
  if [ "$(id -u)" != 0 ]; then
    fail "install-packages: apt-get needs root and this box runs as uid $(id -u); use a box that runs as root"
  fi
  attempt=1
  while :; do
    set --
    if [ -n "${WERCKER_CACHE_DIR:-}" ]; then
      lists="$WERCKER_CACHE_DIR/wercker/apt-lists"
      stamp="$WERCKER_CACHE_DIR/wercker/aptupdated"
      mkdir -p "$lists/partial"
      set -- -o "Dir::State::Lists=$lists"
    fi
    if [ -z "$stamp" ] || _wl_install_packages_stale "$stamp"; then
      info "apt-get update"
      # Its status is not checked: the install below says whether the lists were good enough.
      DEBIAN_FRONTEND=noninteractive apt-get "$@" update
      if [ -n "$stamp" ]; then touch "$stamp"; fi
    fi
    info "apt-get install -y $packages"
    # shellcheck disable=SC2086 # packages is a space-separated list, split as Wercker did
    if DEBIAN_FRONTEND=noninteractive apt-get "$@" install -y $packages; then
      success "installed: $packages"
      return 0
    fi
    if [ "$attempt" -ge 3 ]; then
      fail "install-packages: apt-get install $packages failed 3 times (Retry exceeds max retries); check the package names, and that this box reaches its Debian/Ubuntu mirror (no network?)"
    fi
    warn "apt-get install failed (attempt $attempt of 3); retrying"
    if [ "$clear" = true ] && [ -n "$stamp" ]; then
      rm -rf "$stamp" "$lists"
    fi
    attempt=$((attempt + 1))
  done
}

_wl_install_packages_main
