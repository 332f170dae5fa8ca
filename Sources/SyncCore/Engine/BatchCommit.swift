/// One batch and the transaction that loads it: the product's commit sequence, written once.
///
/// In one destination transaction, in this order (SPEC.md "Loading the destination correctly"):
/// 1. the fencing check: the run must still hold an unexpired lease on its source, which is extended and locked
///    until the commit (else `LOCK_LOST`, nothing written);
/// 2. which of the batch's keys are stored, and with what content;
/// 3. dedup candidates of other sources for the new records (``DedupProbe``: same match fields, in the sliding
///    window), read only when another source has records; the plan (``BatchPlan``);
/// 4. `tb_sales` writes (new, changed), then the `tb_sync_duplicates` entries;
/// 5. during a full pass, rows seen unchanged or rejected are stamped as seen;
/// 6. the open quarantine entries of keys loaded now are resolved, if the source has any (asked once per run
///    while the answer stays no: ``SyncRun/hasNoOpenQuarantine``; and their stale mark cleared); rejected rows into
///    quarantine (marking their stored audit records stale);
/// 7. the checkpoint (forward reads only);
/// 8. the run's counters and `cursor_to`, as totals (7 and 8 in one call: ``DestinationTransaction/saveProgress(_:source:syncId:counters:)``).
///
/// Either all of it is durable or none: a crash at any instant leaves the previous checkpoint with exactly
/// the rows it covers, so the next run resumes without loss or duplicates.
///
/// **Overlapped batches** (``commit(to:run:after:)``, a destination with ``Destination/overlapsBatches``): a batch
/// may begin while the one before it is still committing, on another connection, so the destination is never idle
/// between two batches' writes. Only its writes of records planned as new without reading anything the batch before
/// it wrote (a batch that assumed new keys, with no dedup candidate to read) run before that batch committed and was
/// counted by the run (``PreviousBatch``); every step that reads or adds to what the batch before wrote — the probe
/// of stored keys, dedup candidates and their claims, the quarantine, the counters and the checkpoint — waits for it,
/// then the fencing check (step 1) runs, after the writes. So batches still commit in order: a batch commits only
/// after the one before it committed, and it is rolled back when that one failed. A key the batch before inserted
/// is a unique violation once that batch commits (``SyncFailure/Code/keyConflict``): the batch is committed again
/// with the probe, as any batch that assumed new keys and met a stored one.
public struct BatchCommit: Sendable {
    /// 1-based batch number within the run.
    public var batchNumber: Int
    /// Valid records (one source).
    public var records: [SaleTransaction]
    /// Rows rejected by validation.
    public var rejected: [RejectedRow]
    /// Rows fetched from the source for this batch (valid + rejected).
    public var fetched: Int
    /// The state to save with the batch, or `nil` to keep the saved one (sweeps, lookback re-reads).
    public var state: SyncState?
    /// The position of the batch's last row; reported as the run's `cursorTo` when the batch saves a state.
    public var position: Checkpoint?
    /// During a full pass: its id, stamped on every row seen.
    public var fullPassId: String?
    /// Plan every record as new without probing the stored keys (``RunPlan/assumesNewKeys``): the inserts are plain,
    /// so a stored key fails the transaction (``SyncFailure/Code/keyConflict``) and the batch is committed again
    /// with the probe (``Committed/metStoredKey``). Nothing can be stored twice: the primary key refuses it.
    public var assumesNewKeys = false

    /// Creates a batch.
    public init(batchNumber: Int, records: [SaleTransaction], rejected: [RejectedRow], fetched: Int, state: SyncState?,
                position: Checkpoint?, fullPassId: String?) {
        self.batchNumber = batchNumber
        self.records = records
        self.rejected = rejected
        self.fetched = fetched
        self.state = state
        self.position = position
        self.fullPassId = fullPassId
    }

    /// What a committed batch did: its classification and the run's counters after it.
    public struct Committed: Sendable, Equatable {
        public var outcome: BatchOutcome
        public var counters: RunCounters
        /// The batch assumed new keys and met a stored one (it was then committed with the probe): later batches of
        /// the run should probe.
        public var metStoredKey = false
        /// ``SyncRun/hasNoOpenQuarantine`` after this batch.
        public var hasNoOpenQuarantine = false
        /// The pdvs this batch registered (``SyncRun/registeredPdvs`` gains them once it is counted).
        public var registeredPdvs: [String] = []
    }

    /// Loads the batch in one transaction of `destination`.
    /// - Parameters:
    ///   - run: the run (its id, source, dedup options and counters before this batch).
    /// - Returns: the outcome and the run's new counters, as written.
    /// - Throws: ``SyncFailure`` `LOCK_LOST`, or the destination's failure (nothing of the batch is kept).
    public func commit(to destination: any Destination, run: SyncRun) async throws -> Committed {
        try await commit(to: destination, run: run, after: nil)
    }

    /// Loads the batch in one transaction of `destination`, begun while `previous`, the batch before it, may still
    /// be committing (see "Overlapped batches" above); with `previous` `nil`, as ``commit(to:run:)``.
    /// - Parameters:
    ///   - run: the run's id, source and options; its counters and quarantine flag are taken from `previous` when given.
    ///   - previous: the batch before this one, resolved once it committed and the run counted it.
    /// - Returns: the outcome and the run's new counters, as written.
    /// - Throws: ``SyncFailure`` `LOCK_LOST`; `INTERRUPTED` (permanent) when `previous` failed; or the destination's
    ///   failure. Nothing of the batch is kept.
    public func commit(to destination: any Destination, run: SyncRun, after previous: PreviousBatch?) async throws -> Committed {
        do {
            return try await commit(to: destination, run: run, assumingNewKeys: assumesNewKeys, after: previous)
        } catch let failure as SyncFailure where failure.code == .keyConflict && assumesNewKeys {
            var committed = try await commit(to: destination, run: run, assumingNewKeys: false, after: previous)
            committed.metStoredKey = true
            return committed
        }
    }

    private func commit(to destination: any Destination, run: SyncRun, assumingNewKeys: Bool, after previous: PreviousBatch?) async throws -> Committed {
        try await destination.transaction("loading batch \(batchNumber) of \(run.source)") { [self] store in
            // An overlapped batch fences after its writes: the fence locks the lease until the commit, which would
            // hold it behind the batch before.
            if previous == nil { try await Self.fence(store, source: run.source, syncId: run.syncId) }
            return try await write(into: store, run: run, assumingNewKeys: assumingNewKeys, after: previous)
        }
    }

    /// What committing the batch would do, computed in a destination transaction that is rolled back: the same
    /// steps as ``commit(to:run:)`` (without the lock check: a dry run holds none), nothing kept.
    public func simulate(in destination: any Destination, run: SyncRun) async throws -> Committed {
        try await destination.transaction("simulating batch \(batchNumber) of \(run.source)", commits: false) { [self] store in
            try await write(into: store, run: run, assumingNewKeys: false, after: nil)
        }
    }

    /// Steps 2 to 8 of the sequence, inside `store`'s transaction (step 2 skipped when `assumingNewKeys`); with
    /// `previous`, every step that reads what it wrote waits for it, and step 1 runs after the writes.
    private func write(into store: any DestinationTransaction, run: SyncRun, assumingNewKeys: Bool, after previous: PreviousBatch?) async throws -> Committed {
        var run = run
        let source = run.source
        let syncId = run.syncId
        let dedup = run.request.options.deduplication
        if let previous, !assumingNewKeys { run = try await previous.run() }
        let existing = records.isEmpty || assumingNewKeys ? [:] : try await store.storedRecords(source: source, externalIds: records.map(\.externalId))
        // A batch that assumed new keys (a first load's, an incremental run's) hashes and copies none of its records here.
        let fresh = existing.isEmpty ? records : records.filter { existing[$0.externalId] == nil }
        var candidates: [DedupCandidate] = []
        if dedup.enabled, !fresh.isEmpty {
            // Only at the pdvs another source has records at can a record have an original.
            let shared = try await store.pdvs(ofSourcesOtherThan: source, among: fresh.distinctPdvs)
            if !shared.isEmpty {
                // The claims of the batch before are read only once it committed.
                if let previous { run = try await previous.run() }
                candidates = try await store.dedupCandidates(excludingSource: source, matching: Self.dedupProbes(
                    for: fresh.filter { shared.contains($0.pdv) }, windowMinutes: dedup.windowMinutes))
            }
        }
        let plan = BatchPlan.plan(records: records, existing: existing, candidates: candidates, options: dedup)
        let writes = plan.salesWrites(existing: existing)
        if !writes.isEmpty { try await store.writeSales(writes, syncId: syncId, passId: fullPassId) }
        if let previous {
            run = try await previous.run()
            try await Self.fence(store, source: source, syncId: syncId)
        }
        let unregistered = writes.pdvs.filter { !run.registeredPdvs.contains($0) }
        if !unregistered.isEmpty { try await store.registerPdvs(unregistered, source: source) }
        let before = run.counters
        let duplicates = plan.duplicateWrites(existing: existing)
        if !duplicates.isEmpty { try await store.recordDuplicates(duplicates, syncId: syncId) }
        if let passId = fullPassId {
            let seen = plan.unchanged.map(\.externalId) + rejected.compactMap(\.externalId)
            if !seen.isEmpty { try await store.markSeen(source: source, externalIds: seen, passId: passId) }
        }
        let stale = existing.isEmpty ? [] : records.filter { existing[$0.externalId]?.isQuarantined == true }.map(\.externalId)
        var resolves = !stale.isEmpty
        var noneOpen = run.hasNoOpenQuarantine
        if !resolves && !records.isEmpty && !noneOpen {
            resolves = try await store.hasOpenQuarantine(source: source)
            noneOpen = !resolves
        }
        if resolves {
            try await store.resolveQuarantine(source: source, loaded: records.map(\.externalId),
                                              stale: stale, syncId: syncId)
        }
        if !rejected.isEmpty {
            try await store.quarantine(rejected, source: source, syncId: syncId, batch: batchNumber)
            noneOpen = false
        }
        let outcome = plan.outcome(rejected: rejected.count)
        let counters = before.adding(outcome, fetched: fetched, cursorTo: state == nil ? nil : position?.summary)
        try await store.saveProgress(state, source: source, syncId: syncId, counters: counters)
        return Committed(outcome: outcome, counters: counters, hasNoOpenQuarantine: noneOpen, registeredPdvs: unregistered)
    }

    /// The fencing check of a write transaction: throws unless run `syncId` still holds the lock of `source`.
    /// - Throws: ``SyncFailure`` `LOCK_LOST` (permanent: the run must stop, another run owns the source).
    static func fence(_ store: any DestinationTransaction, source: String, syncId: String) async throws {
        guard try await store.renewLock(source: source, syncId: syncId) else {
            throw SyncFailure(code: .lockLost, message: "the lease of \(source) expired or was taken over by another run: this run's batch was not committed",
                              isTransient: false)
        }
    }

    /// What the originals of `records` must match: one probe per distinct (pdv, operator, amount, currency, type), in the
    /// order of their first record, over the range from its earliest record's instant minus the window to its latest
    /// plus the window, widened by one second on each side (the destination's stored precision may round).
    static func dedupProbes(for records: [SaleTransaction], windowMinutes: Int) -> [DedupProbe] {
        let seconds = Int64(windowMinutes) * 60 + 1
        var probes: [DedupProbe] = []
        var index: [DedupProbe.Fields: Int] = [:]
        for record in records {
            let fields = DedupProbe.Fields(pdv: record.pdv, operator: record.operator, amount: record.amount.description, currency: record.currency,
                                           type: record.type.rawValue)
            let earliest = Instant(seconds: record.occurredAt.seconds - seconds), latest = Instant(seconds: record.occurredAt.seconds + seconds)
            if let at = index[fields] {
                probes[at].occurredAt = min(probes[at].occurredAt.lowerBound, earliest)...max(probes[at].occurredAt.upperBound, latest)
            } else {
                index[fields] = probes.count
                probes.append(DedupProbe(pdv: fields.pdv, operator: fields.operator, amount: fields.amount, currency: fields.currency,
                                         type: fields.type, occurredAt: earliest...latest))
            }
        }
        return probes
    }
}

/// The batch before an overlapped one (``BatchCommit/commit(to:run:after:)``): resolved with the run as counted after
/// that batch committed, or failed when it did not commit (or the run stopped after it).
public struct PreviousBatch: Sendable {
    private let outcome: Task<SyncRun, any Error>

    /// A batch that resolves when `resolve` is called with the run, and fails when the stream ends without it.
    /// - Returns: the batch, and the continuation the engine resolves (`yield`) or fails (`finish` alone) exactly once.
    public static func pending(number: Int) -> (PreviousBatch, AsyncStream<SyncRun>.Continuation) {
        let (stream, continuation) = AsyncStream<SyncRun>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let outcome = Task<SyncRun, any Error> {
            for await run in stream { return run }
            throw SyncFailure(code: .interrupted, message: "not loaded: batch \(number), the batch before it, did not commit", isTransient: false)
        }
        return (PreviousBatch(outcome: outcome), continuation)
    }

    /// Waits for the batch: the run as counted after it.
    /// - Throws: ``SyncFailure`` `INTERRUPTED` (permanent) when it did not commit.
    public func run() async throws -> SyncRun {
        try await outcome.value
    }
}
