#if ODBC
import Foundation
import ODBCConnector
import PostgresConnector
import SyncCore
import Synchronization
import Testing

/// `type: odbc` end to end through real drivers and servers: psqlODBC and MariaDB Connector/ODBC against the
/// test servers, SQLite3 ODBC on a file.
@Suite(.serialized) struct ODBCSyncTests {
    static let servers = ["ERP_SYNC_PG_URL", "ERP_SYNC_MYSQL_HOST"]

    /// The full Sakila sync through psqlODBC loads exactly what the native PostgreSQL source loads: 16,049
    /// rows, USD 67416.51, the same set of (id, amount, instant, pdv, operator, type); a rerun changes nothing.
    @Test func sakilaOverPsqlODBCEqualsTheNativePostgresSource() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode"], variables: Self.servers) else { return }
        try await ODBCFixture.withFolder { folder in
            let odbc = ODBCFixture.postgres("sakila", stream: ODBCFixture.sakilaStream)
            let result = try await ODBCFixture.sync(odbc, audit: folder.appendingPathComponent("odbc.sqlite").path)
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 16049 && result.recordsRejected == 0)
            var native = SourceConfig(name: "sakila", type: .postgresql, host: ODBCFixture.pgURL.host, port: ODBCFixture.pgURL.port, database: "erp_source",
                                      username: ODBCFixture.pgURL.user, password: ODBCFixture.pgURL.password.map(Secret.init), ssl: .disable,
                                      stream: ODBCFixture.sakilaStream)
            native.currency = odbc.currency
            let nativeResult = try await ODBCFixture.sync(native, audit: folder.appendingPathComponent("native.sqlite").path,
                                                          makeSource: { try PostgresSource(settings: PostgresSettings(source: $0)) })
            #expect(nativeResult.recordsInserted == 16049)
            let loaded = try await ODBCFixture.loaded(folder.appendingPathComponent("odbc.sqlite").path)
            #expect(loaded.count == 16049)
            Self.expectSame(loaded, try await ODBCFixture.loaded(folder.appendingPathComponent("native.sqlite").path))
            #expect(Self.total(loaded) == "67416.51")
            let ids: Set<String> = Set(loaded.map { String($0.prefix { $0 != "|" }) })
            let expectedIDs: Set<String> = Set((1...16049).map { String($0) })
            #expect(ids.symmetricDifference(expectedIDs).isEmpty, "\(ids.symmetricDifference(expectedIDs).count) ids differ")
            let again = try await ODBCFixture.sync(odbc, audit: folder.appendingPathComponent("odbc.sqlite").path, full: true)
            #expect(again.recordsInserted == 0 && again.recordsUpdated == 0 && again.recordsUnchanged == 16049 && again.recordsDeleted == 0)
        }
    }

    /// The same Sakila data read through MariaDB Connector/ODBC and through SQLite3 ODBC loads the same rows
    /// as through psqlODBC.
    @Test func sakilaOverMariaDBAndSQLiteODBCEqualsPsqlODBC() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode", "MariaDB Unicode", "SQLite3"], variables: Self.servers) else { return }
        try await ODBCFixture.withFolder { folder in
            let reference = folder.appendingPathComponent("pg.sqlite").path
            _ = try await ODBCFixture.sync(ODBCFixture.postgres("sakila", stream: ODBCFixture.sakilaStream), audit: reference)
            let expected = try await ODBCFixture.loaded(reference)
            let mariaDB = try await ODBCFixture.sync(ODBCFixture.mariaDB("sakila", stream: ODBCFixture.sakilaStream),
                                                     audit: folder.appendingPathComponent("mariadb.sqlite").path)
            #expect(mariaDB.status == .success && mariaDB.recordsInserted == 16049, "\(mariaDB.errors)")
            Self.expectSame(try await ODBCFixture.loaded(folder.appendingPathComponent("mariadb.sqlite").path), expected)
            let erp = folder.appendingPathComponent("sakila-erp.sqlite").path
            try await ODBCFixture.buildSakilaSQLite(at: erp)
            let sqlite = try await ODBCFixture.sync(ODBCFixture.sqlite("sakila", path: erp, stream: ODBCFixture.sakilaStream),
                                                    audit: folder.appendingPathComponent("sqlite.sqlite").path)
            #expect(sqlite.status == .success && sqlite.recordsInserted == 16049, "\(sqlite.errors)")
            Self.expectSame(try await ODBCFixture.loaded(folder.appendingPathComponent("sqlite.sqlite").path), expected)
        }
    }

    /// Incremental runs over psqlODBC: a row committed late with a cursor inside the lookback window is
    /// read by the next run, rows on one cursor value across a page edge are all read, and an update moves
    /// a row; nothing doubles.
    @Test func incrementalRunsCatchLateRowsInTheLookback() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode"], variables: Self.servers) else { return }
        let table = "odbc_late_\(UUID().uuidString.prefix(8).lowercased())"
        let source = ODBCFixture.postgres("late", stream: ODBCFixture.stream(table))
        try await ODBCFixture.withTable(table, at: source, setup: [
            "CREATE TABLE \(table) (id int PRIMARY KEY, pdv varchar(10), operator char(8), amount numeric(12,2), type text, updated_at timestamp)",
            "INSERT INTO \(table) SELECT g, 'P1', 'op', g + 0.5, 'sale', timestamp '2024-03-01 10:00:00' + (g / 3) * interval '1 second' FROM generate_series(1, 250) g",
        ]) { audit in
            let options = ODBCFixture.options(batchSize: 100, lookback: .seconds(60))
            let first = try await ODBCFixture.sync(source, audit: audit, options: options)
            #expect(first.status == .success && first.recordsInserted == 250, "\(first.errors)")
            try await ODBCFixture.execute(source, [
                "INSERT INTO \(table) VALUES (1001, 'P2', 'op', 9.99, 'sale', timestamp '2024-03-01 10:01:00')",
                "INSERT INTO \(table) VALUES (1002, 'P2', 'op', 1.00, 'sale', timestamp '2024-03-01 10:01:23')",
                "UPDATE \(table) SET amount = -3.00, type = 'cancel', updated_at = timestamp '2024-03-01 10:02:00' WHERE id = 7",
            ])
            let second = try await ODBCFixture.sync(source, audit: audit, options: options)
            #expect(second.status == .success, "\(second.errors)")
            #expect(second.recordsInserted == 2 && second.recordsUpdated == 1, "\(second)")
            let loaded = try await ODBCFixture.loaded(audit)
            #expect(loaded.count == 252)
            #expect(loaded.contains { $0.hasPrefix("7|-3.00|") })
            #expect(loaded.contains { $0.hasPrefix("1001|9.99|") })
            // The second run saved its window from the checksums its pages carried through the driver.
            let quiet = try await ODBCFixture.sync(source, audit: audit, options: options)
            #expect(quiet.status == .success && quiet.recordsFetched == 0, "a quiet rerun re-reads no row: \(quiet)")
        }
    }

    /// Over MariaDB Connector/ODBC, which reads every integer column as a signed 64-bit one, the row checksums a
    /// page carries add up to what the server sums for the same rows: after a run that read new rows forward, a
    /// quiet rerun re-reads no row of its lookback window.
    @Test func aQuietRerunOverMariaDBODBCReReadsNoRow() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["MariaDB Unicode"], variables: Self.servers) else { return }
        let table = "odbc_window_\(UUID().uuidString.prefix(8).lowercased())"
        let source = ODBCFixture.mariaDB("window", stream: ODBCFixture.stream(table))
        func add(_ ids: ClosedRange<Int>) -> String {
            "INSERT INTO \(table) SELECT seq, 'P1', 'op', seq + 0.5, 'sale', TIMESTAMP'2024-03-01 10:00:00' + INTERVAL (seq DIV 3) SECOND "
                + "FROM seq_\(ids.lowerBound)_to_\(ids.upperBound)"
        }
        try await ODBCFixture.withTable(table, at: source, setup: [
            "CREATE TABLE \(table) (id int PRIMARY KEY, pdv varchar(10), operator char(8), amount decimal(12,2), type varchar(10), "
                + "updated_at datetime(6), KEY (updated_at, id))",
            add(1...250),
        ]) { audit in
            let options = ODBCFixture.options(batchSize: 100, lookback: .seconds(60))
            #expect(try await ODBCFixture.sync(source, audit: audit, options: options).recordsInserted == 250)
            #expect(try await ODBCFixture.sync(source, audit: audit, options: options).recordsFetched == 182, "no saved window: re-read")
            try await ODBCFixture.execute(source, [add(251...270)])
            let forward = try await ODBCFixture.sync(source, audit: audit, options: options)
            #expect(forward.recordsInserted == 20 && forward.recordsFetched == 20, "\(forward)")
            let quiet = try await ODBCFixture.sync(source, audit: audit, options: options)
            #expect(quiet.status == .success && quiet.recordsFetched == 0, "a quiet rerun re-reads no row: \(quiet)")
        }
    }

    /// `pg_terminate_backend` ends the psqlODBC connection between batches and while the next page is read
    /// ahead: the failed read is retried on a new connection and every row arrives exactly once.
    @Test func aConnectionKilledMidReadIsRetried() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode"], variables: Self.servers) else { return }
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let table = "odbc_kill_\(suffix)"
        let stream = StreamConfig(from: .table(table), primaryKey: ["id"], cursor: .init(column: "id", kind: .integer),
                                  fields: [.pdv: .sql("'P1'"), .operator: .sql("'op'"), .amount: .column("amount"),
                                           .occurredAt: .column("at"), .type: .sql("'sale'")])
        let source = ODBCFixture.postgres("kill", stream: stream, extra: ";pqopt={application_name=erp_\(suffix)}")
        let admin = ODBCFixture.postgres("admin", stream: stream)
        try await ODBCFixture.execute(admin, [
            "CREATE TABLE \(table) (id int PRIMARY KEY, amount numeric(12,2), at timestamp)",
            "INSERT INTO \(table) SELECT g, (g % 500) + 0.99, timestamp '2024-03-01' + g * interval '1 second' FROM generate_series(1, 2500) g",
        ])
        let killed = Atomic<Int>(0)
        let killer = ODBCSource(settings: ODBCSettings(source: admin))
        do {
            try await ODBCFixture.withFolder { folder in
                let audit = folder.appendingPathComponent("audit.sqlite").path
                let result = try await ODBCFixture.sync(source, audit: audit, options: ODBCFixture.options(batchSize: 100), afterCommit: { batch in
                    guard batch == 5 || batch == 12 else { return }
                    let rows = try await killer.fetch(SQLStatement(
                        sql: "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?", binds: [.text("erp_\(suffix)")]))
                    killed.add(Int(rows.first?.first?.text ?? "0") ?? 0, ordering: .relaxed)
                })
                #expect(killed.load(ordering: .relaxed) >= 2)
                #expect(result.status == .success, "\(result.errors)")
                #expect(result.recordsInserted == 2500)
                let loaded = try await ODBCFixture.loaded(audit)
                let ids: Set<String> = Set(loaded.map { String($0.prefix { $0 != "|" }) })
                #expect(ids.count == 2500)
                #expect(Self.total(loaded) == "626225.00")
            }
        } catch {
            await killer.close()
            try? await ODBCFixture.execute(admin, ["DROP TABLE \(table)"])
            throw error
        }
        await killer.close()
        try await ODBCFixture.execute(admin, ["DROP TABLE \(table)"])
    }

    /// A wrong password is `AUTH_FAILED` (permanent, named), a missing driver `DRIVER_NOT_FOUND`, a missing
    /// table `TABLE_NOT_FOUND`; the password never appears in a message.
    @Test func failuresAreClassifiedAndNeverShowThePassword() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode"], variables: Self.servers) else { return }
        var wrong = ODBCFixture.postgres("wrong", stream: ODBCFixture.sakilaStream)
        wrong.password = Secret("not-the;password}")
        let error = await #expect(throws: SyncFailure.self) { try await ODBCSource(settings: ODBCSettings(source: wrong)).testConnection() }
        #expect(error?.code == .authFailed && error?.isTransient == false, "\(String(describing: error))")
        #expect(error?.message.contains("not-the") == false)
        var noDriver = wrong
        noDriver.connectionString = "DRIVER={No Such Driver};SERVER=127.0.0.1"
        let missing = await #expect(throws: SyncFailure.self) { try await ODBCSource(settings: ODBCSettings(source: noDriver)).testConnection() }
        #expect(missing?.code == .driverNotFound, "\(String(describing: missing))")
        let reader = ODBCSource(settings: ODBCSettings(source: ODBCFixture.postgres("t", stream: ODBCFixture.sakilaStream)))
        let table = await #expect(throws: SyncFailure.self) { try await reader.fetch(SQLStatement(sql: "SELECT 1 FROM no_such_table_odbc")) }
        #expect(table?.code == .tableNotFound, "\(String(describing: table))")
        #expect(try await reader.testConnection().contains("PostgreSQL"))
        await reader.close()
    }

    /// Cancelling the task stops a statement blocked in the server at once (`SQLCancel`): `CANCELLED`.
    @Test func cancellationStopsARunningStatement() async throws {
        guard ODBCFixture.available("ODBCSyncTests", drivers: ["PostgreSQL Unicode"], variables: Self.servers) else { return }
        let reader = ODBCSource(settings: ODBCSettings(source: ODBCFixture.postgres("slow", stream: ODBCFixture.sakilaStream)))
        let started = ContinuousClock.now
        let task = Task { try await reader.fetch(SQLStatement(sql: "SELECT pg_sleep(30)")) }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let error = await #expect(throws: SyncFailure.self) { try await task.value }
        #expect(error?.code == .cancelled, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(10))
        await reader.close()
    }

    /// The same rows, reported by count and first difference instead of two 16,049-line dumps.
    static func expectSame(_ actual: [String], _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let difference = zip(actual, expected).first { $0 != $1 }
        #expect(actual.count == expected.count && difference == nil,
                "\(actual.count) rows vs \(expected.count); first difference: \(String(describing: difference))", sourceLocation: sourceLocation)
    }

    /// Sum of the amount column of ``ODBCFixture/loaded(_:)`` rows, exactly.
    static func total(_ loaded: [String]) -> String {
        loaded.reduce(Amount(minorUnits: 0, scale: 2)) { sum, row in
            sum + ((try? Amount(parsing: String(row.split(separator: "|")[1]), scale: 2)) ?? Amount(minorUnits: 0, scale: 2))
        }.description
    }
}
#endif
