import SQLiteConnector
import SyncCore

/// The composition root: which connector serves which database type in this build.
enum Connectors {
    /// Source types this build can read.
    static let availableSources: Set<DatabaseType> = [.sqlite]

    /// Opens a source.
    /// - Throws: ``SyncFailure`` `UNSUPPORTED_SOURCE` for types without a connector in this build.
    @Sendable static func source(_ config: SourceConfig) async throws -> any Source {
        switch config.type {
        case .sqlite: try await SQLiteSource(path: config.path ?? "")
        default: throw SyncFailure.unsupported(config.type)
        }
    }

    /// Opens the destination.
    static func destination(_ config: DestinationConfig) async throws -> any Destination & AuditLog {
        switch config {
        case .sqlite(let path): try await SQLiteDestination(path: path)
        case .postgresql: throw SyncFailure(code: "UNSUPPORTED_DESTINATION", message: "the postgresql destination is not available in this build", isTransient: false)
        }
    }
}
