#!/usr/bin/env bash
# Benchmark: erp-sync PostgreSQL -> PostgreSQL against the raw psql COPY pipe, and MariaDB -> PostgreSQL against
# the raw `mariadb --batch --quick | psql \copy` pipe and pgloader, on the same rows and the same destination
# table shape, in one run. Prints rows/s, our peak RSS and the ratios.
#
#   bash scripts/bench.sh [N ...]          default N = 1000000; e.g. bash scripts/bench.sh 100000 1000000
#   BENCH_SOURCES=mysql bash scripts/bench.sh 100000     only MariaDB -> PostgreSQL (default: "postgresql mysql")
#   BATCH=10000 bash scripts/bench.sh …    batch size of our sync (default 5000)
#
# Needs the test servers (bash scripts/postgres-server.sh, bash scripts/mariadb-server.sh) and GNU time; tries to
# install pgloader (Debian package) and skips it if that fails. Builds erp-sync in release mode (or runs $ERP_SYNC_BIN).
# Rows: 200 pdvs, 2,000 operators, 90 days, ~5 % cancellations/refunds. Env: ERP_SYNC_PG_URL, ERP_SYNC_MYSQL_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGOPTIONS='--client-min-messages=warning'
BASE="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:5432}"
SIZES=("${@:-1000000}")
BATCH="${BATCH:-5000}"
BENCH_SOURCES="${BENCH_SOURCES:-postgresql mysql}"
MY_PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [[ " $BENCH_SOURCES " == *" mysql "* ]] && ! command -v pgloader >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgloader >/dev/null) || echo "pgloader not installable: skipped"
fi

source scripts/bench-lib.sh
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
count() { grep -o "\"$2\" : [0-9]*" "$1" | grep -o '[0-9]*$'; }   # a counter of the result JSON $1

# Writes our config $1 for the source database bench_src of type $2 at host $3, port $4, user $5, password $6,
# syncing into bench_audit.
bench_config() {
  cat > "$1" <<YAML
destination: { type: postgresql, url: "$BASE/bench_audit?sslmode=disable" }
defaults: { batchSize: $BATCH, maxRecords: 100000000, daysBack: 0, lookback: 5m }
sources:
  - name: bench
    type: $2
    host: $3
    port: $4
    database: bench_src
    username: $5
    password: $6
    ssl: disable
    timezone: America/Sao_Paulo
    stream:
      table: sale_transactions
      primaryKey: [id]
      cursor: { column: updated_at, kind: timestamp }
      fields: { externalId: id, pdv: pdv, operator: operator, amount: amount, occurredAt: timestamp, type: type, reference: reference }
      typeMap: { venda: sale, cancelamento: cancel, devolucao: refund }
YAML
}
# Our full sync with config $1: sets ours (seconds), rss_kb and inserted.
ours_full() {
  local t0; t0=$(now)
  /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" sync --all --json --config "$1" > "$WORK/full.json"
  ours=$(since "$t0"); rss_kb=$(cat "$WORK/rss"); inserted=$(count "$WORK/full.json" recordsInserted)
}
report_full() { # $1 N; after ours_full and a pipe timing in $pipe
  echo "full sync     ours: $inserted rows in ${ours}s = $(rate "$inserted" "$ours") rows/s, peak RSS $((rss_kb / 1024)) MiB"
  echo "full sync     pipe: $1 rows in ${pipe}s = $(rate "$1" "$pipe") rows/s"
  echo "full sync     ratio ours/pipe (throughput): $(ratio "$pipe" "$ours")"
}
# Our incremental sync with config $1: sets inc (seconds) and inc_inserted.
ours_incremental() {
  local t0; t0=$(now)
  "$BIN" sync --all --json --config "$1" > "$WORK/inc.json"
  inc=$(since "$t0"); inc_inserted=$(count "$WORK/inc.json" recordsInserted)
}
report_incremental() { # $1 N; after ours_incremental and a pipe timing in $inc_pipe
  echo "incremental   ours: $inc_inserted new rows in ${inc}s (into $1 rows); pipe: 10000 rows in ${inc_pipe}s; time ratio ours/pipe: $(ratio "$inc" "$inc_pipe")"
}
rerun() { # $1 config: a sync with nothing new
  local t0; t0=$(now)
  "$BIN" sync --all --json --config "$1" > "$WORK/rerun.json"
  echo "rerun         ours: $(count "$WORK/rerun.json" recordsInserted) inserted, $(count "$WORK/rerun.json" recordsUpdated) updated in $(since "$t0")s"
}

# The source rows as the audit table holds them, for the raw pipe (same columns, types and key as tb_sales).
PIPE_SELECT="SELECT 'bench', id::text, pdv, operator, amount, 'BRL', (timestamp AT TIME ZONE 'America/Sao_Paulo'),
  CASE type WHEN 'venda' THEN 'sale' WHEN 'cancelamento' THEN 'cancel' ELSE 'refund' END, type, reference,
  (updated_at AT TIME ZONE 'America/Sao_Paulo'), md5(id::text || pdv || operator || amount::text), NULL, NULL, NULL,
  'pipe', 'pipe', NULL, now(), now() FROM sale_transactions"
COLUMNS="source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
  content_hash, duplicate_of, deleted_at_source, deleted_reason, sync_id, first_sync_id, last_seen_pass, ingested_at, updated_at"

generate() { # $1 first id, $2 last id, $3 total N (spreads the N rows over 90 days)
  q bench_src "INSERT INTO sale_transactions
    SELECT g, 'PDV-' || (g % 200), 'OP-' || (g * 7919 % 2000), round((1 + (g * 104729 % 50000) / 100.0)::numeric, 2), ts,
      CASE WHEN g % 100 < 3 THEN 'cancelamento' WHEN g % 100 < 5 THEN 'devolucao' ELSE 'venda' END, 'R' || g, ts
    FROM generate_series($1::bigint, $2::bigint) g, LATERAL (SELECT timestamp '2026-06-01' + (g * 7776000.0 / $3) * interval '1 second' AS ts) t"
}

bench_postgresql() {
  local N=$1
  echo "== PostgreSQL -> PostgreSQL, N = $N rows, batch size $BATCH"
  for db in bench_src bench_audit; do q postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"; q postgres "CREATE DATABASE $db"; done
  q bench_src "CREATE TABLE sale_transactions (id bigint PRIMARY KEY, pdv text NOT NULL, operator text NOT NULL, amount numeric(12,2) NOT NULL,
    timestamp timestamp NOT NULL, type text NOT NULL, reference text, updated_at timestamp NOT NULL)"
  generate 1 "$N" "$N"
  q bench_src "CREATE INDEX ON sale_transactions (updated_at, id); ANALYZE sale_transactions"
  bench_config "$WORK/bench.yaml" postgresql "$(echo "$BASE" | sed -E 's#.*@([^:/]+).*#\1#')" \
    "$(echo "$BASE" | sed -E 's#.*:([0-9]+)$#\1#')" "$(echo "$BASE" | sed -E 's#^postgres(ql)?://([^:]+):.*#\2#')" \
    "$(echo "$BASE" | sed -E 's#^postgres(ql)?://[^:]+:([^@]+)@.*#\2#')"
  "$BIN" status --config "$WORK/bench.yaml" >/dev/null   # creates the audit schema outside the timing
  q bench_audit "CREATE TABLE bench_pipe (LIKE tb_sales INCLUDING ALL)"

  ours_full "$WORK/bench.yaml"
  t0=$(now)
  psql "$BASE/bench_src" -X -q -c "\\copy ($PIPE_SELECT) TO STDOUT" | psql "$BASE/bench_audit" -X -q -c "\\copy bench_pipe ($COLUMNS) FROM STDIN"
  pipe=$(since "$t0")
  report_full "$N"

  watermark=$(q bench_src "SELECT max(updated_at) FROM sale_transactions")
  generate $((N + 1)) $((N + 10000)) "$N"
  q bench_src "UPDATE sale_transactions SET updated_at = timestamp '$watermark' + (id - $N) * interval '1 millisecond' WHERE id > $N"
  ours_incremental "$WORK/bench.yaml"
  t0=$(now)
  psql "$BASE/bench_src" -X -q -c "\\copy ($PIPE_SELECT WHERE updated_at > timestamp '$watermark') TO STDOUT" \
    | psql "$BASE/bench_audit" -X -q -c "\\copy bench_pipe ($COLUMNS) FROM STDIN"
  inc_pipe=$(since "$t0")
  report_incremental "$N"

  rerun "$WORK/bench.yaml"
}

# --- MariaDB -> PostgreSQL -------------------------------------------------------------------------------------
my() { mariadb --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u erp_sync -perp_sync "$@"; }

# The same rows as the PostgreSQL benchmark, generated with MariaDB's sequence engine (seq_1_to_N).
my_generate() { # $1 first id, $2 last id, $3 total N
  my bench_src -e "INSERT INTO sale_transactions
    SELECT seq, CONCAT('PDV-', seq % 200), CONCAT('OP-', seq * 7919 % 2000), ROUND(1 + (seq * 104729 % 50000) / 100.0, 2), ts,
      CASE WHEN seq % 100 < 3 THEN 'cancelamento' WHEN seq % 100 < 5 THEN 'devolucao' ELSE 'venda' END, CONCAT('R', seq), ts
    FROM (SELECT seq, TIMESTAMP '2026-06-01 00:00:00' + INTERVAL (seq * 7776000000000 DIV $3) MICROSECOND AS ts FROM seq_$1_to_$2) g"
}

# The source rows as the audit table holds them (Sao Paulo is UTC-3 all year since 2019: '-03' makes the instant).
MY_PIPE_SELECT="SELECT 'bench', id, pdv, operator, amount, 'BRL', CONCAT(\`timestamp\`, '-03'),
  CASE type WHEN 'venda' THEN 'sale' WHEN 'cancelamento' THEN 'cancel' ELSE 'refund' END, type, reference,
  CONCAT(updated_at, '-03'), MD5(CONCAT(id, pdv, operator, amount)), 'pipe', 'pipe', NOW(), NOW() FROM sale_transactions"
MY_COLUMNS="source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
  content_hash, sync_id, first_sync_id, ingested_at, updated_at"

bench_mysql() {
  local N=$1
  echo "== MariaDB -> PostgreSQL, N = $N rows, batch size $BATCH"
  for db in bench_audit bench_pgloader; do q postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"; q postgres "CREATE DATABASE $db"; done
  my -e "DROP DATABASE IF EXISTS bench_src; CREATE DATABASE bench_src CHARACTER SET utf8mb4"
  my bench_src -e "CREATE TABLE sale_transactions (id BIGINT PRIMARY KEY, pdv VARCHAR(20) NOT NULL, operator VARCHAR(20) NOT NULL,
    amount DECIMAL(12,2) NOT NULL, \`timestamp\` DATETIME(6) NOT NULL, type VARCHAR(20) NOT NULL, reference VARCHAR(20),
    updated_at DATETIME(6) NOT NULL, KEY cursor_key (updated_at, id)) ENGINE=InnoDB"
  my_generate 1 "$N" "$N"
  my bench_src -e "ANALYZE TABLE sale_transactions" >/dev/null
  bench_config "$WORK/bench-my.yaml" mysql 127.0.0.1 "$MY_PORT" erp_sync erp_sync
  "$BIN" status --config "$WORK/bench-my.yaml" >/dev/null   # creates the audit schema outside the timing
  q bench_audit "CREATE TABLE bench_pipe (LIKE tb_sales INCLUDING ALL)"

  local ours rss_kb inserted pipe loader="" inc inc_pipe inc_inserted watermark t0
  ours_full "$WORK/bench-my.yaml"
  t0=$(now)
  my bench_src --batch --quick -N -e "$MY_PIPE_SELECT" | psql "$BASE/bench_audit" -X -q -c "\\copy bench_pipe ($MY_COLUMNS) FROM STDIN"
  pipe=$(since "$t0")
  report_full "$N"
  if command -v pgloader >/dev/null; then
    cat > "$WORK/bench.load" <<LOAD
LOAD DATABASE
  FROM mysql://erp_sync:erp_sync@127.0.0.1:$MY_PORT/bench_src
  INTO $BASE/bench_pgloader
  INCLUDING ONLY TABLE NAMES MATCHING 'sale_transactions'
  WITH include drop, create tables, create indexes, workers = 2, concurrency = 1;
LOAD
    t0=$(now)
    if pgloader --quiet "$WORK/bench.load" > "$WORK/pgloader.log" 2>&1; then
      loader=$(since "$t0")
      local loaded
      loaded=$(q bench_pgloader "SELECT count(*) FROM bench_src.sale_transactions")
      echo "full sync pgloader: $loaded rows in ${loader}s = $(rate "$loaded" "$loader") rows/s"
      echo "full sync     ratio ours/pgloader (throughput): $(ratio "$loader" "$ours")"
    else
      echo "full sync pgloader: failed (see below), skipped"; tail -n 5 "$WORK/pgloader.log"
    fi
  else
    echo "full sync pgloader: not installed, skipped"
  fi

  watermark=$(my bench_src -N -e "SELECT MAX(updated_at) FROM sale_transactions")
  my_generate $((N + 1)) $((N + 10000)) "$N"
  my bench_src -e "UPDATE sale_transactions SET updated_at = TIMESTAMP '$watermark' + INTERVAL (id - $N) * 1000 MICROSECOND WHERE id > $N"
  ours_incremental "$WORK/bench-my.yaml"
  t0=$(now)
  my bench_src --batch --quick -N -e "$MY_PIPE_SELECT WHERE updated_at > TIMESTAMP '$watermark'" \
    | psql "$BASE/bench_audit" -X -q -c "\\copy bench_pipe ($MY_COLUMNS) FROM STDIN"
  inc_pipe=$(since "$t0")
  report_incremental "$N"

  rerun "$WORK/bench-my.yaml"
  echo "check         audit: $(q bench_audit "SELECT count(*) || ' rows, sum ' || sum(amount) FROM tb_sales"); source: $(my bench_src -N -e "SELECT CONCAT(COUNT(*), ' rows, sum ', SUM(amount)) FROM sale_transactions")"
}

for N in "${SIZES[@]}"; do
  for kind in $BENCH_SOURCES; do "bench_$kind" "$N"; done
done
