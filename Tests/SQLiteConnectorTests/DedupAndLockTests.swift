import Foundation
import Synchronization
import SQLiteConnector
import SQLiteNIO
import SyncCore
import Testing

@Suite struct DedupAndLockTests {
    /// Two ERP instances hold the same sale 4 minutes apart (clock skew): the second load flags it.
    @Test(arguments: [DeduplicationOptions.Action.flag, .skip])
    func theSameSaleFromTwoSourcesIsDetected(action: DeduplicationOptions.Action) async throws {
        try await Fixture.with { f in
            let second = f.folder.appendingPathComponent("erp2.sqlite").path
            let other = try await Fixture.makeERP(at: second)
            try await f.upsert([(1, "P1", "op1", "49.90", "2024-03-01 10:00:00", "venda", "2024-03-01 10:00:00"),
                                (2, "P1", "op1", "49.90", "2024-03-01 10:20:00", "venda", "2024-03-01 10:20:00")])
            let insert = """
                INSERT INTO sale_transactions (id, pdv, operator, amount, timestamp, type, updated_at) VALUES
                (901, 'P1', 'op1', '49.90', '2024-03-01 10:04:00', 'venda', '2024-03-01 10:04:00'),
                (902, 'P1', 'op1', '49.90', '2024-03-01 10:26:00', 'venda', '2024-03-01 10:26:00')
                """
            let inserted = try? await other.query(insert)
            try await other.close()
            #expect(inserted != nil)
            var options = Fixture.options()
            options.deduplication.action = action
            let sources = [f.source(name: "a"), f.source(name: "b", path: second)]
            #expect(await f.sync(options, source: "a", sources: sources).recordsInserted == 2)
            let result = await f.sync(options, source: "b", sources: sources)
            #expect(result.recordsSkipped == 1)  // 901 is 4 min after 1; 902 is 6 min after 2
            let b = try await f.sales(source: "b")
            if action == .flag {
                #expect(result.recordsInserted == 2)
                #expect(b["901"]?["duplicate_of"] == "a|1")
                #expect(b["902"]?["duplicate_of"] == "NULL")
            } else {
                #expect(result.recordsInserted == 1)
                #expect(b["901"] == nil)
                let kept = try await f.auditRows("SELECT external_id, duplicate_of, action FROM tb_sync_duplicates")
                #expect(kept.first?["external_id"] == "901" && kept.first?["duplicate_of"] == "a|1" && kept.first?["action"] == "skip")
            }
            // A full re-read changes nothing and detects nothing new.
            let rerun = await f.sync(options, source: "b", full: true, sources: sources)
            #expect(rerun.recordsInserted == 0 && rerun.recordsSkipped == 0 && rerun.recordsUnchanged == 2)
        }
    }

    /// A record skipped as a duplicate lives in `tb_sync_duplicates`, not `tb_sales`. After the action changes to
    /// `flag`, the source's incremental runs still probe the stored keys: when that row is updated at the source, it is
    /// updated where it is kept, never inserted into `tb_sales` beside its skipped copy.
    @Test func aRecordSkippedUnderAnEarlierSettingIsUpdatedWhereItIsKept() async throws {
        try await Fixture.with { f in
            let second = f.folder.appendingPathComponent("erp2.sqlite").path
            let other = try await Fixture.makeERP(at: second)
            try await f.upsert([(1, "P1", "op1", "49.90", "2024-03-01 10:00:00", "venda", "2024-03-01 10:00:00")])
            _ = try await other.query("""
                INSERT INTO sale_transactions (id, pdv, operator, amount, timestamp, type, updated_at) VALUES
                (901, 'P1', 'op1', '49.90', '2024-03-01 10:04:00', 'venda', '2024-03-01 10:04:00'),
                (902, 'P2', 'op2', '10.00', '2024-03-01 10:05:00', 'venda', '2024-03-01 10:05:00')
                """)
            var options = Fixture.options()
            options.deduplication.action = .skip
            let sources = [f.source(name: "a"), f.source(name: "b", path: second)]
            #expect(await f.sync(options, source: "a", sources: sources).recordsInserted == 1)
            #expect(await f.sync(options, source: "b", sources: sources).recordsSkipped == 1)
            _ = try await other.query("UPDATE sale_transactions SET type = 'cancelamento', updated_at = '2024-03-01 11:00:00' WHERE id = 901")
            try await other.close()
            options.deduplication.action = .flag
            let result = await f.sync(options, source: "b", sources: sources)
            #expect(result.success && result.recordsInserted == 0 && result.recordsUpdated == 1, "\(result.errors)")
            #expect(try await f.sales(source: "b")["901"] == nil, "the skipped record is not inserted into tb_sales")
            let kept = try await f.auditRows("SELECT external_id, action FROM tb_sync_duplicates")
            #expect(kept.count == 1 && kept.first?["external_id"] == "901" && kept.first?["action"] == "skip")
        }
    }

    /// While one run holds a source's lock, another run of that source reports LOCKED and loads nothing.
    /// A first load into an audit file where no other source has records loads without the dedup index and leaves
    /// it absent (one source needs none); a dry run of a second source builds it before it probes (and writes no
    /// record), as the second source's first load does before writing.
    @Test func theDedupIndexExistsOnlyOnceASecondSourceArrives() async throws {
        try await Fixture.with { f in
            try await f.upsert((1...30).map { ($0, "P1", "op\($0)", "1.00", "2024-03-01 10:00:00", "venda", "2024-03-01 10:00:\(10 + $0)") })
            @Sendable func indexed() async throws -> Bool {
                try await !f.auditRows("SELECT name FROM sqlite_master WHERE name = 'tb_sales_dedup'").isEmpty
            }
            let seen = Mutex<[Bool]>([])
            let watch: SyncEngine.AfterCommit = { _ in
                let present = try await indexed()
                seen.withLock { $0.append(present) }
            }
            let sources = [f.source(name: "a"), f.source(name: "b")]
            let a = await f.sync(Fixture.options(batchSize: 10), source: "a", sources: sources, afterCommit: watch)
            #expect(a.status == .success && a.recordsInserted == 30, "\(a.errors)")
            #expect(seen.withLock { $0 } == [false, false, false])
            #expect(try await !indexed())
            let dry = await f.service(Fixture.options(batchSize: 10), sources: sources).sync(source: "b", overrides: SyncOverrides(isDryRun: true))
            #expect(dry.status == .success && dry.recordsInserted == 30, "\(dry.errors)")
            #expect(try await indexed())
            #expect(try await f.auditRows("SELECT 1 FROM tb_sales WHERE source_id = 'b'").isEmpty)
            seen.withLock { $0 = [] }
            let b = await f.sync(Fixture.options(batchSize: 10), source: "b", sources: sources, afterCommit: watch)
            #expect(b.status == .success && b.recordsInserted == 30, "\(b.errors)")
            #expect(seen.withLock { $0 } == [true, true, true])
        }
    }

    @Test func aSecondRunOfTheSameSourceIsRefusedWhileOneRuns() async throws {
        try await Fixture.with { f in
            let t = "2024-03-01 10:00:00"
            try await f.upsert((1...300).map { ($0, "P1", "op\($0)", "1.00", t, "venda", t) })
            let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
            let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
            let first = Task {
                await f.sync(afterCommit: { batch in
                    if batch == 1 {
                        enteredContinuation.yield()
                        for await _ in release { break }
                    }
                })
            }
            for await _ in entered { break }
            let second = await f.sync()
            #expect(second.status == .failed)
            #expect(second.errors.first?.code == .locked)
            #expect(second.recordsFetched == 0)
            releaseContinuation.yield()
            let firstResult = await first.value
            #expect(firstResult.status == .success)
            #expect(firstResult.recordsInserted == 300)
            #expect(await f.sync().status == .success)  // the lock is released at the end
        }
    }

    /// A run that died (its audit row still RUNNING, its lock row left behind by a dead process) is closed as
    /// FAILED with ABANDONED by the next run of the source, which takes over the lock.
    @Test func aRunThatDiedIsMarkedAbandonedByTheNextRun() async throws {
        try await Fixture.with { f in
            let t = "2024-03-01 10:00:00"
            try await f.upsert([(1, "P1", "op1", "1.00", t, "venda", t)])
            let request = SyncRequest(source: f.source(), syncType: .incremental, options: Fixture.options())
            try await f.destination.beginRun(SyncRun(request: request, syncId: "dead-run", startTime: .now))
            let audit = try await SQLiteConnection.open(storage: .file(path: f.auditPath))
            _ = try await audit.query("""
                INSERT INTO tb_sync_lock (source_id, sync_id, host, pid, acquired_at, heartbeat_at)
                VALUES ('erp', 'dead-run', ?, 999999999, '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z')
                """, [.text(ProcessInfo.processInfo.hostName)])
            try await audit.close()
            let result = await f.sync()
            #expect(result.status == .success)
            let rows = try await f.auditRows("SELECT status, error_details FROM tb_erp_sync_audit WHERE sync_id = 'dead-run'")
            #expect(rows.first?["status"] == "FAILED")
            #expect(rows.first?["error_details"]?.contains("ABANDONED") == true)
        }
    }

    /// A lock whose holder (on another host, so its process cannot be checked) has not renewed it for the lease
    /// period is taken over; one renewed within it is held.
    @Test func aLockNotRenewedForTheLeasePeriodIsTakenOver() async throws {
        try await Fixture.with { f in
            let destination = try await SQLiteDestination(path: f.auditPath, lease: LeaseOptions(periodSeconds: 30, instanceId: "here"))
            let audit = try await SQLiteConnection.open(storage: .file(path: f.auditPath))
            _ = try await audit.query("""
                INSERT INTO tb_sync_lock (source_id, sync_id, host, pid, instance_id, acquired_at, heartbeat_at) VALUES ('s', 'elsewhere', 'other-host', 1, 'there', ?, ?)
                """, [.text(Instant(seconds: Instant.now.seconds - 10).description), .text(Instant(seconds: Instant.now.seconds - 10).description)])
            let refusal = try await destination.acquireLock(source: "s", syncId: "mine", slot: nil)
            #expect(refusal?.holder.contains("instance there") == true, "\(String(describing: refusal))")
            _ = try await audit.query("UPDATE tb_sync_lock SET heartbeat_at = ? WHERE source_id = 's'", [.text(Instant(seconds: Instant.now.seconds - 31).description)])
            try await audit.close()
            #expect(try await destination.acquireLock(source: "s", syncId: "mine", slot: nil) == nil)
            #expect(try await destination.lockHolder(source: "s")?.contains("instance here") == true)
            await destination.close()
        }
    }
}
