#!/bin/sh
# Prints the file $1 rendered as the body of an unquoted here-document: $VAR, ${VAR}, $(cmd),
# backquotes and backslash escapes are evaluated, with the exported variables only (this runs as
# a child process). With $2 = -u, an unset variable is an error.
if [ "${2:-}" = -u ]; then set -u; fi
template=$(cat "$1") || exit 1
eval "cat <<WERCKER_TEMPLATE_END_OF_INPUT
$template
WERCKER_TEMPLATE_END_OF_INPUT"
