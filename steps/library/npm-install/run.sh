# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/npm-install: `npm install <options>`, 3 attempts.
# With `use-cache: true` (default) npm's cache is $WERCKER_CACHE_DIR/wercker/npm. Wercker ran
# `npm config set cache`, which writes the user's npmrc; this exports npm_config_cache instead,
# which later steps of the pipeline see the same way and writes no file. After a failed attempt,
# `clear-cache-on-failed: true` (default) runs `npm cache clean --force` (modern npm refuses the
# old `npm cache clear`) and leaves a .keep file so the emptied cache is saved.

_wl_npm_install_main() {
  local cache attempt
  cache=""
  if ! command -v npm >/dev/null 2>&1; then
    fail "npm-install: npm is not in this box; use a box with Node.js and npm (e.g. node:20), or install them in an earlier step"
  fi
  if [ "${WERCKER_NPM_INSTALL_USE_CACHE-true}" = true ] && [ -n "${WERCKER_CACHE_DIR:-}" ]; then
    cache="$WERCKER_CACHE_DIR/wercker/npm"
    mkdir -p "$cache"
    npm_config_cache=$cache
    export npm_config_cache
    info "npm cache: $cache"
  fi
  attempt=1
  while :; do
    info "npm install ${WERCKER_NPM_INSTALL_OPTIONS:-}"
    # shellcheck disable=SC2086 # options is a list of arguments, split as Wercker did
    if npm install ${WERCKER_NPM_INSTALL_OPTIONS:-}; then
      success "npm install done"
      return 0
    fi
    if [ "$attempt" -ge 3 ]; then
      fail "npm-install: npm install failed 3 times; see npm's errors above (a dependency that cannot be installed, or the npm registry unreachable from this box)"
    fi
    warn "npm install failed (attempt $attempt of 3); retrying"
    if [ "${WERCKER_NPM_INSTALL_CLEAR_CACHE_ON_FAILED-true}" = true ] && [ -n "$cache" ]; then
      npm cache clean --force || warn "npm cache clean failed"
      mkdir -p "$cache"
      : >"$cache/.keep"
    fi
    attempt=$((attempt + 1))
  done
}

_wl_npm_install_main
