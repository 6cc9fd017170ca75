# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/create-file: writes `content` (backslash escapes such as \n turned into characters, and
# a final newline, as Wercker's `echo -e`) to `filename`, relative to the working directory. An
# existing file is replaced only with overwrite: true. The content is printed unless
# hide-from-log: true. A write that fails (e.g. a missing directory) fails the step (Wercker
# passed anyway).

_wl_create_file_main() {
  local name content
  name=${WERCKER_CREATE_FILE_FILENAME:-}
  content=${WERCKER_CREATE_FILE_CONTENT:-}
  if [ -z "$name" ]; then
    fail "create-file: the filename option is empty; set filename to the path of the file to write"
  fi
  if [ -z "$content" ]; then
    warn "create-file: the content option is empty; $name will hold an empty line"
  fi
  if [ -e "$name" ] && [ "${WERCKER_CREATE_FILE_OVERWRITE:-}" != true ]; then
    fail "create-file: $name already exists; set overwrite: true to replace it"
  fi
  printf '%b\n' "$content" >"$name" ||
    fail "create-file: cannot write $name in $(pwd) (does its directory exist?)"
  if [ "${WERCKER_CREATE_FILE_HIDE_FROM_LOG:-}" != true ]; then
    debug "$(cat "$name")"
  fi
  success "created $name"
}

_wl_create_file_main
