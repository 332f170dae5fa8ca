import Foundation
import Logging
import Synchronization
@testable import SyncCore
import SyncTesting
import Testing

/// Named scenarios of the engine on the in-memory source and destination.
@Suite struct EngineScenarioTests {
    static let stream = StreamConfig(
        from: .table("sales"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
        fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"),
                 .occurredAt: .column("occurred_at"), .type: .column("type")])

    /// An ERP, an audit database and a clock shared by both.
    struct World {
        let source = MemorySource(primaryKey: ["id"])
        let clock: TestClock
        let destination: MemoryDestination
        let config: SourceConfig

        init(zone: String = "America/Sao_Paulo", start: Instant = Instant(seconds: 1_780_000_000), overlapsBatches: Bool = false,
             stream: StreamConfig = EngineScenarioTests.stream) {
            clock = TestClock(start: start)
            destination = MemoryDestination(now: clock.now, overlapsBatches: overlapsBatches)
            config = SourceConfig(name: "erp", type: .sqlite, timezone: TimeZone(identifier: zone)!, stream: stream)
        }

        /// Adds (or replaces) row `id`; its `doc` column is `DOC-` and the id.
        func add(_ id: Int, at cursor: LocalDateTime, amount: String = "10.00") {
            source.upsert(["id": .integer(Int64(id)), "updated_at": .localDateTime(cursor), "pdv": .text("P1"), "operator": .text("op1"),
                           "amount": .decimal(amount), "occurred_at": .localDateTime(cursor), "type": .text("sale"), "doc": .text("DOC-\(id)")])
        }

        /// Adds rows `ids`, row n at `start` + n seconds.
        func add(_ ids: ClosedRange<Int>, secondsAfter start: LocalDateTime) {
            for id in ids { add(id, at: start.adding(seconds: Int64(id))) }
        }

        /// Adds rows 1…5 a second apart from `start` and runs two syncs: the first loads them, the second saves its
        /// lookback window.
        /// - Returns: the state saved.
        func syncFiveRowsSavingAWindow(from start: LocalDateTime) async -> SyncState? {
            add(1...5, secondsAfter: start)
            _ = await sync()
            _ = await sync()
            return destination.snapshot.states["erp"]
        }

        /// Adds rows 1…8 a second apart from `start`, makes the first keyset page read fail once, permanently, with
        /// `sqlState`, and runs a sync.
        func syncEightRowsFailingOneKeysetRead(from start: LocalDateTime, sqlState: String) async -> ErpSyncResult {
            add(1...8, secondsAfter: start)
            source.failReads(1, transient: false, sqlState: sqlState, when: MemorySource.orderedPages)
            return await sync()
        }

        /// The external ids of the ERP's rows with a cursor at or before the saved checkpoint's (rows a second apart).
        func idsUpToTheCheckpoint() -> Set<String> {
            guard case .localDateTime(let through)? = destination.snapshot.states["erp"]?.checkpoint?.cursor else { return [] }
            return Set(source.rows.compactMap { row -> String? in
                guard case .integer(let id)? = row["id"], case .localDateTime(let cursor)? = row["updated_at"] else { return nil }
                return cursor <= through ? "\(id)" : nil
            })
        }

        /// Counts the destination's calls of `step` from now on, injecting no fault; the returned function reads the count.
        func countCalls(of step: MemoryDestination.Step) -> @Sendable () -> Int {
            let calls = Calls()
            destination.injectFaults { called in
                if called == step { calls.count.withLock { $0 += 1 } }
                return nil
            }
            return { calls.count.withLock { $0 } }
        }

        private final class Calls: Sendable {
            let count = Mutex(0)
        }

        func sync(_ type: SyncType = .incremental, through other: (any Source)? = nil, afterCommit: SyncEngine.AfterCommit? = nil) async -> ErpSyncResult {
            var options = SyncOptions()
            options.batchSize = 3
            options.daysBack = 0
            options.retryDelayMs = 0
            var logger = Logger(label: "scenario")
            logger.logLevel = .critical
            let engine = SyncEngine(destination: destination, logger: logger, afterCommit: afterCommit, now: clock.now)
            return await engine.run(SyncRequest(source: config, syncType: type, options: options), openSource: { [source] in other ?? source })
        }
    }

    /// A first load assumes its rows are new and skips the probe of stored keys; a row updated at the source during
    /// the load is read again later in it: that batch's insert meets the stored key, the batch is planned again with
    /// the probe (the row counts as updated, never as a second copy), and the rest of the run probes.
    @Test(arguments: [false, true]) func aFirstLoadThatMeetsAStoredKeyPlansTheBatchAgainWithTheProbe(overlapping: Bool) async {
        let world = World(overlapsBatches: overlapping)
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        for id in 1...6 { world.add(id, at: start.adding(seconds: Int64(id))) }
        let probes = world.countCalls(of: .storedRecords)
        let result = await world.sync(afterCommit: { batch in
            if batch == 1 { world.add(2, at: start.adding(seconds: 60), amount: "12.00") }
        })
        #expect(result.status == .success)
        #expect(result.recordsFetched == 7)
        #expect(result.recordsInserted == 6)
        #expect(result.recordsUpdated == 1)
        #expect(world.destination.snapshot.sales.count == 6)
        #expect(world.destination.snapshot.sales["erp|2"]?.record.amount.description == "12.00")
        #expect(probes() == 1, "only the batch that met a stored key probes")
    }

    /// Overlapped batches commit in order: a batch whose commit fails for good (a value the database refuses) fails
    /// the batch begun behind it, so the checkpoint covers exactly the rows stored, whichever batch met the fault.
    @Test func aBatchThatFailsFailsTheBatchBegunBehindIt() async {
        let world = World(overlapsBatches: true)
        world.add(1...9, secondsAfter: LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0))
        let plan = FaultPlan(step: .writeSales, after: 0, fault: .permanent)
        world.destination.injectFaults(plan.fault(at:))
        let result = await world.sync()
        #expect(result.status != .success)
        let stored = Set(world.destination.snapshot.sales.values.map(\.record.externalId))
        #expect(stored == world.idsUpToTheCheckpoint(), "the checkpoint covers exactly the rows stored")
        #expect(stored.count < 9)
        world.destination.injectFaults { _ in nil }
        #expect(await world.sync().status == .success)
        #expect(world.destination.snapshot.sales.count == 9)
    }

    /// A run stopped after a batch (shutdown, `kill -9` between two batches) leaves the batch begun behind it
    /// uncommitted: the checkpoint is that batch's, and the next run loads the rest once.
    @Test func aRunStoppedAfterABatchDoesNotCommitTheBatchBegunBehindIt() async {
        struct Stop: Error {}
        let world = World(overlapsBatches: true)
        world.add(1...9, secondsAfter: LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0))
        let result = await world.sync(afterCommit: { batch in if batch == 1 { throw Stop() } })
        #expect(result.status != .success)
        #expect(Set(world.destination.snapshot.sales.keys) == ["erp|1", "erp|2", "erp|3"])
        #expect(world.idsUpToTheCheckpoint() == ["1", "2", "3"])
        let rest = await world.sync()
        #expect(rest.recordsInserted == 6)
        #expect(world.destination.snapshot.sales.count == 9)
    }

    /// The lookback window is re-read only when its fingerprint changed (``LookbackWindow``): a quiet rerun reads no
    /// row; a late commit inside the window, a row changed in place (its cursor unchanged) and a hard delete change the
    /// fingerprint, so the next run re-reads the window and finds the first two.
    @Test func aRunReReadsItsLookbackWindowOnlyWhenItsFingerprintChanged() async {
        let world = World()
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        for id in 1...5 { world.add(id, at: start.adding(seconds: Int64(id) * 10)) }
        #expect(await world.sync().recordsInserted == 5)
        #expect(world.destination.snapshot.states["erp"]?.lookback == nil, "a first load records no window")
        let second = await world.sync()
        #expect(second.recordsFetched == 5 && second.recordsUnchanged == 5, "without a saved window the whole window is re-read")
        let window = world.destination.snapshot.states["erp"]?.lookback
        #expect(window?.rows == 5 && window?.through == .localDateTime(start.adding(seconds: 50)))
        #expect(await world.sync().recordsFetched == 0, "a quiet rerun reads nothing")

        world.add(6, at: start.adding(seconds: 15))  // committed late, behind the checkpoint, inside the lookback
        let late = await world.sync()
        #expect(late.recordsInserted == 1 && late.recordsFetched == 6)
        #expect(await world.sync().recordsFetched == 0)

        world.add(3, at: start.adding(seconds: 30), amount: "11.00")  // changed in place, cursor unchanged
        let changed = await world.sync()
        #expect(changed.recordsUpdated == 1)
        #expect(world.destination.snapshot.sales["erp|3"]?.record.amount.description == "11.00")

        world.add(7, at: start.adding(seconds: 60))  // a new row: read forward; the verified window is not re-read
        let forward = await world.sync()
        #expect(forward.recordsInserted == 1 && forward.recordsFetched == 1)
        world.source.delete(key: [.integer(1)])
        #expect(await world.sync().recordsFetched == 6, "a hard delete changes the fingerprint: the window is re-read")
        #expect(await world.sync().recordsFetched == 0)
    }

    /// The saved window is checked alongside the forward read: until that check is settled, forward batches load
    /// without moving the checkpoint. A run stopped after such a batch leaves the checkpoint where it found it, so a
    /// row committed late inside the window — an hour behind the rows loaded forward, beyond the lookback of where
    /// they would have taken the checkpoint — is still found by the next run.
    @Test func forwardBatchesLoadedWhileTheWindowIsCheckedDoNotMoveTheCheckpoint() async {
        let world = World()
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        let saved = await world.syncFiveRowsSavingAWindow(from: start)
        #expect(saved?.lookback != nil, "the second run saves its window")
        world.add(6, at: start.adding(seconds: 2))  // committed late, inside the window
        for id in 7...12 { world.add(id, at: start.adding(seconds: 3600 + Int64(id))) }
        struct Stopped: Error {}
        let stopped = await world.sync(afterCommit: { batch in if batch == 1 { throw Stopped() } })
        #expect(!stopped.success && stopped.recordsInserted == 3, "the first forward batch loaded, then the run stopped")
        #expect(world.destination.snapshot.states["erp"]?.checkpoint == saved?.checkpoint, "the checkpoint stays while the window is checked")
        let next = await world.sync()
        #expect(next.success)
        #expect(world.destination.snapshot.sales["erp|6"] != nil, "the late row is found")
        #expect(world.destination.snapshot.sales.count == 12)
        #expect(world.destination.snapshot.states["erp"]?.checkpoint?.key == [.integer(12)])
    }

    /// The saved window's check runs alongside the forward read, so a row committed at the checkpoint's cursor value
    /// after its key, once the forward read has passed it, would be in the check's figures if the check counted every
    /// row at that cursor value: the window this run saves must not count it as read. The check stops at the
    /// checkpoint's position (the rows after it are the forward pages' own checksums); the next run finds the window
    /// changed and reads the row.
    @Test func aRowCommittedAtTheCheckpointsCursorWhileTheWindowIsCheckedIsRead() async {
        let world = World()
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        #expect(await world.syncFiveRowsSavingAWindow(from: start)?.lookback?.through == .localDateTime(start.adding(seconds: 5)))
        for id in 6...8 { world.add(id, at: start.adding(seconds: 10 + Int64(id))) }
        let source = CommitDuringCheck(base: world.source) { world.add(9, at: start.adding(seconds: 5)) }
        #expect(await world.sync(through: source).recordsInserted == 3, "the forward read passed the checkpoint's cursor before row 9")
        _ = await world.sync()
        #expect(world.destination.snapshot.sales["erp|9"] != nil, "the row committed at the checkpoint's cursor is read")
    }

    /// A source whose first fingerprint (the saved window's check) waits until a forward page was read, then runs
    /// `commit` (rows committed at the source) before it reads.
    final class CommitDuringCheck: Source {
        let base: MemorySource
        let commit: @Sendable () -> Void
        private let calls = Mutex((fingerprints: 0, orderedPages: 0))

        init(base: MemorySource, commit: @escaping @Sendable () -> Void) {
            self.base = base
            self.commit = commit
        }

        func read(_ page: PageRequest, of stream: StreamConfig) async throws -> [[SourceValue]] {
            let rows = try await base.read(page, of: stream)
            if case .ordered = page.kind { calls.withLock { $0.orderedPages += 1 } }
            return rows
        }

        func estimateRows(of stream: StreamConfig, from bound: StreamBound) async throws -> Int? {
            try await base.estimateRows(of: stream, from: bound)
        }

        var checksumsRows: Bool { base.checksumsRows }

        func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint?, splitAt lower: SourceValue,
                         _ upper: SourceValue, of stream: StreamConfig) async throws -> [RangeFingerprint]? {
            let call = calls.withLock { calls in
                calls.fingerprints += 1
                return calls.fingerprints
            }
            if call == 1 {
                // Bounded: a check read before any page (the premise broken) fails the test rather than hanging it.
                for _ in 0..<5_000 where calls.withLock({ $0.orderedPages }) == 0 { try await Task.sleep(for: .milliseconds(1)) }
                commit()
            }
            return try await base.fingerprint(cursorFrom: first, through: last, upTo: position, splitAt: lower, upper, of: stream)
        }

        func testConnection() async throws -> String { try await base.testConnection() }
        func close() async { await base.close() }
    }

    /// A full pass resumed past a row committed late behind the incremental checkpoint re-reads that checkpoint's
    /// lookback window before it moves the checkpoint to its end (an hour later here): otherwise the row would wait for
    /// the next full pass.
    @Test func aFullPassReReadsTheCheckpointsLookbackBeforeMovingIt() async {
        let world = World()
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        world.add(1...9, secondsAfter: start)
        struct Stopped: Error {}
        _ = await world.sync(.full, afterCommit: { batch in if batch == 1 { throw Stopped() } })  // the pass stops after row 3
        #expect(await world.sync().success)  // the incremental checkpoint: row 9
        world.add(10, at: start.adding(seconds: 1))  // committed late, behind the checkpoint and the pass's position
        for id in 11...13 { world.add(id, at: start.adding(seconds: 3600 + Int64(id))) }
        let pass = await world.sync(.full)
        #expect(pass.success && !pass.hasMore)
        #expect(world.destination.snapshot.states["erp"]?.checkpoint?.key == [.integer(13)])
        #expect(world.destination.snapshot.sales["erp|10"] != nil, "the late row is read before the checkpoint moves an hour on")
        #expect(world.destination.snapshot.sales.count == 13)
    }

    /// Clocks go back at 02:00 EDT on 2026-11-01 in New York: after a sync at 01:55 EDT, a row written at 01:10
    /// EST (its wall time 45 minutes behind the checkpoint, beyond the 5-minute lookback) is read by the next run.
    @Test func rowsWrittenInTheRepeatedHourAfterAFallBackAreRead() async {
        let zone = TimeZone(identifier: "America/New_York")!
        let firstRun = LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 55).instant(in: zone)
        let world = World(zone: "America/New_York", start: firstRun)
        world.add(1, at: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 55))
        #expect(await world.sync().recordsInserted == 1)
        world.clock.advance(to: Instant(seconds: firstRun.seconds + 3600 + 20 * 60))  // 01:15 EST
        world.add(2, at: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 10))
        let result = await world.sync()
        #expect(result.recordsInserted == 1)
        #expect(world.destination.snapshot.sales["erp|2"] != nil)
    }

    /// A row quarantined for its date, corrected at the source without moving its cursor (behind the checkpoint):
    /// no incremental run reads it again; `reprocess` reads it by primary key, loads it, resolves its entry and
    /// leaves the checkpoint where it was.
    @Test func reprocessLoadsARowFixedBehindTheCheckpoint() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        world.add(1, at: day)
        world.source.upsert(["id": .integer(2), "updated_at": .localDateTime(day.adding(seconds: -3600)), "pdv": .text("P1"),
                             "operator": .text("op1"), "amount": .decimal("5.00"), "occurred_at": .text("2026-02-30 10:00:00"), "type": .text("sale")])
        world.add(3, at: day.adding(seconds: 120))
        let first = await world.sync()
        #expect(first.recordsInserted == 2 && first.recordsRejected == 1)
        let checkpoint = world.destination.snapshot.states["erp"]?.checkpoint
        // Fixed at the source, cursor unchanged.
        world.source.upsert(["id": .integer(2), "updated_at": .localDateTime(day.adding(seconds: -3600)), "pdv": .text("P1"),
                             "operator": .text("op1"), "amount": .decimal("5.00"), "occurred_at": .text("2026-02-28 10:00:00"), "type": .text("sale")])
        #expect(await world.sync().recordsInserted == 0)
        let reprocess = await world.sync(.reprocess)
        #expect(reprocess.status == .success && reprocess.syncType == .reprocess)
        #expect(reprocess.recordsFetched == 1 && reprocess.recordsInserted == 1)
        let tables = world.destination.snapshot
        #expect(tables.sales["erp|2"] != nil)
        #expect(tables.quarantine.values.allSatisfy { $0.resolution == "loaded" && $0.resolvedBySync == reprocess.syncId })
        #expect(tables.states["erp"]?.checkpoint == checkpoint)
    }

    /// A loaded sale whose source row turns invalid is marked stale in the audit database, and the mark clears
    /// when a valid version loads; the quarantine entry is resolved then.
    @Test func aLoadedRowThatTurnsInvalidIsMarkedStaleUntilFixed() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        world.add(1, at: day)
        #expect(await world.sync().recordsInserted == 1)
        world.add(1, at: day.adding(seconds: 60), amount: "-abc")
        #expect(await world.sync().recordsRejected == 1)
        var sale = world.destination.snapshot.sales["erp|1"]
        #expect(sale?.quarantinedSince != nil && sale?.quarantineReason == "INVALID_AMOUNT")
        #expect(sale?.record.amount.description == "10.00")  // the last valid version stays, marked
        world.add(1, at: day.adding(seconds: 120), amount: "12.00")
        #expect(await world.sync().recordsUpdated == 1)
        sale = world.destination.snapshot.sales["erp|1"]
        #expect(sale?.quarantinedSince == nil && sale?.record.amount.description == "12.00")
        #expect(world.destination.snapshot.quarantine.values.map(\.resolution) == ["loaded"])
    }

    /// A run remembers that its source has no open quarantine entry only until one of its batches quarantines a row:
    /// a row quarantined in batch 2 and read again valid later in the same run (updated at the source meanwhile) has
    /// its entry resolved by that later batch.
    @Test func aRowQuarantinedAndFixedWithinOneRunIsResolvedInIt() async {
        let world = World()
        let start = LocalDateTime(year: 2026, month: 5, day: 1, hour: 10, minute: 0)
        for id in 1...9 { world.add(id, at: start.adding(seconds: Int64(id)), amount: id == 4 ? "-abc" : "10.00") }
        let resolutions = world.countCalls(of: .resolveQuarantine)
        let result = await world.sync(afterCommit: { batch in
            if batch == 2 { world.add(4, at: start.adding(seconds: 60), amount: "12.00") }
        })
        #expect(result.status == .success, "\(result.errors)")
        #expect(result.recordsRejected == 1 && result.recordsInserted == 9)
        let entries = world.destination.snapshot.quarantine.values
        #expect(entries.count == 1 && entries.allSatisfy { $0.resolution == "loaded" && $0.resolvedBySync == result.syncId })
        #expect(world.destination.snapshot.sales["erp|4"]?.record.amount.description == "12.00")
        // Batch 1 asked and found none; batch 2 quarantined row 4; batches 3 and 4 asked again and resolved.
        #expect(resolutions() == 2)
    }

    /// A row whose mapping the database cannot compute fails every page holding it; the engine bisects the page,
    /// quarantines that row (`SOURCE_ERROR`) and reads on, so the cursor passes it.
    @Test func aRowTheSourceCannotComputeIsQuarantinedAndTheRestLoads() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        world.add(1...8, secondsAfter: day)
        world.source.failMapping(ofKey: [.integer(5)])
        let result = await world.sync()
        #expect(result.status == .success, "\(result.errors)")
        #expect(result.recordsInserted == 7 && result.recordsRejected == 1 && result.recordsFetched == 8)
        #expect(result.cursorTo == "\(day.adding(seconds: 8)) #8")
        let entry = world.destination.snapshot.quarantine.values.first
        #expect(entry?.row.reason == .sourceError && entry?.row.externalId == "5" && entry?.row.key == [.integer(5)])
    }

    /// A run that quarantines a row the source cannot compute saves no lookback window over it: once the source
    /// computes it again (the row unchanged, and so its fingerprint), the next run re-reads the window and loads it.
    @Test func aRowTheSourceCouldNotComputeIsNotSavedAsRead() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        #expect(await world.syncFiveRowsSavingAWindow(from: day)?.lookback != nil)
        world.add(6...8, secondsAfter: day)
        world.source.failMapping(ofKey: [.integer(7)])
        let failed = await world.sync()
        #expect(failed.recordsInserted == 2 && failed.recordsRejected == 1)
        #expect(world.destination.snapshot.states["erp"]?.lookback == nil, "no window is saved over a row the source could not compute")
        world.source.computeMapping(ofKey: [.integer(7)])
        #expect(await world.sync().recordsInserted == 1)
        #expect(world.destination.snapshot.sales.count == 8)
        #expect(world.destination.snapshot.quarantine.values.allSatisfy { $0.resolution != nil }, "the entry is resolved")
    }

    /// A row quarantined as `SOURCE_ERROR` is read again by key by every later run until the source computes it,
    /// wherever its cursor lies: here an hour behind the checkpoint, beyond the lookback. While the source still
    /// cannot compute it, the runs load the rest and succeed.
    @Test(arguments: [SyncType.incremental, .full], [false, true])
    func aRowTheSourceCouldNotComputeIsReadAgainByKeyUntilItLoads(quarantinedBy type: SyncType, ownExternalId: Bool) async {
        // With an `externalId` mapping of its own, the entry (filed under the key) and the loaded row differ in id.
        var stream = Self.stream
        if ownExternalId { stream.fields[.externalId] = .column("doc") }
        let world = World(stream: stream)
        let loadedId = ownExternalId ? "DOC-5" : "5"
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        world.add(1...8, secondsAfter: day)
        world.source.failMapping(ofKey: [.integer(5)])
        #expect(await world.sync(type).recordsRejected == 1)
        world.add(9...10, secondsAfter: day.adding(seconds: 3600))
        let still = await world.sync()
        #expect(still.status == .success && still.recordsInserted == 2, "\(still.errors)")
        #expect(world.destination.snapshot.quarantine.values.contains { $0.row.externalId == "5" && $0.resolution == nil })
        world.source.computeMapping(ofKey: [.integer(5)])
        let retried = await world.sync()
        #expect(retried.status == .success && retried.recordsInserted == 1, "\(retried.errors)")
        #expect(world.destination.snapshot.sales["erp|\(loadedId)"] != nil)
        #expect(world.destination.snapshot.quarantine.values.allSatisfy { $0.resolution != nil }, "the entry is resolved")
        #expect(await world.sync().recordsFetched == 0, "nothing is read again once it loaded")
    }

    /// A data exception that does not repeat (the row was fixed at the source between two reads) quarantines no
    /// row: the bisection's last read succeeds, and those rows load.
    @Test func aDataExceptionThatDoesNotRepeatQuarantinesNoRow() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        let result = await world.syncEightRowsFailingOneKeysetRead(from: day, sqlState: "22008")
        #expect(result.status == .success, "\(result.errors)")
        #expect(result.recordsInserted == 8 && result.recordsRejected == 0 && result.recordsFetched == 8)
        #expect(result.cursorTo == "\(day.adding(seconds: 8)) #8")
        #expect(world.destination.snapshot.quarantine.isEmpty && world.destination.snapshot.sales.count == 8)
    }

    /// A permanent read failure that is not a data exception (a statement timeout: it fails a big page and passes a
    /// small one) never sends the engine looking for a row: the run fails with the checkpoint where it was,
    /// nothing is quarantined, and the next run loads every row. Bisecting it quarantined a valid row.
    @Test func aReadFailureThatIsNotADataExceptionQuarantinesNoRow() async {
        let world = World()
        let failed = await world.syncEightRowsFailingOneKeysetRead(from: LocalDateTime(year: 2026, month: 3, day: 2, hour: 10), sqlState: "57014")
        #expect(failed.status == .failed && failed.recordsRejected == 0 && failed.errors.first?.message == "injected read failure", "\(failed.errors)")
        #expect(world.destination.snapshot.quarantine.isEmpty && world.destination.snapshot.sales.isEmpty)
        let next = await world.sync()
        #expect(next.status == .success && next.recordsInserted == 8, "\(next.errors)")
        #expect(world.destination.snapshot.quarantine.isEmpty)
    }

    /// `--dry-run` reports what a run would insert, update and leave unchanged (computed against the destination in
    /// a transaction that is rolled back) and writes nothing: no rows, no checkpoint, no audit row.
    @Test func aDryRunReportsWhatARunWouldDoAndWritesNothing() async {
        let world = World()
        let day = LocalDateTime(year: 2026, month: 3, day: 2, hour: 10)
        for id in 1...4 { world.add(id, at: day.adding(seconds: Int64(id))) }
        #expect(await world.sync().recordsInserted == 4)
        world.add(2, at: day.adding(seconds: 60), amount: "99.00")
        world.add(5, at: day.adding(seconds: 61))
        var options = SyncOptions()
        options.daysBack = 0
        let engine = SyncEngine(destination: world.destination, now: world.clock.now)
        let before = world.destination.snapshot
        let dry = await engine.run(SyncRequest(source: world.config, syncType: .incremental, options: options, isDryRun: true),
                                   openSource: { [source = world.source] in source })
        #expect(dry.status == .success && dry.recordsInserted == 1 && dry.recordsUpdated == 1, "\(dry)")
        let after = world.destination.snapshot
        #expect(after.sales == before.sales && after.states == before.states && after.runs.count == before.runs.count)
    }
}
