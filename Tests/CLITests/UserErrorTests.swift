import Foundation
import Testing

/// Errors a user met (issue 15, "Errors a user met that must be clear"): each says what and where, with the
/// documented exit code (README "Exit codes"). Runs the built binary against real files and the test servers
/// that `scripts/test.sh` starts.
@Suite struct UserErrorTests {
    static let pgURL = URL(string: ProcessInfo.processInfo.environment["ERP_SYNC_PG_URL"] ?? "postgres://erp_sync:erp_sync@127.0.0.1:5432")!
    static let mysqlHost = ProcessInfo.processInfo.environment["ERP_SYNC_MYSQL_HOST"] ?? "127.0.0.1"
    static let mysqlPort = ProcessInfo.processInfo.environment["ERP_SYNC_MYSQL_PORT"] ?? "3306"

    /// A PostgreSQL source over the Sakila payments 1...3 of the test server; payment 2 has no pdv, so it is
    /// quarantined (MISSING_FIELD) and the other two load.
    static func sakilaSource(name: String, password: String? = nil) -> String {
        """
          - name: \(name)
            type: postgresql
            host: \(pgURL.host!)
            port: \(pgURL.port ?? 5432)
            database: erp_source
            username: \(pgURL.user!)
            password: \(password ?? pgURL.password!)
            ssl: disable
            stream:
              query: "SELECT payment_id, staff_id, amount, payment_date FROM payment WHERE payment_id <= 3"
              primaryKey: [payment_id]
              cursor: { column: payment_date, kind: timestamp }
              fields:
                pdv: { sql: "CASE WHEN payment_id = 2 THEN NULL ELSE 'store-' || staff_id END" }
                operator: staff_id
                amount: amount
                occurredAt: payment_date
                type: { sql: "'sale'" }
        """
    }

    static func write(_ text: String, _ name: String = "erp-sync.yaml", in folder: URL) throws {
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    @Test func errorsForAnUnknownSourceExits78NamingTheKnownSources() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLITests.run(["init"], in: folder).status == 0)
        let typo = try CLITests.run(["errors", "--source", "loja-centr"], in: folder)
        #expect(typo.status == 78, "\(typo.stdout)\(typo.stderr)")
        #expect(typo.stderr.contains("no source named 'loja-centr'") && typo.stderr.contains("known: loja-centro"), "\(typo.stderr)")
        let known = try CLITests.run(["errors", "--source", "loja-centro"], in: folder)
        #expect(known.status == 0, "\(known.stderr)")
        #expect(known.stdout.contains("no open quarantined rows or run errors"))
    }

    @Test(arguments: [("sslmod=disable", "sslmod"), ("sslmode=disable&foo=bar", "foo")])
    func anUnknownDestinationURLParameterIsRefusedWith78(query: String, parameter: String) throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("""
            destination: { type: postgresql, url: "\(Self.pgURL.absoluteString)/erp_audit?\(query)" }
            sources:
              - { name: a, type: sqlite, path: ./erp.sqlite }
            """, in: folder)
        for command in [["sync", "--all"], ["test-connection"]] {
            let run = try CLITests.run(command, in: folder)
            #expect(run.status == 78, "\(command): \(run.stdout)\(run.stderr)")
            #expect((run.stdout + run.stderr).contains("unknown parameter '\(parameter)' in the postgres URL"), "\(run.stdout)\(run.stderr)")
        }
    }

    @Test func initAndDemoSayWhatAndWhereTheyCannotCreate() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let initRun = try CLITests.run(["init", "--config", "nodir/x.yaml"], in: folder)
        #expect(initRun.status == 73, "\(initRun.stderr)")
        #expect(initRun.stderr.hasPrefix("error: cannot write the sample configuration to nodir/x.yaml: the folder "), "\(initRun.stderr)")
        #expect(initRun.stderr.hasSuffix("/nodir does not exist\n"), "\(initRun.stderr)")
        #expect(!initRun.stderr.contains("NSCocoaErrorDomain"))
        let demo = try CLITests.run(["demo", "--dir", "/proc/nope"], in: folder)
        #expect(demo.status == 73, "\(demo.stderr)")
        #expect(demo.stderr.hasPrefix("error: cannot create the folder /proc/nope for the demo: "), "\(demo.stderr)")
        #expect(!demo.stderr.contains("NSCocoaErrorDomain"))
        try "x".write(to: folder.appendingPathComponent("afile"), atomically: true, encoding: .utf8)
        let underFile = try CLITests.run(["demo", "--dir", "afile/sub"], in: folder)
        #expect(underFile.status == 73 && underFile.stderr.hasSuffix("afile is a file, not a folder\n"), "\(underFile.stderr)")
        // A configuration that is not there, or is a folder, says which.
        let missing = try CLITests.run(["status", "--config", "nope.yaml"], in: folder)
        #expect(missing.status == 78 && missing.stderr.contains("cannot read nope.yaml: no such file"), "\(missing.stderr)")
        let isFolder = try CLITests.run(["status", "--config", "."], in: folder)
        #expect(isFolder.status == 78 && isFolder.stderr.contains(": it is a folder"), "\(isFolder.stderr)")
    }

    @Test func aMissingDestinationFolderIsRefusedWith78AndNotCreated() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("""
            destination: { type: sqlite, path: ./audti/audit.sqlite }
            sources:
              - { name: a, type: sqlite, path: ./erp.sqlite }
            """, in: folder)
        let run = try CLITests.run(["sync", "--all"], in: folder)
        #expect(run.status == 78, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("/audti of the audit database") && run.stderr.contains("/audti/audit.sqlite does not exist"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("audti").path))
    }

    /// A read-only audit database (file or folder): exit 73 with one message, and no `-wal`/`-shm` left behind.
    @Test func aReadOnlyDestinationExits73AndLeavesNoStrayFiles() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLITests.run(["demo", "--dir", "demo"], in: folder).status == 0)
        let demo = folder.appendingPathComponent("demo")
        for name in ["audit.sqlite-wal", "audit.sqlite-shm"] { try? FileManager.default.removeItem(at: demo.appendingPathComponent(name)) }
        let before = try FileManager.default.contentsOfDirectory(atPath: demo.path).sorted()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
        for (item, mode) in [("demo", 0o555), ("demo/audit.sqlite", 0o444)] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: folder.appendingPathComponent(item).path)
        }
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: demo.path) }
        let run = try Self.runUnprivileged(["sync", "--all", "--config", "demo/erp-sync.yaml"], in: folder)
        #expect(run.status == 73, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("audit.sqlite cannot be written") && run.stderr.contains("is not writable"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: demo.path).sorted() == before)
    }

    /// Runs the binary where the caller's read-only modes apply: as is for a user; for root (whom permissions
    /// do not stop) as `nobody`, from a copy in `folder` (the build folder may be out of `nobody`'s reach, e.g.
    /// under `/root`).
    static func runUnprivileged(_ arguments: [String], in folder: URL) throws -> CLITests.Run {
        guard getuid() == 0 else { return try CLITests.run(arguments, in: folder) }
        let copy = folder.appendingPathComponent("erp-sync").path
        try FileManager.default.copyItem(atPath: CLITests.binary, toPath: copy)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy)
        return try CLITests.run(arguments, in: folder, executable: "/usr/sbin/runuser", prefix: ["-u", "nobody", "--", copy])
    }

    @Test func aWrongPasswordExits77() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("sources:\n" + Self.sakilaSource(name: "pw-\(UUID().uuidString.prefix(8).lowercased())", password: "wrong"), in: folder)
        let test = try CLITests.run(["test-connection"], in: folder)
        #expect(test.status == 77, "\(test.stdout)\(test.stderr)")
        #expect(test.stdout.contains("AUTH_FAILED"), "\(test.stdout)")
        let sync = try CLITests.run(["sync", "--all"], in: folder)
        #expect(sync.status == 77, "\(sync.stdout)\(sync.stderr)")
        // A failed run that read nothing does not claim there is more to read.
        let table = sync.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("0 ") }
        #expect(table?.split(separator: " ").last == "no", "\(sync.stdout)")
        let json = try CLITests.run(["sync", "--all", "--json"], in: folder)
        let results = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(results?.first?["hasMore"] as? Bool == false)
    }

    @Test func hashTokenDefaultsToTheViewerRole() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try CLITests.run(["hash-token", "--json"], in: folder)
        #expect(run.status == 0)
        let printed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: String]
        #expect(printed?["role"] == "viewer")
    }

    @Test func mariadbIsAnAliasOfMysql() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.write("""
            sources:
              - name: maria
                type: mariadb
                host: \(Self.mysqlHost)
                port: \(Self.mysqlPort)
                database: erp_source
                username: erp_sync
                password: erp_sync
                ssl: disable
                stream:
                  table: payment
                  primaryKey: [payment_id]
                  cursor: { column: payment_date, kind: timestamp }
                  fields: { pdv: staff_id, operator: staff_id, amount: amount, occurredAt: payment_date, type: { sql: "'sale'" } }
            """, in: folder)
        let run = try CLITests.run(["test-connection"], in: folder)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("ok     maria"), "\(run.stdout)")
    }

    /// `--fail-on-reject` turns quarantined rows into exit 65; `errors --json` gives the raw values as an object;
    /// with several runs the worst code wins (an unreachable source, 69, over quarantined rows, 65).
    @Test func failOnRejectExits65AndErrorsJSONGivesRawValuesAsAnObject() throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = "rej-\(UUID().uuidString.prefix(8).lowercased())"
        try Self.write("""
            defaults: { daysBack: 0 }
            sources:
            \(Self.sakilaSource(name: name))
              - { name: gone, type: postgresql, host: 127.0.0.1, port: 1, database: x, username: x, password: x, ssl: disable }
            """, in: folder)
        let plain = try CLITests.run(["sync", "--source", name], in: folder)
        #expect(plain.status == 0, "\(plain.stdout)\(plain.stderr)")
        let strict = try CLITests.run(["sync", "--source", name, "--full", "--fail-on-reject"], in: folder)
        #expect(strict.status == 65, "\(strict.stdout)\(strict.stderr)")
        let both = try CLITests.run(["sync", "--all", "--full", "--fail-on-reject"], in: folder)
        #expect(both.status == 69, "\(both.stdout)\(both.stderr)")
        let errors = try CLITests.run(["errors", "--source", name, "--json"], in: folder)
        #expect(errors.status == 0, "\(errors.stderr)")
        let entries = try JSONSerialization.jsonObject(with: Data(errors.stdout.utf8)) as? [[String: Any]]
        let raw = entries?.first?["rawJSON"] as? [String: Any]
        #expect(entries?.first?["reasonCode"] as? String == "MISSING_FIELD")
        #expect(entries?.first?["externalId"] as? String == "2")
        #expect(raw?["key.0"] as? String == "2", "\(errors.stdout)")
        #expect(raw?["pdv"] is NSNull, "\(errors.stdout)")
    }
}
