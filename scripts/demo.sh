#!/usr/bin/env bash
# The README's first command: installs the build prerequisites (scripts/build-prerequisites.sh), builds
# erp-sync and runs its Sakila demo (`erp-sync demo`): a sample ERP, a config in ./demo-run and one sync.
#   bash scripts/demo.sh [demo arguments, e.g. --dir /tmp/demo]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-prerequisites.sh
swift run erp-sync demo "$@"
