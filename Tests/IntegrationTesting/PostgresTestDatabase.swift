import Logging
public import PostgresConnector
import PostgresNIO
import SyncCore
import SyncTesting

/// Statements and queries on databases of the test PostgreSQL server (``TestServers/postgresURL``), each on a
/// short-lived connection of its own, for fixtures of every integration suite.
public enum PostgresTestDatabase {
    static let logger = Logger(label: "test")

    /// Settings for `database` on the test server, TLS off.
    public static func settings(_ database: String) throws -> PostgresSettings {
        try PostgresSettings(url: "\(TestServers.postgresURL)/\(database)?sslmode=disable")
    }

    /// Runs `statements` on `database`, one connection for all of them.
    public static func execute(_ database: String, _ statements: [String]) async throws {
        try await rows(database, statements)
    }

    /// Runs `statements` on `database` and returns the rows of the last one, as text.
    @discardableResult
    public static func rows(_ database: String, _ statements: [String]) async throws -> [[String?]] {
        let s = try settings(database)
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: s.host, port: s.port, username: s.username, password: s.password, database: s.database, tls: .disable),
            id: 1, logger: logger)
        var out: [[String?]] = []
        do {
            for statement in statements {
                out = []
                for try await row in try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) {
                    out.append(row.map { SourceValue(postgres: $0).text })
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        return out
    }
}
