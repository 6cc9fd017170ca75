# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/slack-notifier: posts one attachment (colour good when $WERCKER_RESULT is passed, else
# danger) to the incoming webhook `url`, as a `payload=<json>` form field:
#   "<build url|build> for <app> by <started by> has <result> on branch <branch>"
# with "deploy (<target>)" and the deploy URL when $DEPLOY is set, and " at step: <step>" on a
# failure. Options of wercker/slack-notifier: url, channel (# added), username (werckerbot),
# icon_url, notify_on (failed: only failures), branch (only that branch). Options of
# pretty-slack-notify, taken too: webhook_url (= url), branches (an extended regex the branch
# must match), notify_on passed, passed_message / failed_message (appended). Served under the id
# pretty-slack-notify, it reads WERCKER_PRETTY_SLACK_NOTIFY_* and username defaults to Wercker.
# Differences: the JSON is escaped; any HTTP error or an unreachable webhook fails the step
# (Wercker failed only on 404 and some 500s); no default icon. The webhook URL (a secret) goes
# to curl through its standard input and is never printed. Needs curl.

_wl_slack_opt() {
  # The value of option $1 (upper case, _ for -) under this step's name.
  local value
  case ${WERCKER_STEP_NAME:-} in
    pretty-slack-notify) eval "value=\${WERCKER_PRETTY_SLACK_NOTIFY_$1:-}" ;;
    *) eval "value=\${WERCKER_SLACK_NOTIFIER_$1:-}" ;;
  esac
  printf '%s' "$value"
}

_wl_slack_json() {
  # $1 as a JSON string, quotes included.
  printf '%s' "$1" | tr -d '\000-\010\013-\037' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$(printf '\t')/\\\\t/g" |
    awk 'BEGIN { ORS = ""; printf "\"" } NR > 1 { printf "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

_wl_slack_main() {
  local url result branch regex notify_on user channel action link app text color payload code resp err extra
  url=$(_wl_slack_opt URL)
  url=${url:-$(_wl_slack_opt WEBHOOK_URL)}
  if [ -z "$url" ]; then
    fail "slack-notifier: the url option is empty; set url (or webhook_url) to the Slack incoming webhook, e.g. url: \$SLACK_URL"
  fi
  result=${WERCKER_RESULT:-passed}
  branch=${WERCKER_GIT_BRANCH:-}
  notify_on=$(_wl_slack_opt NOTIFY_ON)
  if [ -n "$notify_on" ] && [ "$notify_on" != "$result" ]; then
    info "not notifying: the result is $result and notify_on is $notify_on"
    return 0
  fi
  if [ -n "$(_wl_slack_opt BRANCH)" ] && [ "$(_wl_slack_opt BRANCH)" != "$branch" ]; then
    info "not notifying: branch $branch is not $(_wl_slack_opt BRANCH)"
    return 0
  fi
  regex=$(_wl_slack_opt BRANCHES)
  if [ -n "$regex" ] && ! printf '%s\n' "$branch" | grep -Eq -- "$regex"; then
    info "not notifying: branch $branch does not match $regex"
    return 0
  fi
  if ! command -v curl >/dev/null 2>&1; then
    fail "slack-notifier: curl is not in this box; install it first (install-packages: curl)"
  fi
  if [ -n "${DEPLOY:-}" ] && [ "${DEPLOY}" != false ]; then
    action="deploy (${WERCKER_DEPLOYTARGET_NAME:-})"
    link=${WERCKER_DEPLOY_URL:-}
  else
    action=build
    link=${WERCKER_BUILD_URL:-${WERCKER_RUN_URL:-}}
  fi
  if [ -n "$link" ]; then action="<$link|$action>"; fi
  app=${WERCKER_APPLICATION_NAME:-${WERCKER_GIT_OWNER:-}/${WERCKER_GIT_REPOSITORY:-}}
  text="$action for $app by ${WERCKER_STARTED_BY:-wercker-bot} has $result on branch $branch"
  if [ "$result" = passed ]; then
    color=good
    extra=$(_wl_slack_opt PASSED_MESSAGE)
  else
    color=danger
    if [ -n "${WERCKER_FAILED_STEP_DISPLAY_NAME:-}" ]; then text="$text at step: $WERCKER_FAILED_STEP_DISPLAY_NAME"; fi
    extra=$(_wl_slack_opt FAILED_MESSAGE)
  fi
  if [ -n "$extra" ]; then text="$text $(printf '%b' "$extra")"; fi
  case ${WERCKER_STEP_NAME:-} in
    pretty-slack-notify) user=$(_wl_slack_opt USERNAME); user=${user:-Wercker} ;;
    *) user=$(_wl_slack_opt USERNAME); user=${user:-werckerbot} ;;
  esac
  payload="{\"username\":$(_wl_slack_json "$user")"
  channel=$(_wl_slack_opt CHANNEL)
  if [ -n "$channel" ]; then payload="$payload,\"channel\":$(_wl_slack_json "#${channel#\#}")"; fi
  if [ -n "$(_wl_slack_opt ICON_URL)" ]; then payload="$payload,\"icon_url\":$(_wl_slack_json "$(_wl_slack_opt ICON_URL)")"; fi
  payload="$payload,\"attachments\":[{\"fallback\":$(_wl_slack_json "$text"),\"text\":$(_wl_slack_json "$text"),\"color\":\"$color\"}]}"
  if ! { resp=$(mktemp) && err=$(mktemp); }; then fail "slack-notifier: mktemp failed"; fi
  code=$(printf 'url = "%s"\n' "$(printf '%s' "$url" | sed 's/[\\"]/\\&/g')" |
    curl -sS -K - -o "$resp" -w '%{http_code}' -A wercker-bot-slack-notifier \
      --data-urlencode "payload=$payload" 2>"$err")
  case $code in
    2??) rm -f "$resp" "$err"; success "notified Slack: $result" ;;
    '' | 000)
      fail "slack-notifier: cannot reach the Slack webhook (no network from this box?): $(sed 's#https\{0,1\}://[^ ]*#<webhook>#g' "$err")" ;;
    *)
      fail "slack-notifier: Slack answered HTTP $code: $(head -c 200 "$resp") (404: the webhook was removed; 403/410: it was revoked)" ;;
  esac
}

_wl_slack_main
