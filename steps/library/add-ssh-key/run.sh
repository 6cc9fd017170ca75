# shellcheck shell=sh
# shellcheck disable=SC3043 # `local` exists in bash, dash and busybox ash
# wercker/add-ssh-key: writes the private key held in the variable <keyname>_PRIVATE (backslash
# escapes such as \n turned into characters, as Wercker's `echo -e` did) to a mode-0600 file in
# $HOME/.ssh and adds `Host <host or *>` + `IdentityFile <file>` in front of $HOME/.ssh/config.
# Wercker also wrote /root/.ssh as root through its `sudo` alias; this writes only the home of the
# user the step runs as (root's own home when it runs as root).

_wl_add_ssh_key_main() {
  local keyname key keyfile config tmp
  keyname=${WERCKER_ADD_SSH_KEY_KEYNAME:-}
  if [ -z "$keyname" ]; then
    fail "add-ssh-key: the keyname option is empty; give the name of the key's variables without \$ or suffix (keyname: MYKEY for MYKEY_PRIVATE)"
  fi
  case $keyname in
    *_PRIVATE) fail "add-ssh-key: keyname $keyname ends in _PRIVATE; give the name without the suffix (keyname: ${keyname%_PRIVATE})" ;;
    [!A-Za-z_]* | *[!A-Za-z0-9_]*) fail "add-ssh-key: keyname $keyname is not a variable name; give the name of the key's variables without \$ (keyname: MYKEY for MYKEY_PRIVATE)" ;;
  esac
  eval "key=\${${keyname}_PRIVATE:-}"
  if [ -z "$key" ]; then
    fail "add-ssh-key: \$${keyname}_PRIVATE is empty or unset; set ${keyname}_PRIVATE (a secret environment variable) to the private key"
  fi
  if ! { mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"; }; then fail "add-ssh-key: cannot create $HOME/.ssh"; fi
  keyfile=$(umask 077 && mktemp "$HOME/.ssh/wercker-key.XXXXXX") || fail "add-ssh-key: cannot create a key file in $HOME/.ssh"
  printf '%b\n' "$key" >"$keyfile" || fail "add-ssh-key: cannot write $keyfile"
  chmod 600 "$keyfile"
  config="$HOME/.ssh/config"
  tmp="$config.wercker.$$"
  {
    printf 'Host %s\n  IdentityFile %s\n' "${WERCKER_ADD_SSH_KEY_HOST:-*}" "$keyfile"
    if [ -f "$config" ]; then cat "$config"; fi
  } >"$tmp" || fail "add-ssh-key: cannot write $tmp"
  if ! { chmod 600 "$tmp" && mv "$tmp" "$config"; }; then fail "add-ssh-key: cannot write $config"; fi
  success "ssh key $keyname added for host ${WERCKER_ADD_SSH_KEY_HOST:-*}"
}

_wl_add_ssh_key_main
