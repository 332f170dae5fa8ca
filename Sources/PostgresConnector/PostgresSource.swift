public import Logging
import PostgresNIO
public import SyncCore

/// An ERP on PostgreSQL. Reads stream row by row from the server (postgres-nio's row sequence) and keep
/// PostgreSQL's exact types: `numeric` as decimal text, `timestamp` as naive local time (read in the
/// source's zone), `timestamptz` as an instant.
public final class PostgresSource: SQLSource {
    public let dialect = SQLDialect.postgresql
    private let pool: PostgresPool

    /// Prepares a connection pool to the source (connections open on first use).
    /// - Throws: ``SyncFailure`` for unusable TLS settings.
    public init(settings: PostgresSettings, logger: Logger = Logger(label: "erp-sync.postgres")) throws {
        do {
            pool = try PostgresPool(settings: settings, logger: logger)
        } catch {
            throw SyncFailure(code: .sourceConfig, message: "TLS settings for \(settings.host): \(error)", isTransient: false)
        }
    }

    public func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]] {
        try await pool.withConnection("reading the source", code: .sourceQueryFailed) { [logger = pool.logger] connection in
            var bindings = PostgresBindings(capacity: statement.binds.count)
            for value in statement.binds { try bindings.append(source: value) }
            var rows: [[SourceValue]] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: statement.sql, binds: bindings), logger: logger) {
                rows.append(row.map { SourceValue(postgres: $0) })
            }
            return rows
        }
    }

    /// The planner's row estimate (`EXPLAIN`): no scan, however large the table.
    public func estimateRows(_ statement: SQLStatement) async throws -> Int? {
        let plan = try await fetch(SQLStatement(sql: "EXPLAIN " + statement.sql, binds: statement.binds))
        guard let line = plan.first?.first?.text, let range = line.range(of: "rows=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    public func testConnection() async throws -> String {
        let version = try await fetch(SQLStatement(sql: "SELECT version()")).first?.first?.text ?? "?"
        return "\(version.split(separator: ",").first ?? "PostgreSQL"), \(pool.settings.target)"
    }

    public func close() async {
        await pool.close()
    }
}
