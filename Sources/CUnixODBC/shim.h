// unixODBC driver manager API (Debian unixodbc-dev; pkg-config odbc). SQLWCHAR is UTF-16 (unsigned short).
#include <sql.h>
#include <sqlext.h>
#include <sqlucode.h>

// Attribute setters whose integer values travel in a pointer argument (the ODBC convention), which Swift
// cannot spell directly.
static inline SQLRETURN erp_odbc_set_env_version3(SQLHENV env) {
    return SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
}
static inline SQLRETURN erp_odbc_set_connect_integer(SQLHDBC dbc, SQLINTEGER attribute, SQLULEN value) {
    return SQLSetConnectAttr(dbc, attribute, (SQLPOINTER)value, 0);
}
static inline SQLRETURN erp_odbc_set_statement_integer(SQLHSTMT stmt, SQLINTEGER attribute, SQLULEN value) {
    return SQLSetStmtAttr(stmt, attribute, (SQLPOINTER)value, 0);
}
static inline SQLRETURN erp_odbc_set_statement_pointer(SQLHSTMT stmt, SQLINTEGER attribute, SQLPOINTER value) {
    return SQLSetStmtAttr(stmt, attribute, value, 0);
}

// Constants defined by macro arithmetic or casts, given plain values for Swift.
enum {
    ERP_SQL_C_SBIGINT = SQL_C_SBIGINT,
    ERP_SQL_C_CHAR = SQL_C_CHAR,
    ERP_SQL_C_WCHAR = SQL_C_WCHAR,
    ERP_SQL_C_BIT = SQL_C_BIT,
    ERP_SQL_C_DOUBLE = SQL_C_DOUBLE,
    ERP_SQL_C_BINARY = SQL_C_BINARY,
    ERP_SQL_C_TYPE_TIMESTAMP = SQL_C_TYPE_TIMESTAMP,
    ERP_SQL_SS_TIMESTAMPOFFSET = -155,
    ERP_SQL_SS_TIME2 = -154,
};
