#!/usr/bin/env bash
# Fault-injection suite: kills, restarts and silences erp-sync and its databases while an "ERP writer" inserts,
# updates and cancels rows, then checks that the audit database equals the source exactly (count, key set, sum,
# content) and that no run is left RUNNING. Prints a table: scenario × injections × rows × lost × doubled ×
# recovery time (scripts/chaos.py has the scenarios).
#
#   bash scripts/chaos.sh                      the full profile (~25 min): 20 kills of sync, 20 source kills, …
#   bash scripts/chaos.sh --profile ci         a few injections per scenario (~4 min; run by scripts/test.sh)
#   bash scripts/chaos.sh --scenarios kill-sync,disk-full --pairs postgresql-sqlite   a subset
#
# Runs as root (pg_ctl restart, iptables, a tmpfs mount). Starts private PostgreSQL and MariaDB servers of its own
# (it restarts and kills them) through scripts/postgres-server.sh and scripts/mariadb-server.sh:
#   CHAOS_PG_PORT (5442), CHAOS_PG_DATA (/tmp/erp-sync-chaos-pg), CHAOS_MYSQL_PORT (3316),
#   CHAOS_MYSQL_DATA (/tmp/erp-sync-chaos-mariadb), CHAOS_WORK (/tmp/erp-sync-chaos: configs and run logs).
# The binary: $ERP_SYNC_BIN, else a release build (the ci profile: the debug build `swift test` left).
# Exits 1 when a scenario lost, doubled or left stale rows, left a run RUNNING or did not recover.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=full
for ((i = 1; i <= $#; i++)); do
  if [[ "${!i}" == --profile ]]; then j=$((i + 1)); profile="${!j}"; fi
done

bash scripts/apt-install.sh iptables python3 >/dev/null
export CHAOS_PG_PORT="${CHAOS_PG_PORT:-5442}" CHAOS_PG_DATA="${CHAOS_PG_DATA:-/tmp/erp-sync-chaos-pg}"
export CHAOS_MYSQL_PORT="${CHAOS_MYSQL_PORT:-3316}" CHAOS_MYSQL_DATA="${CHAOS_MYSQL_DATA:-/tmp/erp-sync-chaos-mariadb}"
ERP_SYNC_PG_PORT="$CHAOS_PG_PORT" ERP_SYNC_PG_DATA="$CHAOS_PG_DATA" bash scripts/postgres-server.sh >/dev/null
ERP_SYNC_MYSQL_PORT="$CHAOS_MYSQL_PORT" ERP_SYNC_MYSQL_DATA="$CHAOS_MYSQL_DATA" bash scripts/mariadb-server.sh >/dev/null

if [[ -n "${ERP_SYNC_BIN:-}" ]]; then
  bin="$ERP_SYNC_BIN"
elif [[ "$profile" == ci ]]; then
  swift build --product erp-sync >/dev/null
  bin="$(swift build --show-bin-path)/erp-sync"
else
  swift build -c release --product erp-sync >/dev/null
  bin="$(swift build -c release --show-bin-path)/erp-sync"
fi
exec /usr/bin/python3 -B scripts/chaos.py --bin "$bin" "$@"
