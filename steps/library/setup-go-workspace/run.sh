# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/setup-go-workspace: copies $WERCKER_SOURCE_DIR to <gopath>/src/<package-dir> (or
# <gopath>/src/$WERCKER_GIT_DOMAIN/$WERCKER_GIT_OWNER/$WERCKER_GIT_REPOSITORY) and exports
# WERCKER_SOURCE_DIR=<that directory>, so later steps start there; it also cds there. A failed
# copy fails the step (Wercker passed anyway).

_wl_setup_go_workspace_main() {
  local gopath target
  gopath=${WERCKER_SETUP_GO_WORKSPACE_GOPATH-${GOPATH:-}}
  if [ -z "$gopath" ]; then
    fail "setup-go-workspace: no GOPATH: set the gopath option, or use a box that sets \$GOPATH (e.g. golang:1.10)"
  fi
  if [ -n "${WERCKER_SETUP_GO_WORKSPACE_PACKAGE_DIR:-}" ]; then
    target="$gopath/src/$WERCKER_SETUP_GO_WORKSPACE_PACKAGE_DIR"
  elif [ -n "${WERCKER_GIT_REPOSITORY:-}" ]; then
    target="$gopath/src/${WERCKER_GIT_DOMAIN:-}/${WERCKER_GIT_OWNER:-}/$WERCKER_GIT_REPOSITORY"
  else
    fail "setup-go-workspace: missing package-dir option and no repository info found; set package-dir, e.g. package-dir: github.com/owner/repo"
  fi
  if [ -z "${WERCKER_SOURCE_DIR:-}" ] || [ ! -d "$WERCKER_SOURCE_DIR" ]; then
    fail "setup-go-workspace: WERCKER_SOURCE_DIR (${WERCKER_SOURCE_DIR:-unset}) is not a directory"
  fi
  mkdir -p "$target" || fail "setup-go-workspace: cannot create $target"
  cp -a "$WERCKER_SOURCE_DIR/." "$target/" || fail "setup-go-workspace: copying $WERCKER_SOURCE_DIR to $target failed"
  WERCKER_SOURCE_DIR=$target
  export WERCKER_SOURCE_DIR
  cd "$target" || fail "setup-go-workspace: cannot enter $target"
  info "WERCKER_SOURCE_DIR is now $target"
  success "go workspace ready"
}

_wl_setup_go_workspace_main
