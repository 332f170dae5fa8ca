import Foundation
import PostgresConnector
import SyncCore
import SyncTesting
import Testing

/// The leases of the PostgreSQL destination (README "Several serve instances"), against the real server: each
/// `PostgresDestination` here is one instance of a fleet (its own pool and instance id) sharing one audit database.
@Suite(.serialized, .enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct PostgresLeaseTests {
    /// An instance of the fleet: a destination with its own pool, lease period and instance id.
    static func instance(_ f: PostgresFixture, _ id: String, leaseSeconds: Int) async throws -> PostgresDestination {
        let destination = try PostgresDestination(settings: try PostgresFixture.settings(f.auditDB), lease: LeaseOptions(periodSeconds: leaseSeconds, instanceId: id))
        try await destination.migrate()
        return destination
    }

    /// The lease row as the server sees it: holder run, instance, token, seconds left by the server's clock.
    static func lease(_ f: PostgresFixture, _ source: String) async throws -> (syncId: String?, instance: String?, token: String?, secondsLeft: Double) {
        let row = try await PostgresFixture.rows(f.auditDB, """
            SELECT sync_id, instance_id, token, extract(epoch FROM expires_at - clock_timestamp()) FROM tb_sync_lock WHERE source_id = '\(source)'
            """).first ?? []
        return (row[0], row[1], row[2], Double(row[3] ?? "") ?? -1)
    }

    /// Polls until the lease of `source` has expired by the server's clock (at most `seconds`).
    static func waitForExpiry(_ f: PostgresFixture, _ source: String, within seconds: Double) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try await lease(f, source).secondsLeft > 0 {
            guard Date() < deadline else {
                Issue.record("the lease of \(source) did not expire within \(seconds) s")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A lease whose holder is a process of this host that is gone (kill -9) is taken over at once, not after the
    /// lease period: a restart of a killed `erp-sync` on the same machine resumes in seconds (the chaos suite's
    /// kill -9 recovery went from ~1 s to 60 s before this rule); a live holder's lease stays held.
    @Test func aLeaseOfAProcessOfThisHostThatIsGoneIsTakenOverAtOnce() async throws {
        try await PostgresFixture.with { f in
            let a = try await Self.instance(f, "instance-a", leaseSeconds: 60)
            let b = try await Self.instance(f, "instance-b", leaseSeconds: 60)
            #expect(try await a.acquireLock(source: "s", syncId: "run-a1", slot: nil) == nil)
            let finished = Process()
            finished.executableURL = URL(fileURLWithPath: "/bin/true")
            try finished.run()
            finished.waitUntilExit()
            _ = try await PostgresFixture.rows(f.auditDB, "UPDATE tb_sync_lock SET pid = \(finished.processIdentifier) WHERE source_id = 's' RETURNING 1")
            #expect(try await Self.lease(f, "s").secondsLeft > 50, "the lease has not expired")
            #expect(try await b.acquireLock(source: "s", syncId: "run-b1", slot: nil) == nil)
            let taken = try await Self.lease(f, "s")
            #expect(taken.syncId == "run-b1" && taken.token == "2")
            _ = try await PostgresFixture.rows(f.auditDB, "UPDATE tb_sync_lock SET pid = 1 WHERE source_id = 's' RETURNING 1")
            guard case .held = try await a.acquireLock(source: "s", syncId: "run-a2", slot: nil) else {
                Issue.record("a live holder's lease (pid 1) was taken over")
                return
            }
            await a.close()
            await b.close()
        }
    }

    /// A claimed lease is held against every other instance until released; its expiry is set by the server's clock
    /// to the lease period; each claim gets the next fencing token; a released lease is free at once.
    @Test func aLeaseIsExclusiveUntilReleasedAndEachClaimTakesTheNextToken() async throws {
        try await PostgresFixture.with { f in
            let a = try await Self.instance(f, "instance-a", leaseSeconds: 30)
            let b = try await Self.instance(f, "instance-b", leaseSeconds: 30)
            #expect(try await a.acquireLock(source: "s", syncId: "run-a1", slot: nil) == nil)
            let held = try await Self.lease(f, "s")
            #expect(held.syncId == "run-a1" && held.instance == "instance-a" && held.token == "1")
            #expect(held.secondsLeft > 20 && held.secondsLeft <= 30, "expiry set by the server's clock to the lease period: \(held.secondsLeft)")
            let refusal = try await b.acquireLock(source: "s", syncId: "run-b1", slot: nil)
            guard case .held(let holder) = refusal else { Issue.record("b claimed a held lease: \(String(describing: refusal))"); return }
            #expect(holder.contains("run-a1") && holder.contains("instance-a"))
            #expect(try await b.lockHolder(source: "s")?.contains("instance-a") == true)
            try await b.releaseLock(source: "s", syncId: "run-a1")  // not b's lease: a no-op
            #expect(try await Self.lease(f, "s").secondsLeft > 0)
            try await a.releaseLock(source: "s", syncId: "run-a1")
            #expect(try await b.lockHolder(source: "s") == nil)
            #expect(try await b.acquireLock(source: "s", syncId: "run-b1", slot: nil) == nil)
            #expect(try await Self.lease(f, "s").token == "2")
            await a.close()
            await b.close()
        }
    }

    /// A holder that stops renewing (a paused or partitioned process) loses the lease once it expires by the
    /// server's clock; another instance takes it over (the run left RUNNING is closed as ABANDONED), and the old
    /// holder's next batch is refused in its own transaction: `LOCK_LOST`, nothing of it written.
    @Test func anExpiredLeaseIsTakenOverAndTheOldHoldersBatchIsFenced() async throws {
        try await PostgresFixture.with { f in
            let a = try await Self.instance(f, "instance-a", leaseSeconds: 5)
            let b = try await Self.instance(f, "instance-b", leaseSeconds: 60)
            let source = f.source("s", stream: PostgresFixture.stream)
            let request = SyncRequest(source: source, syncType: .incremental, options: PostgresFixture.options())
            let runA = SyncRun(request: request, syncId: "run-a", startTime: .now)
            #expect(try await a.acquireLock(source: "s", syncId: "run-a", slot: nil) == nil)
            try await a.beginRun(runA)
            // While the lease is live, renewing it (the engine's heartbeat, a batch's first step) extends it.
            #expect(try await a.transaction("renewing") { try await $0.renewLock(source: "s", syncId: "run-a") })
            #expect(try await b.acquireLock(source: "s", syncId: "run-b", slot: nil) != nil)
            // Instance a is frozen: nothing renews; the lease runs out on the server's clock.
            try await Self.waitForExpiry(f, "s", within: 20)
            #expect(try await b.acquireLock(source: "s", syncId: "run-b", slot: nil) == nil)
            let taken = try await Self.lease(f, "s")
            #expect(taken.syncId == "run-b" && taken.instance == "instance-b" && taken.token == "2")
            #expect(try await a.run(syncId: "run-a")?.result.status == .failed)  // closed as ABANDONED by the new holder
            // Instance a comes back and commits a batch: refused in the batch's transaction, nothing written.
            let record = SaleTransaction(sourceId: "s", externalId: "fenced-1", pdv: "P1", operator: "op1", amount: try Amount(parsing: "10.00", scale: 2),
                                         currency: "BRL", occurredAt: .now, type: .sale, typeRaw: "sale", reference: nil, sourceUpdatedAt: nil,
                                         isDeletedAtSource: false)
            let batch = BatchCommit(batchNumber: 1, records: [record], rejected: [], fetched: 1, state: nil, position: nil, fullPassId: nil)
            do {
                _ = try await batch.commit(to: a, run: runA)
                Issue.record("a fenced holder committed a batch")
            } catch let failure as SyncFailure {
                #expect(failure.code == .lockLost)
            }
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT count(*) FROM tb_sales") == [["0"]])
            // A's heartbeat cannot revive it either, and its release leaves b's lease alone.
            #expect(try await a.transaction("renewing") { try await $0.renewLock(source: "s", syncId: "run-a") } == false)
            try await a.releaseLock(source: "s", syncId: "run-a")
            #expect(try await Self.lease(f, "s").syncId == "run-b")
            #expect(try await Self.lease(f, "s").secondsLeft > 0)
            await a.close()
            await b.close()
        }
    }

    /// A lease row locked by a batch transaction in progress (renewed, not yet committed) counts as held: a claim
    /// never waits on it and never takes it from under the commit.
    @Test func aLeaseLockedByACommittingBatchIsHeldAndTheClaimDoesNotWait() async throws {
        try await PostgresFixture.with { f in
            let a = try await Self.instance(f, "instance-a", leaseSeconds: 30)
            let b = try await Self.instance(f, "instance-b", leaseSeconds: 30)
            #expect(try await a.acquireLock(source: "s", syncId: "run-a", slot: nil) == nil)
            let (inside, insideContinuation) = AsyncStream<Void>.makeStream()
            let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
            let batch = Task {
                try await a.transaction("a slow batch") { store in
                    let renewed = try await store.renewLock(source: "s", syncId: "run-a")
                    insideContinuation.yield()
                    for await _ in release { break }
                    return renewed
                }
            }
            for await _ in inside { break }
            let started = Date()
            let refusal = try await b.acquireLock(source: "s", syncId: "run-b", slot: nil)
            #expect(Date().timeIntervalSince(started) < 5, "the claim waited for the batch's row lock (it would wait up to 30 s)")
            #expect(refusal != nil)
            releaseContinuation.yield()
            #expect(try await batch.value)
            #expect(try await Self.lease(f, "s").syncId == "run-a")
            await a.close()
            await b.close()
        }
    }

    /// A scheduled slot runs once across the fleet: three instances racing for one slot of one source, one claims
    /// it; once its run released the lease, a late instance still finds the slot taken (`SLOT_TAKEN`), while the
    /// next slot is free.
    @Test func aSlotIsClaimedByOneInstanceOnly() async throws {
        try await PostgresFixture.with { f in
            var instances: [PostgresDestination] = []
            for id in ["i1", "i2", "i3"] { instances.append(try await Self.instance(f, id, leaseSeconds: 30)) }
            let slot = ScheduleSlot(dueAt: Instant(seconds: 1_800_000_000), syncType: .incremental)
            let refusals = try await withThrowingTaskGroup(of: LockRefusal?.self) { group in
                for (index, instance) in instances.enumerated() {
                    group.addTask { try await instance.acquireLock(source: "s", syncId: "run-\(index)", slot: slot) }
                }
                return try await group.reduce(into: [LockRefusal?]()) { $0.append($1) }
            }
            #expect(refusals.filter { $0 == nil }.count == 1, "\(refusals)")
            let winner = try #require(try await Self.lease(f, "s").syncId)
            let index = Int(winner.dropFirst(4))!
            try await instances[index].releaseLock(source: "s", syncId: winner)
            let late = try await instances[(index + 1) % 3].acquireLock(source: "s", syncId: "late", slot: slot)
            guard case .slotTaken(let claimer) = late else { Issue.record("the slot ran twice: \(String(describing: late))"); return }
            #expect(claimer.contains(winner))
            #expect(try await Self.lease(f, "s").syncId == winner, "a refused slot leaves the lease as it was")
            let next = ScheduleSlot(dueAt: Instant(seconds: 1_800_000_060), syncType: .incremental)
            #expect(try await instances[(index + 1) % 3].acquireLock(source: "s", syncId: "next", slot: next) == nil)
            #expect(try await PostgresFixture.rows(f.auditDB, "SELECT count(*), count(DISTINCT slot_at) FROM tb_sync_slots") == [["2", "2"]])
            for instance in instances { await instance.close() }
        }
    }
}
