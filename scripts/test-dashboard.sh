#!/usr/bin/env bash
# The dashboard in real headless Chromium (Debian's chromium + chromium-driver, driven by Debian's python3-selenium):
# builds erp-sync, makes the demo ERP with one invalid payment, serves it with an admin and a viewer token, and runs
# scripts/dashboard_test.py (sign in, sources, sync now with the live bar to 100 %, a run's detail, quarantine and
# reprocess, a reconciliation mismatch; as a viewer no admin buttons and the API refuses them). Screenshots at
# 1440 and 375 px go to docs/.
#   bash scripts/test-dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null || ! "$PY" -c 'import selenium' 2>/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium chromium-driver python3-selenium >/dev/null
fi
swift build --product erp-sync >/dev/null
BIN="$(swift build --show-bin-path)/erp-sync"
WORK="$(mktemp -d)"
SERVER=""
cleanup() { if [[ -n "$SERVER" ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" demo --dir "$WORK/demo" >/dev/null
# Start from an empty audit database, so the dashboard's sync loads every payment (a bar that moves), and add a
# payment that breaks the sale sign rule, so the quarantine has a row.
rm -f "$WORK"/demo/audit.sqlite*
"$PY" - "$WORK/demo/sakila-erp.sqlite" <<'PYTHON'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO payment VALUES (99001, 1, 1, 1, -2.50, '2005-06-01 10:00:00')")
db.commit()
PYTHON
token() { "$BIN" hash-token --name "$1" --role "$2" > "$WORK/$1.txt"; sed -n 's/^token: //p' "$WORK/$1.txt"; }
ADMIN_TOKEN="$(token ops admin)"
VIEWER_TOKEN="$(token auditor viewer)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PY" - "$WORK/demo/erp-sync.yaml" "$PORT" "$WORK/ops.txt" "$WORK/auditor.txt" <<'PYTHON'
import re, sys
path, port, *token_files = sys.argv[1:]
lines = [re.search(r"(- \{ name: .* \})", open(f).read()).group(1) for f in token_files]
text = open(path).read().replace("port: 8080", "port: " + port)
text = text.replace("tokens: []", "tokens:\n" + "\n".join("    " + line for line in lines))
open(path, "w").write(text)
PYTHON
"$BIN" serve --config "$WORK/demo/erp-sync.yaml" > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
mkdir -p docs
ERP_SYNC_URL="http://127.0.0.1:$PORT" ADMIN_TOKEN="$ADMIN_TOKEN" VIEWER_TOKEN="$VIEWER_TOKEN" AUDIT_DB="$WORK/demo/audit.sqlite" \
  ERP_DB="$WORK/demo/sakila-erp.sqlite" \
  SCREENSHOTS=docs "$PY" scripts/dashboard_test.py
# The tokens never reach a URL: neither in the server's request log nor anywhere else it wrote.
if grep -q -e "$ADMIN_TOKEN" -e "$VIEWER_TOKEN" "$WORK/serve.log"; then echo "FAIL: a token appears in the server log"; exit 1; fi
echo "dashboard: all checks passed"
