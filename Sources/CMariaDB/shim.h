// MariaDB Connector/C client API (Debian libmariadb-dev; include path from pkg-config libmariadb).
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
