# Sourced by bench.sh and bench-reconcile.sh: the erp-sync binary in $BIN (a release build in .build-release,
# linked as README "Install" builds it, --static-swift-stdlib: a dynamically linked one spends ~15 ms more per run
# loading the Swift libraries; or $ERP_SYNC_BIN when set), a scratch folder $WORK removed on exit, and the helpers
# below. Needs $BASE (server URL).
if [[ -n "${ERP_SYNC_BIN:-}" ]]; then
  BIN="$ERP_SYNC_BIN"
else
  swift build -c release --static-swift-stdlib --scratch-path .build-release --product erp-sync >/dev/null
  BIN="$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)/erp-sync"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

q() { psql "$BASE/$1" -X -q -v ON_ERROR_STOP=1 -At -c "$2"; }   # one statement on database $1, rows as text
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { print b - a }'; }   # seconds since the instant $1
