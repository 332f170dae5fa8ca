#!/usr/bin/env bash
# The load-path benchmark: erp-sync against the raw tools on the same rows, in one run, with every goal of the
# load path marked met / not met. Medians of alternated runs (ours, pipe, pgloader, ours, …): judge the ratios,
# not the seconds (this machine's timings vary ±30 % between runs).
#
#   bash scripts/bench.sh               N = 1,000,000 rows, SMALL = 100,000, 3 alternated runs per comparison
#   bash scripts/bench.sh --quick       N = 100,000, SMALL = 20,000, 1 run (a smoke run, a few minutes)
#   Env: N, SMALL, REPEATS, BATCH (default 5000), BATCHES (peak-RSS sweep, default "1000 5000 10000"),
#        TIMEOUT (seconds per case, default 600), ERP_SYNC_BIN (else a release build in .build-release),
#        ERP_SYNC_PG_URL (default postgres://erp_sync:erp_sync@127.0.0.1:5432), ERP_SYNC_MYSQL_PORT (3306).
#
# Cases (rows: 200 pdvs, 2,000 operators, 90 days, ~5 % cancellations/refunds; America/Sao_Paulo local times):
#   full      initial load of N rows, PostgreSQL -> PostgreSQL and MariaDB -> PostgreSQL: ours; the lean pipe
#             (\copy of the 7 seed columns + source id into a table with a primary key); the same-schema pipe
#             (\copy into a copy of tb_sales with its indexes, every column computed in SQL); pgloader (its own
#             fresh schema, indexes built after its COPY)
#   delta     10,000 new rows into N: ours against the delta pipe; a rerun with nothing new against the empty pipe
#   sqlite    N rows PostgreSQL -> SQLite: ours against `sqlite3` importing the same rows into the same schema
#   burst     SMALL and N rows sharing one instant (repeated pdv/operator/amount) against the same rows spread
#             over 100 days, into PostgreSQL and SQLite
#   scale     rows/s at N against rows/s at SMALL (PostgreSQL -> PostgreSQL), the N-row runs alternated with them
#   sources   N rows from 20 sources (cross-source dedup active) against the same rows from one source, alternated
#   rss       our peak RSS in every run above, and at each batch size of BATCHES for N rows
#   cpu       our user + system CPU seconds in every run above, and per row of the full loads; the cores the whole
#             machine kept busy during every run (all processes: ours, both servers, the raw tools); the CPU seconds
#             of each server (mariadbd, PostgreSQL with its backends) in every full-load run, when they run here
# Needs the test servers (bash scripts/postgres-server.sh, bash scripts/mariadb-server.sh); installs GNU time,
# sqlite3 and pgloader (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGOPTIONS='--client-min-messages=warning'
if [[ "${1:-}" == "--quick" ]]; then N="${N:-100000}" SMALL="${SMALL:-20000}" REPEATS="${REPEATS:-1}"; fi
N="${N:-1000000}" SMALL="${SMALL:-100000}" REPEATS="${REPEATS:-3}" BATCH="${BATCH:-5000}" TIMEOUT="${TIMEOUT:-600}"
BATCHES="${BATCHES:-1000 5000 10000}"
BASE="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:5432}"
MY_PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
missing=()
command -v /usr/bin/time >/dev/null || missing+=(time)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v pgloader >/dev/null || missing+=(pgloader)
if ((${#missing[@]})); then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) || echo "not installable: ${missing[*]}"
fi
source scripts/bench-lib.sh
PG_HOST=$(echo "$BASE" | sed -E 's#.*@([^:/]+).*#\1#'); PG_PORT=$(echo "$BASE" | sed -E 's#.*:([0-9]+)$#\1#')
PG_USER=$(echo "$BASE" | sed -E 's#^postgres(ql)?://([^:]+):.*#\2#'); PG_PASS=$(echo "$BASE" | sed -E 's#^postgres(ql)?://[^:]+:([^@]+)@.*#\2#')
my() { mariadb --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u erp_sync -perp_sync "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "timeout" || b == "timeout" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | grep -v timeout | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "timeout"; else print a[int((NR + 1) / 2)] }'; }
declare -A T RSS CPU BUSY SRV   # T[case] = space-separated seconds of its runs; RSS[case] = peak MiB of our runs; CPU[case] =
                                # their user + system CPU seconds; BUSY[case] = cores the whole machine kept busy during each
                                # run; SRV[case] = "mariadbd/postgres" CPU seconds of the two servers during each run
PEAK_RSS=0
CORES=$(grep -c '^cpu[0-9]' /proc/stat)   # every online CPU, as the counters below count them (nproc follows affinity)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }   # user nice system irq softirq, in clock ticks (not steal)
TICKS=$(getconf CLK_TCK)
# The servers' processes, when they run on this machine: MariaDB's mariadbd (its pid file), PostgreSQL's postmaster (the
# first line of postmaster.pid in its data directory). Empty when unreadable (a remote server): their CPU is then "-".
MY_PID=$(cat "$(my -N -e 'SELECT @@pid_file' 2>/dev/null)" 2>/dev/null || true)
PG_PID=$(head -n 1 "$(q postgres 'SHOW data_directory' 2>/dev/null)/postmaster.pid" 2>/dev/null || true)
# CPU clock ticks (user + system) of mariadbd (all its threads) and of PostgreSQL: the postmaster, the children it has
# reaped (a backend's CPU reaches its cutime/cstime when it exits) and the children still running.
server_ticks() {
  local my=- pg=-
  [[ -n $MY_PID && -r /proc/$MY_PID/stat ]] && my=$(awk '{ print $14 + $15 }' "/proc/$MY_PID/stat")
  if [[ -n $PG_PID && -r /proc/$PG_PID/stat ]]; then
    pg=$(cat "/proc/$PG_PID/stat" $(pgrep -P "$PG_PID" | sed 's#.*#/proc/&/stat#') 2>/dev/null \
      | awk -v p="$PG_PID" '{ t += $14 + $15; if ($1 == p) t += $16 + $17 } END { print t }')
  fi
  echo "$my $pg"
}

# Runs command "$@" (a program or an exported function) under the case timeout; adds its seconds (or "timeout") to T[$1]
# and the machine's busy cores over the run (every process: ours, the servers, the tools) to BUSY[$1].
timed() { # $1 case name, rest: the command
  local name=$1 t0 b0 s; shift
  local s0 s1; read -ra s0 < <(server_ticks)
  t0=$(now); b0=$(busy_ticks)
  if timeout "$TIMEOUT" bash -c '"$@"' _ "$@"; then s=$(since "$t0"); else s=timeout; fi
  read -ra s1 < <(server_ticks)
  T[$name]="${T[$name]:-} $s"
  SRV[$name]="${SRV[$name]:-} $(awk -v a="${s0[0]}" -v b="${s1[0]}" -v c="${s0[1]}" -v d="${s1[1]}" -v t="$TICKS" \
    'function f(x, y) { return x == "-" ? "-" : sprintf("%.1f", (y - x) / t) } BEGIN { print f(a, b) "/" f(c, d) }')"
  # Under a second the 10 ms ticks and the wrapper's own start-up blur the figure: "-".
  BUSY[$name]="${BUSY[$name]:-} $(awk -v b="$(( $(busy_ticks) - b0 ))" -v t="$TICKS" -v s="$s" 'BEGIN { if (s == "timeout" || s < 1) print "-"; else printf "%.1f", b / t / s }')"
}
sync_all() { /usr/bin/time -f "%M %U %S" -o "$WORK/rss" "$BIN" sync --all --json --config "$1" > "$WORK/out.json" 2> "$WORK/err.log"; }
pg_out() { psql "$BASE/bench_src" -X -q -c "\\copy ($1) TO STDOUT${2:+ WITH ($2)}"; }
my_out() { mariadb --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u erp_sync -perp_sync bench_src --batch --quick -N -e "$1"; }
pipe() { "$1" "$2" | psql "$BASE/$3" -X -q -c "\\copy $4 FROM STDIN"; }   # $1 pg_out|my_out, $2 SELECT, $3 database, $4 table (columns)
sqlite_pipe() { # $1 SELECT, $2 database file, $3 columns
  pg_out "$1" "FORMAT csv" | sqlite3 "$2" "CREATE TEMP TABLE staged ($3)" ".import --csv /dev/stdin staged" \
    "INSERT INTO tb_sales ($3) SELECT * FROM staged"
}
pgloader_load() { pgloader --dynamic-space-size 4096 --quiet "$WORK/bench.load" > "$WORK/pgloader.log" 2>&1; }
export -f now sync_all pg_out my_out pipe sqlite_pipe pgloader_load
export BASE MY_PORT WORK BIN PGOPTIONS
# Our sync of every source of config $2 into its destination, as case $1; records peak RSS and checks the runs.
ours() { # $1 case, $2 config
  timed "$1" sync_all "$2"
  local kb cpu; read -r kb cpu < <(tail -n 1 "$WORK/rss" 2>/dev/null | awk '{ print $1 + 0, $2 + $3 }') || true
  RSS[$1]="${RSS[$1]:-} $((${kb:-0} / 1024))"; CPU[$1]="${CPU[$1]:-} ${cpu:-0}"; ((${kb:-0} > PEAK_RSS)) && PEAK_RSS=$kb
  if grep -q '"status" : "FAILED"' "$WORK/out.json" 2>/dev/null; then echo "!! $1: a run failed"; grep -m3 '"message"' "$WORK/out.json"; fi
  return 0
}
fresh_pg() { q postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; q postgres "CREATE DATABASE $1"; }

# Config $1: sources ($4: "name:table ...") of type $2 (postgresql|mysql) into destination $3 (YAML flow mapping).
config() {
  local file=$1 type=$2 dest=$3 host port user pass
  if [[ $type == mysql ]]; then host=127.0.0.1 port=$MY_PORT user=erp_sync pass=erp_sync
  else host=$PG_HOST port=$PG_PORT user=$PG_USER pass=$PG_PASS; fi
  { echo "destination: $dest"
    echo "defaults: { batchSize: ${5:-$BATCH}, maxRecords: 100000000, daysBack: 0, lookback: 5m }"
    echo "sources:"
    for spec in $4; do cat <<YAML
  - { name: ${spec%%:*}, type: $type, host: $host, port: $port, database: bench_src, username: $user, password: $pass, ssl: disable,
      timezone: America/Sao_Paulo, stream: { table: ${spec#*:}, primaryKey: [id], cursor: { column: updated_at, kind: timestamp },
      fields: { externalId: id, pdv: pdv, operator: operator, amount: amount, occurredAt: timestamp, type: type, reference: reference },
      typeMap: { venda: sale, cancelamento: cancel, devolucao: refund } } }
YAML
    done; } > "$file"
}
# A fresh PostgreSQL audit database $1 with our schema (made outside the timing) and config $2 for sources $4 of type $3.
pg_target() { fresh_pg "$1"; config "$2" "$3" "{ type: postgresql, url: \"$BASE/$1?sslmode=disable\" }" "$4" "${5:-}"; "$BIN" status --config "$2" >/dev/null; }
sqlite_target() { rm -f "$1" "$1"-wal "$1"-shm; config "$2" "$3" "{ type: sqlite, path: \"$1\" }" "$4" "${5:-}"; "$BIN" status --config "$2" >/dev/null; }

# --- source data -------------------------------------------------------------------------------------------------
# Rows $2..$3 into PostgreSQL table $1, spread over $5 seconds from 2026-06-01 as if the table held $4 rows;
# BURST=1: every row at one instant with 10 distinct amounts (a date-only ERP, a bulk import).
generate() {
  local amount="round((1 + (g * 104729 % 50000) / 100.0)::numeric, 2)" ts="timestamp '2026-06-01' + (g * $5.0 / $4) * interval '1 second'"
  if [[ ${BURST:-0} == 1 ]]; then amount="(10 + g % 10)::numeric(12,2)" ts="timestamp '2026-06-01 12:00'"; fi
  q bench_src "INSERT INTO $1 SELECT g, 'PDV-' || (g % 200), 'OP-' || (g * 7919 % 2000), $amount, ts,
      CASE WHEN g % 100 < 3 THEN 'cancelamento' WHEN g % 100 < 5 THEN 'devolucao' ELSE 'venda' END, 'R' || g, ts
    FROM generate_series($2::bigint, $3::bigint) g, LATERAL (SELECT $ts AS ts) t"
}
pg_table() { # $1 name, $2 rows, $3 spread seconds, BURST as above
  q bench_src "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id bigint PRIMARY KEY, pdv text NOT NULL, operator text NOT NULL,
    amount numeric(12,2) NOT NULL, timestamp timestamp NOT NULL, type text NOT NULL, reference text, updated_at timestamp NOT NULL)"
  generate "$1" 1 "$2" "$2" "$3"
  q bench_src "CREATE INDEX ON $1 (updated_at, id); ANALYZE $1"
}
DAYS90=7776000 DAYS100=8640000
echo "== generating: N = $N, SMALL = $SMALL (PostgreSQL and MariaDB bench_src)"
fresh_pg bench_src
pg_table sale_transactions "$N" $DAYS90
pg_table sale_small "$SMALL" $DAYS90
for n in "$SMALL" "$N"; do
  BURST=1 pg_table "burst_$n" "$n" 0
  pg_table "spread_$n" "$n" $DAYS100
  q bench_src "UPDATE spread_$n s SET amount = b.amount FROM burst_$n b WHERE b.id = s.id; ANALYZE spread_$n"
done
SOURCES20=""
for k in $(seq 0 19); do
  q bench_src "CREATE TABLE part_$k AS SELECT * FROM sale_transactions WHERE id % 20 = $k; ALTER TABLE part_$k ADD PRIMARY KEY (id);
    CREATE INDEX ON part_$k (updated_at, id); ANALYZE part_$k"
  SOURCES20+=" erp$k:part_$k"
done
my -e "DROP DATABASE IF EXISTS bench_src; CREATE DATABASE bench_src CHARACTER SET utf8mb4"
my bench_src -e "CREATE TABLE sale_transactions (id BIGINT PRIMARY KEY, pdv VARCHAR(20) NOT NULL, operator VARCHAR(20) NOT NULL,
  amount DECIMAL(12,2) NOT NULL, \`timestamp\` DATETIME(6) NOT NULL, type VARCHAR(20) NOT NULL, reference VARCHAR(20),
  updated_at DATETIME(6) NOT NULL, KEY cursor_key (updated_at, id)) ENGINE=InnoDB"
psql "$BASE/bench_src" -X -q -c "\\copy (SELECT id, pdv, operator, amount, timestamp, type, reference, updated_at FROM sale_transactions) TO '$WORK/rows.tsv'"
my --local-infile=1 bench_src -e "SET unique_checks = 0; LOAD DATA LOCAL INFILE '$WORK/rows.tsv' INTO TABLE sale_transactions; ANALYZE TABLE sale_transactions" >/dev/null
echo "   source rows: PostgreSQL $(q bench_src "SELECT count(*) FROM sale_transactions"), MariaDB $(my -N bench_src -e "SELECT COUNT(*) FROM sale_transactions")"

# --- the raw tools ----------------------------------------------------------------------------------------------
LEAN="CREATE TABLE lean (source_id text, external_id text, pdv text, operator text, amount numeric(14,2), occurred_at timestamptz,
  type text, reference text, PRIMARY KEY (source_id, external_id))"
PG_LEAN="SELECT 'bench', id::text, pdv, operator, amount, timestamp AT TIME ZONE 'America/Sao_Paulo', type, reference FROM sale_transactions"
MY_LEAN="SELECT 'bench', id, pdv, operator, amount, CONCAT(\`timestamp\`, '-03'), type, reference FROM sale_transactions"
# The same-schema pipe: every tb_sales column computed in SQL (Sao Paulo is UTC-3 all year since 2019).
PIPE_COLUMNS="source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
  content_hash, sync_id, first_sync_id, ingested_at, updated_at"
PG_PIPE="SELECT 'bench', id::text, pdv, operator, amount, 'BRL', timestamp AT TIME ZONE 'America/Sao_Paulo',
  CASE type WHEN 'venda' THEN 'sale' WHEN 'cancelamento' THEN 'cancel' ELSE 'refund' END, type, reference,
  updated_at AT TIME ZONE 'America/Sao_Paulo', md5(id::text || pdv || operator || amount::text), 'pipe', 'pipe', now(), now()
  FROM sale_transactions"
MY_PIPE="SELECT 'bench', id, pdv, operator, amount, 'BRL', CONCAT(\`timestamp\`, '-03'),
  CASE type WHEN 'venda' THEN 'sale' WHEN 'cancelamento' THEN 'cancel' ELSE 'refund' END, type, reference,
  CONCAT(updated_at, '-03'), MD5(CONCAT(id, pdv, operator, amount)), 'pipe', 'pipe', NOW(), NOW() FROM sale_transactions"
pgloader_run() { # $1 case, $2 source URL, $3 the source's schema clause
  fresh_pg bench_pgloader
  cat > "$WORK/bench.load" <<LOAD
LOAD DATABASE FROM $2 INTO $BASE/bench_pgloader
  WITH include drop, create tables, create indexes, workers = 2, concurrency = 1
  INCLUDING ONLY TABLE NAMES MATCHING 'sale_transactions' $3;
LOAD
  command -v pgloader >/dev/null || { T[$1]="${T[$1]:-} timeout"; return; }
  timed "$1" pgloader_load
  if [[ ${T[$1]} == *timeout ]]; then tail -n 3 "$WORK/pgloader.log"; fi
}

# --- full loads ---------------------------------------------------------------------------------------------------
echo "== full loads of $N rows, batch $BATCH, $REPEATS alternated runs"
for r in $(seq 1 "$REPEATS"); do
  for kind in pg my; do
    if [[ $kind == pg ]]; then type=postgresql out=pg_out lean=$PG_LEAN pipe=$PG_PIPE src="pgsql://$PG_USER:$PG_PASS@$PG_HOST:$PG_PORT/bench_src"
    else type=mysql out=my_out lean=$MY_LEAN pipe=$MY_PIPE src="mysql://erp_sync:erp_sync@127.0.0.1:$MY_PORT/bench_src"; fi
    pg_target bench_audit "$WORK/$kind.yaml" $type "bench:sale_transactions"
    ours "$kind.ours" "$WORK/$kind.yaml"
    q bench_audit "$LEAN; CREATE TABLE bench_pipe (LIKE tb_sales INCLUDING ALL)"
    timed "$kind.lean" pipe $out "$lean" bench_audit lean
    timed "$kind.pipe" pipe $out "$pipe" bench_audit "bench_pipe ($PIPE_COLUMNS)"
    pgloader_run "$kind.pgloader" "$src" "$([[ $kind == pg ]] && echo "IN SCHEMA 'public'")"
  done
done
echo "   check: audit $(q bench_audit "SELECT count(*) || ' rows, sum ' || sum(amount) FROM tb_sales"), source $(q bench_src "SELECT count(*) || ' rows, sum ' || sum(amount) FROM sale_transactions")"

# --- delta and rerun (MariaDB -> PostgreSQL, the audit of the last full load) -------------------------------------
echo "== delta: 10,000 new rows into $N"
for r in $(seq 1 "$REPEATS"); do
  watermark=$(my bench_src -N -e "SELECT MAX(updated_at) FROM sale_transactions")
  first=$((N + 1 + (r - 1) * 10000))
  my bench_src -e "INSERT INTO sale_transactions SELECT id + $first - 1, pdv, operator, amount, \`timestamp\`, type, reference,
    TIMESTAMP '$watermark' + INTERVAL id * 1000 MICROSECOND FROM sale_transactions WHERE id BETWEEN 1 AND 10000"
  ours delta.ours "$WORK/my.yaml"
  timed delta.pipe pipe my_out "$MY_PIPE WHERE updated_at > TIMESTAMP '$watermark'" bench_audit "bench_pipe ($PIPE_COLUMNS)"
  ours rerun.ours "$WORK/my.yaml"
  timed rerun.pipe pipe my_out "$MY_PIPE WHERE 1 = 0" bench_audit "bench_pipe ($PIPE_COLUMNS)"
done

# --- SQLite destination -------------------------------------------------------------------------------------------
echo "== SQLite destination: $N rows from PostgreSQL"
SQLITE_COLUMNS="source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
  content_hash, sync_id, first_sync_id, ingested_at, updated_at"
SQLITE_SELECT="SELECT 'bench', id::text, pdv, operator, amount::text, 'BRL',
  to_char(timestamp AT TIME ZONE 'America/Sao_Paulo' AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
  CASE type WHEN 'venda' THEN 'sale' WHEN 'cancelamento' THEN 'cancel' ELSE 'refund' END, type, reference,
  to_char(updated_at AT TIME ZONE 'America/Sao_Paulo' AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
  md5(id::text || pdv || operator || amount::text), 'pipe', 'pipe', now()::text, now()::text FROM sale_transactions"
for r in $(seq 1 "$REPEATS"); do
  sqlite_target "$WORK/audit.db" "$WORK/sqlite.yaml" postgresql "bench:sale_transactions"
  ours sqlite.ours "$WORK/sqlite.yaml"
  sqlite_target "$WORK/pipe.db" "$WORK/pipe.yaml" postgresql "bench:sale_transactions"
  timed sqlite.pipe sqlite_pipe "$SQLITE_SELECT" "$WORK/pipe.db" "$SQLITE_COLUMNS"
done
echo "   check: ours $(sqlite3 "$WORK/audit.db" "SELECT count(*) || ' rows, sum ' || sum(amount) FROM tb_sales"), sqlite3 $(sqlite3 "$WORK/pipe.db" "SELECT count(*) FROM tb_sales") rows"

# --- bursts, scale, sources ---------------------------------------------------------------------------------------
echo "== bursts: $SMALL and $N rows at one instant against the same rows over 100 days"
for r in $(seq 1 "$REPEATS"); do
  for n in "$SMALL" "$N"; do
    for shape in burst spread; do
      pg_target bench_audit "$WORK/b.yaml" postgresql "bench:${shape}_$n"; ours "pg.$shape.$n" "$WORK/b.yaml"
      sqlite_target "$WORK/b.db" "$WORK/bs.yaml" postgresql "bench:${shape}_$n"; ours "sqlite.$shape.$n" "$WORK/bs.yaml"
    done
  done
done
echo "== scale and sources: $SMALL rows; $N rows from 20 sources"
for r in $(seq 1 "$REPEATS"); do
  pg_target bench_audit "$WORK/s.yaml" postgresql "bench:sale_small"; ours scale.small "$WORK/s.yaml"
  pg_target bench_audit "$WORK/1.yaml" postgresql "bench:sale_transactions"; ours sources.1 "$WORK/1.yaml"
  pg_target bench_audit "$WORK/20.yaml" postgresql "$SOURCES20"; ours sources.20 "$WORK/20.yaml"
done
echo "== peak RSS by batch size ($N rows, PostgreSQL -> PostgreSQL)"
for b in $BATCHES; do pg_target bench_audit "$WORK/r.yaml" postgresql "bench:sale_transactions" "$b"; ours "rss.$b" "$WORK/r.yaml"; done

# --- report -------------------------------------------------------------------------------------------------------
m() { median ${T[$1]:-}; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s == "timeout" || s == "") print "n/a"; else printf "%.0f", n / s }'; }
goal() { # $1 text, $2 value, $3 op (ge|le), $4 bound
  local ok; ok=$(awk -v v="$2" -v b="$4" -v op="$3" 'BEGIN { if (v == "n/a") print "not met"; else if ((op == "ge" && v >= b) || (op == "le" && v <= b)) print "met"; else print "not met" }')
  printf '  %-78s %8s  %s\n' "$1" "$2" "$ok"
}
echo
echo "== figures (median of $REPEATS; seconds; rows/s)"
for c in pg.ours pg.lean pg.pipe pg.pgloader my.ours my.lean my.pipe my.pgloader delta.ours delta.pipe rerun.ours rerun.pipe \
    sqlite.ours sqlite.pipe pg.burst.$SMALL pg.spread.$SMALL pg.burst.$N pg.spread.$N sqlite.burst.$SMALL sqlite.spread.$SMALL \
    sqlite.burst.$N sqlite.spread.$N scale.small sources.1 sources.20; do
  printf '  %-22s %8s s  runs:%s%s%s%s\n' "$c" "$(m "$c")" "${T[$c]:-}" "${RSS[$c]:+   peak RSS MiB:${RSS[$c]}}" "${CPU[$c]:+   CPU s:${CPU[$c]}}" \
    "${BUSY[$c]:+   busy cores of $CORES:${BUSY[$c]}}"
done
for b in $BATCHES; do printf '  %-22s %8s s  peak RSS %s MiB%s\n' "rss.batch$b" "$(m "rss.$b")" "${RSS[rss.$b]:- }" "${BUSY[rss.$b]:+   busy cores of $CORES:${BUSY[rss.$b]}}"; done
echo "  the servers' CPU seconds in each full-load run, mariadbd/postgres (PostgreSQL is both source and destination of pg.*):"
for c in pg.ours pg.lean pg.pipe pg.pgloader my.ours my.lean my.pipe my.pgloader; do printf '    %-20s%s\n' "$c" "${SRV[$c]:-}"; done
echo "  rows/s: ours PostgreSQL -> PostgreSQL $(rate "$N" "$(m pg.ours)"), MariaDB -> PostgreSQL $(rate "$N" "$(m my.ours)"), -> SQLite $(rate "$N" "$(m sqlite.ours)"), at $SMALL rows $(rate "$SMALL" "$(m scale.small)")"
us_per_row() { awk -v c="$(median ${CPU[$1]:-})" -v n="$2" 'BEGIN { if (c == "timeout" || c == "") print "n/a"; else printf "%.1f", c * 1e6 / n }'; }
echo "  our CPU (user + system) per row, µs: PostgreSQL -> PostgreSQL $(us_per_row pg.ours "$N"), MariaDB -> PostgreSQL $(us_per_row my.ours "$N"), -> SQLite $(us_per_row sqlite.ours "$N")"
echo
echo "== goals (ratios of throughput unless said)"
goal "PostgreSQL -> PostgreSQL: ours / pgloader >= 1.5" "$(ratio "$(m pg.pgloader)" "$(m pg.ours)")" ge 1.5
goal "MariaDB -> PostgreSQL: ours / pgloader >= 1.5" "$(ratio "$(m my.pgloader)" "$(m my.ours)")" ge 1.5
goal "PostgreSQL -> PostgreSQL: ours / lean pipe >= 0.5" "$(ratio "$(m pg.lean)" "$(m pg.ours)")" ge 0.5
goal "MariaDB -> PostgreSQL: ours / lean pipe >= 0.5" "$(ratio "$(m my.lean)" "$(m my.ours)")" ge 0.5
goal "PostgreSQL -> PostgreSQL: ours / same-schema pipe >= 0.9" "$(ratio "$(m pg.pipe)" "$(m pg.ours)")" ge 0.9
goal "MariaDB -> PostgreSQL: ours / same-schema pipe >= 0.9" "$(ratio "$(m my.pipe)" "$(m my.ours)")" ge 0.9
goal "10k delta into $N: time ours / delta pipe <= 1.5" "$(ratio "$(m delta.ours)" "$(m delta.pipe)")" le 1.5
goal "rerun, nothing new: seconds above the empty pipe <= 0.1" "$(awk -v a="$(m rerun.ours)" -v b="$(m rerun.pipe)" 'BEGIN { printf "%.2f", a - b }')" le 0.1
goal "SQLite: ours / sqlite3 import >= 0.5" "$(ratio "$(m sqlite.pipe)" "$(m sqlite.ours)")" ge 0.5
for d in pg sqlite; do for n in "$SMALL" "$N"; do
  goal "burst of $n rows into $d: time burst / spread <= 1.2" "$(ratio "$(m "$d.burst.$n")" "$(m "$d.spread.$n")")" le 1.2
done; done
goal "rows/s at $N / rows/s at $SMALL >= 0.9" "$(ratio "$(rate "$N" "$(m sources.1)")" "$(rate "$SMALL" "$(m scale.small)")")" ge 0.9
goal "20 sources: time / one source <= 1.3" "$(ratio "$(m sources.20)" "$(m sources.1)")" le 1.3
goal "peak RSS of every run (MiB) <= 64" "$((PEAK_RSS / 1024))" le 64
