/// What to run: one source, one sync type, with resolved options.
public struct SyncRequest: Sendable {
    public var source: SourceConfig
    public var syncType: SyncType
    public var options: SyncOptions
    /// `cli`, `api:<user>`, `scheduler` …
    public var triggeredBy: String
    public var isManual: Bool
    /// Read, map and validate only: nothing is written, no lock is taken, the checkpoint stays.
    public var isDryRun: Bool
    /// For `REPROCESS` runs: which open quarantine entries to re-read (all of the source by default).
    public var reprocess = ReprocessFilter()
    /// For scheduled runs: the slot, claimed with the lease so it runs once across the fleet (``ScheduleSlot``).
    public var slot: ScheduleSlot?

    /// Creates a request.
    public init(source: SourceConfig, syncType: SyncType, options: SyncOptions, triggeredBy: String = "cli",
                isManual: Bool = true, isDryRun: Bool = false) {
        self.source = source
        self.syncType = syncType
        self.options = options
        self.triggeredBy = triggeredBy
        self.isManual = isManual
        self.isDryRun = isDryRun
    }
}

/// Which open quarantine entries a `REPROCESS` run re-reads from the source.
public struct ReprocessFilter: Sendable, Equatable {
    /// Only entries with this reason code (`ZERO_DATE` …).
    public var reason: String?
    /// Only entries of these external ids.
    public var externalIds: [String]?

    /// Creates a filter (no argument: every open entry of the source).
    public init(reason: String? = nil, externalIds: [String]? = nil) {
        self.reason = reason
        self.externalIds = externalIds
    }
}

/// The figures of a run, as its audit row holds them. One value, written by one writer
/// (``DestinationTransaction/updateRun(syncId:counters:)``) inside each batch's transaction.
public struct RunCounters: Sendable, Equatable {
    /// Rows read from the source (valid + rejected), re-reads included.
    public var fetched = 0
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    /// Cross-source duplicates detected (flagged or skipped).
    public var skipped = 0
    /// Rows quarantined.
    public var rejected = 0
    /// Rows marked deleted at the source by a full pass.
    public var deleted = 0
    /// The last committed position (``Checkpoint/summary``), if a batch moved it.
    public var cursorTo: String?

    /// All zero.
    public init() {}

    /// Rows that passed validation: `fetched − rejected`.
    public var processed: Int { fetched - rejected }

    /// These counters plus one batch's.
    func adding(_ outcome: BatchOutcome, fetched: Int, cursorTo: String?) -> RunCounters {
        var sum = self
        sum.fetched += fetched
        sum.inserted += outcome.inserted
        sum.updated += outcome.updated
        sum.unchanged += outcome.unchanged
        sum.skipped += outcome.skipped
        sum.rejected += outcome.rejected
        if let cursorTo { sum.cursorTo = cursorTo }
        return sum
    }
}

/// One sync run: what was asked, its identity, and where it stands. The engine's only description of a run;
/// ``beginRun``-style audit rows, progress events and the final ``ErpSyncResult`` are views of it.
public struct SyncRun: Sendable {
    public let request: SyncRequest
    /// UUID of the run (lowercase).
    public let syncId: String
    /// When the run started (wall clock).
    public let startTime: Instant
    let clock: ContinuousClock.Instant
    /// The position the run started from (`nil` = the beginning).
    public var cursorFrom: String?
    /// Committed figures so far.
    public var counters = RunCounters()
    /// Batches committed so far.
    public var batches = 0
    /// A batch of this run found that the source has no open quarantine entry, and no batch quarantined a row
    /// since: later batches skip the check (``DestinationTransaction/hasOpenQuarantine(source:)``). Only this run's
    /// batches add entries for its source while it holds the lease (a dry run holds none, and writes nothing).
    public var hasNoOpenQuarantine = false
    /// The pdvs this run's committed batches registered in `tb_sales_pdvs` (``DestinationTransaction/registerPdvs(_:source:)``),
    /// which never forgets one: a later batch registers only pdvs not among them.
    public var registeredPdvs: Set<String> = []
    /// Rows the run expects to read, when known.
    public var expected: Int?
    /// `true` when `maxRecords` stopped the run before the end of the stream.
    public var hasMore = false
    public var errors: [SyncErrorInfo] = []
    /// Whether an error ended the run early.
    public private(set) var failed = false

    /// Creates a run that starts now.
    public init(request: SyncRequest, syncId: String, startTime: Instant) {
        self.request = request
        self.syncId = syncId
        self.startTime = startTime
        clock = ContinuousClock.now
    }

    /// The source's name.
    public var source: String { request.source.name }

    /// Records an error that ends the run.
    mutating func fail(code: SyncFailure.Code, message: String, retryable: Bool, batch: Int? = nil) {
        failed = true
        errors.append(SyncErrorInfo(code: code, message: message, batch: batch, retryable: retryable))
    }

    /// Records `error` as the reason the run ended: a ``SyncFailure`` with its own code, a cancellation as
    /// `CANCELLED`, anything else under `code`.
    mutating func fail(_ error: any Error, code: SyncFailure.Code, batch: Int? = nil) {
        if let failure = error as? SyncFailure {
            fail(code: failure.code, message: failure.message, retryable: failure.isTransient, batch: batch)
        } else if error is CancellationError {
            fail(code: .cancelled, message: "the run was stopped", retryable: true, batch: batch)
        } else {
            fail(code: code, message: "\(error)", retryable: false, batch: batch)
        }
    }

    /// Live figures for observers.
    public var progress: SyncProgress {
        SyncProgress(syncId: syncId, source: source, fetched: counters.fetched, expected: expected, inserted: counters.inserted,
                     updated: counters.updated, rejected: counters.rejected, batches: batches,
                     elapsed: (ContinuousClock.now - clock) / .seconds(1))
    }

    /// The run as reported, ending at `endTime`: `FAILED` when an error ended it before any batch committed,
    /// `PARTIAL` after some, else `SUCCESS`.
    public func result(endTime: Instant) -> ErpSyncResult {
        let status: SyncStatus = failed ? (batches > 0 ? .partial : .failed) : .success
        let elapsed = ContinuousClock.now - clock
        return ErpSyncResult(
            syncId: syncId, source: source, databaseType: request.source.type, syncType: request.syncType,
            status: status, success: status == .success, startTime: startTime.isoMillis, endTime: endTime.isoMillis,
            duration: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            recordsFetched: counters.fetched, recordsProcessed: counters.processed, recordsInserted: counters.inserted,
            recordsUpdated: counters.updated, recordsUnchanged: counters.unchanged, recordsSkipped: counters.skipped,
            recordsRejected: counters.rejected, recordsDeleted: counters.deleted, hasMore: failed ? true : hasMore,
            cursorFrom: cursorFrom, cursorTo: counters.cursorTo ?? cursorFrom, errors: errors)
    }
}

/// Live figures of a running sync, reported after each batch.
public struct SyncProgress: Sendable, Equatable {
    public var syncId: String
    public var source: String
    /// Rows fetched so far in this run.
    public var fetched: Int
    /// Rows the run expects to read (count query, capped by `maxRecords`), when known.
    public var expected: Int?
    public var inserted: Int
    public var updated: Int
    public var rejected: Int
    /// Batches committed so far.
    public var batches: Int
    /// Seconds since the run started.
    public var elapsed: Double
}
