#!/usr/bin/env bash
# Several `erp-sync serve` instances on one PostgreSQL audit database (README "Several serve instances"): 3
# instances of the built binary, 6 sources with an ERP inserting and updating rows throughout, a schedule whose
# slots fire during the test; one instance is killed with `kill -9` and another stopped with SIGSTOP (a process
# frozen or cut off from the network) while they hold leases, then resumed with SIGCONT. Checks and prints:
# every slot of every source ran exactly once across the fleet, no batch was committed by an instance after its
# lease was taken over (fencing), no run is left RUNNING, and the audit equals the sources (count, key set, sum,
# content). Exits 1 when a check fails.
#   bash scripts/fleet.sh          the full profile: a slot every minute for 5 minutes (lease 20 s), ~7 minutes
#   bash scripts/fleet.sh --ci     the short profile of CI: a slot every 10 s for 70 s (lease 4 s), ~2 minutes
# Needs: the built binary (ERP_SYNC_BIN, default `swift build --show-bin-path`/erp-sync), PostgreSQL at
# ERP_SYNC_PG_URL (default postgres://erp_sync:erp_sync@127.0.0.1:5432, a superuser: databases fleet_* are
# created and dropped); psql and curl are installed when missing (scripts/apt-install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-install.sh postgresql-client-15 curl

profile=full
if [[ "${1:-}" == "--ci" ]]; then profile=ci; elif [[ $# -gt 0 ]]; then echo "usage: bash scripts/fleet.sh [--ci]" >&2; exit 64; fi
if [[ $profile == ci ]]; then interval=10; lease=4; duration=70; rows=1500; pause=15; else interval=60; lease=20; duration=300; rows=3000; pause=75; fi
bin="${ERP_SYNC_BIN:-$(swift build --show-bin-path 2>/dev/null)/erp-sync}"
pg="${ERP_SYNC_PG_URL:-postgres://erp_sync:erp_sync@127.0.0.1:5432}"
[[ -x "$bin" ]] || { echo "fleet.sh: no erp-sync binary at $bin (swift build first, or set ERP_SYNC_BIN)" >&2; exit 69; }

run_id=$(date +%s)$$
src_db="fleet_src_$run_id"
audit_db="fleet_audit_$run_id"
dir=$(mktemp -d /tmp/erp-sync-fleet.XXXXXX)
pids=()
inserter=""
sql() { psql "$pg/$1" -v ON_ERROR_STOP=1 -Atqc "$2"; }
cleanup() {
  [[ -n "$inserter" ]] && kill "$inserter" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $src_db WITH (FORCE)" -qc "DROP DATABASE IF EXISTS $audit_db WITH (FORCE)" >/dev/null 2>&1 || true
  if [[ "${keep:-0}" == 1 ]]; then echo "logs kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

sql postgres "CREATE DATABASE $src_db" && sql postgres "CREATE DATABASE $audit_db"
sources_yaml=""
for n in 1 2 3 4 5 6; do
  sql "$src_db" "CREATE TABLE sales_$n (id bigserial PRIMARY KEY, pdv text NOT NULL, operator text NOT NULL, amount numeric(12,2) NOT NULL,
      occurred_at timestamp NOT NULL, type text NOT NULL, updated_at timestamp NOT NULL);
    CREATE INDEX ON sales_$n (updated_at, id);
    INSERT INTO sales_$n (pdv, operator, amount, occurred_at, type, updated_at)
    SELECT 's$n-pdv' || (g % 7), 'op' || (g % 5), round((random() * 500)::numeric, 2), now() AT TIME ZONE 'UTC' - make_interval(mins => g),
      CASE WHEN g % 10 = 0 THEN 'cancel' ELSE 'sale' END, now() AT TIME ZONE 'UTC' - make_interval(secs => g)
    FROM generate_series(1, $rows) g"
  # Each row costs ~2 ms to read (pg_sleep in a mapped field), so a run lasts long enough to be interrupted.
  sources_yaml+="
  - name: fleet-$n
    type: postgresql
    url_placeholder: x
    stream:
      table: sales_$n
      primaryKey: [id]
      cursor: { column: updated_at, kind: timestamp }
      fields:
        externalId: id
        pdv: { sql: \"pdv || substr(pg_sleep(0.002)::text, 1, 0)\" }
        operator: operator
        amount: amount
        occurredAt: occurred_at
        type: type
      typeMap: { sale: sale, cancel: cancel }"
done
host=$(sed -E 's#^postgres(ql)?://([^:]+):([^@]+)@([^:/]+):?([0-9]*).*#\4#' <<<"$pg")
port=$(sed -E 's#^postgres(ql)?://([^:]+):([^@]+)@([^:/]+):?([0-9]*).*#\5#' <<<"$pg")
user=$(sed -E 's#^postgres(ql)?://([^:]+):([^@]+)@.*#\2#' <<<"$pg")
password=$(sed -E 's#^postgres(ql)?://([^:]+):([^@]+)@.*#\3#' <<<"$pg")
connection="host: $host
    port: ${port:-5432}
    database: $src_db
    username: $user
    password: $password
    ssl: disable
    timezone: UTC"
sources_yaml=${sources_yaml//url_placeholder: x/$connection}
token_json=$("$bin" hash-token --name ops --role admin --json)
token=$(sed -E 's/.*"token" *: *"([^"]+)".*/\1/' <<<"$(tr -d '\n' <<<"$token_json")")
hash=$(sed -E 's/.*"hash" *: *"([^"]+)".*/\1/' <<<"$(tr -d '\n' <<<"$token_json")")
cat >"$dir/erp-sync.yaml" <<EOF
destination: { type: postgresql, url: "$pg/$audit_db?sslmode=disable", leasePeriod: ${lease}s }
defaults: { daysBack: 0, batchSize: 200, lookback: 1m }
api:
  port: 0
  tokens: [{ name: ops, role: admin, hash: "$hash" }]
schedule: { interval: ${interval}s, fullSyncAt: "off", maxConcurrentRuns: 6 }
sources:$sources_yaml
EOF

ports=()
for i in 1 2 3; do
  "$bin" serve --config "$dir/erp-sync.yaml" --instance-id "fleet-$i" --log-level info >"$dir/serve-$i.out" 2>"$dir/serve-$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 1 300); do grep -q "listening on" "$dir/serve-$i.out" 2>/dev/null && break; sleep 0.1; done
  ports+=("$(sed -nE 's#.*listening on http://[^:]+:([0-9]+).*#\1#p' "$dir/serve-$i.out")")
  [[ -n "${ports[$((i - 1))]}" ]] || { keep=1; echo "fleet.sh: instance $i did not start" >&2; cat "$dir/serve-$i.log" >&2; exit 1; }
done
start=$(date +%s)
echo "fleet: 3 instances (pids ${pids[*]}, ports ${ports[*]}), 6 sources x $rows rows, a slot every ${interval}s for ${duration}s, lease ${lease}s"

# The ERP: every half second, two new rows and one changed row in each table.
(
  while true; do
    statements=""
    for n in 1 2 3 4 5 6; do
      statements+="INSERT INTO sales_$n (pdv, operator, amount, occurred_at, type, updated_at) SELECT 's$n-pdv' || (g % 7), 'op' || (g % 5),
        round((random() * 500)::numeric, 2), now() AT TIME ZONE 'UTC', CASE WHEN random() < 0.1 THEN 'cancel' ELSE 'sale' END,
        clock_timestamp() AT TIME ZONE 'UTC' FROM generate_series(1, 2) g;
        UPDATE sales_$n SET amount = amount + 1, updated_at = clock_timestamp() AT TIME ZONE 'UTC' WHERE id = (SELECT (random() * $rows)::int + 1);"
    done
    psql "$pg/$src_db" -qc "$statements" >/dev/null 2>&1 || true
    sleep 0.5
  done
) &
inserter=$!

# Waits until instance $1 holds a live lease (a run in progress), up to $2 seconds.
wait_for_lease() {
  local deadline=$(($(date +%s) + $2))
  while (($(date +%s) < deadline)); do
    [[ -n "$(sql "$audit_db" "SELECT source_id FROM tb_sync_lock WHERE instance_id = 'fleet-$1' AND expires_at > clock_timestamp() LIMIT 1" 2>/dev/null)" ]] && return 0
    sleep 0.1
  done
  return 1
}

sleep $((interval + interval / 2))
wait_for_lease 1 $((interval * 3)) || echo "fleet: instance 1 held no lease; killing it anyway"
held=$(sql "$audit_db" "SELECT string_agg(source_id, ',') FROM tb_sync_lock WHERE instance_id = 'fleet-1' AND expires_at > clock_timestamp()")
kill -9 "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
killed_at=$(($(date +%s) - start))
echo "fleet: t+${killed_at}s kill -9 instance fleet-1 (holding ${held:-nothing})"

sleep "$interval"
wait_for_lease 2 $((interval * 3)) || echo "fleet: instance 2 held no lease; pausing it anyway"
held=$(sql "$audit_db" "SELECT string_agg(source_id, ',') FROM tb_sync_lock WHERE instance_id = 'fleet-2' AND expires_at > clock_timestamp()")
kill -STOP "${pids[1]}"
paused_at=$(($(date +%s) - start))
echo "fleet: t+${paused_at}s SIGSTOP instance fleet-2 (holding ${held:-nothing}) for ${pause}s"
sleep "$pause"
kill -CONT "${pids[1]}"
echo "fleet: t+$(($(date +%s) - start))s SIGCONT instance fleet-2"

# What erp.getStatus on the third instance shows while leases are held across the fleet.
wait_for_lease 2 $((interval * 3)) || wait_for_lease 3 $((interval * 3)) || true
status_json=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:${ports[2]}/trpc/erp.getStatus" || true)
remaining=$((duration - ($(date +%s) - start)))
((remaining > 0)) && sleep "$remaining"
kill "$inserter" 2>/dev/null || true
wait "$inserter" 2>/dev/null || true
inserter=""
stopped=$(sql "$audit_db" "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
echo "fleet: t+$(($(date +%s) - start))s the ERP stops writing; waiting for a run of every source that starts after it"
deadline=$(($(date +%s) + interval * 4 + 60))
while (($(date +%s) < deadline)); do
  done_sources=$(sql "$audit_db" "SELECT count(DISTINCT source_id) FROM tb_erp_sync_audit WHERE status = 'SUCCESS' AND started_at > '$stopped'")
  [[ "$done_sources" == 6 ]] && break
  sleep 1
done
kill -TERM "${pids[1]}" "${pids[2]}" 2>/dev/null || true
for pid in "${pids[1]}" "${pids[2]}"; do wait "$pid" 2>/dev/null || true; done
last_slot=$(sql "$audit_db" "SELECT max(slot_at) FROM tb_sync_slots WHERE claimed_at < '$stopped'::timestamptz")

failures=0
check() { # name, value, expected
  if [[ "$2" == "$3" ]]; then printf '  %-58s %s\n' "$1" "$2"; else printf '  %-58s %s (expected %s)  FAIL\n' "$1" "$2" "$3"; failures=$((failures + 1)); fi
}
echo
echo "Slots per source, from the first slot claimed to the last slot due before the ERP stopped (every ${interval}s):"
printf '  %-8s %6s %7s %5s %7s %7s  %s\n' source due claimed runs fenced missing "claimed by instance"
first_slot=$(sql "$audit_db" "SELECT min(slot_at) FROM tb_sync_slots")
total_missing=0
total_unrun=0
for n in 1 2 3 4 5 6; do
  s="fleet-$n"
  due=$(sql "$audit_db" "SELECT (extract(epoch FROM '$last_slot'::timestamptz - '$first_slot'::timestamptz) / $interval)::int + 1")
  claimed=$(sql "$audit_db" "SELECT count(*) FROM tb_sync_slots WHERE source_id = '$s' AND slot_at BETWEEN '$first_slot' AND '$last_slot'")
  runs=$(sql "$audit_db" "SELECT count(*) FROM tb_sync_slots l JOIN tb_erp_sync_audit a USING (sync_id) WHERE l.source_id = '$s' AND slot_at BETWEEN '$first_slot' AND '$last_slot'")
  fenced=$(sql "$audit_db" "SELECT count(*) FROM tb_erp_sync_audit WHERE source_id = '$s' AND error_details::text LIKE '%LOCK_LOST%'")
  missing=$(sql "$audit_db" "SELECT count(*) FROM generate_series('$first_slot'::timestamptz, '$last_slot'::timestamptz, interval '$interval seconds') g
      WHERE NOT EXISTS (SELECT 1 FROM tb_sync_slots WHERE source_id = '$s' AND slot_at = g)")
  by=$(sql "$audit_db" "SELECT string_agg(instance_id || ':' || n, ' ' ORDER BY instance_id) FROM (SELECT instance_id, count(*) n FROM tb_sync_slots WHERE source_id = '$s' GROUP BY 1) x")
  printf '  %-8s %6s %7s %5s %7s %7s  %s\n' "$s" "$due" "$claimed" "$runs" "$fenced" "$missing" "$by"
  total_missing=$((total_missing + missing))
  total_unrun=$((total_unrun + claimed - runs))
done
echo
echo "Checks:"
check "slots missed (due, claimed by no instance)" "$total_missing" 0
check "slots claimed whose run has no audit row" "$total_unrun" 0
check "scheduled runs without a slot, or sharing one" "$(sql "$audit_db" "SELECT count(*) FROM tb_erp_sync_audit a WHERE triggered_by = 'scheduler'
    AND (SELECT count(*) FROM tb_sync_slots l WHERE l.sync_id = a.sync_id) <> 1")" 0
check "slots run more than once (runs per source and slot > 1)" "$(sql "$audit_db" "SELECT count(*) FROM (SELECT l.source_id, l.slot_at FROM tb_sync_slots l
    JOIN tb_erp_sync_audit a USING (sync_id) GROUP BY 1, 2 HAVING count(*) > 1) x")" 0
# A fenced run (LOCK_LOST) lost its lease when another instance claimed the source: nothing it wrote may be newer.
check "rows written by a run after its lease was taken over" "$(sql "$audit_db" "
    WITH fenced AS (SELECT a.sync_id, a.source_id, l.claimed_at, l.instance_id FROM tb_erp_sync_audit a JOIN tb_sync_slots l USING (sync_id)
                    WHERE a.error_details::text LIKE '%LOCK_LOST%' OR a.error_details::text LIKE '%ABANDONED%'),
         takeover AS (SELECT f.sync_id, (SELECT min(n.claimed_at) FROM tb_sync_slots n WHERE n.source_id = f.source_id
                        AND n.claimed_at > f.claimed_at AND n.instance_id <> f.instance_id) AS at FROM fenced f)
    SELECT (SELECT count(*) FROM tb_sales s JOIN takeover t USING (sync_id) WHERE t.at IS NOT NULL AND s.updated_at > t.at)
         + (SELECT count(*) FROM tb_sync_state s JOIN takeover t USING (sync_id) WHERE t.at IS NOT NULL AND s.updated_at > t.at)")" 0
check "runs left RUNNING" "$(sql "$audit_db" "SELECT count(*) FROM tb_erp_sync_audit WHERE status = 'RUNNING'")" 0
check "sources with a SUCCESS run after the ERP stopped" "$(sql "$audit_db" "SELECT count(DISTINCT source_id) FROM tb_erp_sync_audit
    WHERE status = 'SUCCESS' AND started_at > '$stopped'")" 6
echo
echo "The audit against the sources (count, key set, sum, content):"
for n in 1 2 3 4 5 6; do
  source=$(sql "$src_db" "SELECT count(*) || ' ' || sum(amount) || ' ' || md5(string_agg(id || ':' || amount || ':' || type || ':' || pdv, ',' ORDER BY id)) FROM sales_$n")
  audit=$(sql "$audit_db" "SELECT count(*) || ' ' || sum(amount) || ' ' || md5(string_agg(external_id || ':' || amount || ':' || type || ':' || pdv, ','
      ORDER BY external_id::bigint)) FROM tb_sales WHERE source_id = 'fleet-$n' AND deleted_at_source IS NULL")
  check "fleet-$n: rows sum md5" "$audit" "$source"
done
echo
echo "Lease takeovers and fencing:"
sql "$audit_db" "SELECT '  ' || source_id || ': ' || count(*) FILTER (WHERE error_details::text LIKE '%LOCK_LOST%') || ' fenced (LOCK_LOST), '
    || count(*) FILTER (WHERE error_details::text LIKE '%ABANDONED%') || ' abandoned (closed by the instance that took over)'
    FROM tb_erp_sync_audit GROUP BY source_id ORDER BY source_id"
echo "  fleet-2 after SIGCONT: $(grep -c 'LOCK_LOST' "$dir/serve-2.log" || true) log lines name LOCK_LOST"
echo
echo "erp.getStatus on fleet-3 (instanceId, and lockHolder per source):"
sed -E 's/.*"instanceId" *: *"([^"]+)".*/  instanceId: \1/' <<<"$status_json" | head -1
grep -oE '"lockHolder" *: *"[^"]*"' <<<"$status_json" | sed -E 's/"lockHolder" *: *"([^"]*)"/  held: \1/' || echo "  (no source held at the time of the call)"
echo
if ((failures > 0)); then keep=1; echo "fleet: $failures check(s) failed"; exit 1; fi
echo "fleet: all checks passed"
