#!/usr/bin/env bash
# Parses every statement `erp-sync sql` prints for the T-SQL and Oracle sources of examples/odbc-dialects.yaml
# with sqlglot (pinned in scripts/odbc-setup.sh) and checks the bans (no LIMIT, no OFFSET, TOP / FETCH FIRST /
# ROWNUM on every page). Needs a built erp-sync (swift build) with the default traits.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ERP_SYNC_ODBC_VENV:-/tmp/erp-sync-odbc-venv}"
BIN="$(swift build --show-bin-path)/erp-sync"
CONFIG=examples/odbc-dialects.yaml
status=0
for source in protheus-sqlserver:tsql retail-sqlserver:tsql erp-oracle:oracle erp-oracle11:oracle; do
  name="${source%%:*}" dialect="${source##*:}"
  printf 'check-dialects: %-20s %-7s ' "$name" "$dialect"
  "$BIN" sql --config "$CONFIG" --source "$name" | "$VENV/bin/python" scripts/check-dialects.py "$dialect" || status=1
done
exit $status
