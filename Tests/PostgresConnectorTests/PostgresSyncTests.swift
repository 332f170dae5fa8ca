import Foundation
import Synchronization
import PostgresConnector
import PostgresNIO
import SQLiteConnector
import SyncCore
import SyncTesting
import Testing

/// Integration tests against the real PostgreSQL server started by `.ci/run`.
@Suite(.serialized, .enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct PostgresSyncTests {
    @Test func sakilaFromPostgresIntoPostgresMatchesCountSumAndIds() async throws {
        try await PostgresFixture.with { f in
            let source = f.source("sakila", stream: PostgresFixture.sakilaStream, database: "erp_source")
            let result = try await f.sync(PostgresFixture.options(), source: source)
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 16049)
            let expected = try await PostgresFixture.rows("erp_source", "SELECT count(*), sum(amount)::text, string_agg(payment_id::text, ',' ORDER BY payment_id) FROM payment")
            let actual = try await PostgresFixture.rows(f.auditDB, "SELECT count(*), sum(amount)::text, string_agg(external_id, ',' ORDER BY external_id::int) FROM tb_sales")
            #expect(actual == expected)
            #expect(expected.first?[1] == "67416.51")
            let again = try await f.sync(PostgresFixture.options(), source: source, full: true)
            #expect(again.recordsInserted == 0 && again.recordsUpdated == 0 && again.recordsUnchanged == 16049 && again.recordsDeleted == 0)
        }
    }

    @Test func sakilaFromPostgresIntoSQLite() async throws {
        try await PostgresFixture.with { f in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pg-sqlite-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let destination = try await SQLiteDestination(path: folder.appendingPathComponent("audit.sqlite").path)
            try await destination.migrate()
            let source = f.source("sakila", stream: PostgresFixture.sakilaStream, database: "erp_source")
            let service = SyncService(config: SyncConfig(destination: .sqlite(path: ""), defaults: PostgresFixture.options(), sources: [source]),
                                      destination: destination, makeSource: { try PostgresSource(settings: PostgresSettings(source: $0)) })
            let result = await service.sync(source: "sakila")
            let totals = try await destination.totals(source: "sakila")
            await destination.close()
            #expect(result.recordsInserted == 16049)
            #expect(totals.rows == 16049)
            #expect(totals.amountByCurrency["BRL"] == "67416.51")
        }
    }

    /// The quarantine lifecycle on PostgreSQL, source and audit: a loaded sale turns invalid (marked stale, entry
    /// open), another is quarantined for an impossible date and then fixed behind the checkpoint; `reprocess` loads
    /// it by primary key and resolves its entry; fixing the first one clears its mark. `errors` sees only open ones.
    @Test func quarantineLifecycleEndToEnd() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [
                PostgresFixture.createSales,
                """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', 1, '2024-03-01 10:00:00'),
                    (2, 'P1', 'op1', NULL, '2024-03-01 10:01:00', 'venda', 2, '2024-03-01 10:01:00'),
                    (3, 'P1', 'op1', 12.00, '2024-03-01 12:00:00', 'venda', 3, '2024-03-01 12:00:00')
                """,
            ])
            let source = f.source(stream: PostgresFixture.stream)
            let (service, destination) = try await f.service(PostgresFixture.options(lookback: .seconds(300)), sources: [source])
            defer { Task { await destination.close() } }
            let first = await service.sync(source: "pg")
            #expect(first.recordsInserted == 2 && first.recordsRejected == 1)
            // Row 1 turns invalid; row 2 is fixed without moving its cursor (behind the checkpoint and the lookback).
            try await PostgresFixture.execute(f.sourceDB, [
                "UPDATE sale_transactions SET amount = NULL, updated_at = '2024-03-01 12:30:00' WHERE id = 1",
                "UPDATE sale_transactions SET amount = 11.00 WHERE id = 2",
            ])
            let second = await service.sync(source: "pg")
            #expect(second.recordsRejected == 1 && second.recordsInserted == 0)
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT external_id, quarantine_reason, quarantined_since IS NOT NULL FROM tb_sales ORDER BY external_id")
                == [["1", "MISSING_FIELD", "true"], ["3", nil, "false"]])
            let open = try await destination.quarantine(QuarantineFilter(source: "pg", kind: "record", limit: 10))
            #expect(Set(open.compactMap(\.externalId)) == ["1", "2"])
            let reprocess = await service.sync(source: "pg", overrides: SyncOverrides(reprocess: ReprocessFilter(externalIds: ["2"])))
            #expect(reprocess.status == .success && reprocess.syncType == .reprocess, "\(reprocess.errors)")
            #expect(reprocess.recordsFetched == 1 && reprocess.recordsInserted == 1)
            #expect(reprocess.cursorTo == second.cursorTo)
            try await PostgresFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET amount = 10.50, updated_at = '2024-03-01 13:00:00' WHERE id = 1"])
            #expect(await service.sync(source: "pg").recordsUpdated == 1)
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT count(*) FROM tb_sales WHERE quarantined_since IS NOT NULL") == [["0"]])
            #expect(try await destination.quarantine(QuarantineFilter(source: "pg", kind: "record", limit: 10)).isEmpty)
            let all = try await destination.quarantine(QuarantineFilter(source: "pg", kind: "record", limit: 10, includeResolved: true))
            #expect(all.count == 2 && all.allSatisfy { $0.resolution == "loaded" && $0.resolvedAt != nil })
            #expect(all.first { $0.externalId == "2" }?.resolvedBySync == reprocess.syncId)
        }
    }

    /// A `{ sql: }` mapping PostgreSQL cannot compute for one row (`to_date('20240230', 'YYYYMMDD')`, a division
    /// by zero) used to fail the page on every retry, so nothing after it was ever read. That row is quarantined
    /// with the database's message and the rest loads.
    @Test func aRowWhoseMappingFailsIsQuarantinedAndTheRestLoads() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [
                "CREATE TABLE vendas (id int PRIMARY KEY, dia char(8), valor numeric(10,2), qtd int, alterado timestamp)",
                "INSERT INTO vendas SELECT g, '20240301', 10.00, 1, timestamp '2024-03-01 10:00' + g * interval '1 minute' FROM generate_series(1, 12) g",
                "UPDATE vendas SET dia = '20240230' WHERE id = 4",
                "UPDATE vendas SET qtd = 0 WHERE id = 9",
            ])
            let stream = StreamConfig(
                from: .table("vendas"), primaryKey: ["id"], cursor: .init(column: "alterado", kind: .timestamp),
                fields: [.pdv: .sql("'P1'"), .operator: .sql("'op1'"), .amount: .sql("valor / qtd"),
                         .occurredAt: .sql("to_date(dia, 'YYYYMMDD')"), .type: .sql("'venda'")])
            let result = try await f.sync(PostgresFixture.options(batchSize: 100), source: f.source(stream: stream))
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 10 && result.recordsRejected == 2)
            let quarantined = try await PostgresFixture.rows(f.auditDB, "SELECT external_id, reason_code, message FROM tb_sync_errors WHERE kind = 'record' ORDER BY external_id::int")
            #expect(quarantined.map { [$0[0], $0[1]] } == [["4", "SOURCE_ERROR"], ["9", "SOURCE_ERROR"]])
            #expect(quarantined.first?[2]?.contains("out of range") == true)
            #expect(quarantined.last?[2]?.contains("division by zero") == true)
        }
    }

    @Test func changedRowsAreMergedAndNewRowsInsertedInOneBatch() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions VALUES
                (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', 101, '2024-03-01 10:00:00'),
                (2, 'P1', 'op1', 20.00, '2024-03-01 10:01:00', 'venda', 102, '2024-03-01 10:01:00'),
                (3, 'P1', 'op1', 30.00, '2024-03-01 10:02:00', 'venda', NULL, '2024-03-01 10:02:00')
                """])
            let source = f.source(stream: PostgresFixture.stream)
            let first = try await f.sync(PostgresFixture.options(), source: source)
            #expect(first.recordsInserted == 3, "\(first.errors)")
            try await PostgresFixture.execute(f.sourceDB, [
                "UPDATE sale_transactions SET amount = 11.50, reference = NULL, updated_at = '2024-03-02 09:00:00' WHERE id = 1",
                "UPDATE sale_transactions SET type = 'cancelamento', amount = -20.00, updated_at = '2024-03-02 09:00:01' WHERE id = 2",
                "INSERT INTO sale_transactions VALUES (4, 'P2', 'op2', 40.00, '2024-03-02 09:00:02', 'venda', 104, '2024-03-02 09:00:02')",
            ])
            let second = try await f.sync(PostgresFixture.options(), source: source)
            #expect(second.status == .success, "\(second.errors)")
            #expect(second.recordsInserted == 1 && second.recordsUpdated == 2 && second.recordsUnchanged == 0)
            let rows = try await PostgresFixture.rows(f.auditDB, """
                SELECT external_id, amount::text, type, reference, sync_id = $$\(second.syncId)$$, first_sync_id = $$\(first.syncId)$$
                FROM tb_sales ORDER BY external_id
                """)
            #expect(rows == [["1", "11.50", "sale", nil, "true", "true"], ["2", "-20.00", "cancel", "102", "true", "true"],
                             ["3", "30.00", "sale", nil, "false", "true"], ["4", "40.00", "sale", "104", "true", "false"]])
        }
    }

    @Test func saleSeenByTwoSourcesIsFlaggedAsDuplicateOfTheFirst() async throws {
        try await PostgresFixture.with { f in
            let createB = PostgresFixture.createSales.replacingOccurrences(of: "sale_transactions", with: "sales_b")
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, createB, """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')
                """, """
                INSERT INTO sales_b VALUES
                (901, 'P1', 'op1', 10.00, '2024-03-01 10:02:00', 'venda', NULL, '2024-03-01 10:02:00'),
                (902, 'P1', 'op1', 99.00, '2024-03-01 10:03:00', 'venda', NULL, '2024-03-01 10:03:00')
                """])
            var streamB = PostgresFixture.stream
            streamB.from = .table("sales_b")
            let a = try await f.sync(PostgresFixture.options(), source: f.source("a", stream: PostgresFixture.stream))
            let b = try await f.sync(PostgresFixture.options(), source: f.source("b", stream: streamB))
            #expect(a.recordsInserted == 1 && b.recordsInserted == 2, "\(a.errors) \(b.errors)")
            #expect(b.recordsSkipped == 1)
            let flagged = try await PostgresFixture.rows(f.auditDB, "SELECT external_id, duplicate_of FROM tb_sales WHERE source_id = 'b' ORDER BY external_id")
            #expect(flagged == [["901", "a|1"], ["902", nil]])
            let kept = try await PostgresFixture.rows(f.auditDB, "SELECT source_id, external_id, duplicate_of, action FROM tb_sync_duplicates")
            #expect(kept == [["b", "901", "a|1", "flag"]])
        }
    }

    /// New records travel in `COPY`'s text format: a tab, a newline, a carriage return, a backslash, the text `\N`
    /// and non-ASCII text must arrive byte for byte, and a NULL stay NULL.
    @Test func textThatLooksLikeCopySyntaxLoadsByteForByte() async throws {
        try await PostgresFixture.with { f in
            let values = ["tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "ação ☃ 𝄞", "trailing\\"]
            let rows = values.enumerated().map { index, value in
                "(\(index + 1), $v$\(value)$v$, $v$\(value)$v$, 1.00, '2024-03-01 10:00:00', 'venda', \(index == 0 ? "NULL" : "\(index)"), '2024-03-01 10:00:00')"
            }
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, "INSERT INTO sale_transactions VALUES " + rows.joined(separator: ", ")])
            let result = try await f.sync(PostgresFixture.options(), source: f.source(stream: PostgresFixture.stream))
            #expect(result.recordsInserted == values.count, "\(result.errors)")
            let stored = try await PostgresFixture.rows(f.auditDB, "SELECT pdv, operator, reference FROM tb_sales ORDER BY external_id::int")
            #expect(stored.map { [$0[0], $0[1]] } == values.map { [$0, $0] })
            #expect(stored.map { $0[2] } == [nil] + (1..<values.count).map { "\($0)" })
        }
    }

    /// A batch's times are its transaction's `now()`, filled by the server: `ingested_at` and `updated_at` of new
    /// rows (left out of the COPY), `deleted_at_source` of a row first seen already deleted at the source, and
    /// `updated_at` of a changed row, whose `ingested_at` stays.
    @Test func aBatchStampsItsRowsWithItsTransactionTime() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00'),
                    (2, 'P1', 'op2', 11.00, '2024-03-01 10:01:00', 'venda', 7, '2024-03-01 10:01:00')
                """])
            var stream = PostgresFixture.stream
            stream.deleted = .sql("reference IS NOT NULL")
            let source = f.source(stream: stream)
            #expect(try await f.sync(PostgresFixture.options(), source: source).recordsInserted == 2)
            let times = "SELECT external_id, ingested_at = updated_at, deleted_at_source = ingested_at, deleted_reason, ingested_at > now() - interval '1 minute' FROM tb_sales ORDER BY external_id"
            #expect(try await PostgresFixture.rows(f.auditDB, times) == [["1", "true", nil, nil, "true"], ["2", "true", "true", "soft", "true"]])
            try await PostgresFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET amount = 12.00, updated_at = '2024-03-01 10:02:00' WHERE id = 1"])
            #expect(try await f.sync(PostgresFixture.options(), source: source).recordsUpdated == 1)
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT updated_at > ingested_at, amount::text FROM tb_sales WHERE external_id = '1'") == [["true", "12.00"]])
        }
    }

    /// A first load into an audit database where no other source has records loads without the dedup index and
    /// leaves it absent (one source needs none); the first load of a second source builds it before writing (and
    /// flags the duplicate through it); a missing index is built by the next run of a source that has company.
    @Test func theDedupIndexExistsOnlyOnceASecondSourceArrives() async throws {
        try await PostgresFixture.with { f in
            let createB = PostgresFixture.createSales.replacingOccurrences(of: "sale_transactions", with: "sales_b")
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, createB, """
                INSERT INTO sale_transactions SELECT g, 'P1', 'op' || g, 10.00, timestamp '2024-03-01 10:00' + g * interval '1 minute', 'venda', NULL,
                    timestamp '2024-03-01 10:00' + g * interval '1 minute' FROM generate_series(1, 30) g
                """, """
                INSERT INTO sales_b SELECT 900 + g, 'P1', 'op' || g, 10.00, timestamp '2024-03-01 10:01' + g * interval '1 minute', 'venda', NULL,
                    timestamp '2024-03-01 10:00' + g * interval '1 minute' FROM generate_series(1, 12) g
                """])
            let auditDB = f.auditDB
            @Sendable func indexed() async throws -> Bool {
                try await PostgresFixture.rows(auditDB, "SELECT count(*) FROM pg_indexes WHERE indexname = 'tb_sales_dedup'") == [["1"]]
            }
            let seen = Mutex<[Bool]>([])
            let watch: SyncEngine.AfterCommit = { _ in
                let present = try await indexed()
                seen.withLock { $0.append(present) }
            }
            let a = try await f.sync(PostgresFixture.options(batchSize: 10), source: f.source("a", stream: PostgresFixture.stream), afterCommit: watch)
            #expect(a.status == .success && a.recordsInserted == 30, "\(a.errors)")
            #expect(seen.withLock { $0 } == [false, false, false])
            #expect(try await !indexed())
            let rerun = try await f.sync(PostgresFixture.options(), source: f.source("a", stream: PostgresFixture.stream))
            #expect(rerun.status == .success && rerun.recordsInserted == 0)
            #expect(try await !indexed())

            seen.withLock { $0 = [] }
            var streamB = PostgresFixture.stream
            streamB.from = .table("sales_b")
            let b = try await f.sync(PostgresFixture.options(batchSize: 5), source: f.source("b", stream: streamB), afterCommit: watch)
            #expect(b.recordsInserted == 12 && b.recordsSkipped == 12, "\(b.errors)")
            #expect(seen.withLock { $0 } == [true, true, true])

            try await PostgresFixture.execute(f.auditDB, ["DROP INDEX tb_sales_dedup"])
            let again = try await f.sync(PostgresFixture.options(), source: f.source("a", stream: PostgresFixture.stream))
            #expect(again.status == .success && again.recordsInserted == 0)
            #expect(try await indexed())
        }
    }

    /// A batch probes for originals only at the pdvs another source has records at (`tb_sales_pdvs`): a second
    /// source whose pdvs are its own loads without the dedup index, even with records that match another source's in
    /// all but the pdv; a third source's batches check their pdvs until one meets another source's pdv, and the index
    /// is built before that batch, which flags its duplicates through it.
    @Test func aSourceWhosePdvsAreItsOwnNeitherProbesNorBuildsTheDedupIndex() async throws {
        try await PostgresFixture.with { f in
            let create = { (table: String) in PostgresFixture.createSales.replacingOccurrences(of: "sale_transactions", with: table) }
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, create("sales_c"), create("sales_d"), """
                INSERT INTO sale_transactions SELECT g, 'P1', 'op' || g, 10.00, timestamp '2024-03-01 10:00' + g * interval '1 minute', 'venda', NULL,
                    timestamp '2024-03-01 10:00' + g * interval '1 minute' FROM generate_series(1, 30) g
                """, """
                INSERT INTO sales_c SELECT 500 + g, 'P2', 'op' || g, 10.00, timestamp '2024-03-01 10:00' + g * interval '1 minute', 'venda', NULL,
                    timestamp '2024-03-01 10:00' + g * interval '1 minute' FROM generate_series(1, 20) g
                """, """
                INSERT INTO sales_d SELECT 700 + g, CASE WHEN g <= 10 THEN 'P3' ELSE 'P1' END, CASE WHEN g <= 10 THEN 'x' || g ELSE 'op' || (g - 10) END,
                    10.00, timestamp '2024-03-01 10:00:30' + (g - 10) * interval '1 minute', 'venda', NULL,
                    timestamp '2024-03-02 10:00' + g * interval '1 minute' FROM generate_series(1, 15) g
                """])
            let auditDB = f.auditDB
            let seen = Mutex<[Bool]>([])
            let watch: SyncEngine.AfterCommit = { _ in
                let present = try await PostgresFixture.rows(auditDB, "SELECT count(*) FROM pg_indexes WHERE indexname = 'tb_sales_dedup'") == [["1"]]
                seen.withLock { $0.append(present) }
            }
            func stream(_ table: String) -> StreamConfig {
                var stream = PostgresFixture.stream
                stream.from = .table(table)
                return stream
            }
            let a = try await f.sync(PostgresFixture.options(batchSize: 10), source: f.source("a", stream: PostgresFixture.stream))
            #expect(a.status == .success && a.recordsInserted == 30, "\(a.errors)")
            let c = try await f.sync(PostgresFixture.options(batchSize: 10), source: f.source("c", stream: stream("sales_c")), afterCommit: watch)
            #expect(c.status == .success && c.recordsInserted == 20 && c.recordsSkipped == 0, "\(c.errors)")
            #expect(seen.withLock { $0 } == [false, false])
            #expect(try await PostgresFixture.rows(auditDB, "SELECT pdv, string_agg(source_id, ',' ORDER BY source_id) FROM tb_sales_pdvs GROUP BY pdv ORDER BY pdv")
                        == [["P1", "a"], ["P2", "c"]])

            seen.withLock { $0 = [] }
            let d = try await f.sync(PostgresFixture.options(batchSize: 5), source: f.source("d", stream: stream("sales_d")), afterCommit: watch)
            #expect(d.status == .success && d.recordsInserted == 15 && d.recordsSkipped == 5, "\(d.errors)")
            #expect(seen.withLock { $0 } == [false, false, true])
            #expect(try await PostgresFixture.rows(auditDB, "SELECT external_id, duplicate_of FROM tb_sales WHERE duplicate_of IS NOT NULL ORDER BY external_id")
                        == (11...15).map { ["\(700 + $0)", "a|\($0 - 10)"] })
        }
    }

    /// Distinct source keys stay distinct records: `K1`, `K1 ` and `K1<TAB>` of a `text` key were all trimmed to `K1`
    /// (two of the rows vanished uncounted, a later update overwrote the sale with the cancel), and the composite keys
    /// (`x|y`, `z`) and (`x`, `y|z`) were both `x|y|z`. A `character(n)` key loses its blank padding, as before.
    @Test func distinctKeysAreNeverMergedAndCharPaddingIsCut() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [
                """
                CREATE TABLE k1 (id text PRIMARY KEY, pdv text, operator text, amount numeric(12,2), "timestamp" timestamp, type text,
                    reference text, updated_at timestamp)
                """,
                """
                INSERT INTO k1 VALUES ('K1', 'P1', 'op', 10, '2024-05-01 10:00', 'venda', NULL, '2024-05-01 10:00'),
                    ('K1 ', 'P1', 'op', -10, '2024-05-01 10:00', 'cancelamento', NULL, '2024-05-01 10:01'),
                    (E'K1\t', 'P1', 'op', 20, '2024-05-01 10:00', 'venda', NULL, '2024-05-01 10:02'),
                    (' K1', 'P1', 'op', 30, '2024-05-01 10:00', 'venda', NULL, '2024-05-01 10:03')
                """,
                """
                CREATE TABLE k2 (a text, b text, pdv text, operator text, amount numeric(12,2), "timestamp" timestamp, type text,
                    reference text, updated_at timestamp, PRIMARY KEY (a, b))
                """,
                """
                INSERT INTO k2 VALUES ('x|y', 'z', 'P1', 'op', 10, '2024-05-01 10:00', 'venda', NULL, '2024-05-01 10:00'),
                    ('x', 'y|z', 'P1', 'op', -10, '2024-05-01 10:00', 'cancelamento', NULL, '2024-05-01 10:01')
                """,
                """
                CREATE TABLE k3 (id character(8) PRIMARY KEY, pdv character(10), operator text, amount numeric(12,2), "timestamp" timestamp,
                    type text, reference text, updated_at timestamp)
                """,
                "INSERT INTO k3 VALUES ('C1', 'P1', 'op', 5, '2024-05-01 10:00', 'venda', NULL, '2024-05-01 10:00')",
            ])
            var stream = PostgresFixture.stream
            stream.from = .table("k1")
            let one = try await f.sync(PostgresFixture.options(batchSize: 2), source: f.source("one", stream: stream))
            #expect(one.recordsInserted == 4 && one.recordsFetched == 4, "\(one.errors)")
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT external_id, amount::text FROM tb_sales WHERE source_id = 'one' ORDER BY amount")
                == [["K1 ", "-10.00"], ["K1", "10.00"], ["K1\t", "20.00"], [" K1", "30.00"]])
            stream.from = .table("k2")
            stream.primaryKey = ["a", "b"]
            stream.fields[.externalId] = nil
            let two = try await f.sync(PostgresFixture.options(), source: f.source("two", stream: stream))
            #expect(two.recordsInserted == 2, "\(two.errors)")
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT external_id FROM tb_sales WHERE source_id = 'two' ORDER BY amount") == [[#"x|y\|z"#], [#"x\|y|z"#]])
            stream.from = .table("k3")
            stream.primaryKey = ["id"]
            let three = try await f.sync(PostgresFixture.options(), source: f.source("three", stream: stream))
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT external_id, pdv FROM tb_sales WHERE source_id = 'three'") == [["C1", "P1"]], "\(three.errors)")
        }
    }

    @Test func largeNumericAndBigintReferenceSurviveDigitForDigit() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions VALUES
                (9007199254740993, 'P1', 'op1', 12345678901234567.89, '2024-03-01 10:00:00.123456', 'venda', 9007199254740993, '2024-03-01 10:00:00.123456'),
                (2, 'P1', 'op1', -0.05, '2024-03-01 10:01:00', 'cancelamento', NULL, '2024-03-01 10:01:00')
                """])
            let result = try await f.sync(PostgresFixture.options(), source: f.source(stream: PostgresFixture.stream))
            #expect(result.recordsInserted == 2, "\(result.errors)")
            let rows = try await PostgresFixture.rows(f.auditDB, """
                SELECT external_id, amount::text, reference, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), type
                FROM tb_sales ORDER BY external_id
                """)
            #expect(rows == [["2", "-0.05", nil, "2024-03-01 13:01:00.000000", "cancel"],
                             ["9007199254740993", "12345678901234567.89", "9007199254740993", "2024-03-01 13:00:00.123456", "sale"]])
        }
    }

    /// The source connection is killed by `pg_terminate_backend` between two batches: the next read fails
    /// with 57P01, is retried on a new connection, and the run completes with every row exactly once.
    @Test func aSourceConnectionTerminatedMidReadIsRetriedAndNothingIsLostOrDoubled() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions SELECT g, 'P' || (g % 7), 'op' || (g % 11), (g % 500) + 0.99, timestamp '2024-03-01' + g * interval '1 second',
                    'venda', g, timestamp '2024-03-01' + g * interval '1 second' FROM generate_series(1, 2500) g
                """])
            let sourceDB = f.sourceDB
            let result = try await f.sync(PostgresFixture.options(batchSize: 100), source: f.source(stream: PostgresFixture.stream), afterCommit: { batch in
                if batch == 5 || batch == 12 {
                    try await PostgresFixture.execute("postgres", ["""
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(sourceDB)' AND application_name = 'erp-sync'
                        """])
                }
            })
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsInserted == 2500)
            let counts = try await PostgresFixture.rows(f.auditDB, "SELECT count(*), count(DISTINCT external_id), sum(amount)::text FROM tb_sales")
            let expected = try await PostgresFixture.rows(f.sourceDB, "SELECT count(*), count(DISTINCT id), sum(amount)::text FROM sale_transactions")
            #expect(counts == expected)
        }
    }

    /// Rows updated at the source during a first load are read again by a later page (one committed, one usually
    /// already read ahead): the batch that assumed new keys meets them (`KEY_CONFLICT`), is committed again with
    /// the probe of stored keys, and each row is stored once, with its newest values, counted once as inserted.
    @Test func rowsReadAgainDuringAFirstLoadAreStoredOnce() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions SELECT g, 'P1', 'op1', g, timestamp '2024-03-01 10:00:00' + g * interval '1 second', 'venda', g,
                    timestamp '2024-03-01 10:00:00' + g * interval '1 second' FROM generate_series(1, 400) g
                """])
            // After batch 1 (rows 1-100) commits, rows 50 and 150 move into page 4. Pages 2 and 3 were read before
            // that (page 3 read ahead while batch 2's transaction began behind batch 1), so row 150 is usually read with
            // its old values first (then read twice, like row 50).
            let afterCommit: SyncEngine.AfterCommit = { batch in
                guard batch == 1 else { return }
                try await PostgresFixture.execute(f.sourceDB, [
                    "UPDATE sale_transactions SET amount = 999.99, updated_at = timestamp '2024-03-01 10:05:50.5' WHERE id IN (50, 150)"])
            }
            let result = try await f.sync(PostgresFixture.options(batchSize: 100), source: f.source(stream: PostgresFixture.stream), afterCommit: afterCommit)
            #expect(result.status == .success, "\(result.errors)")
            // Row 50 is always read twice; row 150 twice unless page 2 was read after the update (it is read ahead).
            #expect(result.recordsInserted == 400 && result.recordsUpdated >= 1 && result.recordsUpdated == result.recordsFetched - 400, "\(result)")
            let rows = try await PostgresFixture.rows(f.auditDB, """
                SELECT count(*), count(DISTINCT external_id), sum(amount), string_agg(amount::text, ',' ORDER BY external_id::int) FILTER (WHERE external_id IN ('50', '150'))
                FROM tb_sales
                """)
            #expect(rows == [["400", "400", "81999.98", "999.99,999.99"]])
            let audit = try await PostgresFixture.rows(f.auditDB, "SELECT records_inserted, records_updated FROM tb_erp_sync_audit WHERE sync_id = '\(result.syncId)'")
            #expect(audit == [["400", "\(result.recordsUpdated)"]])
        }
    }

    /// A transaction inserts a row, waits while a sync passes its timestamp, then commits: the next run's
    /// lookback re-read picks it up.
    @Test func aRowCommittedAfterASyncPassedItsTimestampIsPickedUpByTheNextRun() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales,
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', 1, '2024-03-01 10:00:00')"])
            let late = try await LateTransaction.begin(f.sourceDB,
                "INSERT INTO sale_transactions VALUES (2, 'P1', 'op1', 20.00, '2024-03-01 10:02:00', 'venda', 2, '2024-03-01 10:02:00')")
            try await PostgresFixture.execute(f.sourceDB, ["INSERT INTO sale_transactions VALUES (3, 'P1', 'op1', 30.00, '2024-03-01 10:03:00', 'venda', 3, '2024-03-01 10:03:00')"])
            let options = PostgresFixture.options(lookback: .seconds(300))
            let first = try await f.sync(options, source: f.source(stream: PostgresFixture.stream))
            #expect(first.recordsInserted == 2)  // 1 and 3; 2 is not committed yet
            try await late.commit()
            let second = try await f.sync(options, source: f.source(stream: PostgresFixture.stream))
            #expect(second.recordsInserted == 1)
            let ids = try await PostgresFixture.rows(f.auditDB, "SELECT string_agg(external_id, ',' ORDER BY external_id) FROM tb_sales")
            #expect(ids == [["1,2,3"]])
        }
    }

    /// The lookback window is re-read only when its fingerprint (count and checksum, read at the source) changed: a
    /// quiet rerun reads no row, also after a run that read new rows forward (the window it saved sums the checksums
    /// its pages carried); a row committed late inside the window, after a run that fingerprinted the window while its
    /// transaction was open, and a row changed in place (its cursor unchanged) are found by the next run.
    @Test func theLookbackWindowIsReReadOnlyWhenItChanged() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales,
                "INSERT INTO sale_transactions VALUES (1, 'P1', 'op1', 10.00, '2024-03-01 10:00:00', 'venda', NULL, '2024-03-01 10:00:00')",
                "INSERT INTO sale_transactions VALUES (3, 'P1', 'op1', 30.00, '2024-03-01 10:03:00', 'venda', 3, '2024-03-01 10:03:00')"])
            let options = PostgresFixture.options(lookback: .seconds(300))
            let source = f.source(stream: PostgresFixture.stream)
            #expect(try await f.sync(options, source: source).recordsInserted == 2)
            #expect(try await f.sync(options, source: source).recordsFetched == 2, "no saved window yet: the whole window")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun")
            let late = try await LateTransaction.begin(f.sourceDB,
                "INSERT INTO sale_transactions VALUES (2, 'P1', 'op1', 20.00, '2024-03-01 10:02:00', 'venda', 2, '2024-03-01 10:02:00')")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "row 2 is not committed yet")
            try await late.commit()
            let found = try await f.sync(options, source: source)
            #expect(found.recordsInserted == 1 && found.recordsFetched == 3)
            #expect(try await f.sync(options, source: source).recordsFetched == 0)
            try await PostgresFixture.execute(f.sourceDB, ["INSERT INTO sale_transactions VALUES (4, 'P1', 'op1', 40.00, '2024-03-01 10:04:00', 'venda', 4, '2024-03-01 10:04:00')"])
            #expect(try await f.sync(options, source: source).recordsFetched == 1, "the new row, read forward")
            #expect(try await f.sync(options, source: source).recordsFetched == 0, "a quiet rerun after a forward read")
            try await PostgresFixture.execute(f.sourceDB, ["UPDATE sale_transactions SET reference = 1 WHERE id = 1"])  // NULL -> 1, cursor unchanged
            #expect(try await f.sync(options, source: source).recordsUpdated == 1)
            let rows = try await PostgresFixture.rows(f.auditDB, "SELECT string_agg(external_id || ':' || coalesce(reference, '-'), ',' ORDER BY external_id) FROM tb_sales")
            #expect(rows == [["1:1,2:2,3:3,4:4"]])
        }
    }

    /// Two runs of one source through two separate connection pools (as two processes would): the second
    /// is refused with LOCKED while the first holds the advisory lock.
    @Test func twoConcurrentRunsOfOneSourceOneRunsTheOtherIsLocked() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions SELECT g, 'P1', 'op1', 1.00, timestamp '2024-03-01' + g * interval '1 second', 'venda', g,
                    timestamp '2024-03-01' + g * interval '1 second' FROM generate_series(1, 300) g
                """])
            let source = f.source(stream: PostgresFixture.stream)
            let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
            let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
            let first = Task {
                try await f.sync(PostgresFixture.options(batchSize: 100), source: source, afterCommit: { batch in
                    guard batch == 1 else { return }
                    enteredContinuation.yield()
                    for await _ in release { break }
                })
            }
            for await _ in entered { break }
            let second = try await f.sync(PostgresFixture.options(batchSize: 100), source: source)
            #expect(second.status == .failed)
            #expect(second.errors.first?.code == .locked)
            releaseContinuation.yield()
            let firstResult = try await first.value
            #expect(firstResult.status == .success && firstResult.recordsInserted == 300)
            #expect(try await f.sync(PostgresFixture.options(), source: source).status == .success)
        }
    }

    @Test func clearErrorsForBadPasswordMissingDatabaseTableAndColumn() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales])
            var bad = f.source(stream: PostgresFixture.stream)
            bad.password = Secret("wrong-secret")
            let auth = await Self.failure(of: bad)
            #expect(auth?.code == .authFailed)
            #expect(auth?.message.contains("wrong-secret") == false)
            bad.password = nil
            let noPassword = await Self.failure(of: bad)
            #expect(noPassword?.code == .authFailed, "\(String(describing: noPassword))")
            var missingDB = f.source(stream: PostgresFixture.stream)
            missingDB.database = "no_such_db"
            let database = await Self.failure(of: missingDB)
            #expect(database?.code == .databaseNotFound)
            #expect(database?.message.contains("no_such_db") == true)
            var stream = PostgresFixture.stream
            stream.from = .table("vendas")
            let table = await Self.failure(of: f.source(stream: stream))
            #expect(table?.code == .tableNotFound)
            #expect(table?.message.contains("vendas") == true)
            stream = PostgresFixture.stream
            stream.fields[.pdv] = .column("loja")
            let column = await Self.failure(of: f.source(stream: stream))
            #expect(column?.code == .columnNotFound)
            #expect(column?.message.contains("loja") == true)
        }
    }

    /// The failure `test-connection` reports for a source, `nil` when it succeeds.
    static func failure(of source: SourceConfig) async -> SyncFailure? {
        do {
            _ = try await SyncService.testConnection(source, makeSource: makeSource)
            return nil
        } catch {
            return error as? SyncFailure
        }
    }

    @Sendable static func makeSource(_ config: SourceConfig) async throws -> any Source {
        try PostgresSource(settings: PostgresSettings(source: config))
    }
}

/// A transaction open on its own connection, committed later (a late commit).
struct LateTransaction {
    let connection: PostgresConnection

    /// Connects to `database`, begins a transaction and runs `statement` in it.
    static func begin(_ database: String, _ statement: String) async throws -> LateTransaction {
        let settings = try PostgresFixture.settings(database)
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: settings.host, port: settings.port, username: settings.username, password: settings.password,
                                 database: settings.database, tls: .disable), id: 9, logger: PostgresFixture.logger)
        try await connection.query("BEGIN", logger: PostgresFixture.logger)
        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: PostgresFixture.logger)
        return LateTransaction(connection: connection)
    }

    /// Commits and closes the connection.
    func commit() async throws {
        try await connection.query("COMMIT", logger: PostgresFixture.logger)
        try await connection.close()
    }
}
