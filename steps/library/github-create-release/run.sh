# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/github-create-release: POST <api_url>/repos/<owner>/<repo>/releases with tag_name,
# target_commitish (default $WERCKER_GIT_COMMIT), and name (title), body, draft, prerelease when
# set; then exports <export_id> (default WERCKER_GITHUB_CREATE_RELEASE_ID) = the new release's id.
# owner and repo default to $WERCKER_GIT_OWNER and $WERCKER_GIT_REPOSITORY. Differences: the JSON
# is escaped (a quote in title or body broke Wercker's), backslash escapes in body (\n from a YAML
# block) become characters; `api_url` (default https://api.github.com) is new, for GitHub
# Enterprise. The token goes to curl through its standard input, never its command line. Needs
# curl; reads the id with jq, python3, or grep.

_wl_ghcr_json() {
  # $1 as a JSON string, quotes included.
  printf '%s' "$1" | tr -d '\000-\010\013-\037' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$(printf '\t')/\\\\t/g" |
    awk 'BEGIN { ORS = ""; printf "\"" } NR > 1 { printf "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

_wl_ghcr_json_field() {
  # The first string or number value of key $1 in the JSON file $2.
  tr -d '\n' <"$2" | grep -oE "\"$1\"[[:space:]]*:[[:space:]]*(\"[^\"]*\"|[0-9]+)" | head -n 1 |
    sed -e 's/^[^:]*:[[:space:]]*//' -e 's/^"//' -e 's/"$//'
}

_wl_ghcr_bool() {
  # Checks that option $2 (value $1) is true, false or empty.
  case $1 in
    '' | true | false) ;;
    *) fail "github-create-release: $2 must be true or false, not '$1'" ;;
  esac
}

_wl_ghcr_main() {
  local token tag owner repo commitish export_id api body resp err code id
  token=${WERCKER_GITHUB_CREATE_RELEASE_TOKEN:-}
  tag=${WERCKER_GITHUB_CREATE_RELEASE_TAG:-}
  owner=${WERCKER_GITHUB_CREATE_RELEASE_OWNER:-${WERCKER_GIT_OWNER:-}}
  repo=${WERCKER_GITHUB_CREATE_RELEASE_REPO:-${WERCKER_GIT_REPOSITORY:-}}
  commitish=${WERCKER_GITHUB_CREATE_RELEASE_TARGET_COMMITISH:-${WERCKER_GIT_COMMIT:-}}
  export_id=${WERCKER_GITHUB_CREATE_RELEASE_EXPORT_ID:-WERCKER_GITHUB_CREATE_RELEASE_ID}
  api=${WERCKER_GITHUB_CREATE_RELEASE_API_URL:-https://api.github.com}
  if [ -z "$token" ]; then fail "github-create-release: the token option is empty; set token: \$GITHUB_TOKEN (a secret with the repo scope)"; fi
  if [ -z "$tag" ]; then fail "github-create-release: the tag option is empty; set tag to the release's tag, e.g. tag: v\$VERSION"; fi
  if [ -z "$owner" ] || [ -z "$repo" ]; then fail "github-create-release: owner or repo is empty and WERCKER_GIT_OWNER/WERCKER_GIT_REPOSITORY are not set; set owner and repo"; fi
  case $export_id in
    [!A-Za-z_]* | *[!A-Za-z0-9_]*) fail "github-create-release: export_id '$export_id' is not a variable name" ;;
  esac
  _wl_ghcr_bool "${WERCKER_GITHUB_CREATE_RELEASE_DRAFT:-}" draft
  _wl_ghcr_bool "${WERCKER_GITHUB_CREATE_RELEASE_PRERELEASE:-}" prerelease
  if ! command -v curl >/dev/null 2>&1; then
    fail "github-create-release: curl is not in this box; install it first (install-packages: curl)"
  fi
  body="{\"tag_name\":$(_wl_ghcr_json "$tag"),\"target_commitish\":$(_wl_ghcr_json "$commitish")"
  if [ -n "${WERCKER_GITHUB_CREATE_RELEASE_TITLE:-}" ]; then
    body="$body,\"name\":$(_wl_ghcr_json "$(printf '%b' "$WERCKER_GITHUB_CREATE_RELEASE_TITLE")")"
  fi
  if [ -n "${WERCKER_GITHUB_CREATE_RELEASE_BODY:-}" ]; then
    body="$body,\"body\":$(_wl_ghcr_json "$(printf '%b' "$WERCKER_GITHUB_CREATE_RELEASE_BODY")")"
  fi
  if [ -n "${WERCKER_GITHUB_CREATE_RELEASE_DRAFT:-}" ]; then body="$body,\"draft\":$WERCKER_GITHUB_CREATE_RELEASE_DRAFT"; fi
  if [ -n "${WERCKER_GITHUB_CREATE_RELEASE_PRERELEASE:-}" ]; then body="$body,\"prerelease\":$WERCKER_GITHUB_CREATE_RELEASE_PRERELEASE"; fi
  body="$body}"
  if ! { resp=$(mktemp) && err=$(mktemp); }; then fail "github-create-release: mktemp failed"; fi
  info "creating the release $tag of $owner/$repo"
  code=$(printf 'header = "Authorization: token %s"\n' "$(printf '%s' "$token" | sed 's/[\\"]/\\&/g')" |
    curl -sS -K - -o "$resp" -w '%{http_code}' -X POST \
      -H 'Accept: application/vnd.github.v3+json' -H 'Content-Type: application/json' \
      -A wercker-bot-github-create-release --data-binary "$body" \
      "$api/repos/$owner/$repo/releases" 2>"$err")
  case $code in
    2??) ;;
    '' | 000)
      fail "github-create-release: cannot reach $api (no network from this box?): $(cat "$err")" ;;
    *)
      fail "github-create-release: GitHub answered HTTP $code: $(_wl_ghcr_json_field message "$resp") (422 when the release for $tag exists; 401/404 when the token cannot write $owner/$repo)" ;;
  esac
  if command -v jq >/dev/null 2>&1; then
    id=$(jq -r '.id // empty' "$resp")
  else
    id=$(_wl_ghcr_json_field id "$resp")
  fi
  rm -f "$resp" "$err"
  if [ -z "$id" ]; then fail "github-create-release: GitHub's answer has no release id"; fi
  export "$export_id=$id"
  success "created the release $tag (id $id, exported as $export_id)"
}

_wl_ghcr_main
