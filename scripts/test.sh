#!/usr/bin/env bash
# All tests: installs the build prerequisites (scripts/build-prerequisites.sh), starts (installing if
# needed) the PostgreSQL and MariaDB test servers, loads Sakila into both, installs the ODBC drivers and pinned
# Python tools (scripts/odbc-setup.sh) and starts the TDS endpoint (scripts/tds-bridge.sh), runs `swift test`,
# then parses the T-SQL and Oracle statements with sqlglot (scripts/check-dialects.sh) and (without
# arguments) runs the fault-injection suite's ci profile (scripts/chaos.sh --profile ci: its own private servers,
# a few minutes), drives the dashboard in headless Chromium (scripts/test-dashboard.sh) and runs three `serve`
# instances through kill -9 and SIGSTOP (scripts/fleet.sh --ci).
#   bash scripts/test.sh [swift test arguments, e.g. --filter PostgresSyncTests]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-prerequisites.sh
bash scripts/postgres-server.sh
bash scripts/load-sakila-postgres.sh >/dev/null
bash scripts/mariadb-server.sh
bash scripts/load-sakila-mariadb.sh >/dev/null
bash scripts/odbc-setup.sh
bash scripts/tds-bridge.sh
export ERP_SYNC_TDS_PORT="${ERP_SYNC_TDS_PORT:-14333}" ERP_SYNC_TDS_PASSWORD="${ERP_SYNC_TDS_PASSWORD:-erp;sync\}1}"
export ERP_SYNC_MYSQL_HOST="${ERP_SYNC_MYSQL_HOST:-127.0.0.1}" ERP_SYNC_MYSQL_PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
# The TLS test verifies the private server's self-signed certificate (scripts/mariadb-server.sh).
if [[ -z "${ERP_SYNC_MYSQL_CA:-}" && -f "${ERP_SYNC_MYSQL_DATA:-/tmp/erp-sync-mariadb}/tls/cert.pem" ]]; then
  export ERP_SYNC_MYSQL_CA="${ERP_SYNC_MYSQL_DATA:-/tmp/erp-sync-mariadb}/tls/cert.pem"
fi
export ERP_SYNC_PG_URL="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:${ERP_SYNC_PG_PORT:-5432}}"
swift test "$@"
bash scripts/check-dialects.sh
if [[ $# -eq 0 ]]; then
  bash scripts/chaos.sh --profile ci
  bash scripts/test-dashboard.sh
  bash scripts/fleet.sh --ci
fi
