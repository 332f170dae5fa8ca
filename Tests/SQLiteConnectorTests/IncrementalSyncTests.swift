import SQLiteNIO
import SyncCore
import Testing

/// End-to-end runs on SQLite: an ERP file, the engine, the SQLite destination.
@Suite struct IncrementalSyncTests {
    @Test func rowsWithTheCheckpointCursorValueInsertedAfterASyncArePickedUp() async throws {
        try await Fixture.with { f in
            let t = "2024-03-01 10:00:00"
            try await f.upsert([(1, "P1", "op1", "10.00", t, "venda", t), (2, "P1", "op1", "11.00", t, "venda", t), (3, "P2", "op2", "12.00", t, "venda", t)])
            let first = await f.sync()
            #expect(first.status == .success)
            #expect(first.recordsInserted == 3)
            // New rows carry exactly the checkpoint's cursor value; no lookback: only the keyset tie-breaker finds them.
            try await f.upsert([(4, "P1", "op1", "13.00", t, "venda", t), (5, "P3", "op3", "14.00", t, "venda", t)])
            let second = await f.sync()
            #expect(second.recordsFetched == 2)
            #expect(second.recordsInserted == 2)
            let sales = try await f.sales()
            #expect(sales.keys.sorted() == ["1", "2", "3", "4", "5"])
        }
    }

    @Test func tenRowsSharingATimestampStoppedAfterTheFirstBatchLoadExactlyOnce() async throws {
        try await Fixture.with { f in
            let t = "2024-03-01 10:00:00"
            try await f.upsert((1...10).map { ($0, "P1", "op\($0)", "\($0).50", t, "venda", t) })
            var options = Fixture.options(batchSize: 4)
            options.lookback = .seconds(0)
            let interrupted = await f.sync(options, afterCommit: { batch in if batch == 1 { throw SimulatedCrash() } })
            #expect(interrupted.status == .partial)
            #expect(interrupted.recordsInserted == 4)
            #expect(interrupted.cursorTo == "\(t) #4")  // the checkpoint the stopped run committed
            #expect(try await f.sales().count == 4)
            let rerun = await f.sync(options)
            #expect(rerun.cursorFrom == interrupted.cursorTo)
            #expect(rerun.status == .success)
            #expect(rerun.recordsInserted == 6)
            #expect(rerun.recordsUnchanged == 0)
            let sales = try await f.sales()
            #expect(sales.count == 10)
            #expect(Set(sales.keys) == Set((1...10).map(String.init)))
        }
    }

    @Test func aRowCommittedLateInsideTheLookbackWindowIsPickedUp() async throws {
        try await Fixture.with { f in
            try await f.upsert([(1, "P1", "op1", "10.00", "2024-03-01 10:00:00", "venda", "2024-03-01 10:00:00"),
                                (2, "P1", "op1", "11.00", "2024-03-01 10:10:00", "venda", "2024-03-01 10:10:00")])
            let options = Fixture.options(lookback: .seconds(300))
            #expect(await f.sync(options).recordsInserted == 2)
            // Committed after the sync, but stamped 3 minutes before the checkpoint (a long ERP transaction).
            try await f.upsert([(3, "P2", "op2", "12.00", "2024-03-01 10:07:00", "venda", "2024-03-01 10:07:00")])
            let second = await f.sync(options)
            #expect(second.recordsInserted == 1)
            #expect(second.recordsUnchanged == 1)  // row 2 re-read inside the window, not doubled
            #expect(try await f.sales().keys.sorted() == ["1", "2", "3"])
            // Without lookback, the same late row would be missed: the test can fail.
            try await f.upsert([(4, "P2", "op2", "13.00", "2024-03-01 10:08:00", "venda", "2024-03-01 10:08:00")])
            #expect(await f.sync(Fixture.options(lookback: .seconds(0))).recordsInserted == 0)
            #expect(await f.sync(options).recordsInserted == 1)
        }
    }

    @Test func aSaleCancelledLaterIsUpdatedNotDuplicated() async throws {
        try await Fixture.with { f in
            try await f.upsert([(1, "P1", "op1", "25.90", "2024-03-01 10:00:00", "venda", "2024-03-01 10:00:00"),
                                (2, "P1", "op1", "5.00", "2024-03-01 10:05:00", "venda", "2024-03-01 10:05:00")])
            #expect(await f.sync().recordsInserted == 2)
            try await f.execute("UPDATE sale_transactions SET type = 'cancelamento', updated_at = '2024-03-01 18:30:00' WHERE id = 1")
            let second = await f.sync()
            #expect(second.recordsUpdated == 1)
            #expect(second.recordsInserted == 0)
            let sales = try await f.sales()
            #expect(sales.count == 2)
            #expect(sales["1"]?["type"] == "cancel")
            #expect(sales["1"]?["type_raw"] == "cancelamento")
            #expect(sales["1"]?["occurred_at"] == "2024-03-01T13:00:00.000000Z")  // 10:00 in São Paulo (UTC-3)
            #expect(sales["1"]?["source_updated_at"] == "2024-03-01T21:30:00.000000Z")
        }
    }

    @Test func syncingTwiceWithoutSourceChangesChangesNothing() async throws {
        try await Fixture.with { f in
            try await f.upsert((1...250).map { ($0, "P\($0 % 7)", "op\($0 % 13)", "\($0).\($0 % 100)", "2024-03-01 10:\($0 % 60 < 10 ? "0" : "")\($0 % 60):00", "venda", "2024-03-02 08:00:00") })
            let options = Fixture.options(lookback: .seconds(3600))
            let first = await f.sync(options)
            #expect(first.recordsInserted == 250)
            let before = try await f.sales()
            let second = await f.sync(options)
            #expect(second.status == .success)
            #expect(second.recordsInserted == 0)
            #expect(second.recordsUpdated == 0)
            #expect(second.recordsUnchanged == 250)
            let full = await f.sync(options, full: true)
            #expect(full.recordsInserted == 0 && full.recordsUpdated == 0 && full.recordsDeleted == 0)
            let after = try await f.sales()
            #expect(after.count == before.count)
            for (id, row) in before {
                var expected = row
                var actual = after[id] ?? [:]
                // A full pass stamps the rows it saw; that bookkeeping column is the only one allowed to move.
                expected["last_seen_pass"] = nil
                actual["last_seen_pass"] = nil
                #expect(actual == expected)
            }
        }
    }

    @Test func zeroDatesAndNullTimestampsAreQuarantinedWhileValidRowsLoad() async throws {
        try await Fixture.with { f in
            let u = "2024-03-01 12:00:00"
            try await f.upsert([(1, "P1", "op1", "10.00", "2024-03-01 10:00:00", "venda", u),
                                (2, "P1", "op1", "11.00", "0000-00-00 00:00:00", "venda", u),
                                (3, "P1", "op1", "12.00", "0009-12-04 00:00:00", "venda", u),
                                (4, "P1", "op1", "13.00", "2024-03-01 11:00:00", "venda", "0000-00-00 00:00:00"),
                                (5, "P1", "op1", "14.00", "2024-00-10 08:00:00", "venda", u)])
            try await f.execute("INSERT INTO sale_transactions (id, pdv, operator, amount, timestamp, type, updated_at) VALUES (6, 'P1', 'op1', '15.00', NULL, 'venda', ?)", [.text(u)])
            try await f.execute("INSERT INTO sale_transactions (id, pdv, operator, amount, timestamp, type, updated_at) VALUES (7, 'P1', 'op1', '16.00', '2024-03-01 10:30:00', 'venda', NULL)")
            let result = await f.sync()
            #expect(result.status == .success)
            #expect(result.recordsFetched == 7)
            #expect(result.recordsInserted == 2)
            #expect(result.recordsRejected == 5)
            let sales = try await f.sales()
            #expect(sales.keys.sorted() == ["1", "3"])
            #expect(sales["3"]?["occurred_at"]?.hasPrefix("0009-12-04T") == true)
            let errors = try await f.auditRows("SELECT external_id, reason_code, raw_json, sync_id FROM tb_sync_errors WHERE kind = 'record' ORDER BY external_id")
            #expect(errors.map { $0["external_id"]! } == ["2", "4", "5", "6", "7"])
            #expect(errors.map { $0["reason_code"]! } == ["ZERO_DATE", "ZERO_DATE", "ZERO_DATE", "MISSING_FIELD", "NULL_CURSOR"])
            #expect(errors.allSatisfy { $0["sync_id"] == result.syncId })
            #expect(errors[0]["raw_json"]?.contains("0000-00-00 00:00:00") == true)
            // The cursor moved past the bad rows, and a rerun does not multiply their quarantine entries.
            let rerun = await f.sync()
            #expect(rerun.recordsInserted == 0)
            #expect(try await f.auditRows("SELECT count(*) AS n FROM tb_sync_errors WHERE kind = 'record'").first?["n"] == "5")
        }
    }

    @Test func aFullSyncMarksRowsDeletedAtTheSource() async throws {
        try await Fixture.with { f in
            let u = "2024-03-01 12:00:00"
            try await f.upsert([(1, "P1", "op1", "10.00", u, "venda", u), (2, "P1", "op1", "11.00", u, "venda", u), (3, "P1", "op1", "12.00", u, "venda", u)])
            #expect(await f.sync().recordsInserted == 3)
            try await f.execute("DELETE FROM sale_transactions WHERE id = 2")
            try await f.execute("UPDATE sale_transactions SET status = 'X', updated_at = '2024-03-01 13:00:00' WHERE id = 3")
            let incremental = await f.sync()
            #expect(incremental.recordsUpdated == 1)  // the soft delete moves the cursor
            #expect(incremental.recordsDeleted == 0)  // a physical delete is only seen by a full pass
            let full = await f.sync(full: true)
            #expect(full.syncType == .full)
            #expect(full.recordsDeleted == 1)
            let sales = try await f.sales()
            #expect(sales.count == 3)  // never physically removed
            #expect(sales["2"]?["deleted_reason"] == "vanished")
            #expect(sales["2"]?["deleted_at_source"] != "NULL")
            #expect(sales["3"]?["deleted_reason"] == "soft")
            #expect(sales["1"]?["deleted_at_source"] == "NULL")
            #expect(await f.sync(full: true).recordsDeleted == 0)
        }
    }

    /// A full pass over a stream that holds no row (a table emptied by mistake, a view or query matching nothing) marks
    /// nothing deleted and says so: it marked every stored record of the source `vanished`, reporting success.
    @Test func aFullSyncThatReadsNoRowMarksNothingDeleted() async throws {
        try await Fixture.with { f in
            let u = "2024-03-01 12:00:00"
            try await f.upsert([(1, "P1", "op1", "10.00", u, "venda", u), (2, "P1", "op1", "11.00", u, "venda", u)])
            #expect(await f.sync().recordsInserted == 2)
            try await f.execute("DELETE FROM sale_transactions")
            let empty = await f.sync(full: true)
            #expect(empty.status == .success && empty.recordsDeleted == 0 && empty.errors.map(\.code) == [.emptyPass], "\(empty.errors)")
            #expect(try await f.sales().values.allSatisfy { $0["deleted_at_source"] == "NULL" })
            // One row back: a pass that reads it marks the other deleted.
            try await f.upsert([(1, "P1", "op1", "10.00", u, "venda", u)])
            let one = await f.sync(full: true)
            #expect(one.recordsDeleted == 1 && one.errors.isEmpty, "\(one.errors)")
        }
    }
}
