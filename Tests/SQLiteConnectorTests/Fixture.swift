import Foundation
import SQLiteConnector
import SQLiteNIO
import SyncCore
import SyncTesting

/// A scratch ERP (an SQLite file with the seed's `sale_transactions` plus an `updated_at` cursor column)
/// and an SQLite audit database in a fresh temporary folder.
final class Fixture: Sendable {
    let folder: URL
    let erpPath: String
    let auditPath: String
    let erp: SQLiteConnection
    let destination: SQLiteDestination

    /// The stream used by most tests: cursor `updated_at`, so later changes in the ERP are seen.
    static let stream = StreamConfig(
        from: .table("sale_transactions"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
        fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"),
                 .occurredAt: .column("timestamp"), .type: .column("type"), .reference: .column("reference")],
        typeMap: ["venda": .sale, "cancelamento": .cancel, "devolucao": .refund],
        deleted: .sql("status = 'X'"))

    private init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("erp-sync-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        erpPath = folder.appendingPathComponent("erp.sqlite").path
        auditPath = folder.appendingPathComponent("audit.sqlite").path
        erp = try await Self.makeERP(at: erpPath)
        destination = try await SQLiteDestination(path: auditPath)
        try await destination.migrate()
    }

    /// Creates an ERP file with the seed's `sale_transactions` table plus `status` and `updated_at`.
    static func makeERP(at path: String) async throws -> SQLiteConnection {
        let erp = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await erp.query("PRAGMA journal_mode = WAL")
        _ = try await erp.query("PRAGMA synchronous = OFF")  // a scratch ERP: speed over durability
        _ = try await erp.query("""
            CREATE TABLE sale_transactions (id INTEGER PRIMARY KEY, pdv TEXT, operator TEXT, amount NUMERIC(12,2), timestamp TEXT,
                type TEXT, reference TEXT, status TEXT, updated_at TEXT)
            """)
        return erp
    }

    /// Default options for tests: small batches, no lookback, no retry delay.
    static func options(batchSize: Int = 100, lookback: Lookback = .seconds(0)) -> SyncOptions {
        var options = IntegrationDefaults.options(batchSize: batchSize, lookback: lookback)
        options.retryDelayMs = 1
        return options
    }

    func source(name: String = "erp", stream: StreamConfig = Fixture.stream, path: String? = nil) -> SourceConfig {
        SourceConfig(name: name, type: .sqlite, path: path ?? erpPath, timezone: TimeZone(identifier: "America/Sao_Paulo")!, stream: stream)
    }

    func service(_ options: SyncOptions = Fixture.options(), sources: [SourceConfig]? = nil) -> SyncService {
        SyncService(config: SyncConfig(destination: .sqlite(path: auditPath), defaults: options, sources: sources ?? [source()]),
                    destination: destination, makeSource: { try await SQLiteSource(path: $0.path!) })
    }

    /// Runs one sync of `source`.
    func sync(_ options: SyncOptions = Fixture.options(), source: String = "erp", full: Bool = false, sources: [SourceConfig]? = nil,
              afterCommit: SyncEngine.AfterCommit? = nil) async -> ErpSyncResult {
        await service(options, sources: sources).sync(source: source, overrides: SyncOverrides(isFull: full), afterCommit: afterCommit)
    }

    /// Inserts or replaces ERP rows: (id, pdv, operator, amount, timestamp, type, updated_at).
    func upsert(_ rows: [(Int, String, String, String, String, String, String)]) async throws {
        for row in rows {
            _ = try await erp.query("INSERT OR REPLACE INTO sale_transactions (id, pdv, operator, amount, timestamp, type, reference, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                    [.integer(row.0), .text(row.1), .text(row.2), .text(row.3), .text(row.4), .text(row.5), .text("ref-\(row.0)"), .text(row.6)])
        }
    }

    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        _ = try await erp.query(sql, binds)
    }

    /// `tb_sales` of a source as (external_id → all columns joined), read through a separate connection.
    func sales(source: String = "erp") async throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for row in try await auditRows("SELECT * FROM tb_sales WHERE source_id = ? ORDER BY external_id", [.text(source)]) {
            out[row["external_id"]!] = row
        }
        return out
    }

    /// Rows of an audit table through a separate connection.
    func auditRows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [[String: String]] {
        let audit = try await SQLiteConnection.open(storage: .file(path: auditPath))
        do {
            let rows = try await audit.query(sql, binds).map { row in
                Dictionary(uniqueKeysWithValues: row.columns.map { ($0.name, $0.data.string ?? "NULL") })
            }
            try await audit.close()
            return rows
        } catch {
            try? await audit.close()  // sqlite-nio asserts when an open connection is freed
            throw error
        }
    }

    /// Runs `body` with a new fixture, then closes its connections and deletes its folder.
    static func with(_ body: (Fixture) async throws -> Void) async throws {
        let fixture = try await Fixture()
        do {
            try await body(fixture)
        } catch {
            await fixture.close()
            throw error
        }
        await fixture.close()
    }

    private func close() async {
        try? await erp.close()
        await destination.close()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Thrown by an `afterCommit` hook to stop a run between two batches, as a crash there would.
struct SimulatedCrash: Error {}
