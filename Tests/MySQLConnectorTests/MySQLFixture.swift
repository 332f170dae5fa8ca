#if MySQL
import Foundation
@testable import MySQLConnector
import NIOPosix
import PostgresConnector
import PostgresNIO
import SQLiteConnector
import SyncCore
import SyncTesting
import IntegrationTesting

/// Scratch databases on the test MariaDB (`ERP_SYNC_MYSQL_HOST`/`ERP_SYNC_MYSQL_PORT`, default
/// 127.0.0.1:3306, user erp_sync/erp_sync, started by `scripts/mariadb-server.sh`) and on the test PostgreSQL
/// (`ERP_SYNC_PG_URL`) for the audit side. Each test makes its own, so tests can run concurrently.
struct MySQLFixture {
    static let environment = ProcessInfo.processInfo.environment
    static let host = environment["ERP_SYNC_MYSQL_HOST"] ?? "127.0.0.1"
    static let port = Int(environment["ERP_SYNC_MYSQL_PORT"] ?? "") ?? 3306
    static let pgURL = TestServers.postgresURL

    let sourceDB: String
    let auditDB: String

    static func settings(_ database: String, ssl: SSLMode = .disable) -> ServerConnectionSettings {
        ServerConnectionSettings(host: host, port: port, database: database, username: "erp_sync", password: "erp_sync", ssl: ssl)
    }

    /// Runs `body` with a connection of its own on a thread that may block (never the cooperative pool).
    static func withConnection<T: Sendable>(_ database: String, _ body: @escaping @Sendable (MariaDBConnection) throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try MariaDBConnection(settings: settings(database))
            defer { connection.close() }
            return try body(connection)
        }
    }

    /// Runs statements on `database`, one connection for all of them (session settings such as `sql_mode` carry over).
    static func execute(_ database: String, _ statements: [String]) async throws {
        try await withConnection(database) { connection in
            for statement in statements { _ = try connection.query(SQLStatement(sql: statement), isCancelled: { false }) }
        }
    }

    /// Rows of a query on the MariaDB `database` as text.
    static func rows(_ database: String, _ sql: String) async throws -> [[String?]] {
        try await withConnection(database) { connection in
            try connection.query(SQLStatement(sql: sql), isCancelled: { false }).map { $0.map(\.text) }
        }
    }

    /// Runs statements on the PostgreSQL database `database`.
    static func pgExecute(_ database: String, _ statements: [String]) async throws {
        try await PostgresTestDatabase.execute(database, statements)
    }

    /// Rows of the last statement on the PostgreSQL database `database`, as text.
    @discardableResult
    static func pgRows(_ database: String, _ statements: [String]) async throws -> [[String?]] {
        try await PostgresTestDatabase.rows(database, statements)
    }

    /// Creates a fresh MariaDB source database and a PostgreSQL audit database, runs `body`, drops both.
    static func with(_ body: (MySQLFixture) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let fixture = MySQLFixture(sourceDB: "test_src_\(suffix)", auditDB: "test_audit_\(suffix)")
        try await execute("", ["CREATE DATABASE \(fixture.sourceDB) CHARACTER SET utf8mb4"])
        try await pgExecute("postgres", ["CREATE DATABASE \(fixture.auditDB)"])
        var failure: (any Error)?
        do {
            try await body(fixture)
        } catch {
            failure = error
        }
        try await execute("", ["DROP DATABASE \(fixture.sourceDB)"])
        try await pgExecute("postgres", ["DROP DATABASE \(fixture.auditDB) WITH (FORCE)"])
        if let failure { throw failure }
    }

    func source(_ name: String = "maria", stream: StreamConfig, database: String? = nil) -> SourceConfig {
        SourceConfig(name: name, type: .mysql, host: Self.host, port: Self.port, database: database ?? sourceDB, username: "erp_sync",
                     password: Secret("erp_sync"), ssl: .disable, timezone: TimeZone(identifier: "America/Sao_Paulo")!,
                     currency: "BRL", stream: stream)
    }

    @Sendable static func makeSource(_ config: SourceConfig) async throws -> any Source {
        MySQLSource(settings: ServerConnectionSettings(source: config))
    }

    /// One sync run into this fixture's PostgreSQL audit database (a new pool each time, like a new process).
    func sync(_ options: SyncOptions, source: SourceConfig, full: Bool = false, reprocess: ReprocessFilter? = nil,
              afterCommit: SyncEngine.AfterCommit? = nil) async throws -> ErpSyncResult {
        let url = "\(Self.pgURL)/\(auditDB)"
        let destination = try PostgresDestination(settings: try PostgresSettings(url: url + "?sslmode=disable"))
        try await destination.migrate()
        let service = SyncService(config: SyncConfig(destination: .postgresql(url: url), defaults: options, sources: [source]),
                                  destination: destination, makeSource: Self.makeSource)
        let result = await service.sync(source: source.name, overrides: SyncOverrides(isFull: full, reprocess: reprocess), afterCommit: afterCommit)
        await destination.close()
        return result
    }

    /// Rows of a query on the audit database.
    func audit(_ sql: String) async throws -> [[String?]] {
        try await Self.pgRows(auditDB, [sql])
    }

    static func options(batchSize: Int = 1000, lookback: Lookback = .seconds(0)) -> SyncOptions {
        IntegrationDefaults.options(batchSize: batchSize, lookback: lookback)
    }

    /// The seed-shaped table with an `updated_at` cursor.
    static let stream = IntegrationDefaults.stream

    static let createSales = """
        CREATE TABLE sale_transactions (id BIGINT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(20,2),
            `timestamp` DATETIME(6), type VARCHAR(20), reference BIGINT, updated_at DATETIME(6), KEY cursor_key (updated_at, id))
        """

    /// The Sakila payments loaded into `erp_source` by `scripts/load-sakila-mariadb.sh`, as a stream.
    static let sakilaStream = StreamConfig(
        from: .query("SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id"),
        primaryKey: ["payment_id"], cursor: .init(column: "payment_date", kind: .timestamp),
        fields: [.externalId: .column("payment_id"), .pdv: .sql("CONCAT('store-', store_id)"), .operator: .column("staff_id"),
                 .amount: .column("amount"), .occurredAt: .column("payment_date"), .type: .sql("'payment'"), .reference: .column("rental_id")],
        typeMap: ["payment": .sale])
}
#endif
