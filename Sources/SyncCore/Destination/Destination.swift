import Foundation

/// The audit database: `tb_sales`, the checkpoints, the audit trail and the quarantine.
///
/// A destination is a narrow transactional store: it runs its dialect's statement for each step the core
/// asks for. The order of the steps of a batch, the counters, the dedup rule and the checkpoint are the
/// core's (``BatchCommit``); what a destination adds on its own is how it stores (WAL, COPY, binary arrays)
/// and how it locks a source.
public protocol Destination: Sendable {
    /// Creates or migrates the schema (versioned migrations, idempotent).
    func migrate() async throws

    /// How long a run lock (a lease) stays valid without being renewed, in seconds (`destination.leasePeriod`,
    /// default 60). The engine renews it every third of this period while a run is alive (``SyncEngine``), and
    /// every batch's commit renews it through ``DestinationTransaction/renewLock(source:syncId:)``; a lease not
    /// renewed for this long may be taken over by another run.
    var leaseSeconds: Int { get }

    /// Whether a batch's transaction may begin while the one before it is still committing, on another connection
    /// (``BatchCommit/commit(to:run:after:)``): the database locks rows, not the whole store, and each statement
    /// reads what committed before it (PostgreSQL's `READ COMMITTED`), so a key inserted by both waits for the first
    /// to commit and then fails the second as a unique violation. Default `false`: one transaction at a time (a
    /// single-writer store such as SQLite would make the second wait for the first anyway).
    var overlapsBatches: Bool { get }

    /// Claims the run lock (lease) of a source: only when no run holds it or its holder's lease has expired. A
    /// run found `RUNNING` by the new holder died without finishing: its audit row is closed as `FAILED` with an
    /// ``AbandonedRun`` error.
    /// - Parameter slot: for a scheduled run, its slot: claimed in the same transaction as the lease, so that each
    ///   slot of each source runs at most once across every process sharing the destination.
    /// - Returns: `nil` when it was claimed, or why not (``LockRefusal``).
    func acquireLock(source: String, syncId: String, slot: ScheduleSlot?) async throws -> LockRefusal?

    /// Releases a lock taken by ``acquireLock(source:syncId:slot:)`` (a no-op when `syncId` no longer holds it).
    func releaseLock(source: String, syncId: String) async throws

    /// The saved checkpoints of a source.
    func loadState(source: String) async throws -> SyncState

    /// Writes the `RUNNING` audit row of a run (counters zero).
    func beginRun(_ run: SyncRun) async throws

    /// Runs `body` in one transaction: everything it wrote becomes durable together when it returns (if
    /// `commits`), and nothing of it when it throws or when `commits` is false (rolled back: a dry run).
    /// - Parameters:
    ///   - context: what the transaction does, for error messages (`loading batch 3 of loja-centro`).
    ///   - commits: `false` rolls back even when `body` succeeds.
    /// - Throws: what `body` threw, or a ``SyncFailure`` of the destination (transient ones are retried by the engine).
    func transaction<T: Sendable>(_ context: String, commits: Bool, _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T

    /// The primary keys of open quarantine entries of `source`, optionally only those with reason code `reason`
    /// or with an external id in `externalIds`, for `reprocess` (from each entry's `key_json`).
    func openQuarantinedKeys(source: String, reason: String?, externalIds: [String]?) async throws -> [[SourceValue]]

    /// Whether `source` has records held out of `tb_sales` as skipped duplicates (`tb_sync_duplicates`, action
    /// `skip`, kept when the dedup action was `skip`, whatever it is now): an insert into `tb_sales` does not meet
    /// them, so that source's batches must probe the stored keys (``RunPlan/assumesNewKeys``).
    func hasSkippedDuplicates(source: String) async throws -> Bool

    /// Whether a source other than `source` has records in `tb_sales` or holds a live lease (``DedupIndex``: only
    /// then can a record of `source` meet a duplicate, or another run write records it could meet). Read without a
    /// lock: an answer that is stale at once is still safe for ``DedupIndex`` (a source that arrives builds the index
    /// itself before it writes).
    func hasOtherSources(than source: String) async throws -> Bool

    /// Drops the match-shaped index of `tb_sales` that serves ``DestinationTransaction/dedupCandidates(excludingSource:matching:)``
    /// (`tb_sales_dedup`) for a first load of `source` (``DedupIndex``), if no pdv of `tb_sales_pdvs` has two sources
    /// (then no batch probes), checked atomically with the drop; waits a few seconds at most for the table.
    /// - Returns: whether the index is now absent for this run (`false`: a probe may need it, or the table was busy).
    func deferDedupIndex(for source: String) async throws -> Bool

    /// Adds `pdvs` for `source` to `tb_sales_pdvs` (before its records, which a batch then writes) and builds the index
    /// ``deferDedupIndex(for:)`` drops if it is missing (otherwise a catalog read), in one transaction: once the index
    /// exists the pdvs are shared for every later ``deferDedupIndex(for:)``, which then leaves it.
    func buildDedupIndex(registering pdvs: [String], for source: String) async throws

    /// Whether a source other than `source` has records at one of `pdvs`, or, for `nil`, at a pdv `source` has
    /// records at (`tb_sales_pdvs`): only then can a record of `source` have an original, and its batches probe
    /// (``DestinationTransaction/pdvs(ofSourcesOtherThan:among:)``, ``DedupIndex``).
    func sharesPdvs(source: String, among pdvs: [String]?) async throws -> Bool

    /// Closes the audit row of a run: status, end time, duration, `has_more` and the errors (also copied into
    /// `tb_sync_errors` as `kind = 'run'`). The counters are not written here: ``DestinationTransaction/updateRun(syncId:counters:)``
    /// is their one writer.
    func finishRun(_ result: ErpSyncResult) async throws

    /// Closes connections. Safe to call more than once.
    func close() async
}

extension Destination {
    /// One batch transaction at a time.
    public var overlapsBatches: Bool { false }

    /// Runs `body` in one transaction that commits when it returns (``transaction(_:commits:_:)``).
    public func transaction<T: Sendable>(_ context: String, _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T {
        try await transaction(context, commits: true, body)
    }
}

/// A scheduled slot: the wall-clock instant a scheduled run was due at and its kind. Slots are the same
/// instants on every process with the same schedule (``ScheduleConfig``), which is how a fleet of `serve`
/// instances runs each slot once.
public struct ScheduleSlot: Sendable, Equatable, Hashable {
    /// The instant the run was due (a multiple of the interval since the Unix epoch, or the daily full-sync time).
    public var dueAt: Instant
    /// `INCREMENTAL` or `FULL`.
    public var syncType: SyncType

    /// Creates a slot.
    public init(dueAt: Instant, syncType: SyncType) {
        self.dueAt = dueAt
        self.syncType = syncType
    }
}

/// The rule by which a lease is taken over before it expires: its holder is a process of this host that no longer
/// exists (`kill -9`, a crash), known by `kill(pid, 0)` failing with `ESRCH` (POSIX). Its lease would otherwise block
/// the source for the whole lease period after a restart. A pid reused by a live process keeps the lease until it
/// expires (the safe side); a holder on another host is judged by expiry only. Fencing keeps this safe even if two
/// hosts share a name: the old holder's next batch is refused (`LOCK_LOST`).
public enum LeaseHolder {
    /// Whether the holder `pid` on `host` is gone, seen from process `thisPid` on `thisHost`.
    public static func isGone(host: String, pid: Int, thisHost: String, thisPid: Int) -> Bool {
        host == thisHost && pid > 0 && pid != thisPid && kill(pid_t(pid), 0) != 0 && errno == ESRCH
    }
}

/// Why ``Destination/acquireLock(source:syncId:slot:)`` did not claim a source.
public enum LockRefusal: Sendable, Equatable {
    /// Another run holds an unexpired lease on the source (its description: run, instance, host, expiry).
    case held(by: String)
    /// The scheduled slot was already claimed by another run (its description), here or on another instance.
    case slotTaken(by: String)

    /// The description of the holder or claimer.
    public var holder: String {
        switch self {
        case .held(let holder), .slotTaken(let holder): holder
        }
    }
}

/// The statements of one destination transaction, one method per step of the core's commit sequence
/// (``BatchCommit``, ``SyncEngine``). Each runs inside the transaction that ``Destination/transaction(_:_:)`` opened.
public protocol DestinationTransaction: Sendable {
    /// The fencing check: extends the lease of `source` by ``Destination/leaseSeconds`` if run `syncId` still holds
    /// it and it has not expired, locking it until the transaction ends (so no other run can take it over before
    /// this transaction commits).
    /// - Returns: `false` when the lease expired or another run holds it now (the batch must not commit).
    func renewLock(source: String, syncId: String) async throws -> Bool

    /// What is stored under each of `externalIds` of `source`: `tb_sales` rows, and skipped duplicates held
    /// in `tb_sync_duplicates` (action `skip`). Keys stored nowhere are absent.
    func storedRecords(source: String, externalIds: [String]) async throws -> [String: ExistingRecord]

    /// Records of sources other than `excludingSource` that are not themselves flagged duplicates and match one of
    /// `probes` (pdv, operator, amount, currency equal; `occurred_at` within the probe's range), each once, with the
    /// keys of the records that already claimed it as their original (``DedupCandidate/claimedBy``). May return
    /// more (the plan matches exactly), never fewer.
    func dedupCandidates(excludingSource: String, matching probes: [DedupProbe]) async throws -> [DedupCandidate]

    /// Which of `pdvs` a source other than `source` has records at (`tb_sales_pdvs`, which ``registerPdvs(_:source:)``
    /// keeps): a record can have an original only at those, so the core probes for dedup candidates only there (none
    /// at all for a single source, or for sources whose pdvs are their own, as a fleet of stores' are). May name more
    /// pdvs (a pdv a record has left), never fewer; its cost must not grow with the records of `tb_sales`.
    func pdvs(ofSourcesOtherThan source: String, among pdvs: [String]) async throws -> Set<String>

    /// Writes records into `tb_sales`: `writes.new` are inserted (no row under their key), `writes.changed`
    /// replace their stored row (content, `sync_id`, `updated_at`; `last_seen_pass` kept unless `passId` is
    /// set; a soft delete keeps its first `deleted_at_source`, a revived row clears it). New rows get
    /// `first_sync_id = syncId`; `passId` is stamped as `last_seen_pass` on every written row when set.
    func writeSales(_ writes: SalesWrites, syncId: String, passId: String?) async throws

    /// Adds `pdvs` for `source` to `tb_sales_pdvs` (those already there are left): the pdvs of the records a batch
    /// writes (``SalesWrites/pdvs``), in its transaction. An overlapped batch adds them only after the batch before it
    /// committed, which may hold the same rows uncommitted.
    func registerPdvs(_ pdvs: [String], source: String) async throws

    /// Upserts `tb_sync_duplicates` entries keyed by `(source_id, external_id)`; an empty `duplicateOf` keeps
    /// the stored original.
    func recordDuplicates(_ duplicates: [DuplicateWrite], syncId: String) async throws

    /// Stamps `passId` as `last_seen_pass` on the stored rows of `externalIds` (rows a full pass saw unchanged
    /// or rejected: they exist at the source).
    func markSeen(source: String, externalIds: [String], passId: String) async throws

    /// Upserts quarantined rows into `tb_sync_errors` by `(source_id, fingerprint)`: a row met again with the
    /// same reason counts one more occurrence instead of a second entry (and is open again if it had been
    /// resolved); the row's key is kept (`key_json`) for ``Destination/openQuarantinedKeys(source:reason:externalIds:)``.
    /// Older open entries of the same external id are closed as `superseded`, and a `tb_sales` record of that id
    /// is marked stale (`quarantined_since` kept from the first time, `quarantine_reason`): the audit copy is no
    /// longer what the ERP holds.
    func quarantine(_ rows: [RejectedRow], source: String, syncId: String, batch: Int) async throws

    /// Whether `source` has an open quarantine entry (`tb_sync_errors`, kind `record`, unresolved): without one a
    /// batch has nothing to resolve, and the core skips ``resolveQuarantine(source:loaded:stale:syncId:)`` (whose
    /// list of every loaded key costs the server more than the check).
    func hasOpenQuarantine(source: String) async throws -> Bool

    /// A valid version of each of `loaded` was just loaded: their open quarantine entries are closed as `loaded` by
    /// `syncId`, and the stale mark of `stale` (records the batch's probe found marked) is cleared.
    func resolveQuarantine(source: String, loaded: [String], stale: [String], syncId: String) async throws

    /// Saves the checkpoints of `source` (`tb_sync_state`).
    func saveState(_ state: SyncState, source: String, syncId: String) async throws

    /// Writes the run's counters and `cursor_to` into its audit row, as totals (not increments).
    func updateRun(syncId: String, counters: RunCounters) async throws

    /// The last steps of a batch (``BatchCommit``): saves `state` when it is not `nil`
    /// (``saveState(_:source:syncId:)``), then writes the run's counters (``updateRun(syncId:counters:)``). The
    /// default runs those two; a destination across a network writes both in one round trip.
    func saveProgress(_ state: SyncState?, source: String, syncId: String, counters: RunCounters) async throws

    /// Marks deleted at the source (`deleted_reason = 'vanished'`, never removed) the rows of `source` that are
    /// not deleted yet, were not seen by `pass` and were last written before the pass started.
    /// - Returns: how many rows were marked.
    func markVanished(source: String, pass: SyncState.FullPass, syncId: String) async throws -> Int
}

extension DestinationTransaction {
    public func saveProgress(_ state: SyncState?, source: String, syncId: String, counters: RunCounters) async throws {
        if let state { try await saveState(state, source: source, syncId: syncId) }
        try await updateRun(syncId: syncId, counters: counters)
    }
}

/// The records a batch inserts, in the batch's order, each with the original it duplicates when flagged
/// (`source|externalId`). A batch whose records are all new and none flagged (most of a first load) keeps its own
/// record array here, so planning it copies nothing: an appended copy of 5,000 records is a megabyte of fresh
/// memory per batch, each page of it faulted in.
public struct NewRecords: RandomAccessCollection, Sendable {
    /// The records, in order.
    public private(set) var records: [SaleTransaction]
    /// The original of each flagged record, by its position in ``records``.
    private var originals: [Int: String] = [:]

    /// The records, none flagged.
    public init(_ records: [SaleTransaction] = []) {
        self.records = records
    }

    public var startIndex: Int { records.startIndex }
    public var endIndex: Int { records.endIndex }

    public subscript(position: Int) -> (record: SaleTransaction, duplicateOf: String?) {
        (records[position], originals[position])
    }

    /// Adds `record`, flagged as a duplicate of `original` when given.
    public mutating func append(_ record: SaleTransaction, duplicateOf original: String?) {
        if let original { originals[records.count] = original }
        records.append(record)
    }

    /// Makes room for `capacity` records.
    public mutating func reserveCapacity(_ capacity: Int) {
        records.reserveCapacity(capacity)
    }
}

/// The `tb_sales` writes of a batch, split by whether the destination holds the key yet.
public struct SalesWrites: Sendable {
    /// Records to insert, each with the original it duplicates when flagged (`source|externalId`).
    public var new: NewRecords
    /// Records whose stored row is replaced.
    public var changed: [SaleTransaction]

    /// Creates the writes.
    public init(new: NewRecords, changed: [SaleTransaction]) {
        self.new = new
        self.changed = changed
    }

    /// `true` when there is nothing to write.
    public var isEmpty: Bool { new.isEmpty && changed.isEmpty }

    /// The distinct pdvs of the records written, in order of first appearance: what `tb_sales_pdvs` gains
    /// (``DestinationTransaction/registerPdvs(_:source:)``).
    public var pdvs: [String] { (new.records + changed).distinctPdvs }
}

/// One `tb_sync_duplicates` entry to write.
public struct DuplicateWrite: Sendable {
    public var record: SaleTransaction
    /// `source|externalId` of the original, or empty to keep the stored one.
    public var duplicateOf: String
    public var action: DeduplicationOptions.Action

    /// Creates an entry.
    public init(record: SaleTransaction, duplicateOf: String, action: DeduplicationOptions.Action) {
        self.record = record
        self.duplicateOf = duplicateOf
        self.action = action
    }
}

/// The checkpoints of one source.
public struct SyncState: Sendable, Equatable, Codable {
    /// Where the next incremental run continues (the last committed position of a forward read).
    public var checkpoint: Checkpoint?
    /// An unfinished full pass that a later `--full` run continues.
    public var fullPass: FullPass?
    /// The range behind the checkpoint the last incremental run read in full, with its fingerprint, so the next
    /// run re-reads only what changed in its lookback window; `nil` (re-read the whole window) after any batch.
    public var lookback: LookbackWindow?

    /// Creates a state.
    public init(checkpoint: Checkpoint? = nil, fullPass: FullPass? = nil, lookback: LookbackWindow? = nil) {
        self.checkpoint = checkpoint
        self.fullPass = fullPass
        self.lookback = lookback
    }

    /// A full pass in progress.
    public struct FullPass: Sendable, Equatable, Codable {
        /// The syncId of the run that started the pass; rows read by the pass are stamped with it.
        public var passId: String
        /// The last committed position of the pass.
        public var position: Checkpoint?
        /// When the pass began. Rows written after it (by incremental runs between two runs of the pass, e.g.
        /// a late commit behind the pass's position) are known to exist and are never marked vanished by it.
        public var startedAt: Instant

        /// Creates a pass record.
        public init(passId: String, position: Checkpoint?, startedAt: Instant) {
            self.passId = passId
            self.position = position
            self.startedAt = startedAt
        }
    }
}

/// How a committed batch's records were classified.
public struct BatchOutcome: Sendable, Equatable {
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    /// Duplicates of another source's record (flagged or skipped).
    public var skipped = 0
    public var rejected = 0

    /// All zero.
    public init() {}
}

/// Read access to the audit trail, for `status`, `history`, `errors` and the API.
public protocol AuditLog: Sendable {
    /// The latest runs, newest first, optionally of one source.
    func history(source: String?, limit: Int) async throws -> [AuditEntry]

    /// What `tb_sales` holds for a source: row counts and exact amount sums.
    func totals(source: String) async throws -> SourceTotals

    /// The holder of a source's run lock, if any (`syncId` and owner description).
    func lockHolder(source: String) async throws -> String?

    /// `tb_sync_errors` entries matching `filter`, newest recorded first (`id` descending), for paging.
    func quarantine(_ filter: QuarantineFilter) async throws -> [QuarantineEntry]

    /// The audit row of one run, `nil` when no run has that `syncId`.
    func run(syncId: String) async throws -> AuditEntry?
}

/// Which `tb_sync_errors` entries ``AuditLog/quarantine(_:)`` returns; every set field must match.
public struct QuarantineFilter: Sendable, Equatable {
    /// The source's configured name.
    public var source: String?
    /// The run that last met the entry.
    public var syncId: String?
    /// A ``RejectedRow/Reason`` code, `DUPLICATE`, or a run error code.
    public var reasonCode: String?
    /// `record` (a quarantined row) or `run` (a run error).
    public var kind: String?
    /// Keyset paging: only entries with a smaller `id` (the last `id` of the previous page).
    public var beforeId: Int64?
    /// At most this many entries.
    public var limit: Int
    /// Also entries already resolved (default: open entries and run errors only).
    public var includeResolved: Bool

    /// Creates a filter.
    public init(source: String? = nil, syncId: String? = nil, reasonCode: String? = nil, kind: String? = nil, beforeId: Int64? = nil,
                limit: Int, includeResolved: Bool = false) {
        self.includeResolved = includeResolved
        self.source = source
        self.syncId = syncId
        self.reasonCode = reasonCode
        self.kind = kind
        self.beforeId = beforeId
        self.limit = limit
    }
}

/// One `tb_erp_sync_audit` row.
public struct AuditEntry: Sendable, Codable, Equatable {
    /// The run as reported (counters as committed; `RUNNING` runs show progress so far).
    public var result: ErpSyncResult
    public var triggeredBy: String
    public var isManual: Bool

    /// Creates an entry.
    public init(result: ErpSyncResult, triggeredBy: String, isManual: Bool) {
        self.result = result
        self.triggeredBy = triggeredBy
        self.isManual = isManual
    }
}

/// One `tb_sync_errors` row: a quarantined source row (`kind == "record"`) or a run error (`"run"`).
public struct QuarantineEntry: Sendable, Codable, Equatable {
    public var id: Int64
    public var kind: String
    public var syncId: String
    public var source: String
    public var externalId: String?
    /// A ``RejectedRow/Reason`` code, `DUPLICATE`, or a run error code.
    public var reasonCode: String
    public var message: String
    /// The row's raw values as JSON (records only).
    public var rawJSON: String?
    /// ISO 8601 UTC.
    public var firstSeenAt: String
    public var lastSeenAt: String
    /// How many runs met this same row with this same reason.
    public var occurrences: Int
    /// When the entry was closed (ISO 8601 UTC); `nil` while it is open.
    public var resolvedAt: String?
    /// The run that closed it.
    public var resolvedBySync: String?
    /// `loaded` (a valid version of the key was loaded) or `superseded` (the key was rejected again for another reason).
    public var resolution: String?

    /// Creates an entry.
    public init(id: Int64, kind: String, syncId: String, source: String, externalId: String?, reasonCode: String, message: String,
                rawJSON: String?, firstSeenAt: String, lastSeenAt: String, occurrences: Int, resolvedAt: String? = nil,
                resolvedBySync: String? = nil, resolution: String? = nil) {
        self.resolvedAt = resolvedAt
        self.resolvedBySync = resolvedBySync
        self.resolution = resolution
        self.id = id
        self.kind = kind
        self.syncId = syncId
        self.source = source
        self.externalId = externalId
        self.reasonCode = reasonCode
        self.message = message
        self.rawJSON = rawJSON
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
        self.occurrences = occurrences
    }
}

/// Row counts and sums of a source in `tb_sales`.
public struct SourceTotals: Sendable, Codable, Equatable {
    /// All rows, deleted ones included.
    public var rows: Int
    /// Rows marked deleted at the source.
    public var deleted: Int
    /// Rows flagged as duplicates of another source.
    public var duplicates: Int
    /// Exact sum of `amount` per currency, over all rows (`"67416.51"`).
    public var amountByCurrency: [String: String]

    /// Creates totals.
    public init(rows: Int, deleted: Int, duplicates: Int, amountByCurrency: [String: String]) {
        self.rows = rows
        self.deleted = deleted
        self.duplicates = duplicates
        self.amountByCurrency = amountByCurrency
    }
}

extension AuditEntry {
    /// Reads a `tb_erp_sync_audit` row from its columns as text (`column("status")`): counters as digits,
    /// booleans as `1`/`0` or `true`/`false`, `error_details` as JSON, NULL as `nil`. Both destinations use it.
    public init(auditRow column: (String) -> String?) {
        func int(_ name: String) -> Int { column(name).flatMap { Int($0) } ?? 0 }
        func bool(_ name: String) -> Bool { ["1", "true", "t"].contains(column(name) ?? "") }
        let status = SyncStatus(rawValue: column("status") ?? "") ?? .failed
        let errors = column("error_details").flatMap { try? JSONDecoder().decode([SyncErrorInfo].self, from: Data($0.utf8)) } ?? []
        let result = ErpSyncResult(
            syncId: column("sync_id") ?? "", source: column("source_id") ?? "",
            databaseType: DatabaseType(rawValue: column("database_type") ?? "") ?? .sqlite,
            syncType: SyncType(rawValue: column("sync_type") ?? "") ?? .incremental, status: status, success: status == .success,
            startTime: column("started_at") ?? "", endTime: column("ended_at") ?? "", duration: int("duration_ms"),
            recordsFetched: int("records_fetched"), recordsProcessed: int("records_processed"), recordsInserted: int("records_inserted"),
            recordsUpdated: int("records_updated"), recordsUnchanged: int("records_unchanged"), recordsSkipped: int("records_skipped"),
            recordsRejected: int("records_rejected"), recordsDeleted: int("records_deleted"), hasMore: bool("has_more"),
            cursorFrom: column("cursor_from"), cursorTo: column("cursor_to") ?? column("cursor_from"), errors: errors)
        self.init(result: result, triggeredBy: column("triggered_by") ?? "", isManual: bool("is_manual"))
    }
}

extension QuarantineEntry {
    /// Reads a `tb_sync_errors` row from its columns as text (`raw_json` as JSON text, NULL as `nil`).
    public init(errorRow column: (String) -> String?) {
        self.init(id: column("id").flatMap { Int64($0) } ?? 0, kind: column("kind") ?? "", syncId: column("sync_id") ?? "",
                  source: column("source_id") ?? "", externalId: column("external_id"), reasonCode: column("reason_code") ?? "",
                  message: column("message") ?? "", rawJSON: column("raw_json"), firstSeenAt: column("first_seen_at") ?? "",
                  lastSeenAt: column("last_seen_at") ?? "", occurrences: column("occurrences").flatMap { Int($0) } ?? 0,
                  resolvedAt: column("resolved_at"), resolvedBySync: column("resolved_by_sync"), resolution: column("resolution"))
    }
}
