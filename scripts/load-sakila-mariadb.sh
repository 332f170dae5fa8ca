#!/usr/bin/env bash
# Loads the bundled Sakila rows (store, staff, payment) into a MariaDB database, replacing the tables if
# they exist. The tables are built under temporary names and swapped in with one RENAME TABLE, so a failed
# load leaves the old tables.
#
#   scripts/load-sakila-mariadb.sh [DATABASE]       default database: erp_source (created if missing)
#
# Server: 127.0.0.1:${ERP_SYNC_MYSQL_PORT:-3306}, user erp_sync/erp_sync (scripts/mariadb-server.sh starts one).
# Needs the mariadb client. Runs from any folder.
set -euo pipefail

DB="${1:-erp_source}"
PORT="${ERP_SYNC_MYSQL_PORT:-3306}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SAKILA="$(cd "$SCRIPT_DIR/../Sources/erp-sync/Resources/sakila" && pwd)"
[[ "$DB" =~ ^[A-Za-z0-9_]+$ ]] || { echo "load-sakila-mariadb: database name '$DB' must be letters, digits, _" >&2; exit 2; }
for f in store staff payment; do
  [[ -r "$SAKILA/$f.tsv" ]] || { echo "load-sakila-mariadb: missing $SAKILA/$f.tsv" >&2; exit 1; }
done

sql() { mariadb --protocol=TCP -h 127.0.0.1 -P "$PORT" -u erp_sync -perp_sync --local-infile=1 "$@"; }

# LOAD DATA LOCAL INFILE takes the file name as a string literal: escape backslashes and single quotes.
literal() { local s="${1//\\/\\\\}"; printf "'%s'" "${s//\'/\\\'}"; }

sql -e "CREATE DATABASE IF NOT EXISTS \`$DB\` CHARACTER SET utf8mb4"
sql "$DB" >/dev/null <<SQL
SET NAMES utf8mb4;
SET time_zone = '+00:00';
DROP TABLE IF EXISTS new_payment, new_staff, new_store;
CREATE TABLE new_store (
  store_id INT PRIMARY KEY,
  manager_staff_id INT,
  address_id INT,
  last_update DATETIME
) ENGINE=InnoDB;
CREATE TABLE new_staff (
  staff_id INT PRIMARY KEY,
  first_name VARCHAR(45),
  last_name VARCHAR(45),
  address_id INT,
  email VARCHAR(50),
  store_id INT NOT NULL,
  active TINYINT(1),
  username VARCHAR(16),
  last_update DATETIME
) ENGINE=InnoDB;
CREATE TABLE new_payment (
  payment_id INT PRIMARY KEY,
  customer_id INT,
  staff_id INT NOT NULL,
  rental_id INT,
  amount DECIMAL(5,2) NOT NULL,
  payment_date DATETIME NOT NULL,
  KEY payment_cursor (payment_date, payment_id)
) ENGINE=InnoDB;
LOAD DATA LOCAL INFILE $(literal "$SAKILA/store.tsv") INTO TABLE new_store CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t';
LOAD DATA LOCAL INFILE $(literal "$SAKILA/staff.tsv") INTO TABLE new_staff CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t'
  (staff_id, first_name, last_name, address_id, email, store_id, @active, username, last_update) SET active = (@active = 't');
LOAD DATA LOCAL INFILE $(literal "$SAKILA/payment.tsv") INTO TABLE new_payment CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t';
DROP TABLE IF EXISTS payment, staff, store;
RENAME TABLE new_store TO store, new_staff TO staff, new_payment TO payment;
ANALYZE TABLE store, staff, payment \G
SQL
sql "$DB" -e 'SELECT count(*), sum(amount) FROM payment'
