#!/usr/bin/env bash
# Reconciliation benchmark: N rows generated in PostgreSQL (50 pdvs over 365 days, São Paulo wall times), one full
# sync into a PostgreSQL audit database, then `erp-sync reconcile` timed twice: on the matching data (the aggregate
# query at the source + the grouped query on tb_sales, no drill-down) and after deleting one audit row (one bucket
# drilled down to its rows).
#
#   bash scripts/bench-reconcile.sh [N]          default N = 1000000
#   ERP_SYNC_BIN=.build/debug/erp-sync bash scripts/bench-reconcile.sh    use a built binary instead of a release build
#
# Needs the test PostgreSQL server (bash scripts/postgres-server.sh). Env: ERP_SYNC_PG_URL. Databases
# recon_bench_src and recon_bench_audit are dropped and created.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGOPTIONS='--client-min-messages=warning'
BASE="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:5432}"
N="${1:-1000000}"
source scripts/bench-lib.sh

for db in recon_bench_src recon_bench_audit; do q postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"; q postgres "CREATE DATABASE $db"; done
q recon_bench_src "CREATE TABLE sales (id bigint PRIMARY KEY, pdv text NOT NULL, operator text NOT NULL, amount numeric(12,2) NOT NULL,
  sold_at timestamp NOT NULL, type text NOT NULL, updated_at timestamp NOT NULL)"
q recon_bench_src "INSERT INTO sales
  SELECT g, 'PDV-' || (g % 50), 'OP-' || (g % 400), round((1 + (g * 104729 % 50000) / 100.0)::numeric, 2), ts, 'sale', ts
  FROM generate_series(1::bigint, $N::bigint) g, LATERAL (SELECT timestamp '2025-01-01' + (g * 31536000.0 / $N) * interval '1 second' AS ts) t"
q recon_bench_src "CREATE INDEX ON sales (updated_at, id); ANALYZE sales"
user="$(echo "$BASE" | sed -E 's#^postgres(ql)?://([^:]+):.*#\2#')"
password="$(echo "$BASE" | sed -E 's#^postgres(ql)?://[^:]+:([^@]+)@.*#\2#')"
host="$(echo "$BASE" | sed -E 's#.*@([^:/]+).*#\1#')"
port="$(echo "$BASE" | sed -E 's#.*:([0-9]+)$#\1#')"
cat > "$WORK/recon.yaml" <<YAML
destination: { type: postgresql, url: "$BASE/recon_bench_audit?sslmode=disable" }
defaults: { batchSize: 5000, maxRecords: 100000000, daysBack: 0 }
sources:
  - { name: bench, type: postgresql, host: $host, port: $port, database: recon_bench_src, username: $user, password: $password,
      ssl: disable, timezone: America/Sao_Paulo,
      stream: { table: sales, primaryKey: [id], cursor: { column: updated_at, kind: timestamp },
                fields: { externalId: id, pdv: pdv, operator: operator, amount: amount, occurredAt: sold_at, type: type } } }
YAML
t0=$(now)
"$BIN" sync --source bench --json --config "$WORK/recon.yaml" > "$WORK/sync.json"
echo "sync          $N rows in $(since "$t0") s"
t0=$(now)
"$BIN" reconcile --source bench --json --config "$WORK/recon.yaml" > "$WORK/match.json"
echo "reconcile     $N rows, $(grep -c '"pdv"' "$WORK/match.json") buckets, all match: $(since "$t0") s"
q recon_bench_audit "DELETE FROM tb_sales WHERE external_id = '$((N / 2))'"
t0=$(now)
set +e
"$BIN" reconcile --source bench --json --config "$WORK/recon.yaml" > "$WORK/mismatch.json"
code=$?
set -e
echo "reconcile     one audit row deleted: exit $code, missing $(grep -A1 '"missing"' "$WORK/mismatch.json" | grep -o '"[0-9]*"' | head -1) in $(since "$t0") s"
