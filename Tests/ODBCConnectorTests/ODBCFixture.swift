#if ODBC
import Foundation
import ODBCConnector
import PostgresConnector
import SQLiteConnector
import SQLiteNIO
import SyncCore
import Testing

/// Real ODBC drivers against the test servers: psqlODBC (`PostgreSQL Unicode`) on `ERP_SYNC_PG_URL`'s
/// server, MariaDB Connector/ODBC (`MariaDB Unicode`) on `ERP_SYNC_MYSQL_HOST`, SQLite3 ODBC on a file built
/// from the bundled Sakila data; audit data in a scratch SQLite file. `scripts/test.sh` installs the drivers
/// (`odbc-postgresql`, `odbc-mariadb`, `libsqliteodbc`) and sets the variables.
enum ODBCFixture {
    static let environment = ProcessInfo.processInfo.environment

    /// Whether the servers and drivers a suite needs are here. Without them a suite skips with one line,
    /// except under `CI=true`, where that is a failure: CI must never go green having run nothing.
    static func available(_ suite: String, drivers: [String], variables: [String]) -> Bool {
        let installed = (try? String(contentsOfFile: "/etc/odbcinst.ini", encoding: .utf8)) ?? ""
        let missing = variables.filter { environment[$0] == nil } + drivers.filter { !installed.contains("[\($0)]") }.map { "ODBC driver '\($0)'" }
        guard !missing.isEmpty else { return true }
        let line = "\(suite) skipped: \(missing.joined(separator: ", ")) not set up (run bash scripts/test.sh)"
        if environment["CI"] == "true" {
            Issue.record("\(line), and CI=true")
        } else {
            print(line)
        }
        return false
    }

    static var pgURL: URLComponents { URLComponents(string: environment["ERP_SYNC_PG_URL"] ?? "postgres://erp_sync:erp_sync@127.0.0.1:5432")! }

    /// `type: odbc` over psqlODBC to `database` on the test PostgreSQL.
    static func postgres(_ name: String, database: String = "erp_source", stream: StreamConfig, extra: String = "") -> SourceConfig {
        let url = pgURL
        var source = SourceConfig(name: name, type: .odbc, username: url.user, password: url.password.map(Secret.init), stream: stream)
        source.connectionString = "DRIVER={PostgreSQL Unicode};SERVER=\(url.host ?? "127.0.0.1");PORT=\(url.port ?? 5432);DATABASE=\(database)\(extra)"
        source.dialect = .postgresql
        return source
    }

    /// `type: odbc` over MariaDB Connector/ODBC to `erp_source` on the test MariaDB.
    static func mariaDB(_ name: String, stream: StreamConfig) -> SourceConfig {
        var source = SourceConfig(name: name, type: .odbc, username: "erp_sync", password: Secret("erp_sync"), stream: stream)
        source.connectionString = "DRIVER={MariaDB Unicode};SERVER=\(environment["ERP_SYNC_MYSQL_HOST"] ?? "127.0.0.1");"
            + "PORT=\(environment["ERP_SYNC_MYSQL_PORT"] ?? "3306");DATABASE=erp_source"
        source.dialect = .mysql
        return source
    }

    /// `type: odbc` over SQLite3 ODBC to a database file.
    static func sqlite(_ name: String, path: String, stream: StreamConfig) -> SourceConfig {
        var source = SourceConfig(name: name, type: .odbc, stream: stream)
        source.connectionString = "DRIVER={SQLite3};Database=\(path)"
        source.dialect = .sqlite
        return source
    }

    /// The Sakila payments, with the store of the staff member who took them, in any of the three databases.
    static let sakilaStream = StreamConfig(
        from: .query("SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id"),
        primaryKey: ["payment_id"], cursor: .init(column: "payment_date", kind: .timestamp),
        fields: [.externalId: .column("payment_id"), .pdv: .column("store_id"), .operator: .column("staff_id"),
                 .amount: .column("amount"), .occurredAt: .column("payment_date"), .type: .sql("'payment'"), .reference: .column("rental_id")],
        typeMap: ["payment": .sale])

    static func options(batchSize: Int = 1000, lookback: Lookback = .seconds(0)) -> SyncOptions {
        var options = SyncOptions()
        options.batchSize = batchSize
        options.daysBack = 0
        options.maxRecords = 1_000_000
        options.lookback = lookback
        options.retryDelayMs = 10
        return options
    }

    /// A stream of table `table` (`id`, `pdv`, `operator`, `amount`, `type`, `updated_at`) with an `updated_at` cursor.
    static func stream(_ table: String) -> StreamConfig {
        StreamConfig(from: .table(table), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
                     fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"),
                              .occurredAt: .column("updated_at"), .type: .column("type")])
    }

    /// Runs `setup` at `source`, then `body` with the path of an audit database in a scratch folder; drops `table` at
    /// the source afterwards, whether `body` threw or not.
    static func withTable(_ table: String, at source: SourceConfig, setup: [String], _ body: (String) async throws -> Void) async throws {
        try await execute(source, setup)
        do {
            try await withFolder { folder in try await body(folder.appendingPathComponent("audit.sqlite").path) }
        } catch {
            try? await execute(source, ["DROP TABLE \(table)"])
            throw error
        }
        try await execute(source, ["DROP TABLE \(table)"])
    }

    /// A scratch folder, removed after `body`.
    static func withFolder<T>(_ body: (URL) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odbc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try await body(folder)
    }

    /// One run of `source` into the SQLite audit database at `audit`, reading through `makeSource`.
    static func sync(_ source: SourceConfig, audit: String, options: SyncOptions = options(), full: Bool = false,
                     makeSource: @escaping SyncService.SourceFactory = { ODBCSource(settings: ODBCSettings(source: $0)) },
                     afterCommit: SyncEngine.AfterCommit? = nil) async throws -> ErpSyncResult {
        let destination = try await SQLiteDestination(path: audit)
        try await destination.migrate()
        let service = SyncService(config: SyncConfig(destination: .sqlite(path: audit), defaults: options, sources: [source]),
                                  destination: destination, makeSource: makeSource)
        let result = await service.sync(source: source.name, overrides: SyncOverrides(isFull: full), afterCommit: afterCommit)
        await destination.close()
        return result
    }

    /// `external_id|amount|occurred_at|pdv|operator|type` of every loaded row, sorted: two loads of the same
    /// data through different drivers must give the same set.
    static func loaded(_ audit: String) async throws -> [String] {
        let db = try await SQLiteConnection.open(storage: .file(path: audit))
        defer { Task { try? await db.close() } }
        return try await db.query("SELECT external_id, amount, occurred_at, pdv, operator, type FROM tb_sales ORDER BY CAST(external_id AS INTEGER)").map { row in
            ["external_id", "amount", "occurred_at", "pdv", "operator", "type"].map { row.column($0)?.string ?? "NULL" }.joined(separator: "|")
        }
    }

    /// Runs statements through the ODBC source itself (DDL and DML of a test's own tables).
    static func execute(_ source: SourceConfig, _ statements: [String]) async throws {
        let reader = ODBCSource(settings: ODBCSettings(source: source))
        do {
            for statement in statements { _ = try await reader.fetch(SQLStatement(sql: statement)) }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
    }

    /// Writes the bundled Sakila `staff` and `payment` tables into a new SQLite file.
    static func buildSakilaSQLite(at path: String) async throws {
        let sakila = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/erp-sync/Resources/sakila").standardized
        func rows(_ name: String) throws -> [[SQLiteData]] {
            try String(contentsOf: sakila.appendingPathComponent("\(name).tsv"), encoding: .utf8).split(separator: "\n").map { line in
                line.split(separator: "\t", omittingEmptySubsequences: false).map { $0 == "\\N" ? .null : .text(String($0)) }
            }
        }
        let db = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await db.query("BEGIN")
        _ = try await db.query("CREATE TABLE staff (staff_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, address_id INTEGER, email TEXT, "
                               + "store_id INTEGER NOT NULL, active BOOLEAN, username TEXT, last_update TEXT)")
        _ = try await db.query("CREATE TABLE payment (payment_id INTEGER PRIMARY KEY, customer_id INTEGER, staff_id INTEGER NOT NULL, "
                               + "rental_id INTEGER, amount NUMERIC(5,2) NOT NULL, payment_date TIMESTAMP NOT NULL)")
        for (table, data) in [("staff", try rows("staff")), ("payment", try rows("payment"))] {
            for row in data {
                _ = try await db.query("INSERT INTO \(table) VALUES (\(Array(repeating: "?", count: row.count).joined(separator: ", ")))", row)
            }
        }
        _ = try await db.query("COMMIT")
        try await db.close()
    }
}
#endif
