# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/github-upload-asset: POST the bytes of `file` to
# <upload_url>/repos/<owner>/<repo>/releases/<release_id>/assets?name=<filename>, with the
# content type `content_type` (default: `file --mime-type -b`, else application/octet-stream),
# then export <export_id> (default WERCKER_GITHUB_UPLOAD_ASSET_ID) = the asset id. release_id
# defaults to $WERCKER_GITHUB_CREATE_RELEASE_ID (exported by github-create-release), filename to
# the file's base name, owner/repo to $WERCKER_GIT_OWNER/$WERCKER_GIT_REPOSITORY. Differences: the
# name is URL-encoded; `upload_url` is new, for GitHub Enterprise. The token goes to curl through
# its standard input. Needs curl.

_wl_ghua_urlencode() {
  # $1 percent-encoded (RFC 3986 unreserved characters kept).
  local hex
  for hex in $(printf '%s' "$1" | od -An -v -tx1); do
    case $hex in
      3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e)
        # shellcheck disable=SC2059 # an octal escape built from the byte
        printf "\\$(printf '%03o' "0x$hex")" ;;
      *) printf '%%%s' "$(printf '%s' "$hex" | tr 'a-f' 'A-F')" ;;
    esac
  done
}

_wl_ghua_json_field() {
  # The first string or number value of key $1 in the JSON file $2.
  tr -d '\n' <"$2" | grep -oE "\"$1\"[[:space:]]*:[[:space:]]*(\"[^\"]*\"|[0-9]+)" | head -n 1 |
    sed -e 's/^[^:]*:[[:space:]]*//' -e 's/^"//' -e 's/"$//'
}

_wl_ghua_main() {
  local token file name owner repo ctype release export_id url resp err code id
  token=${WERCKER_GITHUB_UPLOAD_ASSET_TOKEN:-}
  file=${WERCKER_GITHUB_UPLOAD_ASSET_FILE:-}
  owner=${WERCKER_GITHUB_UPLOAD_ASSET_OWNER:-${WERCKER_GIT_OWNER:-}}
  repo=${WERCKER_GITHUB_UPLOAD_ASSET_REPO:-${WERCKER_GIT_REPOSITORY:-}}
  release=${WERCKER_GITHUB_UPLOAD_ASSET_RELEASE_ID:-${WERCKER_GITHUB_CREATE_RELEASE_ID:-}}
  export_id=${WERCKER_GITHUB_UPLOAD_ASSET_EXPORT_ID:-WERCKER_GITHUB_UPLOAD_ASSET_ID}
  url=${WERCKER_GITHUB_UPLOAD_ASSET_UPLOAD_URL:-https://uploads.github.com}
  if [ -z "$token" ]; then fail "github-upload-asset: the token option is empty; set token: \$GITHUB_TOKEN (a secret with the repo scope)"; fi
  if [ -z "$file" ]; then fail "github-upload-asset: the file option is empty; set file to the path of the asset to upload"; fi
  if [ ! -f "$file" ]; then fail "github-upload-asset: file $file does not exist in $(pwd)"; fi
  if [ -z "$release" ]; then fail "github-upload-asset: no release id: run github-create-release earlier in this pipeline, or set release_id"; fi
  if [ -z "$owner" ] || [ -z "$repo" ]; then fail "github-upload-asset: owner or repo is empty and WERCKER_GIT_OWNER/WERCKER_GIT_REPOSITORY are not set; set owner and repo"; fi
  case $export_id in
    [!A-Za-z_]* | *[!A-Za-z0-9_]*) fail "github-upload-asset: export_id '$export_id' is not a variable name" ;;
  esac
  if ! command -v curl >/dev/null 2>&1; then
    fail "github-upload-asset: curl is not in this box; install it first (install-packages: curl)"
  fi
  name=${WERCKER_GITHUB_UPLOAD_ASSET_FILENAME:-$(basename "$file")}
  ctype=${WERCKER_GITHUB_UPLOAD_ASSET_CONTENT_TYPE:-}
  if [ -z "$ctype" ] && command -v file >/dev/null 2>&1; then ctype=$(file --mime-type -b "$file"); fi
  ctype=${ctype:-application/octet-stream}
  if ! { resp=$(mktemp) && err=$(mktemp); }; then fail "github-upload-asset: mktemp failed"; fi
  info "uploading $file as $name ($ctype) to release $release of $owner/$repo"
  code=$(printf 'header = "Authorization: token %s"\n' "$(printf '%s' "$token" | sed 's/[\\"]/\\&/g')" |
    curl -sS -K - -o "$resp" -w '%{http_code}' -X POST \
      -H 'Accept: application/vnd.github.v3+json' -H "Content-Type: $ctype" \
      -A wercker-bot-github-upload-asset --data-binary "@$file" \
      "$url/repos/$owner/$repo/releases/$release/assets?name=$(_wl_ghua_urlencode "$name")" 2>"$err")
  case $code in
    2??) ;;
    '' | 000)
      fail "github-upload-asset: cannot reach $url (no network from this box?): $(cat "$err")" ;;
    *)
      fail "github-upload-asset: GitHub answered HTTP $code: $(_wl_ghua_json_field message "$resp") (422 when an asset named $name exists; 404 when release $release is not in $owner/$repo or the token cannot write it)" ;;
  esac
  if command -v jq >/dev/null 2>&1; then
    id=$(jq -r '.id // empty' "$resp")
  else
    id=$(_wl_ghua_json_field id "$resp")
  fi
  rm -f "$resp" "$err"
  if [ -z "$id" ]; then fail "github-upload-asset: GitHub's answer has no asset id"; fi
  export "$export_id=$id"
  success "uploaded $name (asset id $id, exported as $export_id)"
}

_wl_ghua_main
