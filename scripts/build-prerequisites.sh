#!/usr/bin/env bash
# Installs the Debian packages that building erp-sync needs beside the Swift toolchain (when missing):
#   pkg-config       SwiftPM finds the C libraries of system-library targets through it
#   libmariadb-dev   MariaDB Connector/C, the `MySQL` trait's system library (pkg-config libmariadb)
#   unixodbc-dev     unixODBC, the `ODBC` trait's system library (pkg-config odbc)
# Called by scripts/demo.sh and scripts/test.sh; run it yourself before `swift build`.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" pkg-config libmariadb-dev unixodbc-dev
