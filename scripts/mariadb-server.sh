#!/usr/bin/env bash
# Makes a MariaDB server available for the integration tests (Debian 12, run as root).
#
#   scripts/mariadb-server.sh         install mariadb-server and mariadb-client if missing,
#                                     start a private server unless one already answers on
#                                     127.0.0.1:$ERP_SYNC_MYSQL_PORT, then make sure user erp_sync
#                                     (password erp_sync, all privileges) and database erp_source exist
#   scripts/mariadb-server.sh stop    stop the private server (if running)
#   scripts/mariadb-server.sh status  whether the private server runs
#
# Environment:
#   ERP_SYNC_MYSQL_PORT   TCP port, default 3306 (listens on 127.0.0.1 only)
#   ERP_SYNC_MYSQL_DATA   data directory of the private server, default /tmp/erp-sync-mariadb; its socket is
#                         $ERP_SYNC_MYSQL_DATA/mysqld.sock (not the system's /run/mysqld socket)
# The private server offers TLS with a self-signed certificate for 127.0.0.1 (made with openssl), which is also
# its CA file: $ERP_SYNC_MYSQL_DATA/tls/cert.pem (the TLS tests verify against it).
# Debian's service scripts cannot start daemons here (policy-rc.d), so mariadbd is started directly.
# Idempotent: run it as often as you like.
set -euo pipefail

PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
DATA="${ERP_SYNC_MYSQL_DATA:-/tmp/erp-sync-mariadb}"
SOCKET="$DATA/mysqld.sock"
PIDFILE="$DATA/mariadbd.pid"
LOG="$DATA/server.log"
USER_NAME=erp_sync
PASSWORD=erp_sync

log() { echo "mariadb-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Answers over TCP as erp_sync?
answers_as_erp_sync() {
  mariadb --protocol=TCP -h 127.0.0.1 -P "$PORT" -u "$USER_NAME" -p"$PASSWORD" -N -e 'SELECT 1' >/dev/null 2>&1
}

# Something listens on the port (any answer, even an access error)?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

private_running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

install_mariadb() {
  bash "$(dirname "$0")/apt-install.sh" mariadb-server mariadb-client
}

start_private() {
  id mysql >/dev/null 2>&1 || die "no 'mysql' OS user (is mariadb-server installed properly?)"
  if [[ ! -d "$DATA/mysql" ]]; then
    if [[ -d "$DATA" ]] && [[ -n "$(ls -A "$DATA")" ]]; then
      die "$DATA exists, is not empty and holds no MariaDB data directory; remove it or set ERP_SYNC_MYSQL_DATA"
    fi
    log "initialising $DATA"
    mkdir -p "$DATA"
    chown mysql:mysql "$DATA"
    mariadb-install-db --user=mysql --datadir="$DATA" --auth-root-authentication-method=socket \
      --skip-test-db >"$DATA/install.log" 2>&1 || { tail -n 20 "$DATA/install.log" >&2; die "mariadb-install-db failed"; }
  fi
  if [[ ! -f "$DATA/tls/cert.pem" ]]; then
    mkdir -p "$DATA/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
      -keyout "$DATA/tls/key.pem" -out "$DATA/tls/cert.pem" >/dev/null 2>&1 || die "openssl could not make a test certificate"
    chown -R mysql:mysql "$DATA/tls"
  fi
  log "starting mariadbd on 127.0.0.1:$PORT (socket $SOCKET, log $LOG)"
  # --no-defaults: nothing from /etc/mysql (its socket and datadir belong to the system service).
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DATA" --socket="$SOCKET" --pid-file="$PIDFILE" \
    --bind-address=127.0.0.1 --port="$PORT" --log-error="$LOG" --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci --max-connections=500 --innodb-buffer-pool-size=256M \
    --innodb-flush-log-at-trx-commit=2 --skip-name-resolve \
    --ssl-cert="$DATA/tls/cert.pem" --ssl-key="$DATA/tls/key.pem" </dev/null >/dev/null 2>&1 &
  local i
  for i in $(seq 1 60); do
    mariadb --no-defaults -S "$SOCKET" -u root -N -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  tail -n 20 "$LOG" >&2 || true
  die "mariadbd did not become ready"
}

ensure_user() {
  mariadb --no-defaults -S "$SOCKET" -u root <<SQL
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS erp_source CHARACTER SET utf8mb4;
SQL
}

cmd_start() {
  install_mariadb
  if answers_as_erp_sync; then
    log "a server already answers on 127.0.0.1:$PORT as $USER_NAME; using it"
  elif private_running; then
    ensure_user
  elif port_open; then
    die "something listens on 127.0.0.1:$PORT but $USER_NAME/$PASSWORD cannot log in; stop it or set ERP_SYNC_MYSQL_PORT"
  else
    start_private
    ensure_user
  fi
  answers_as_erp_sync || die "cannot log in as $USER_NAME over TCP on 127.0.0.1:$PORT"
  mariadb --protocol=TCP -h 127.0.0.1 -P "$PORT" -u "$USER_NAME" -p"$PASSWORD" -e 'CREATE DATABASE IF NOT EXISTS erp_source CHARACTER SET utf8mb4'
  echo "mariadb ready: mysql://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/erp_source"
}

cmd_stop() {
  if private_running; then
    local pid
    pid="$(cat "$PIDFILE")"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "stopped"; return 0; }; sleep 1; done
    die "mariadbd ($pid) did not stop"
  fi
  log "private server in $DATA is not running"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) if private_running; then echo "running (pid $(cat "$PIDFILE"))"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
