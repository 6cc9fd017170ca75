# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/bundle-install: `bundle install` with the options as flags, 3 attempts; skipped (passing)
# when there is no <gemfile> in the working directory. Installs bundler with `gem install bundler
# --version <version>` when `bundle` is missing (--no-document: RubyGems 3 rejects the old
# --no-rdoc --no-ri). Gems go to `path`, by default $WERCKER_CACHE_DIR/bundle-install/ (Wercker
# ignored a given path: a bug). The path is exported as BUNDLE_PATH, bundler's own setting, so
# later `bundle exec` steps find the gems (the --path flag is deprecated). After a failed attempt
# `clear-path: true` (default) empties that path.

_wl_bundle_install_flag() {
  # The value of option $1 (e.g. full-index) of this step.
  eval "printf '%s' \"\${WERCKER_BUNDLE_INSTALL_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_'):-}\""
}

_wl_bundle_install_main() {
  local gemfile path flag jobs attempt
  gemfile=${WERCKER_BUNDLE_INSTALL_GEMFILE:-Gemfile}
  if [ ! -f "$gemfile" ]; then
    info "Skipping bundle install: there is no $gemfile in $(pwd)"
    return 0
  fi
  path=${WERCKER_BUNDLE_INSTALL_PATH:-}
  if [ -z "$path" ] && [ -n "${WERCKER_CACHE_DIR:-}" ]; then
    path="$WERCKER_CACHE_DIR/bundle-install/"
  fi
  set -- install "--gemfile=$gemfile"
  for flag in standalone binstubs clean full-index deployment local frozen; do
    if [ "$(_wl_bundle_install_flag "$flag")" = true ]; then set -- "$@" "--$flag"; fi
  done
  if [ -n "${WERCKER_BUNDLE_INSTALL_WITHOUT:-}" ]; then
    set -- "$@" "--without=$WERCKER_BUNDLE_INSTALL_WITHOUT"
  fi
  jobs=${WERCKER_BUNDLE_INSTALL_JOBS:-}
  case $jobs in
    '' | *[!0-9]* | 0) ;;
    *) set -- "$@" "--jobs=$jobs" ;;
  esac
  set -- "$@" --retry "${WERCKER_BUNDLE_INSTALL_RETRY:-3}"
  if ! command -v bundle >/dev/null 2>&1; then
    if ! command -v gem >/dev/null 2>&1; then
      fail "bundle-install: neither bundle nor gem is in this box; use a box with Ruby (e.g. ruby:3.3)"
    fi
    info "installing bundler ${WERCKER_BUNDLE_INSTALL_VERSION:->=1.5.2}"
    gem install bundler --no-document --version "${WERCKER_BUNDLE_INSTALL_VERSION:->=1.5.2}" ||
      fail "bundle-install: gem install bundler failed (rubygems.org unreachable from this box?)"
  fi
  info "$(bundle --version)"
  if [ -n "$path" ]; then
    BUNDLE_PATH=$path
    export BUNDLE_PATH
    info "gems go to $path"
  fi
  attempt=1
  while :; do
    info "bundle $*"
    if bundle "$@"; then break; fi
    if [ "$attempt" -ge 3 ]; then
      fail "bundle-install: bundle install failed 3 times; see bundler's errors above (a gem that does not build, or rubygems.org unreachable from this box)"
    fi
    warn "bundle install failed (attempt $attempt of 3); retrying"
    if [ "${WERCKER_BUNDLE_INSTALL_CLEAR_PATH-true}" = true ] && [ -n "$path" ]; then
      rm -rf "$path"
    fi
    attempt=$((attempt + 1))
  done
  if command -v rbenv >/dev/null 2>&1; then rbenv rehash; fi
  success "bundle install done"
}

_wl_bundle_install_main
