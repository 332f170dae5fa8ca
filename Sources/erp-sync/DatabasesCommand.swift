import ArgumentParser
import SyncCore

/// `erp-sync databases`: the source types, their default ports and whether this build can read them.
struct DatabasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "databases", abstract: "List supported source database types.")

    @Flag(help: "Print JSON (the seed's getSupportedDatabases shape).")
    var json = false

    /// One entry of the seed's `getSupportedDatabases` output.
    struct DatabaseInfo: Encodable {
        var type: DatabaseType
        var name: String
        var description: String
        var driver: String
        var port: Int
        var needsInstall: Bool
    }

    static let all: [DatabaseInfo] = [
        DatabaseInfo(type: .postgresql, name: "PostgreSQL", description: "PostgreSQL 12+", driver: "postgres-nio", port: 5432, needsInstall: false),
        DatabaseInfo(type: .mysql, name: "MySQL / MariaDB", description: "MariaDB 10.3+, MySQL 5.7+ (tested on MariaDB 10.11)", driver: "MariaDB Connector/C (libmariadb)", port: 3306, needsInstall: false),
        DatabaseInfo(type: .sqlserver, name: "SQL Server", description: "SQL Server 2012+", driver: "ODBC (msodbcsql)", port: 1433, needsInstall: true),
        DatabaseInfo(type: .oracle, name: "Oracle Database", description: "Oracle 12c+", driver: "ODBC (Oracle Instant Client)", port: 1521, needsInstall: true),
        DatabaseInfo(type: .sqlite, name: "SQLite", description: "SQLite 3 database file", driver: "sqlite-nio (embedded)", port: 0, needsInstall: false),
        DatabaseInfo(type: .odbc, name: "ODBC", description: "Any database with an ODBC driver", driver: "unixODBC", port: 0, needsInstall: true),
    ].map { info in
        var info = info
        info.needsInstall = info.needsInstall || !Connectors.availableSources.contains(info.type)
        return info
    }

    func run() async throws {
        if json { return try printJSON(["databases": Self.all]) }
        var rows = [["type", "name", "driver", "port", "available in this build"]]
        for info in Self.all {
            rows.append([info.type.rawValue, info.name, info.driver, info.port == 0 ? "-" : "\(info.port)",
                         Connectors.availableSources.contains(info.type) ? "yes" : "not in this build"])
        }
        print(Output.table(rows))
    }
}
