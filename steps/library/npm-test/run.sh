# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/npm-test: `npm test`; the step's result is npm's.

_wl_npm_test_main() {
  local status
  if ! command -v npm >/dev/null 2>&1; then
    fail "npm-test: npm is not in this box; use a box with Node.js and npm (e.g. node:20), with the dependencies installed by npm-install"
  fi
  npm test
  status=$?
  if [ "$status" -ne 0 ]; then
    setMessage "npm test failed (exit $status)"
  fi
  return "$status"
}

_wl_npm_test_main
