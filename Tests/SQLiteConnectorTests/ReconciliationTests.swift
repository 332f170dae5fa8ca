import SQLiteConnector
import SQLiteNIO
import SyncCore
import SyncTesting
import Testing

/// Reconciliation on SQLite: the aggregate read and drill-down built from the stream's mapping, `tb_sales`, the
/// quarantine, and a tampered audit database.
@Suite struct ReconciliationTests {
    /// Rows of two pdvs in São Paulo (UTC−3): P1's 22:30 sale is 01:30 UTC on the next day but belongs to 1 March
    /// locally; row 5 breaks the sign rule and is quarantined.
    static let rows: [(Int, String, String, String, String, String, String)] = [
        (1, "P1", "op1", "10.00", "2024-03-01 09:15:00", "venda", "2024-03-01 09:15:00"),
        (2, "P1", "op1", "20.50", "2024-03-01 14:00:00", "venda", "2024-03-01 14:00:00"),
        (3, "P1", "op2", "7.25", "2024-03-01 22:30:00", "venda", "2024-03-01 22:30:00"),
        (4, "P2", "op3", "3.00", "2024-03-02 08:00:00", "venda", "2024-03-02 08:00:00"),
        (5, "P2", "op3", "-5.00", "2024-03-02 09:00:00", "venda", "2024-03-02 09:00:00"),
    ]

    func reconcile(_ f: Fixture) async throws -> ReconciliationReport {
        let source = f.source()
        let reader = try await SQLiteSource(path: f.erpPath)
        let report = try await Reconciler(source: source, validation: ValidationOptions(), pageSize: 2).reconcile(reader, against: f.destination)
        await reader.close()
        return report
    }

    @Test func aSyncedSourceMatchesPerPdvAndLocalDayWithTheQuarantineAccounted() async throws {
        try await Fixture.with { f in
            try await f.upsert(Self.rows)
            #expect(await f.sync().recordsRejected == 1)
            let report = try await reconcile(f)
            #expect(report.isMatch)
            #expect(report.buckets.map { "\($0.pdv) \($0.day) \($0.sourceRows)/\($0.auditRows)" } == ["P1 2024-03-01 3/3", "P2 2024-03-02 2/1"])
            let p2 = try #require(report.buckets.last)
            #expect(p2.quarantined == 1)
            #expect(p2.sourceAmount == "-2.00")
            #expect(p2.quarantinedAmount == "-5.00")
            #expect(report.buckets.first?.sourceAmount == "37.75")
            let stored = try await f.destination.reconciliation(source: "erp", id: nil)
            #expect(stored == report)
        }
    }

    @Test func tamperedRowsAreNamedInTheirBucketAndLateRowsAreNotYetSynced() async throws {
        try await Fixture.with { f in
            try await f.upsert(Self.rows)
            _ = await f.sync()
            _ = try await f.auditRows("DELETE FROM tb_sales WHERE external_id = '1'")
            _ = try await f.auditRows("UPDATE tb_sales SET amount = '21.50' WHERE external_id = '2'")
            _ = try await f.auditRows("""
                INSERT INTO tb_sales SELECT source_id, '99', pdv, operator, amount, currency, occurred_at, type, type_raw, reference,
                    source_updated_at, content_hash, duplicate_of, deleted_at_source, deleted_reason, sync_id, first_sync_id, last_seen_pass,
                    ingested_at, updated_at, quarantined_since, quarantine_reason FROM tb_sales WHERE external_id = '4'
                """)
            try await f.upsert([(6, "P1", "op1", "1.00", "2024-03-01 23:00:00", "venda", "2024-03-03 00:00:00")])
            let index = "SELECT name FROM sqlite_master WHERE name = 'tb_sales_dedup'"
            #expect(try await f.auditRows(index).isEmpty, "one source's first load leaves the dedup index out")
            let report = try await reconcile(f)
            #expect(try await !f.auditRows(index).isEmpty, "the drill-down builds the index it reads through")
            #expect(!report.isMatch)
            let p1 = try #require(report.buckets.first { $0.pdv == "P1" && $0.day == "2024-03-01" })
            #expect(p1.status == .mismatch)
            #expect(p1.missing == ["1"])
            #expect(p1.different == ["2"])
            #expect(p1.extra.isEmpty)
            #expect(p1.notYetSynced == 1)
            #expect(p1.notYetSyncedAmount == "1.00")
            let p2 = try #require(report.buckets.first { $0.pdv == "P2" })
            #expect(p2.extra == ["99"])
            #expect(p2.quarantinedIds == ["5"])
            #expect(report.mismatches.count == 2)
        }
    }

    @Test func theAggregateIsOneGroupedStatementInEachDialect() {
        let stream = Fixture.stream
        let checkpoint = Checkpoint(cursor: .text("2024-03-01 10:00:00"), key: [.integer(7)])
        let postgres = StreamQuery(stream: stream, dialect: .postgresql).aggregate(pendingAfter: checkpoint)
        #expect(postgres.sql.contains("date_trunc('hour', src.\"timestamp\")"))
        #expect(postgres.sql.contains("CASE WHEN (src.\"updated_at\", src.\"id\") > ($1, $2) THEN 1 ELSE 0 END"))
        #expect(postgres.binds == [checkpoint.cursor] + checkpoint.key)
        let mysql = StreamQuery(stream: stream, dialect: .mysql).aggregate(pendingAfter: nil)
        #expect(mysql.sql.contains("DATE_FORMAT(src.`timestamp`, '%Y-%m-%d %H:00:00')"))
        #expect(!mysql.sql.contains("CONVERT_TZ"))
        let sqlserver = StreamQuery(stream: stream, dialect: .sqlserver).cursorRange(.text("a"), through: .text("b"), after: nil,
                                                                                     pendingAfter: checkpoint, limit: 10)
        #expect(sqlserver.sql.hasPrefix("SELECT TOP (10) "))
        #expect(sqlserver.binds.count == 3 + 2)  // the expanded keyset of the checkpoint, then the range
    }

    @Test func memorySourceAnswersTheSameFigures() async throws {
        let memory = MemorySource(primaryKey: ["id"])
        for row in Self.rows {
            memory.upsert(["id": .integer(Int64(row.0)), "pdv": .text(row.1), "operator": .text(row.2), "amount": .decimal(row.3),
                           "timestamp": .text(row.4), "type": .text(row.5), "updated_at": .text(row.6), "status": .null])
        }
        var stream = Fixture.stream
        stream.deleted = .column("status")
        let groups = try await memory.reconciliationGroups(of: stream, pendingAfter: nil)
        #expect(groups.reduce(0) { $0 + $1.count } == 5)
        #expect(groups.allSatisfy { $0.isPending })
    }
}
