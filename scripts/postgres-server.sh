#!/usr/bin/env bash
# Makes a PostgreSQL 15 server available for the integration tests (Debian 12, run as root).
#
#   scripts/postgres-server.sh         install PostgreSQL 15 if missing, start a private cluster unless a
#                                      server already answers on 127.0.0.1:$ERP_SYNC_PG_PORT, then make
#                                      sure role erp_sync (password erp_sync, superuser) and databases
#                                      erp_source / erp_audit exist
#   scripts/postgres-server.sh stop    stop the private cluster (if running)
#   scripts/postgres-server.sh status  pg_ctl status of the private cluster
#
# Environment:
#   ERP_SYNC_PG_PORT   TCP port, default 5432 (listens on 127.0.0.1 only)
#   ERP_SYNC_PG_DATA   data directory of the private cluster, default /tmp/erp-sync-pg; must be
#                      reachable by the postgres OS user (so not under /root)
#   PGUSER/PGPASSWORD  superuser for the TCP fallback, used only when a server that is not ours
#                      already answers on the port and neither its unix socket nor erp_sync works
# Idempotent: run it as often as you like.
set -euo pipefail

PORT="${ERP_SYNC_PG_PORT:-5432}"
DATA="${ERP_SYNC_PG_DATA:-/tmp/erp-sync-pg}"
PGBIN=/usr/lib/postgresql/15/bin
LOG="$DATA/server.log"
ROLE=erp_sync
PASSWORD=erp_sync
DATABASES=(erp_source erp_audit)

log() { echo "postgres-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as the postgres OS user, from / (its tools complain about an unreadable cwd).
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# 0 = accepting connections, 1 = rejecting (starting up / shutting down), 2 = no response, 3 = no attempt.
ready_status() {
  local rc=0
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 3 || rc=$?
  echo "$rc"
}

wait_ready() {
  local i
  for i in $(seq 1 60); do
    [[ "$(ready_status)" == 0 ]] && return 0
    sleep 1
  done
  return 1
}

private_cluster_running() {
  [[ -f "$DATA/PG_VERSION" ]] && as_postgres "$PGBIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

cmd_stop() {
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "no private cluster in $DATA"
    return 0
  fi
  if private_cluster_running; then
    as_postgres "$PGBIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60
  else
    log "private cluster in $DATA is not running"
  fi
}

install_postgres() {
  bash "$(dirname "$0")/apt-install.sh" postgresql-15 postgresql-client-15
  [[ -x "$PGBIN/postgres" ]] || die "$PGBIN/postgres still missing after installing postgresql-15"
}

start_private_cluster() {
  id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is postgresql-15 installed properly?)"

  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    if [[ -d "$DATA" ]] && [[ -n "$(ls -A "$DATA")" ]]; then
      die "$DATA exists, is not empty and holds no PostgreSQL cluster; remove it or set ERP_SYNC_PG_DATA"
    fi
    log "creating cluster in $DATA"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    as_postgres "$PGBIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C \
      --auth-host=scram-sha-256 --auth-local=trust >/dev/null
    echo "include_if_exists = 'erp-sync.conf'" >>"$DATA/postgresql.conf"
  fi
  [[ "$(stat -c %U "$DATA")" == postgres ]] || die "$DATA is not owned by the postgres OS user"

  # Rewritten on every start so a changed ERP_SYNC_PG_PORT takes effect.
  cat >"$DATA/erp-sync.conf" <<EOF
# written by scripts/postgres-server.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
EOF
  chown postgres:postgres "$DATA/erp-sync.conf"

  if private_cluster_running; then
    # Running, but not answering on our port: probably started with another ERP_SYNC_PG_PORT.
    log "private cluster in $DATA is running but not ready on port $PORT; restarting it"
    as_postgres "$PGBIN/pg_ctl" restart -D "$DATA" -m fast -w -t 60 -l "$LOG" >/dev/null
  else
    log "starting private cluster in $DATA on 127.0.0.1:$PORT (log: $LOG)"
    as_postgres "$PGBIN/pg_ctl" start -D "$DATA" -w -t 60 -l "$LOG" >/dev/null \
      || { tail -n 20 "$LOG" >&2 || true; die "pg_ctl start failed"; }
  fi
  wait_ready || { tail -n 20 "$LOG" >&2 || true; die "server in $DATA did not become ready on port $PORT"; }
}

# SQL that creates/updates the role and the databases; needs a superuser connection.
ensure_sql() {
  cat <<EOF
SELECT format('CREATE ROLE %I', '$ROLE') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE WITH LOGIN SUPERUSER PASSWORD '$PASSWORD';
EOF
  local db
  for db in "${DATABASES[@]}"; do
    cat <<EOF
SELECT format('CREATE DATABASE %I OWNER %I', '$db', '$ROLE') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \gexec
ALTER DATABASE $db OWNER TO $ROLE;
EOF
  done
}

# Connects as a superuser to the server on $PORT: the postgres OS user over a unix socket if we find
# one for this port, else TCP as erp_sync (if it already exists), else TCP as $PGUSER (default postgres).
ensure_role_and_databases() {
  local dir
  for dir in "$DATA" /var/run/postgresql /run/postgresql /tmp; do
    [[ -S "$dir/.s.PGSQL.$PORT" ]] || continue
    if as_postgres "$PGBIN/psql" -X -q -h "$dir" -p "$PORT" -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
      ensure_sql | as_postgres "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -d postgres >/dev/null
      return 0
    fi
  done
  if PGPASSWORD="$PASSWORD" "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tA \
       -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user" 2>/dev/null | grep -qx t; then
    ensure_sql | PGPASSWORD="$PASSWORD" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres >/dev/null
    return 0
  fi
  local admin="${PGUSER:-postgres}"
  log "no usable unix socket for port $PORT; trying TCP as $admin (set PGUSER/PGPASSWORD if this fails)"
  ensure_sql | "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$admin" -d postgres -w >/dev/null \
    || die "could not connect to 127.0.0.1:$PORT as a superuser to create role $ROLE"
}

cmd_start() {
  install_postgres
  case "$(ready_status)" in
    0) log "a server already answers on 127.0.0.1:$PORT; using it" ;;
    1) log "server on 127.0.0.1:$PORT is starting; waiting"
       wait_ready || die "server on 127.0.0.1:$PORT did not become ready" ;;
    *) start_private_cluster ;;
  esac
  ensure_role_and_databases
  # Check the credentials the tests will use, over TCP.
  PGPASSWORD="$PASSWORD" "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d erp_audit -tA -c 'SELECT 1' >/dev/null \
    || die "cannot log in as $ROLE over TCP on 127.0.0.1:$PORT (check pg_hba.conf of that server)"
  echo "postgres ready: postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/erp_audit"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) [[ -f "$DATA/PG_VERSION" ]] || { log "no private cluster in $DATA"; exit 3; }
          as_postgres "$PGBIN/pg_ctl" status -D "$DATA" ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
