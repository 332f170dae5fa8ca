import ArgumentParser
import Foundation
import SQLiteNIO
import SyncCore

/// `erp-sync demo`: builds a sample ERP from the Sakila payments shipped in the repo, syncs it into the
/// embedded SQLite destination and checks count and total amount against the source.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Sync the bundled Sakila sample ERP (16,049 payments) into an embedded SQLite audit database and verify it.",
        discussion: "Creates <dir>/sakila-erp.sqlite and <dir>/erp-sync.yaml on first use, then runs an incremental sync. Run it again: nothing new is inserted."
    )

    @Option(help: "Folder for the demo ERP, config and audit database.")
    var dir = "./demo-run"

    @Flag(help: "Print the run result as JSON.")
    var json = false

    func run() async throws {
        let folder = URL(fileURLWithPath: dir).standardizedFileURL
        try createFolder(folder.path, for: "the demo")
        let data = try SakilaData.load()
        let erp = folder.appendingPathComponent("sakila-erp.sqlite").path
        if !FileManager.default.fileExists(atPath: erp) {
            do {
                try await SakilaData.buildERP(at: erp, from: data)
            } catch {
                printError("cannot build the sample ERP \(erp): \(error)")
                throw ExitCodes.ioError
            }
            if !json { print("built the sample ERP \(erp): \(data.payments.count.formatted()) payments from the Sakila sample database") }
        }
        let configPath = folder.appendingPathComponent("erp-sync.yaml").path
        if !FileManager.default.fileExists(atPath: configPath) {
            try writeFile(SampleConfig.demo, to: configPath, what: "the demo configuration")
        }
        let global = try GlobalOptions.parse(["--config", configPath] + (json ? ["--json"] : []))
        let config = try global.loadConfig()
        let destination = try await global.openDestination(config)
        let service = SyncService(config: config, destination: destination, makeSource: Connectors.source)
        let results = await SyncCommand.runAll(config.sources.map(\.name), service: service, overrides: SyncOverrides())
        let totals = try await destination.totals(source: "sakila")
        await destination.close()
        if json {
            try printJSON(results[0])
        } else {
            for result in results { Output.printResult(result) }
            let synced = totals.amountByCurrency["USD"] ?? "0"
            print("""
                  source  (sakila payment table): \(data.payments.count.formatted()) rows, amount USD \(data.totalAmount)
                  audit   (tb_sales, sakila):     \(totals.rows.formatted()) rows, amount USD \(synced)
                  \(totals.rows == data.payments.count && synced == data.totalAmount ? "match: every payment is in the audit database, to the cent" : "MISMATCH")
                  config: \(configPath); try: \(Output.invocation) history --config \(configPath)
                """)
        }
        guard totals.rows == data.payments.count, totals.amountByCurrency["USD"] == data.totalAmount else { throw ExitCodes.failed }
        let code = ExitCodes.code(for: results)
        if code != .success { throw code }
    }
}

/// The Sakila rows bundled in `Resources/sakila` (see its README and LICENSE).
struct SakilaData {
    /// `payment_id, customer_id, staff_id, rental_id, amount, payment_date`; `nil` for `\N`.
    var payments: [[String?]]
    /// `staff_id, first_name, last_name, address_id, email, store_id, active, username, last_update`.
    var staff: [[String?]]
    /// `store_id, manager_staff_id, address_id, last_update`.
    var stores: [[String?]]

    /// The exact sum of the payment amounts, from the text.
    var totalAmount: String {
        payments.reduce(Amount(minorUnits: 0, scale: 2)) { sum, row in
            sum + ((try? Amount(parsing: row[4] ?? "0", scale: 2)) ?? Amount(minorUnits: 0, scale: 2))
        }.description
    }

    static func load() throws -> SakilaData {
        func rows(_ name: String) throws -> [[String?]] {
            guard let url = Bundle.module.url(forResource: "Resources/sakila/\(name)", withExtension: "tsv") else {
                throw ValidationError("bundled demo data \(name).tsv is missing")
            }
            return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
                line.split(separator: "\t", omittingEmptySubsequences: false).map { $0 == "\\N" ? nil : String($0) }
            }
        }
        return SakilaData(payments: try rows("payment"), staff: try rows("staff"), stores: try rows("store"))
    }

    /// Writes the sample ERP: Sakila's `store`, `staff` and `payment` tables (amount `NUMERIC(5,2)`, dates as
    /// naive `YYYY-MM-DD HH:MM:SS` text, as the dump has them), built in a temporary file and renamed.
    static func buildERP(at path: String, from data: SakilaData) async throws {
        let temporary = path + ".partial"
        try? FileManager.default.removeItem(atPath: temporary)
        let db = try await SQLiteConnection.open(storage: .file(path: temporary))
        _ = try await db.query("BEGIN")
        _ = try await db.query("CREATE TABLE store (store_id INTEGER PRIMARY KEY, manager_staff_id INTEGER, address_id INTEGER, last_update TEXT)")
        _ = try await db.query("""
            CREATE TABLE staff (staff_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, address_id INTEGER, email TEXT,
                store_id INTEGER NOT NULL REFERENCES store, active BOOLEAN, username TEXT, last_update TEXT)
            """)
        _ = try await db.query("""
            CREATE TABLE payment (payment_id INTEGER PRIMARY KEY, customer_id INTEGER, staff_id INTEGER NOT NULL REFERENCES staff,
                rental_id INTEGER, amount NUMERIC(5,2) NOT NULL, payment_date TEXT NOT NULL)
            """)
        _ = try await db.query("CREATE INDEX payment_cursor ON payment (payment_date, payment_id)")
        for (table, rows) in [("store", data.stores), ("staff", data.staff), ("payment", data.payments)] {
            for start in stride(from: 0, to: rows.count, by: 500) {
                let chunk = rows[start..<min(start + 500, rows.count)]
                let width = chunk.first?.count ?? 0
                let values = Array(repeating: "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")", count: chunk.count)
                let binds: [SQLiteData] = chunk.flatMap { row in row.map { $0.map { SQLiteData.text($0) } ?? .null } }
                _ = try await db.query("INSERT INTO \(table) VALUES \(values.joined(separator: ", "))", binds)
            }
        }
        _ = try await db.query("COMMIT")
        try await db.close()
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }
}
