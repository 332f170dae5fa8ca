public import SyncCore
import SQLiteNIO

/// An ERP stored in an SQLite file (sample ERPs, small shops, tests).
///
/// Values arrive as SQLite stores them: text timestamps are read as naive local times in the source's time
/// zone; REAL amounts are rounded half-even to the currency scale by the mapper.
public final class SQLiteSource: SQLSource {
    public let dialect = SQLDialect.sqlite
    private let connection: SQLiteConnection
    private let path: String

    /// Opens the ERP database at `path` (it must exist).
    /// - Throws: ``SyncFailure`` `SOURCE_UNAVAILABLE` when the file is missing or unreadable.
    public init(path: String) async throws {
        self.path = path
        connection = try await openSQLite(path: path, mustExist: true, code: .sourceUnavailable)
        _ = try? await connection.query("PRAGMA busy_timeout = 5000")
    }

    public func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]] {
        do {
            return try await connection.query(statement.sql, statement.binds.map(\.sqliteData)).map { row in
                row.columns.map { SourceValue($0.data) }
            }
        } catch {
            throw SyncFailure.sqlite(error, code: .sourceQueryFailed, context: "reading \(path)")
        }
    }

    public func testConnection() async throws -> String {
        do {
            let tables = try await connection.query("SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view')")
            return "SQLite \(SQLiteConnection.libraryVersionString()), \(path), \(tables.first?.columns.first?.data.integer ?? 0) tables/views"
        } catch {
            throw SyncFailure.sqlite(error, code: .sourceUnavailable, context: "reading \(path)")
        }
    }

    public func close() async {
        try? await connection.close()
    }
}
