import Foundation

/// The audit database: `tb_sales`, the checkpoints, the audit trail and the quarantine.
///
/// One ``commit(_:)`` is one transaction: the batch's rows, its rejected rows, the new checkpoint and the
/// run's counters become durable together or not at all (SPEC.md "Loading the destination correctly").
public protocol Destination: Sendable {
    /// Creates or migrates the schema (versioned migrations, idempotent).
    func migrate() async throws

    /// Claims the run lock of a source.
    /// - Returns: `nil` when it was claimed, or a description of the run that holds it.
    func acquireLock(source: String, syncId: String) async throws -> String?

    /// Releases a lock taken by ``acquireLock(source:syncId:)``.
    func releaseLock(source: String, syncId: String) async throws

    /// The saved checkpoints of a source.
    func loadState(source: String) async throws -> SyncState

    /// Writes the `RUNNING` audit row of a run.
    func beginRun(_ run: RunRecord) async throws

    /// Loads one batch atomically and returns how its records were classified.
    func commit(_ batch: BatchCommit) async throws -> BatchOutcome

    /// Ends a full pass: rows of `source` not seen by the pass, not written since it started and not yet
    /// deleted are marked deleted at the source (never removed); the incremental checkpoint moves to
    /// `checkpoint` and the pass is cleared from the state.
    /// - Returns: how many rows were marked.
    func finishFullPass(source: String, pass: SyncState.FullPass, syncId: String, checkpoint: Checkpoint?) async throws -> Int

    /// Writes the final audit row (status, end time, duration, errors).
    func finishRun(_ result: ErpSyncResult) async throws

    /// Closes connections. Safe to call more than once.
    func close() async
}

/// The checkpoints of one source.
public struct SyncState: Sendable, Equatable, Codable {
    /// Where the next incremental run continues (the last committed position of a forward read).
    public var checkpoint: Checkpoint?
    /// An unfinished full pass that a later `--full` run continues.
    public var fullPass: FullPass?

    /// Creates a state.
    public init(checkpoint: Checkpoint? = nil, fullPass: FullPass? = nil) {
        self.checkpoint = checkpoint
        self.fullPass = fullPass
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

/// The start of a run, as written to `tb_erp_sync_audit` with status `RUNNING`.
public struct RunRecord: Sendable {
    public var syncId: String
    public var source: String
    public var databaseType: DatabaseType
    public var syncType: SyncType
    public var startTime: Instant
    public var cursorFrom: String?
    /// Who asked: `cli`, `api:<user>`, `scheduler`.
    public var triggeredBy: String
    public var isManual: Bool

    /// Creates a run record.
    public init(syncId: String, source: String, databaseType: DatabaseType, syncType: SyncType, startTime: Instant,
                cursorFrom: String?, triggeredBy: String, isManual: Bool) {
        self.syncId = syncId
        self.source = source
        self.databaseType = databaseType
        self.syncType = syncType
        self.startTime = startTime
        self.cursorFrom = cursorFrom
        self.triggeredBy = triggeredBy
        self.isManual = isManual
    }
}

/// One batch to load in one transaction.
public struct BatchCommit: Sendable {
    /// The run.
    public var syncId: String
    public var source: String
    /// 1-based batch number within the run.
    public var batchNumber: Int
    /// Valid records.
    public var records: [SaleTransaction]
    /// Rows rejected by validation.
    public var rejected: [RejectedRow]
    /// Rows fetched from the source for this batch (valid + rejected).
    public var fetched: Int
    /// The state to save with the batch, or `nil` to keep the saved one (lookback re-reads).
    public var state: SyncState?
    /// During a full pass: its id, stamped on every row seen (also the external ids of rejected rows).
    public var fullPassId: String?
    /// Cross-source duplicate detection.
    public var deduplication: DeduplicationOptions

    /// Creates a batch.
    public init(syncId: String, source: String, batchNumber: Int, records: [SaleTransaction], rejected: [RejectedRow],
                fetched: Int, state: SyncState?, fullPassId: String?, deduplication: DeduplicationOptions) {
        self.syncId = syncId
        self.source = source
        self.batchNumber = batchNumber
        self.records = records
        self.rejected = rejected
        self.fetched = fetched
        self.state = state
        self.fullPassId = fullPassId
        self.deduplication = deduplication
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

    /// Quarantined rows and run errors, newest first, optionally of one source.
    func quarantine(source: String?, limit: Int) async throws -> [QuarantineEntry]

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

    /// Creates a filter.
    public init(source: String? = nil, syncId: String? = nil, reasonCode: String? = nil, kind: String? = nil, beforeId: Int64? = nil,
                limit: Int) {
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

    /// Creates an entry.
    public init(id: Int64, kind: String, syncId: String, source: String, externalId: String?, reasonCode: String, message: String,
                rawJSON: String?, firstSeenAt: String, lastSeenAt: String, occurrences: Int) {
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
            cursorFrom: column("cursor_from"), cursorTo: column("cursor_to"), errors: errors)
        self.init(result: result, triggeredBy: column("triggered_by") ?? "", isManual: bool("is_manual"))
    }
}

extension QuarantineEntry {
    /// Reads a `tb_sync_errors` row from its columns as text (`raw_json` as JSON text, NULL as `nil`).
    public init(errorRow column: (String) -> String?) {
        self.init(id: column("id").flatMap { Int64($0) } ?? 0, kind: column("kind") ?? "", syncId: column("sync_id") ?? "",
                  source: column("source_id") ?? "", externalId: column("external_id"), reasonCode: column("reason_code") ?? "",
                  message: column("message") ?? "", rawJSON: column("raw_json"), firstSeenAt: column("first_seen_at") ?? "",
                  lastSeenAt: column("last_seen_at") ?? "", occurrences: column("occurrences").flatMap { Int($0) } ?? 0)
    }
}
