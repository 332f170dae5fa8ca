import Foundation
import SyncTesting
import Testing

/// Runs the built `erp-sync` binary as a user would and checks its output and exit codes.
@Suite struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `.build/<config>/erp-sync`, next to the test bundle.
    static let binary = Bundle.main.bundleURL.appendingPathComponent("erp-sync").path

    /// Runs the binary (or `executable` with `prefix` before the arguments, e.g. `runuser -u nobody -- <binary>`).
    static func run(_ arguments: [String], in folder: URL, executable: String = binary, prefix: [String] = []) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = prefix + arguments
        process.currentDirectoryURL = folder
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func scratch() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("erp-sync-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func theDemoLoadsAllSakilaPaymentsAndASecondRunInsertsNothing() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try Self.run(["demo", "--json"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        let result = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any]
        #expect(result?["recordsFetched"] as? Int == 16049)
        #expect(result?["recordsInserted"] as? Int == 16049)
        #expect(result?["status"] as? String == "SUCCESS")
        #expect(result?["syncType"] as? String == "INCREMENTAL")
        let second = try Self.run(["demo"], in: folder)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("amount USD 67416.51"))
        #expect(second.stdout.contains("match: every payment"))
        let table = second.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("182") }
        #expect(table?.split(separator: " ").prefix(3) == ["182", "182", "0"])  // fetched, processed, inserted
        let history = try Self.run(["history", "--config", "demo-run/erp-sync.yaml", "--json"], in: folder)
        let runs = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]]
        #expect(runs?.count == 2)
    }

    @Test func aWrongConfigExitsWith78AndNamesTheKey() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
        defaults:
          batchSize: 50
        sources:
          - { name: a, type: sqlite, path: ./erp.sqlite }
        """.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)
        let run = try Self.run(["sync", "--all"], in: folder)
        #expect(run.status == 78)
        #expect(run.stderr.contains("defaults.batchSize"))
        #expect(run.stderr.contains("between 100 and 10000"))
    }

    @Test func aBadDestinationURLOrASourceTypeThisBuildCannotReadIsAConfigError() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
            destination: { type: postgresql, url: "postgres://u:p@127.0.0.1:1/audit?sslmode=requir" }
            sources:
              - { name: a, type: sqlite, path: ./erp.sqlite }
            """.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)
        let badURL = try Self.run(["sync", "--all"], in: folder)
        #expect(badURL.status == 78)
        #expect(badURL.stderr.contains("sslmode 'requir'"))
        try """
            sources:
              - { name: a, type: sqlite, path: ./erp.sqlite }
              - { name: legacy, type: sqlserver, host: 127.0.0.1, database: pdv, stream: { table: vendas, primaryKey: [id], cursor: { column: id, kind: integer }, fields: { pdv: pdv, operator: op, amount: valor, occurredAt: data, type: tipo } } }
            """.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)
        let unsupported = try Self.run(["sync", "--all"], in: folder)
        #if ODBC
        // This build reads SQL Server (through FreeTDS): nothing listens on 127.0.0.1:1433, so it is unreachable.
        #expect(unsupported.status == 69)
        #expect(unsupported.stderr.contains("SOURCE_UNAVAILABLE"))
        #else
        #expect(unsupported.status == 78)
        #expect(unsupported.stderr.contains("sources[1] (legacy): type 'sqlserver' has no connector in this build"))
        #endif
    }

    @Test func usageErrorsExitWith64() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try Self.run(["sync"], in: folder)
        #expect(run.status == 64)
        #expect(run.stderr.contains("--source NAME or --all"))
        // A start date off the calendar trapped the process (exit 132): the flag takes the config's range.
        let farBack = try Self.run(["sync", "--all", "--days-back", "1000000000000"], in: folder)
        #expect(farBack.status == 64 && farBack.stderr.contains("--days-back must be between 0 and 36500"), "\(farBack.stderr)")
        let alone = try Self.run(["sync", "--source", "erp", "--parallel", "4"], in: folder)
        #expect(alone.status == 64 && alone.stderr.contains("--parallel goes with --all"), "\(alone.stderr)")
    }

    @Test func aMissingSourceDatabaseFailsTheRunWithExit69AndAnAuditRow() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let initRun = try Self.run(["init"], in: folder)
        #expect(initRun.status == 0)
        let run = try Self.run(["sync", "--source", "loja-centro", "--json"], in: folder)
        #expect(run.status == 69)
        let result = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect(result?["status"] as? String == "FAILED")
        let errors = result?["errors"] as? [[String: Any]]
        #expect(errors?.first?["code"] as? String == "SOURCE_UNAVAILABLE")
        let history = try Self.run(["history", "--json"], in: folder)
        #expect(history.stdout.contains("\"FAILED\""))
        let typo = try Self.run(["history", "--source", "loja-centr"], in: folder)
        #expect(typo.status == 78)
        #expect(typo.stderr.contains("no source named 'loja-centr'") && typo.stderr.contains("loja-centro"))
        let test = try Self.run(["test-connection"], in: folder)
        #expect(test.status == 69)
        #expect(test.stdout.contains("ok     destination: sqlite audit database reachable"))
        #expect(test.stdout.contains("FAILED loja-centro") && test.stdout.contains("does not exist"))
        try """
            destination: { type: postgresql, url: "postgres://nobody:x@127.0.0.1:1/audit?sslmode=disable" }
            sources:
              - { name: a, type: sqlite, path: ./erp.sqlite }
            """.write(to: folder.appendingPathComponent("bad-destination.yaml"), atomically: true, encoding: .utf8)
        let badDestination = try Self.run(["test-connection", "--config", "bad-destination.yaml"], in: folder)
        #expect(badDestination.status == 69)
        #expect(badDestination.stdout.contains("FAILED destination: DESTINATION_UNAVAILABLE"))
    }
}

/// Two real `erp-sync sync` processes on one PostgreSQL-backed source (needs the server `scripts/test.sh` starts).
@Suite(.enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct CLIPostgresLockTests {
    static let base = TestServers.postgresURL

    /// A `sources:` item (YAML, indented for a list under `sources:`) reading the Sakila payments of the test
    /// server, slowed by `sleep` seconds per row so a run lasts long enough to be interrupted or contended.
    static func slowSakilaSource(name: String, filter: String = "", sleep: Double) -> String {
        let url = URL(string: base)!
        return """
              - name: \(name)
                type: postgresql
                host: \(url.host!)
                port: \(url.port ?? 5432)
                database: erp_source
                username: \(url.user!)
                password: \(url.password!)
                ssl: disable
                stream:
                  query: "SELECT payment_id, staff_id, amount, payment_date FROM payment \(filter)"
                  primaryKey: [payment_id]
                  cursor: { column: payment_date, kind: timestamp }
                  fields:
                    pdv: { sql: "'store-' || staff_id || substr(pg_sleep(\(sleep))::text, 1, 0)" }
                    operator: staff_id
                    amount: amount
                    occurredAt: payment_date
                    type: { sql: "'sale'" }
            """
    }

    @Test func twoConcurrentSyncProcessesOneRunsTheOtherReportsItIsLocked() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = """
            destination: { type: postgresql, url: "\(Self.base)/erp_audit?sslmode=disable" }
            defaults: { daysBack: 0, batchSize: 100 }
            sources:
            \(Self.slowSakilaSource(name: "cli-lock-\(UUID().uuidString.prefix(8).lowercased())", filter: "WHERE payment_id <= 400", sleep: 0.005))
            """
        try config.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)
        let first = Process()
        first.executableURL = URL(fileURLWithPath: CLITests.binary)
        first.arguments = ["sync", "--all", "--json"]
        first.currentDirectoryURL = folder
        let firstOut = Pipe()
        first.standardOutput = firstOut
        first.standardError = FileHandle.nullDevice
        try first.run()
        Thread.sleep(forTimeInterval: 0.8)  // the first run is inside its batches (5 ms per row)
        let second = try CLITests.run(["sync", "--all"], in: folder)
        let firstOutput = String(decoding: firstOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        first.waitUntilExit()
        #expect(second.status == 75, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.contains("LOCKED"))
        #expect(second.stdout.contains("already being synced"))
        // A refusal is not a run: one line, no FAILED run table.
        #expect(second.stdout.split(separator: "\n").count == 1 && !second.stdout.contains("FAILED"), "\(second.stdout)")
        #expect(first.terminationStatus == 0, "\(firstOutput)")
        #expect(firstOutput.contains("\"recordsInserted\" : 400"))
    }
}
