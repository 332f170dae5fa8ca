import Foundation
import Logging
import PostgresConnector
import PostgresNIO
import SQLiteConnector
import SyncCore
import SyncTesting
import IntegrationTesting

/// Scratch databases on the test PostgreSQL server (`ERP_SYNC_PG_URL`, default
/// `postgres://erp_sync:erp_sync@127.0.0.1:5432`, started by `scripts/postgres-server.sh`).
struct PostgresFixture {
    static let baseURL = TestServers.postgresURL
    static let logger = Logger(label: "test")

    let sourceDB: String
    let auditDB: String

    static func settings(_ database: String) throws -> PostgresSettings {
        try PostgresTestDatabase.settings(database)
    }

    /// Runs SQL statements on `database` with a short-lived connection.
    static func execute(_ database: String, _ statements: [String]) async throws {
        try await PostgresTestDatabase.execute(database, statements)
    }

    /// Rows of a query on `database` as text.
    static func rows(_ database: String, _ sql: String) async throws -> [[String?]] {
        try await PostgresTestDatabase.rows(database, [sql])
    }

    /// Creates fresh source and audit databases, runs `body`, drops them.
    static func with(_ body: (PostgresFixture) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let fixture = PostgresFixture(sourceDB: "test_src_\(suffix)", auditDB: "test_audit_\(suffix)")
        try await execute("postgres", ["CREATE DATABASE \(fixture.sourceDB)", "CREATE DATABASE \(fixture.auditDB)"])
        var failure: (any Error)?
        do {
            try await body(fixture)
        } catch {
            failure = error
        }
        try await execute("postgres", ["DROP DATABASE \(fixture.sourceDB) WITH (FORCE)", "DROP DATABASE \(fixture.auditDB) WITH (FORCE)"])
        if let failure { throw failure }
    }

    func source(_ name: String = "pg", stream: StreamConfig, database: String? = nil) -> SourceConfig {
        let s = try! Self.settings(database ?? sourceDB)
        return SourceConfig(name: name, type: .postgresql, host: s.host, port: s.port, database: s.database, username: s.username,
                            password: s.password.map(Secret.init), ssl: .disable, timezone: TimeZone(identifier: "America/Sao_Paulo")!,
                            currency: "BRL", stream: stream)
    }

    /// A service writing to this fixture's PostgreSQL audit database (a new pool each time, like a new process).
    func service(_ options: SyncOptions, sources: [SourceConfig]) async throws -> (SyncService, PostgresDestination) {
        let destination = try PostgresDestination(settings: try Self.settings(auditDB))
        try await destination.migrate()
        let service = SyncService(config: SyncConfig(destination: .postgresql(url: "\(Self.baseURL)/\(auditDB)"), defaults: options, sources: sources),
                                  destination: destination, makeSource: { try PostgresSource(settings: PostgresSettings(source: $0)) })
        return (service, destination)
    }

    /// One sync run into the PostgreSQL audit database.
    func sync(_ options: SyncOptions, source: SourceConfig, full: Bool = false, afterCommit: SyncEngine.AfterCommit? = nil) async throws -> ErpSyncResult {
        let (service, destination) = try await service(options, sources: [source])
        let result = await service.sync(source: source.name, overrides: SyncOverrides(isFull: full), afterCommit: afterCommit)
        await destination.close()
        return result
    }

    static func options(batchSize: Int = 1000, lookback: Lookback = .seconds(0)) -> SyncOptions {
        IntegrationDefaults.options(batchSize: batchSize, lookback: lookback)
    }

    /// The seed-shaped table with an `updated_at` cursor.
    static let stream = IntegrationDefaults.stream

    static let createSales = """
        CREATE TABLE sale_transactions (id bigint PRIMARY KEY, pdv text, operator text, amount numeric(20,2), timestamp timestamp,
            type text, reference bigint, updated_at timestamp)
        """

    /// The Sakila payments as a stream (the `erp_source` database loaded by `scripts/load-sakila-postgres.sh`).
    static let sakilaStream = StreamConfig(
        from: .query("SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id"),
        primaryKey: ["payment_id"], cursor: .init(column: "payment_date", kind: .timestamp),
        fields: [.externalId: .column("payment_id"), .pdv: .sql("'store-' || store_id"), .operator: .column("staff_id"),
                 .amount: .column("amount"), .occurredAt: .column("payment_date"), .type: .sql("'payment'"), .reference: .column("rental_id")],
        typeMap: ["payment": .sale])
}

