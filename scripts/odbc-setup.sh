#!/usr/bin/env bash
# Makes the ODBC side of the tests available (Debian 12, run as root), idempotent:
#   - Debian packages: unixodbc-dev (the ODBC trait's system library, pkg-config odbc), the drivers the
#     integration tests use (odbc-postgresql = psqlODBC, odbc-mariadb = MariaDB Connector/ODBC,
#     libsqliteodbc = SQLite3 ODBC, tdsodbc = FreeTDS), python3-venv;
#   - a Python venv at $ERP_SYNC_ODBC_VENV (default /tmp/erp-sync-odbc-venv) with the pinned PyPI packages:
#     sqlglot (dialect parse check, scripts/check-dialects.py) and pysqlbridge (a TDS endpoint for the FreeTDS
#     tests, scripts/tds-bridge.sh).
set -euo pipefail

VENV="${ERP_SYNC_ODBC_VENV:-/tmp/erp-sync-odbc-venv}"
PACKAGES=(unixodbc-dev unixodbc odbc-postgresql odbc-mariadb libsqliteodbc tdsodbc python3-venv)
PIP_PACKAGES=(sqlglot==30.30.0 pysqlbridge==2.1.3)

log() { echo "odbc-setup: $*" >&2; }

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian driver packages register themselves in /etc/odbcinst.ini; say so if one did not.
for driver in "PostgreSQL Unicode" "MariaDB Unicode" "SQLite3" "FreeTDS"; do
  grep -q "^\[$driver\]" /etc/odbcinst.ini || log "warning: ODBC driver '$driver' is not registered in /etc/odbcinst.ini"
done

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
for requirement in "${PIP_PACKAGES[@]}"; do
  "$VENV/bin/python" -m pip show "${requirement%%==*}" 2>/dev/null | grep -qx "Version: ${requirement##*==}" \
    || "$VENV/bin/python" -m pip install -q "$requirement"
done
