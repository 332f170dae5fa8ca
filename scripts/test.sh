#!/usr/bin/env bash
# All tests: starts (installing if needed) the PostgreSQL and MariaDB test servers, loads Sakila into both,
# runs `swift test`, then (without arguments) the dashboard in headless Chromium (scripts/test-dashboard.sh).
#   bash scripts/test.sh [swift test arguments, e.g. --filter PostgresSyncTests]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/postgres-server.sh
bash scripts/load-sakila-postgres.sh >/dev/null
bash scripts/mariadb-server.sh
bash scripts/load-sakila-mariadb.sh >/dev/null
export ERP_SYNC_MYSQL_HOST="${ERP_SYNC_MYSQL_HOST:-127.0.0.1}" ERP_SYNC_MYSQL_PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
# The TLS test verifies the private server's self-signed certificate (scripts/mariadb-server.sh).
if [[ -z "${ERP_SYNC_MYSQL_CA:-}" && -f "${ERP_SYNC_MYSQL_DATA:-/tmp/erp-sync-mariadb}/tls/cert.pem" ]]; then
  export ERP_SYNC_MYSQL_CA="${ERP_SYNC_MYSQL_DATA:-/tmp/erp-sync-mariadb}/tls/cert.pem"
fi
export ERP_SYNC_PG_URL="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:${ERP_SYNC_PG_PORT:-5432}}"
swift test "$@"
if [[ $# -eq 0 ]]; then bash scripts/test-dashboard.sh; fi
