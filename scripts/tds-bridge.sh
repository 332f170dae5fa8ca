#!/usr/bin/env bash
# Serves a small table over TDS with pysqlbridge (installed by scripts/odbc-setup.sh) on 127.0.0.1, for the
# FreeTDS tests (Tests/ODBCConnectorTests/TDSBridgeTests.swift). It is not SQL Server: it proves the FreeTDS
# path (login, TLS, error mapping, NVARCHAR, NULLs, a TOP page), not T-SQL semantics.
#   scripts/tds-bridge.sh         start it unless it answers already (prints nothing)
#   scripts/tds-bridge.sh stop    stop it
# Environment: ERP_SYNC_TDS_PORT (default 14333), ERP_SYNC_TDS_PASSWORD (default 'erp;sync}1', login erp),
# ERP_SYNC_ODBC_VENV (default /tmp/erp-sync-odbc-venv), ERP_SYNC_TDS_DATA (default /tmp/erp-sync-tds).
set -euo pipefail

PORT="${ERP_SYNC_TDS_PORT:-14333}"
DATA="${ERP_SYNC_TDS_DATA:-/tmp/erp-sync-tds}"
VENV="${ERP_SYNC_ODBC_VENV:-/tmp/erp-sync-odbc-venv}"
DEFAULT_PASSWORD='erp;sync}1'
export BRIDGE_PASSWORD="${ERP_SYNC_TDS_PASSWORD:-$DEFAULT_PASSWORD}"

if [[ "${1:-}" == stop ]]; then
  [[ -f "$DATA/pid" ]] && kill "$(cat "$DATA/pid")" 2>/dev/null || true
  rm -f "$DATA/pid"
  exit 0
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then exit 0; fi

mkdir -p "$DATA"
# The sale rows the tests expect: an NVARCHAR with a non-Latin-1 character, a NULL, equal cursor values.
cat > "$DATA/vendas.csv" <<'CSV'
id,pdv,operator,amount,updated_at,note
1,PDV-01,op1,10.5,2024-03-01 10:00:00,café ☕
2,PDV-01,op2,20.25,2024-03-01 10:00:01,
3,PDV-02,op1,30,2024-03-01 10:00:01,plain
4,PDV-02,op3,-5.75,2024-03-01 10:00:02,estorno
CSV
cat > "$DATA/bridge.json" <<'JSON'
{ "tables": [ { "name": "vendas", "csv": "vendas.csv" } ],
  "logins": [ { "user": "erp", "password": "${env:BRIDGE_PASSWORD}" } ] }
JSON
cd "$DATA"
nohup "$VENV/bin/python" -m pysqlbridge --config bridge.json --host 127.0.0.1 --port "$PORT" > server.log 2>&1 &
echo $! > pid
for _ in $(seq 1 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then exit 0; fi
  sleep 0.5
done
echo "tds-bridge: pysqlbridge did not start on 127.0.0.1:$PORT (see $DATA/server.log)" >&2
exit 1
