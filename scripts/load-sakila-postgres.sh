#!/usr/bin/env bash
# Loads the bundled Sakila rows (store, staff, payment) into a PostgreSQL database, replacing the
# tables if they exist. Everything runs in one transaction, so a failed load leaves the old tables.
#
#   scripts/load-sakila-postgres.sh [DATABASE_URL]
#   default URL: postgres://erp_sync:erp_sync@127.0.0.1:5432/erp_source
#
# Needs psql (postgresql-client-15; scripts/postgres-server.sh installs it). Runs from any folder.
set -euo pipefail

URL="${1:-postgres://erp_sync:erp_sync@127.0.0.1:5432/erp_source}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SAKILA="$(cd "$SCRIPT_DIR/../Sources/erp-sync/Resources/sakila" && pwd)"

PSQL=psql
command -v psql >/dev/null || PSQL=/usr/lib/postgresql/15/bin/psql
[[ -x "$(command -v "$PSQL")" ]] || { echo "load-sakila-postgres: psql not found" >&2; exit 1; }

# \copy takes the file name as a single-quoted literal: double any single quote in the path.
copy_from() {
  local table=$1 file="$SAKILA/$2"
  [[ -r "$file" ]] || { echo "load-sakila-postgres: missing $file" >&2; exit 1; }
  printf "\\\\copy %s FROM '%s'" "$table" "${file//\'/\'\'}"
}

DDL='
SET client_min_messages = warning;
DROP TABLE IF EXISTS payment, staff, store;
CREATE TABLE store (
  store_id int PRIMARY KEY,
  manager_staff_id int,
  address_id int,
  last_update timestamp
);
CREATE TABLE staff (
  staff_id int PRIMARY KEY,
  first_name text,
  last_name text,
  address_id int,
  email text,
  store_id int NOT NULL,
  active boolean,
  username text,
  last_update timestamp
);
CREATE TABLE payment (
  payment_id int PRIMARY KEY,
  customer_id int,
  staff_id int NOT NULL,
  rental_id int,
  amount numeric(5,2) NOT NULL,
  payment_date timestamp NOT NULL
);
CREATE INDEX payment_cursor ON payment (payment_date, payment_id);
'

# -1 wraps all the -c commands (DDL and the three \copy) in a single transaction.
"$PSQL" "$URL" -X -q -v ON_ERROR_STOP=1 -1 \
  -c "$DDL" \
  -c "$(copy_from store store.tsv)" \
  -c "$(copy_from staff staff.tsv)" \
  -c "$(copy_from payment payment.tsv)" \
  -c 'ANALYZE store; ANALYZE staff; ANALYZE payment;' >/dev/null

"$PSQL" "$URL" -X -v ON_ERROR_STOP=1 -c 'SELECT count(*), sum(amount) FROM payment'
