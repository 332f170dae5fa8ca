#!/usr/bin/env bash
# All tests: starts (installing if needed) the PostgreSQL test server, loads Sakila into it, runs `swift test`.
#   bash scripts/test.sh [swift test arguments, e.g. --filter PostgresSyncTests]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/postgres-server.sh
bash scripts/load-sakila-postgres.sh >/dev/null
export ERP_SYNC_PG_URL="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:${ERP_SYNC_PG_PORT:-5432}}"
swift test "$@"
