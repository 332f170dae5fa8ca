#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (Debian 12); does nothing when all are, and
# only names them on a system without dpkg (macOS: install pkg-config, mariadb-connector-c and unixodbc yourself).
#
#   bash scripts/apt-install.sh PACKAGE...
#
# Runs apt-get as root, or through sudo when it is there. Refreshes the package lists once before
# installing, and waits up to 15 minutes for another apt/dpkg process to release its lock.
# Exits 69 (EX_UNAVAILABLE) when a package is missing and cannot be installed from here.
set -euo pipefail

log() { echo "apt-install: $*" >&2; }

# A package counts as installed when dpkg says so, or when it is a virtual package that an installed
# one provides (pkg-config is provided by pkgconf on some systems).
installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]] && return 0
  dpkg-query -W -f='${Provides}\n' 2>/dev/null | tr ',' '\n' | sed 's/ (.*//; s/^ *//' | grep -qx "$1"
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  log "not a Debian system: make sure the equivalents of these are installed: $*"
  exit 0
fi

missing=()
for package in "$@"; do
  installed "$package" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  log "missing Debian packages: ${missing[*]}; install them as root: apt-get install ${missing[*]}"
  exit 69
fi

log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=900 update -qq
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { log "apt-get install ${missing[*]} failed"; exit 69; }
