/// One entry of the seed's `getSupportedDatabases` output: a source database type, its usual port and driver.
/// Shared by `erp-sync databases --json` and the API's `erp.getSupportedDatabases`.
public struct SupportedDatabase: Sendable, Encodable, Equatable {
    public var type: DatabaseType
    public var name: String
    public var description: String
    public var driver: String
    /// The usual server port (0 for file and ODBC sources).
    public var port: Int
    /// `true` when this build has no connector for the type yet, or the driver must be installed separately.
    public var needsInstall: Bool

    /// Every source type, with `needsInstall` set for the types missing from `available` (the connectors of
    /// the running build, known to its composition root).
    public static func catalog(available: Set<DatabaseType>) -> [SupportedDatabase] {
        [
            SupportedDatabase(type: .postgresql, name: "PostgreSQL", description: "PostgreSQL 12+", driver: "postgres-nio", port: DatabaseType.postgresql.defaultPort, needsInstall: false),
            SupportedDatabase(type: .mysql, name: "MySQL / MariaDB", description: "MariaDB 10.3+, MySQL 5.7+ (tested on MariaDB 10.11)", driver: "MariaDB Connector/C (libmariadb)", port: DatabaseType.mysql.defaultPort, needsInstall: false),
            SupportedDatabase(type: .sqlserver, name: "SQL Server",
                              description: "SQL Server 2012+ over ODBC. Not yet verified against a real SQL Server: the FreeTDS path is tested "
                                + "against a TDS endpoint (pysqlbridge): login, TLS, wrong password, NVARCHAR, NULLs, a TOP keyset page",
                              driver: "unixODBC + FreeTDS (Debian tdsodbc), or Microsoft ODBC Driver 18 (driver:)", port: DatabaseType.sqlserver.defaultPort,
                              needsInstall: true),
            SupportedDatabase(type: .oracle, name: "Oracle Database",
                              description: "Oracle 11g (oracleVersion: 11) and 12c+ over ODBC. Not yet verified against a real Oracle server",
                              driver: "unixODBC + Oracle Instant Client ODBC (driver:)", port: DatabaseType.oracle.defaultPort, needsInstall: true),
            SupportedDatabase(type: .sqlite, name: "SQLite", description: "SQLite 3 database file", driver: "sqlite-nio (embedded)", port: DatabaseType.sqlite.defaultPort, needsInstall: false),
            SupportedDatabase(type: .odbc, name: "ODBC", description: "Any database with an ODBC driver (connectionString or dsn, dialect:); tested with psqlODBC, MariaDB ODBC and SQLite3 ODBC",
                              driver: "unixODBC + the database's ODBC driver", port: DatabaseType.odbc.defaultPort, needsInstall: true),
        ].map { entry in
            var entry = entry
            entry.needsInstall = entry.needsInstall || !available.contains(entry.type)
            return entry
        }
    }
}
