#if MySQL
import Foundation
@testable import MySQLConnector
import NIOPosix
import SQLiteConnector
import Synchronization
import SyncCore
import SyncTesting
import Testing

/// Integration tests against the real MariaDB started by `scripts/test.sh` (`scripts/mariadb-server.sh`),
/// with PostgreSQL (or SQLite) as the audit database.
@Suite(.enabled(if: TestServers.available("ERP_SYNC_MYSQL_HOST") && TestServers.available("ERP_SYNC_PG_URL"),
                "needs MariaDB and PostgreSQL: set ERP_SYNC_MYSQL_HOST and ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct MySQLSyncTests {
    @Test func sakilaFromMariaDBIntoPostgresMatchesCountSumAndIds() async throws {
        try await MySQLFixture.with { f in
            let source = f.source("sakila", stream: MySQLFixture.sakilaStream, database: "erp_source")
            let result = try await f.sync(MySQLFixture.options(), source: source)
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 16049)
            let expected = try await MySQLFixture.rows("erp_source", "SELECT COUNT(*), CAST(SUM(amount) AS CHAR), MIN(payment_id), MAX(payment_id) FROM payment")
            let actual = try await f.audit("SELECT count(*), sum(amount)::text, min(external_id::int), max(external_id::int) FROM tb_sales")
            #expect(actual == expected)
            #expect(expected.first?[1] == "67416.51")
            let sakilaIds = try await MySQLFixture.rows("erp_source", "SELECT GROUP_CONCAT(payment_id ORDER BY payment_id SEPARATOR ',') FROM (SELECT payment_id FROM payment ORDER BY payment_id LIMIT 500) p")
            let auditIds = try await f.audit("SELECT string_agg(external_id, ',' ORDER BY external_id::int) FROM (SELECT external_id FROM tb_sales ORDER BY external_id::int LIMIT 500) t")
            #expect(auditIds == sakilaIds)
            // Progress uses the optimizer's estimate: near the real count (InnoDB samples pages), never a scan.
            let reader = MySQLSource(settings: ServerConnectionSettings(source: source))
            let estimate = try await reader.estimateRows(StreamQuery(stream: MySQLFixture.sakilaStream, dialect: .mysql).rows(from: .start))
            await reader.close()
            #expect((8000...32000).contains(estimate ?? 0), "estimate \(String(describing: estimate))")
            let again = try await f.sync(MySQLFixture.options(), source: source, full: true)
            #expect(again.recordsInserted == 0 && again.recordsUpdated == 0 && again.recordsUnchanged == 16049 && again.recordsDeleted == 0)
        }
    }

    @Test func sakilaFromMariaDBIntoSQLite() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("maria-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let destination = try await SQLiteDestination(path: folder.appendingPathComponent("audit.sqlite").path)
        try await destination.migrate()
        let fixture = MySQLFixture(sourceDB: "erp_source", auditDB: "")
        let source = fixture.source("sakila", stream: MySQLFixture.sakilaStream)
        let service = SyncService(config: SyncConfig(destination: .sqlite(path: ""), defaults: MySQLFixture.options(batchSize: 2000), sources: [source]),
                                  destination: destination, makeSource: MySQLFixture.makeSource)
        let result = await service.sync(source: "sakila")
        let totals = try await destination.totals(source: "sakila")
        await destination.close()
        let expected = try await MySQLFixture.rows("erp_source", "SELECT COUNT(*), CAST(SUM(amount) AS CHAR) FROM payment")
        #expect(result.status == .success, "\(result.errors)")
        #expect(result.recordsInserted == 16049)
        #expect([["\(totals.rows)", totals.amountByCurrency["BRL"]]] == expected)
    }

    /// Under `sql_mode=''` MariaDB stores `0000-00-00 00:00:00` and partial zero dates; those rows (a zero
    /// `occurredAt` or a zero cursor) go to quarantine as ZERO_DATE with their raw values and the rest of the
    /// batch loads.
    @Test func zeroDatesAreQuarantinedWhileTheRestOfTheBatchLoads() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales, "SET SESSION sql_mode = ''", """
                INSERT INTO sale_transactions VALUES
                (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00'),
                (2, 'P1', 'op1', 11.00, '0000-00-00 00:00:00', 'venda', NULL, '2024-03-01 10:01:00'),
                (3, 'P1', 'op1', 12.00, '2024-00-10 09:00:00', 'venda', NULL, '2024-03-01 10:02:00'),
                (4, 'P1', 'op1', 13.00, '2024-03-00 09:00:00', 'venda', NULL, '2024-03-01 10:03:00'),
                (5, 'P1', 'op1', 14.00, '2024-03-01 10:04:00.250000', 'venda', NULL, '2024-03-01 10:04:00'),
                (6, 'P1', 'op1', 15.00, '2024-03-01 10:05:00', 'venda', NULL, '0000-00-00 00:00:00')
                """])
            let stored = try await MySQLFixture.rows(f.sourceDB, "SELECT CAST(`timestamp` AS CHAR) FROM sale_transactions WHERE id = 2")
            #expect(stored == [["0000-00-00 00:00:00.000000"]])
            let result = try await f.sync(MySQLFixture.options(), source: f.source(stream: MySQLFixture.stream))
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 2)
            #expect(result.recordsRejected == 4)
            #expect(result.cursorTo?.hasPrefix("2024-03-01 10:04:00") == true)
            let loaded = try await f.audit("SELECT external_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM tb_sales ORDER BY external_id")
            #expect(loaded == [["1", "2024-03-01 13:00:00.000000"], ["5", "2024-03-01 13:04:00.250000"]])
            let quarantined = try await f.audit("SELECT external_id, reason_code, raw_json->>'occurredAt' FROM tb_sync_errors WHERE kind = 'record' ORDER BY external_id")
            #expect(quarantined == [["2", "ZERO_DATE", "0000-00-00 00:00:00"], ["3", "ZERO_DATE", "2024-00-10 09:00:00"], ["4", "ZERO_DATE", "2024-03-00 09:00:00"],
                                 ["6", "ZERO_DATE", "2024-03-01 10:05:00"]])
        }
    }

    /// A `{ sql: }` mapping MariaDB cannot compute for one row (1690 "BIGINT UNSIGNED value is out of range",
    /// SQLSTATE 22003, a data exception) quarantines that row as `SOURCE_ERROR` and the rest loads; the cursor
    /// passes it.
    @Test func aRowWhoseMappingRaisesADataExceptionIsQuarantinedAndTheRestLoads() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales, """
                INSERT INTO sale_transactions
                SELECT seq, 'P1', 'op1', IF(seq = 7, 0, 10), TIMESTAMP '2024-03-01 10:00:00' + INTERVAL seq MINUTE, 'venda', NULL,
                       TIMESTAMP '2024-03-01 10:00:00' + INTERVAL seq MINUTE
                FROM seq_1_to_12
                """])
            var stream = MySQLFixture.stream
            stream.fields[.amount] = .sql("CAST(amount AS UNSIGNED) - 1")
            let result = try await f.sync(MySQLFixture.options(batchSize: 5), source: f.source(stream: stream))
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 11 && result.recordsRejected == 1)
            #expect(result.cursorTo?.hasPrefix("2024-03-01 10:12:00") == true)
            let quarantined = try await f.audit("SELECT external_id, reason_code, message FROM tb_sync_errors WHERE kind = 'record'")
            #expect(quarantined.map { [$0[0], $0[1]] } == [["7", "SOURCE_ERROR"]])
            #expect(quarantined.first?[2]?.contains("[1690]") == true, "\(quarantined)")
        }
    }

    /// In a NOT NULL DATETIME column MariaDB answers `IS NULL` with true for a zero date (ODBC compatibility),
    /// so such a row must not be read twice (once by the NULL-cursor sweep, once by the keyset pages): it is
    /// quarantined once, as ZERO_DATE, and counted once.
    @Test func aZeroDateInANotNullCursorColumnIsQuarantinedOnce() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "SET SESSION sql_mode = ''",
                "CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(10,2), `timestamp` DATETIME, type VARCHAR(20), reference INT, updated_at DATETIME NOT NULL, KEY (updated_at, id))",
                """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '0000-00-00 00:00:00'),
                    (2, 'P1', 'op1', 11.00, '2024-03-01 10:01:00', 'venda', NULL, '2024-03-01 10:01:00')
                """,
            ])
            #expect(try await MySQLFixture.rows(f.sourceDB, "SELECT COUNT(*) FROM sale_transactions WHERE updated_at IS NULL") == [["1"]])
            let result = try await f.sync(MySQLFixture.options(), source: f.source(stream: MySQLFixture.stream))
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsFetched == 2 && result.recordsInserted == 1 && result.recordsRejected == 1)
            #expect(try await f.audit("SELECT external_id, reason_code, occurrences FROM tb_sync_errors WHERE kind = 'record'") == [["1", "ZERO_DATE", "1"]])
        }
    }

    /// Zero and partial-zero dates in a nullable cursor column (`sql_mode=''`) are neither NULL nor orderable: rows
    /// holding them behind the checkpoint were never read by an incremental run. Now the run sweeps and
    /// quarantines them, once each, and a cursor from the future (`9999-12-31`) is quarantined without moving the
    /// checkpoint past the rows that come later.
    @Test func unorderableAndFutureCursorsInANullableColumnAreSweptByIncrementalRuns() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "SET SESSION sql_mode = ''",
                "CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(10,2), `timestamp` DATETIME, type VARCHAR(20), reference INT, updated_at DATETIME NULL, KEY (updated_at, id))",
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')",
            ])
            let source = f.source(stream: MySQLFixture.stream)
            let first = try await f.sync(MySQLFixture.options(), source: source)
            #expect(first.status == .success && first.recordsInserted == 1, "\(first.errors)")
            try await MySQLFixture.execute(f.sourceDB, [
                "SET SESSION sql_mode = ''",
                """
                INSERT INTO sale_transactions VALUES (2, 'P1', 'op1', 11.00, '2024-03-01 10:01:00', 'venda', NULL, '0000-00-00 00:00:00'),
                    (3, 'P1', 'op1', 12.00, '2024-03-01 10:02:00', 'venda', NULL, '2024-00-10 00:00:00'),
                    (4, 'P1', 'op1', 13.00, '2024-03-01 10:03:00', 'venda', NULL, '9999-12-31 23:59:59'),
                    (5, 'P1', 'op1', 14.00, '2024-03-01 10:04:00', 'venda', NULL, '2024-03-01 10:04:00'),
                    (7, 'P1', 'op1', 16.00, '2024-03-01 10:05:00', 'venda', NULL, '2019-05-00 00:00:00')
                """,
            ])
            // The sweep reads the cursor's years first and then takes index ranges: a partial-zero date before every
            // real one (2019 here) widens those years itself.
            let second = try await f.sync(MySQLFixture.options(), source: source)
            #expect(second.status == .success, "\(second.errors)")
            #expect(second.recordsInserted == 1 && second.recordsRejected == 4)
            #expect(second.cursorTo == "2024-03-01 10:04:00 #5")
            #expect(second.errors.map(\.code) == [.futureCursor])
            let third = try await f.sync(MySQLFixture.options(), source: source)
            #expect(third.recordsInserted == 0 && third.recordsRejected == 4)
            #expect(try await f.audit("SELECT external_id, reason_code, occurrences FROM tb_sync_errors WHERE kind = 'record' ORDER BY external_id")
                == [["2", "ZERO_DATE", "2"], ["3", "ZERO_DATE", "2"], ["4", "FUTURE_CURSOR", "2"], ["7", "ZERO_DATE", "2"]])
            // Rows after the future one still arrive.
            try await MySQLFixture.execute(f.sourceDB, ["INSERT INTO sale_transactions VALUES (6, 'P1', 'op1', 15.00, '2024-03-02 09:00:00', 'venda', NULL, '2024-03-02 09:00:00')"])
            #expect(try await f.sync(MySQLFixture.options(), source: source).recordsInserted == 1)
        }
    }

    /// The quarantine lifecycle from MariaDB: a zero date in `occurredAt` is quarantined, fixed at the source behind
    /// the checkpoint, and loaded by `reprocess` (by primary key), which resolves the entry; a loaded sale that turns
    /// invalid is marked stale until a valid version loads.
    @Test func quarantineLifecycleFromMariaDB() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "SET SESSION sql_mode = ''",
                MySQLFixture.createSales,
                """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', 1, '2024-03-01 10:00:00'),
                    (2, 'P1', 'op1', 11.00, '0000-00-00 00:00:00', 'venda', 2, '2024-03-01 10:01:00'),
                    (3, 'P1', 'op1', 12.00, '2024-03-01 12:00:00', 'venda', 3, '2024-03-01 12:00:00')
                """,
            ])
            let source = f.source(stream: MySQLFixture.stream)
            let options = MySQLFixture.options(lookback: .seconds(300))
            #expect(try await f.sync(options, source: source).recordsRejected == 1)
            try await MySQLFixture.execute(f.sourceDB, [
                "UPDATE sale_transactions SET `timestamp` = '2024-03-01 10:01:00' WHERE id = 2",
                "UPDATE sale_transactions SET operator = NULL, updated_at = '2024-03-01 12:30:00' WHERE id = 3",
            ])
            #expect(try await f.sync(options, source: source).recordsInserted == 0)
            #expect(try await f.audit("SELECT external_id, quarantine_reason FROM tb_sales WHERE quarantined_since IS NOT NULL") == [["3", "MISSING_FIELD"]])
            let reprocess = try await f.sync(options, source: source, reprocess: ReprocessFilter(reason: "ZERO_DATE"))
            #expect(reprocess.syncType == .reprocess && reprocess.recordsInserted == 1, "\(reprocess.errors)")
            #expect(try await f.audit("SELECT external_id, resolution FROM tb_sync_errors WHERE kind = 'record' ORDER BY external_id")
                == [["2", "loaded"], ["3", nil]])
            try await MySQLFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET operator = 'op9', updated_at = '2024-03-01 13:00:00' WHERE id = 3"])
            #expect(try await f.sync(options, source: source).recordsUpdated == 1)
            #expect(try await f.audit("SELECT count(*) FROM tb_sales WHERE quarantined_since IS NOT NULL") == [["0"]])
            #expect(try await f.audit("SELECT count(*) FROM tb_sync_errors WHERE kind = 'record' AND resolved_at IS NULL") == [["0"]])
        }
    }

    /// TINYINT(1) is MySQL's BOOLEAN, but it holds any TINYINT: 0, 1, 2 and -1 must stay the numbers they are.
    @Test func tinyint1ValuesStayIntegers() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "CREATE TABLE flags (id INT PRIMARY KEY, flag TINYINT(1), ts DATETIME)",
                "INSERT INTO flags VALUES (1, 0, '2024-03-01 10:00:00'), (2, 1, '2024-03-01 10:00:01'), (3, 2, '2024-03-01 10:00:02'), (4, -1, '2024-03-01 10:00:03')",
            ])
            let source = MySQLSource(settings: MySQLFixture.settings(f.sourceDB))
            let rows = try await source.fetch(SQLStatement(sql: "SELECT flag FROM flags ORDER BY id"))
            await source.close()
            #expect(rows == [[.integer(0)], [.integer(1)], [.integer(2)], [.integer(-1)]])
            let stream = StreamConfig(from: .table("flags"), primaryKey: ["id"], cursor: .init(column: "ts", kind: .timestamp),
                                      fields: [.pdv: .sql("'P1'"), .operator: .sql("'op1'"), .amount: .sql("1.00"), .occurredAt: .column("ts"),
                                               .type: .sql("'venda'"), .reference: .column("flag")], typeMap: ["venda": .sale])
            let result = try await f.sync(MySQLFixture.options(), source: f.source(stream: stream))
            #expect(result.recordsInserted == 4, "\(result.errors)")
            #expect(try await f.audit("SELECT string_agg(reference, ',' ORDER BY external_id) FROM tb_sales") == [["0,1,2,-1"]])
        }
    }

    /// A `utf8mb4_bin` column has a binary *collation* but a character set: its values are text, not bytes.
    @Test func textInAUtf8mb4BinColumnArrivesAsText() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, amount DECIMAL(10,2), `timestamp` DATETIME, type VARCHAR(20), reference VARBINARY(20), updated_at DATETIME)",
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'João Ñandú 🧾', 5.00, '2024-03-01 10:00:00', 'venda', x'00ff', '2024-03-01 10:00:00')",
            ])
            let source = MySQLSource(settings: MySQLFixture.settings(f.sourceDB))
            let rows = try await source.fetch(SQLStatement(sql: "SELECT operator, reference FROM sale_transactions WHERE operator = ?", binds: [.text("João Ñandú 🧾")]))
            await source.close()
            #expect(rows == [[.text("João Ñandú 🧾"), .bytes(Data([0x00, 0xFF]))]])
            var stream = MySQLFixture.stream
            stream.fields[.reference] = nil
            let result = try await f.sync(MySQLFixture.options(), source: f.source(stream: stream))
            #expect(result.recordsInserted == 1, "\(result.errors)")
            #expect(try await f.audit("SELECT operator FROM tb_sales") == [["João Ñandú 🧾"]])
        }
    }

    /// DECIMAL(20,2) amounts and BIGINT UNSIGNED keys beyond Int64 survive digit for digit; 250 keys above
    /// 2^63 that share one cursor value page correctly, which needs the key bound exactly (as a double they
    /// would collapse and rows would repeat or vanish).
    @Test func decimalAndBigintUnsignedSurviveDigitForDigitAndPageExactly() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                """
                CREATE TABLE sale_transactions (id BIGINT UNSIGNED PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(20,2),
                    `timestamp` DATETIME(6), type VARCHAR(20), reference BIGINT UNSIGNED, updated_at DATETIME(6), KEY (updated_at, id))
                """,
                """
                INSERT INTO sale_transactions
                SELECT 18446744073709551615 - seq, 'P1', 'op1', 123456789012345678.91 - seq, '2024-03-01 10:00:00.123456', 'venda',
                       18446744073709551615 - seq, '2024-03-01 10:00:00.123456'
                FROM seq_0_to_249
                """,
                "INSERT INTO sale_transactions VALUES (7, 'P1', 'op1', -0.05, '2024-03-01 10:01:00', 'cancelamento', NULL, '2024-03-01 10:01:00')",
            ])
            let result = try await f.sync(MySQLFixture.options(batchSize: 100), source: f.source(stream: MySQLFixture.stream))
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 251)
            let top = try await f.audit("""
                SELECT external_id, amount::text, reference, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), type
                FROM tb_sales WHERE external_id IN ('18446744073709551615', '7') ORDER BY external_id
                """)
            #expect(top == [["18446744073709551615", "123456789012345678.91", "18446744073709551615", "2024-03-01 13:00:00.123456", "sale"],
                            ["7", "-0.05", nil, "2024-03-01 13:01:00.000000", "cancel"]])
            let sums = try await MySQLFixture.rows(f.sourceDB, "SELECT COUNT(*), COUNT(DISTINCT id), CAST(SUM(amount) AS CHAR) FROM sale_transactions")
            #expect(try await f.audit("SELECT count(*), count(DISTINCT external_id), sum(amount)::text FROM tb_sales") == sums)
        }
    }

    /// `KILL <id>` from another session ends the source connection between batches and during reads: the
    /// failed read is retried on a new connection and the run completes with every row exactly once.
    @Test func aConnectionKilledMidReadIsRetriedAndNothingIsLostOrDoubled() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales, """
                INSERT INTO sale_transactions
                SELECT seq, CONCAT('P', seq % 7), CONCAT('op', seq % 11), (seq % 500) + 0.99, TIMESTAMP '2024-03-01 00:00:00' + INTERVAL seq SECOND,
                       'venda', seq, TIMESTAMP '2024-03-01 00:00:00' + INTERVAL seq SECOND
                FROM seq_1_to_2500
                """])
            let sourceDB = f.sourceDB
            let killed = KillCounter()
            let result = try await f.sync(MySQLFixture.options(batchSize: 100), source: f.source(stream: MySQLFixture.stream), afterCommit: { batch in
                guard batch == 5 || batch == 12 else { return }
                let ids = try await MySQLFixture.rows("", "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '\(sourceDB)' AND ID <> CONNECTION_ID()")
                for id in ids.compactMap({ $0.first ?? nil }) {
                    try await MySQLFixture.execute("", ["KILL \(id)"])
                    killed.add()
                }
            })
            #expect(killed.count >= 2)
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 2500)
            let expected = try await MySQLFixture.rows(f.sourceDB, "SELECT COUNT(*), COUNT(DISTINCT id), CAST(SUM(amount) AS CHAR) FROM sale_transactions")
            #expect(try await f.audit("SELECT count(*), count(DISTINCT external_id), sum(amount)::text FROM tb_sales") == expected)
        }
    }

    /// `KILL <id>` while a read's rows stream: Connector/C reports the lost connection on the connection, not on the
    /// statement (whose error number stays 0). The read must fail transiently (retried on a new connection), never
    /// end early as if the rows were all read, and never fail as a permanent query error: that one sends the engine
    /// looking for a row to quarantine, and it quarantined a valid row in the CI's chaos run.
    @Test func aConnectionKilledWhileRowsStreamFailsTransiently() async throws {
        let failure = try await MySQLFixture.withConnection("erp_source") { connection -> SyncFailure? in
            let victim = connection.serverThreadID
            var checks = 0
            do {
                let rows = try connection.query(SQLStatement(sql: "SELECT seq, REPEAT('x', 200) FROM seq_1_to_5000000"), isCancelled: {
                    checks += 1
                    if checks == 1000 {
                        let killer = try? MariaDBConnection(settings: MySQLFixture.settings(""))
                        _ = try? killer?.query(SQLStatement(sql: "KILL \(victim)"), isCancelled: { false })
                        killer?.close()
                    }
                    return false
                })
                Issue.record("the read ended with \(rows.count) rows and no error")
                return nil
            } catch {
                return error as? SyncFailure
            }
        }
        #expect(failure?.isTransient == true && failure?.code == .sourceQueryFailed, "\(String(describing: failure))")
        #expect(failure.map { $0.message.contains("[2013]") || $0.message.contains("[1927]") } == true, "\(String(describing: failure))")
    }

    /// A transaction inserts a row, waits while a sync passes its timestamp, then commits: the next run's
    /// lookback re-read picks it up.
    @Test func aRowCommittedAfterASyncPassedItsTimestampIsPickedUpByTheNextRun() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales,
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', 1, '2024-03-01 10:00:00')"])
            let late = try await LateTransaction.begin(f.sourceDB, [
                "INSERT INTO sale_transactions VALUES (2, 'P1', 'op1', 20.00, '2024-03-01 10:02:00', 'venda', 2, '2024-03-01 10:02:00')"])
            try await MySQLFixture.execute(f.sourceDB, ["INSERT INTO sale_transactions VALUES (3, 'P1', 'op1', 30.00, '2024-03-01 10:03:00', 'venda', 3, '2024-03-01 10:03:00')"])
            let options = MySQLFixture.options(lookback: .seconds(300))
            let first = try await f.sync(options, source: f.source(stream: MySQLFixture.stream))
            #expect(first.recordsInserted == 2)  // 1 and 3; 2 is not committed yet
            try await late.commit()
            let second = try await f.sync(options, source: f.source(stream: MySQLFixture.stream))
            #expect(second.recordsInserted == 1)
            #expect(try await f.audit("SELECT string_agg(external_id, ',' ORDER BY external_id) FROM tb_sales") == [["1,2,3"]])
        }
    }

    /// The lookback window is re-read only when its fingerprint (count and checksum, read at the source) changed: a
    /// quiet rerun reads no row, also after a run that read new rows forward (the window it saved sums the checksums
    /// its pages carried); a row committed late inside the window, after a run that fingerprinted the window while its
    /// transaction was open, and a row changed in place (its cursor unchanged) are found by the next run.
    @Test func theLookbackWindowIsReReadOnlyWhenItChanged() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales,
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')",
                "INSERT INTO sale_transactions VALUES (3, 'P1', 'op1', 30.00, '2024-03-01 10:03:00', 'venda', 3, '2024-03-01 10:03:00')"])
            let options = MySQLFixture.options(lookback: .seconds(300))
            let source = f.source(stream: MySQLFixture.stream)
            #expect(try await f.sync(options, source: source).recordsInserted == 2)
            #expect(try await f.sync(options, source: source).recordsFetched == 2, "no saved window yet: the whole window")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun")
            let late = try await LateTransaction.begin(f.sourceDB, [
                "INSERT INTO sale_transactions VALUES (2, 'P1', 'op1', 20.00, '2024-03-01 10:02:00', 'venda', 2, '2024-03-01 10:02:00')"])
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "row 2 is not committed yet")
            try await late.commit()
            let found = try await f.sync(options, source: source)
            #expect(found.recordsInserted == 1 && found.recordsFetched == 3)
            #expect(try await f.sync(options, source: source).recordsFetched == 0)
            try await MySQLFixture.execute(f.sourceDB, ["INSERT INTO sale_transactions VALUES (4, 'P1', 'op1', 40.00, '2024-03-01 10:04:00', 'venda', 4, '2024-03-01 10:04:00')"])
            #expect(try await f.sync(options, source: source).recordsFetched == 1, "the new row, read forward")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun after a forward read")
            try await MySQLFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET reference = 1 WHERE id = 1"])  // NULL -> 1, cursor unchanged
            #expect(try await f.sync(options, source: source).recordsUpdated == 1)
            #expect(try await f.audit("SELECT string_agg(external_id || ':' || coalesce(reference, '-'), ',' ORDER BY external_id) FROM tb_sales")
                    == [["1:1,2:2,3:3,4:4"]])
        }
    }

    /// A value that moves a `#` from one field to the next (`P1#x`,`op` to `P1`,`x#op`), changed in place inside the
    /// lookback window, is found: the row checksum joined the values with `#`, so both versions checksummed alike and
    /// the saved window was taken as unchanged.
    @Test func anUpdateMovingTheSeparatorBetweenFieldsIsFoundInTheWindow() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales,
                "INSERT INTO sale_transactions VALUES (1, 'P1#x', 'op', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')"])
            let options = MySQLFixture.options(lookback: .seconds(300))
            let source = f.source(stream: MySQLFixture.stream)
            #expect(try await f.sync(options, source: source).recordsInserted == 1)
            #expect(try await f.sync(options, source: source).recordsFetched == 1, "no saved window yet: the whole window")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun")
            try await MySQLFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET pdv = 'P1', operator = 'x#op' WHERE id = 1"])
            #expect(try await f.sync(options, source: source).recordsUpdated == 1)
            #expect(try await f.audit("SELECT pdv, operator FROM tb_sales") == [["P1", "x#op"]])
        }
    }

    /// A `FLOAT` amount changed in place past its 6 significant digits of text (12345.98 to 12346.02, both `12346`) is
    /// found by the lookback check: the amount is checksummed as a `DOUBLE`.
    @Test func aFloatAmountChangedPastSixDigitsIsFoundInTheWindow() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                """
                CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount FLOAT, `timestamp` DATETIME,
                    type VARCHAR(20), reference INT, updated_at DATETIME, KEY (updated_at, id))
                """,
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op', 12345.98, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')"])
            let options = MySQLFixture.options(lookback: .seconds(300))
            let source = f.source(stream: MySQLFixture.stream)
            #expect(try await f.sync(options, source: source).recordsInserted == 1)
            #expect(try await f.sync(options, source: source).recordsFetched == 1, "no saved window yet: the whole window")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun")
            try await MySQLFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET amount = 12346.02 WHERE id = 1"])
            #expect(try await f.sync(options, source: source).recordsUpdated == 1)
            #expect(try await f.audit("SELECT amount::text FROM tb_sales") == [["12346.02"]])
        }
    }

    /// An integer cursor of `BIGINT UNSIGNED` above 2^63 − 1 (read as digits) steps back by `lookback` units like any
    /// other: a row committed late behind the checkpoint is read by the next run (it had no lookback at all).
    @Test func anUnsignedCursorAbove2To63HasItsLookback() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                """
                CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(20,2),
                    `timestamp` DATETIME, type VARCHAR(20), reference INT, seqno BIGINT UNSIGNED, KEY (seqno, id))
                """,
                "INSERT INTO sale_transactions SELECT seq, 'P1', 'op', 1, '2024-05-01 10:00:00', 'venda', NULL, 9223372036854775800 + seq * 10 FROM seq_1_to_20",
            ])
            var stream = MySQLFixture.stream
            stream.cursor = .init(column: "seqno", kind: .integer)
            var options = MySQLFixture.options()
            options.lookback = .units(100)
            let source = f.source(stream: stream)
            let first = try await f.sync(options, source: source)
            #expect(first.recordsInserted == 20 && first.cursorTo == "9223372036854776000 #20", "\(first.errors)")
            try await MySQLFixture.execute(f.sourceDB, [
                "INSERT INTO sale_transactions VALUES (1001, 'P1', 'op', -1, '2024-05-01 10:00:00', 'cancelamento', NULL, 9223372036854775995)"])
            let second = try await f.sync(options, source: source)
            #expect(second.recordsInserted == 1, "\(second.errors)")
            #expect(try await f.audit("SELECT count(*) FROM tb_sales WHERE external_id = '1001' AND type = 'cancel'") == [["1"]])
        }
    }

    /// A `TIMESTAMP` cursor (an instant, compared in the session's UTC) of a source east of UTC: the horizon was the
    /// zone's wall clock + 24 h, an hour late in Berlin, so a row 24.5 h ahead was read in order, refused as
    /// `FUTURE_CURSOR`, and still moved the checkpoint past the rows to come: a cancellation written a moment later
    /// was never read. Now that row is swept into quarantine and the checkpoint stays before it.
    @Test func aFutureInstantCursorEastOfUTCNeverMovesTheCheckpoint() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "SET time_zone = '+00:00'",
                """
                CREATE TABLE sale_transactions (id INT PRIMARY KEY, pdv VARCHAR(20), operator VARCHAR(50), amount DECIMAL(10,2),
                    `timestamp` DATETIME, type VARCHAR(20), reference INT, updated_at TIMESTAMP(6) NULL, KEY (updated_at, id))
                """,
                """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op', 10.00, '2024-03-01 10:00:00', 'venda', NULL, UTC_TIMESTAMP() - INTERVAL 1 HOUR),
                    (2, 'P1', 'op', 7.00, '2024-03-01 10:00:00', 'venda', NULL, UTC_TIMESTAMP() + INTERVAL 1470 MINUTE)
                """,
            ])
            var source = f.source(stream: MySQLFixture.stream)
            source.timezone = TimeZone(identifier: "Europe/Berlin")!
            let first = try await f.sync(MySQLFixture.options(), source: source)
            #expect(first.recordsInserted == 1 && first.recordsRejected == 1, "\(first.errors)")
            #expect(first.cursorTo?.hasSuffix("#1") == true, "\(first.cursorTo ?? "-")")
            #expect(first.errors.map(\.code) == [.futureCursor])
            try await MySQLFixture.execute(f.sourceDB, [
                "SET time_zone = '+00:00'",
                "INSERT INTO sale_transactions VALUES (3, 'P1', 'op', -3.00, '2024-03-01 10:00:00', 'cancelamento', NULL, UTC_TIMESTAMP())"])
            let second = try await f.sync(MySQLFixture.options(), source: source)
            #expect(second.recordsInserted == 1 && second.cursorTo?.hasSuffix("#3") == true, "\(second.errors)")
            #expect(try await f.audit("SELECT external_id, type FROM tb_sales ORDER BY 1") == [["1", "sale"], ["3", "cancel"]])
        }
    }

    /// TIMESTAMP columns are instants: stored in UTC by the server and read in the session zone UTC, so the
    /// source's `timezone` does not shift them; DATETIME(6) keeps microseconds and is read in that zone.
    @Test func timestampIsAnInstantAndDatetimeIsLocalTime() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "CREATE TABLE t (id INT PRIMARY KEY, at_ts TIMESTAMP(6) NULL, at_dt DATETIME(6), d DATE)",
                "SET time_zone = '+02:00'",
                "INSERT INTO t VALUES (1, '2024-03-01 12:00:00.654321', '2024-03-01 12:00:00.654321', '2024-03-01')",
            ])
            let source = MySQLSource(settings: MySQLFixture.settings(f.sourceDB))
            let rows = try await source.fetch(SQLStatement(sql: "SELECT at_ts, at_dt, d FROM t WHERE at_dt >= ? AND at_ts >= ?",
                                                           binds: [.localDateTime(LocalDateTime(year: 2024, month: 3, day: 1, hour: 12, microsecond: 654_321)),
                                                                   .instant(Instant(seconds: 1_709_287_200))]))
            await source.close()
            #expect(rows == [[.instant(Instant(seconds: 1_709_287_200, microsecond: 654_321)),  // 10:00:00.654321Z
                              .localDateTime(LocalDateTime(year: 2024, month: 3, day: 1, hour: 12, microsecond: 654_321)),
                              .localDateTime(LocalDateTime(year: 2024, month: 3, day: 1))]])
        }
    }

    @Test func clearErrorsForBadPasswordMissingDatabaseTableAndColumn() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [MySQLFixture.createSales])
            var bad = f.source(stream: MySQLFixture.stream)
            bad.password = Secret("wrong-secret")
            let auth = await Self.failure(of: bad)
            #expect(auth?.code == .authFailed)
            #expect(auth?.message.contains("wrong-secret") == false)
            var missingDB = f.source(stream: MySQLFixture.stream)
            missingDB.database = "no_such_db"
            let database = await Self.failure(of: missingDB)
            #expect(database?.code == .databaseNotFound)
            #expect(database?.message.contains("no_such_db") == true)
            var stream = MySQLFixture.stream
            stream.from = .table("vendas")
            let table = await Self.failure(of: f.source(stream: stream))
            #expect(table?.code == .tableNotFound)
            #expect(table?.message.contains("vendas") == true)
            stream = MySQLFixture.stream
            stream.fields[.pdv] = .column("loja")
            let column = await Self.failure(of: f.source(stream: stream))
            #expect(column?.code == .columnNotFound)
            #expect(column?.message.contains("loja") == true)
            var unreachable = f.source(stream: MySQLFixture.stream)
            unreachable.port = 1
            let down = await Self.failure(of: unreachable)
            #expect(down?.code == .sourceUnavailable && down?.isTransient == true)
        }
    }

    /// A read waiting on the server is cut by the read timeout (transient) and by task cancellation (the
    /// statement is killed in the server; CANCELLED), both long before the statement would end.
    @Test func readTimeoutAndCancellationStopABlockedRead() async throws {
        var settings = MySQLFixture.settings("")
        settings.readTimeoutSeconds = 1
        let timed = MySQLSource(settings: settings)
        let started = ContinuousClock.now
        // The statement would run 60 s; the 1 s read timeout (Connector/C applies it to each of its three read
        // attempts) cuts it in seconds. The bound leaves room for a test process whose threads are all busy with
        // other suites (the property tests), which once stretched the cut to 10.1 s.
        await #expect(throws: SyncFailure.self) { _ = try await timed.fetch(SQLStatement(sql: "SELECT SLEEP(60)")) }
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(try await timed.fetch(SQLStatement(sql: "SELECT 1")) == [[.integer(1)]])  // a new connection after the timeout
        await timed.close()

        let source = MySQLSource(settings: MySQLFixture.settings(""))
        let task = Task { try await source.fetch(SQLStatement(sql: "SELECT SLEEP(60)")) }
        try await Task.sleep(for: .milliseconds(500))
        let cancelledAt = ContinuousClock.now
        task.cancel()
        let outcome = await task.result
        #expect(ContinuousClock.now - cancelledAt < .seconds(5))
        #expect((outcome.failure as? SyncFailure)?.code == .cancelled)
        await source.close()
    }

    /// TLS modes: `disable` is plain; `prefer` and `require` negotiate TLS with the test server (started with a
    /// self-signed certificate by scripts/mariadb-server.sh); with `caFile` the certificate is verified.
    @Test func tlsModes() async throws {
        func describe(_ ssl: SSLMode, caFile: String? = nil) async throws -> String {
            var settings = MySQLFixture.settings("", ssl: ssl)
            settings.caFile = caFile
            let source = MySQLSource(settings: settings)
            do {
                let description = try await source.testConnection()
                await source.close()
                return description
            } catch {
                await source.close()
                throw error
            }
        }
        #expect(try await describe(.disable).hasSuffix("no TLS"))
        let ca = MySQLFixture.environment["ERP_SYNC_MYSQL_CA"]
        guard let ca else {
            // A server without TLS: prefer falls back to plain, require refuses.
            #expect(try await describe(.prefer).hasSuffix("no TLS"))
            await #expect { _ = try await describe(.require) } throws: { ($0 as? SyncFailure)?.code == .tlsRequired }
            return
        }
        #expect(try await describe(.prefer).contains(", TLS "))
        #expect(try await describe(.require).contains(", TLS "))
        #expect(try await describe(.require, caFile: ca).contains(", TLS "))
    }

    /// The failure `test-connection` reports for a source, `nil` when it succeeds.
    static func failure(of source: SourceConfig) async -> SyncFailure? {
        do {
            _ = try await SyncService.testConnection(source, makeSource: MySQLFixture.makeSource)
            return nil
        } catch {
            return error as? SyncFailure
        }
    }
}

/// Counts kills across the test's callbacks.
final class KillCounter: Sendable {
    private let value = Mutex(0)
    var count: Int { value.withLock { $0 } }
    func add() { value.withLock { $0 += 1 } }
}

/// An open transaction on its own connection, committed later.
final class LateTransaction: Sendable {
    private let connection: MariaDBConnection

    private init(connection: MariaDBConnection) { self.connection = connection }

    static func begin(_ database: String, _ statements: [String]) async throws -> LateTransaction {
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try MariaDBConnection(settings: MySQLFixture.settings(database))
            for statement in ["START TRANSACTION"] + statements { _ = try connection.query(SQLStatement(sql: statement), isCancelled: { false }) }
            return LateTransaction(connection: connection)
        }
    }

    func commit() async throws {
        let connection = connection
        try await NIOThreadPool.singleton.runIfActive {
            defer { connection.close() }
            _ = try connection.query(SQLStatement(sql: "COMMIT"), isCancelled: { false })
        }
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
#endif
