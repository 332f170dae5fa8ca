#if MySQL
import MySQLConnector
#endif
import PostgresConnector
import SQLiteConnector
import SyncCore

/// The composition root: which connector serves which database type in this build.
enum Connectors {
    /// Source types this build can read (`mysql` only with the default `MySQL` package trait).
    #if MySQL
    static let availableSources: Set<DatabaseType> = [.sqlite, .postgresql, .mysql]
    #else
    static let availableSources: Set<DatabaseType> = [.sqlite, .postgresql]
    #endif

    /// Opens a source.
    /// - Throws: ``SyncFailure`` `UNSUPPORTED_SOURCE` for types without a connector in this build.
    @Sendable static func source(_ config: SourceConfig) async throws -> any Source {
        switch config.type {
        case .sqlite: try await SQLiteSource(path: config.path ?? "")
        case .postgresql: try PostgresSource(settings: PostgresSettings(source: config))
        #if MySQL
        case .mysql: MySQLSource(settings: MySQLSettings(source: config))
        #endif
        default: throw SyncFailure.unsupported(config.type)
        }
    }

    /// Opens the destination.
    static func destination(_ config: DestinationConfig) async throws -> any AuditDatabase {
        switch config {
        case .sqlite(let path): try await SQLiteDestination(path: path)
        case .postgresql(let url): try PostgresDestination(settings: PostgresSettings(url: url))
        }
    }
}
