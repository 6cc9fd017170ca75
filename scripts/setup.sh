#!/usr/bin/env bash
# Installs everything the bot and its tests need on a fresh Debian machine (run as root for
# the apt part; without root it only builds the venv). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests="${1:-}"
# bubblewrap: the local runner sandboxes every step with it (make run needs it too).
pkgs=(git python3-venv bubblewrap)
if [ "$want_tests" = "--tests" ]; then
  # The built-in steps' tests run the real tools: shellcheck, openssh-client, kubectl, nodejs.
  # postgresql: the store's tests run on PostgreSQL too (tests/harness/postgres.py starts a
  # private server; the package's own cluster is not used).
  pkgs+=(docker.io docker-registry skopeo busybox-static openssl shellcheck openssh-client kubectl nodejs)
  pkgs+=(postgresql)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
fi
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
extra=""
[ "$want_tests" = "--tests" ] && extra="[test]"
echo "==> pip install -e .$extra (editable_mode=compat)"
# compat: the .pth file is a plain path entry. The default for this flat layout is an import
# finder that every interpreter start in the venv imports (pathlib, importlib.util, urllib.parse:
# ~25 ms on `python -c pass`; only ~2 ms on `wercker-bot check`, which needs most of them anyway).
.venv/bin/pip install -q --disable-pip-version-check -e ".$extra" \
  --config-settings editable_mode=compat
