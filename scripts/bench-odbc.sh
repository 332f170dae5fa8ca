#!/usr/bin/env bash
# The ODBC source against the native PostgreSQL source in the same run: the Sakila payments (16,049 rows, in
# erp_source on the test PostgreSQL) synced into a fresh SQLite audit file through psqlODBC (`type: odbc`,
# driver "PostgreSQL Unicode") and through postgres-nio (`type: postgresql`), alternating, best of N each.
# Prints both times, rows/s and the ratio ODBC / native (goal: within 2x).
#   bash scripts/bench-odbc.sh [runs, default 3]
# Environment: ERP_SYNC_BENCH_BUILD=release (default) or debug (no release compile: quicker, slower code).
# Needs: scripts/postgres-server.sh + load-sakila-postgres.sh, scripts/odbc-setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
PORT="${ERP_SYNC_PG_PORT:-5432}"
BUILD="${ERP_SYNC_BENCH_BUILD:-release}"
swift build -c "$BUILD" --product erp-sync >/dev/null
BIN="$(swift build -c "$BUILD" --show-bin-path)/erp-sync"
WORK="$(mktemp -d /tmp/erp-sync-bench-odbc.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

stream='
    stream:
      query: "SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id"
      primaryKey: [payment_id]
      cursor: { column: payment_date, kind: timestamp }
      fields: { externalId: payment_id, pdv: store_id, operator: staff_id, amount: amount, occurredAt: payment_date, type: { sql: "'"'"'sale'"'"'" }, reference: rental_id }'
write_config() { # $1 audit file
  cat > "$WORK/erp-sync.yaml" <<YAML
destination: { type: sqlite, path: $1 }
defaults: { batchSize: 5000, maxRecords: 1000000, daysBack: 0 }
sources:
  - name: native
    type: postgresql
    host: 127.0.0.1
    port: $PORT
    database: erp_source
    username: erp_sync
    password: erp_sync
    ssl: disable$stream
  - name: odbc
    type: odbc
    connectionString: "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=$PORT;DATABASE=erp_source"
    dialect: postgresql
    username: erp_sync
    password: erp_sync$stream
YAML
}

best_native="" best_odbc=""
for run in $(seq 1 "$RUNS"); do
  for source in native odbc; do
    audit="$WORK/audit-$source-$run.sqlite"
    write_config "$audit"
    start=$(date +%s.%N)
    "$BIN" sync --config "$WORK/erp-sync.yaml" --source "$source" --full --json > "$WORK/result.json" 2>"$WORK/progress.log"
    end=$(date +%s.%N)
    seconds=$(awk "BEGIN { print $end - $start }")
    inserted=$(grep -o '"recordsInserted" : [0-9]*' "$WORK/result.json" | grep -o '[0-9]*$')
    [[ "$inserted" == 16049 ]] || { echo "bench-odbc: $source inserted '$inserted' rows, expected 16049" >&2; exit 1; }
    printf 'run %d  %-6s  %6.3f s\n' "$run" "$source" "$seconds"
    if [[ $source == native ]]; then
      [[ -z "$best_native" ]] || awk "BEGIN { exit !($seconds < $best_native) }" && best_native=$seconds
    else
      [[ -z "$best_odbc" ]] || awk "BEGIN { exit !($seconds < $best_odbc) }" && best_odbc=$seconds
    fi
  done
done
awk -v n="$best_native" -v o="$best_odbc" -v runs="$RUNS" -v build="$BUILD" 'BEGIN {
  printf "native PostgreSQL source: 16,049 rows in %.3f s = %.0f rows/s (best of %d, %s build)\n", n, 16049 / n, runs, build
  printf "psqlODBC source:          16,049 rows in %.3f s = %.0f rows/s (best of %d, %s build)\n", o, 16049 / o, runs, build
  printf "ratio ODBC / native (time): %.2f (goal: within 2)\n", o / n
}'
