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
            SupportedDatabase(type: .postgresql, name: "PostgreSQL", description: "PostgreSQL 12+", driver: "postgres-nio", port: 5432, needsInstall: false),
            SupportedDatabase(type: .mysql, name: "MySQL / MariaDB", description: "MariaDB 10.3+, MySQL 5.7+ (tested on MariaDB 10.11)", driver: "MariaDB Connector/C (libmariadb)", port: 3306, needsInstall: false),
            SupportedDatabase(type: .sqlserver, name: "SQL Server", description: "SQL Server 2012+", driver: "ODBC (msodbcsql)", port: 1433, needsInstall: true),
            SupportedDatabase(type: .oracle, name: "Oracle Database", description: "Oracle 12c+", driver: "ODBC (Oracle Instant Client)", port: 1521, needsInstall: true),
            SupportedDatabase(type: .sqlite, name: "SQLite", description: "SQLite 3 database file", driver: "sqlite-nio (embedded)", port: 0, needsInstall: false),
            SupportedDatabase(type: .odbc, name: "ODBC", description: "Any database with an ODBC driver", driver: "unixODBC", port: 0, needsInstall: true),
        ].map { entry in
            var entry = entry
            entry.needsInstall = entry.needsInstall || !available.contains(entry.type)
            return entry
        }
    }
}
