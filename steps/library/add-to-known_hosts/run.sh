# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/add-to-known_hosts: `ssh-keyscan -t <type> [-T timeout] [-p port] <hostname>`, then the
# keys go to /etc/ssh/ssh_known_hosts (or $HOME/.ssh/known_hosts with local: true). With a
# fingerprint, only the keys whose `ssh-keygen -l` output contains it are added, and a mismatch
# warns without failing (as in Wercker). Differences: the default type is rsa,ecdsa,ed25519 (current
# OpenSSH no longer scans dsa); an MD5 fingerprint (aa:bb:...) is recognised without use-md5; a
# scan that finds no key fails, naming the host (unreachable or no sshd).

_wl_add_to_known_hosts_main() {
  local host file types scan keyfile line fp md5 added
  host=${WERCKER_ADD_TO_KNOWN_HOSTS_HOSTNAME:-}
  if [ -z "$host" ]; then
    fail "add-to-known_hosts: the hostname option is empty; set hostname to the ssh server to trust"
  fi
  if ! command -v ssh-keyscan >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
    fail "add-to-known_hosts: ssh-keyscan and ssh-keygen are not in this box; install the ssh client first (install-packages: openssh-client)"
  fi
  mkdir -p "$HOME/.ssh"
  if [ "${WERCKER_ADD_TO_KNOWN_HOSTS_LOCAL:-}" = true ]; then
    file="$HOME/.ssh/known_hosts"
  else
    if [ ! -d /etc/ssh ]; then
      fail "add-to-known_hosts: /etc/ssh does not exist (is the ssh client installed? install-packages: openssh-client), or use local: true for \$HOME/.ssh/known_hosts"
    fi
    file=/etc/ssh/ssh_known_hosts
  fi
  if [ ! -f "$file" ]; then
    (umask 022 && : >"$file") || fail "add-to-known_hosts: cannot create $file"
  fi
  types=${WERCKER_ADD_TO_KNOWN_HOSTS_TYPE:-rsa,ecdsa,ed25519}
  set -- -t "$types"
  if [ -n "${WERCKER_ADD_TO_KNOWN_HOSTS_TIMEOUT:-}" ]; then set -- "$@" -T "$WERCKER_ADD_TO_KNOWN_HOSTS_TIMEOUT"; fi
  if [ -n "${WERCKER_ADD_TO_KNOWN_HOSTS_PORT:-}" ]; then set -- "$@" -p "$WERCKER_ADD_TO_KNOWN_HOSTS_PORT"; fi
  scan=$(mktemp) || fail "add-to-known_hosts: mktemp failed"
  keyfile=$(mktemp) || fail "add-to-known_hosts: mktemp failed"
  info "ssh-keyscan $* $host"
  if ! ssh-keyscan "$@" "$host" >"$scan" || ! grep -q '^[^#]' "$scan"; then
    rm -f "$scan" "$keyfile"
    fail "add-to-known_hosts: ssh-keyscan found no $types key for $host${WERCKER_ADD_TO_KNOWN_HOSTS_PORT:+ port $WERCKER_ADD_TO_KNOWN_HOSTS_PORT}: the host is unreachable from this box, or serves no such key"
  fi
  fp=${WERCKER_ADD_TO_KNOWN_HOSTS_FINGERPRINT:-}
  if [ -z "$fp" ]; then
    grep '^[^#]' "$scan" >>"$file"
    rm -f "$scan" "$keyfile"
    warn "added the keys of $host to $file without checking them: set fingerprint to guard against a man-in-the-middle"
    success "known_hosts: $host added"
    return 0
  fi
  md5=""
  if [ "${WERCKER_ADD_TO_KNOWN_HOSTS_USE_MD5:-}" = true ]; then md5=1; fi
  case $fp in
    MD5:* | [0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:*) md5=1 ;;
  esac
  added=0
  while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    printf '%s\n' "$line" >"$keyfile"
    if [ -n "$md5" ]; then
      set -- -l -E md5 -f "$keyfile"
    else
      set -- -l -f "$keyfile"
    fi
    if ssh-keygen "$@" 2>/dev/null | grep -qF -- "$fp"; then
      printf '%s\n' "$line" >>"$file"
      added=$((added + 1))
    else
      warn "a key of $host does not match the fingerprint $fp; not added: $(ssh-keygen "$@" 2>/dev/null)"
    fi
  done <"$scan"
  rm -f "$scan" "$keyfile"
  if [ "$added" -eq 0 ]; then
    warn "no key of $host matches the fingerprint $fp: nothing was added to $file, so ssh to $host will fail (has the host's key changed?)"
    return 0
  fi
  success "known_hosts: $added key(s) of $host added to $file"
}

_wl_add_to_known_hosts_main
