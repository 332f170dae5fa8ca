#if MySQL
import MySQLConnector
#endif
#if ODBC
import ODBCConnector
#endif
import PostgresConnector
import SQLiteConnector
import SyncCore

/// The composition root: which connector serves which database type in this build.
enum Connectors {
    /// Source types this build can read (`mysql` only with the default `MySQL` package trait; `sqlserver`,
    /// `oracle` and `odbc` only with the default `ODBC` trait).
    static var availableSources: Set<DatabaseType> {
        var types: Set<DatabaseType> = [.sqlite, .postgresql]
        #if MySQL
        types.insert(.mysql)
        #endif
        #if ODBC
        types.formUnion([.sqlserver, .oracle, .odbc])
        #endif
        return types
    }

    /// Opens a source.
    /// - Throws: ``SyncFailure`` `UNSUPPORTED_SOURCE` for types without a connector in this build.
    @Sendable static func source(_ config: SourceConfig) async throws -> any Source {
        switch config.type {
        case .sqlite: try await SQLiteSource(path: config.path ?? "")
        case .postgresql: try PostgresSource(settings: PostgresSettings(source: config))
        #if MySQL
        case .mysql: MySQLSource(settings: ServerConnectionSettings(source: config))
        #endif
        #if ODBC
        case .sqlserver, .oracle, .odbc: ODBCSource(settings: ODBCSettings(source: config))
        #endif
        #if !MySQL || !ODBC
        default: throw SyncFailure.unsupported(config.type)
        #endif
        }
    }

    /// Opens the destination.
    /// - Parameter lease: the lease period and this process's instance id.
    static func destination(_ config: DestinationConfig, lease: LeaseOptions) async throws -> any AuditDatabase {
        switch config {
        case .sqlite(let path): try await SQLiteDestination(path: path, lease: lease)
        case .postgresql(let url): try PostgresDestination(settings: PostgresSettings(url: url), lease: lease)
        }
    }
}
