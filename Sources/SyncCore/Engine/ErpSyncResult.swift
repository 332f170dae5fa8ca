import Foundation

/// `FULL` (re-read the whole stream, detect deletions), `INCREMENTAL` (from the checkpoint) or `REPROCESS`
/// (re-read the open quarantined keys by primary key; the checkpoint never moves).
public enum SyncType: String, Sendable, Codable, CaseIterable {
    case full = "FULL"
    case incremental = "INCREMENTAL"
    case reprocess = "REPROCESS"
}

/// Final state of a run (`RUNNING` only while it lasts, in `tb_erp_sync_audit`).
public enum SyncStatus: String, Sendable, Codable, CaseIterable {
    case running = "RUNNING"
    /// Every batch loaded.
    case success = "SUCCESS"
    /// Some batches loaded, then one failed; the checkpoint stays at the last loaded batch.
    case partial = "PARTIAL"
    /// Nothing loaded (or the run could not start).
    case failed = "FAILED"
}

/// One error of a run, as reported in ``ErpSyncResult/errors`` (the seed's `SyncError`).
public struct SyncErrorInfo: Sendable, Codable, Equatable {
    /// Machine code, e.g. `SOURCE_UNAVAILABLE`, `BATCH_FAILED`, `LOCKED`.
    public var code: SyncFailure.Code
    public var message: String
    /// `error` (the run stopped or a batch failed) or `warning`.
    public var severity: String
    /// The 1-based batch number, when the error belongs to one.
    public var batch: Int?
    /// Whether retrying later may succeed.
    public var retryable: Bool

    /// Creates an error entry.
    public init(code: SyncFailure.Code, message: String, severity: String = "error", batch: Int? = nil, retryable: Bool) {
        self.code = code
        self.message = message
        self.severity = severity
        self.batch = batch
        self.retryable = retryable
    }
}

/// The outcome of one sync run of one source: the seed's `ErpSyncResult`, extended as SPEC.md "Result
/// shape" describes. Encoded as JSON by `erp-sync sync --json` and the API.
public struct ErpSyncResult: Sendable, Codable, Equatable {
    /// UUID of the run.
    public var syncId: String
    /// Source name.
    public var source: String
    public var databaseType: DatabaseType
    public var syncType: SyncType
    public var status: SyncStatus
    /// `status == SUCCESS`.
    public var success: Bool
    /// ISO 8601 UTC.
    public var startTime: String
    /// ISO 8601 UTC.
    public var endTime: String
    /// Milliseconds.
    public var duration: Int
    /// Rows read from the source (valid + rejected), re-reads included.
    public var recordsFetched: Int
    /// Rows that passed validation.
    public var recordsProcessed: Int
    public var recordsInserted: Int
    public var recordsUpdated: Int
    public var recordsUnchanged: Int
    /// Cross-source duplicates detected (flagged rows are also in `recordsInserted`).
    public var recordsSkipped: Int
    /// Rows quarantined in `tb_sync_errors`.
    public var recordsRejected: Int
    /// Rows marked deleted at the source by a full sync.
    public var recordsDeleted: Int
    /// `true` when the run stopped before the end of the stream after reading rows: `maxRecords` ended it, or
    /// it failed after some batches. A run that read nothing (refused by the lock, a database it could not
    /// reach) learned nothing about the stream and says `false`.
    public var hasMore: Bool
    /// The position the run started from (`nil` = the beginning).
    public var cursorFrom: String?
    /// The last committed position.
    public var cursorTo: String?
    public var errors: [SyncErrorInfo]

    /// Creates a result.
    public init(syncId: String, source: String, databaseType: DatabaseType, syncType: SyncType, status: SyncStatus, success: Bool,
                startTime: String, endTime: String, duration: Int, recordsFetched: Int, recordsProcessed: Int, recordsInserted: Int,
                recordsUpdated: Int, recordsUnchanged: Int, recordsSkipped: Int, recordsRejected: Int, recordsDeleted: Int,
                hasMore: Bool, cursorFrom: String?, cursorTo: String?, errors: [SyncErrorInfo]) {
        self.syncId = syncId
        self.source = source
        self.databaseType = databaseType
        self.syncType = syncType
        self.status = status
        self.success = success
        self.startTime = startTime
        self.endTime = endTime
        self.duration = duration
        self.recordsFetched = recordsFetched
        self.recordsProcessed = recordsProcessed
        self.recordsInserted = recordsInserted
        self.recordsUpdated = recordsUpdated
        self.recordsUnchanged = recordsUnchanged
        self.recordsSkipped = recordsSkipped
        self.recordsRejected = recordsRejected
        self.recordsDeleted = recordsDeleted
        self.hasMore = hasMore && recordsFetched > 0
        self.cursorFrom = cursorFrom
        self.cursorTo = cursorTo
        self.errors = errors
    }
}

/// How destinations close the audit row of a run that died without finishing (found `RUNNING` by the next
/// run of its source, which holds the lock).
public enum AbandonedRun {
    /// `error_details` of such a row: one `ABANDONED` error.
    public static var errorJSON: String {
        let error = SyncErrorInfo(code: .abandoned, message: "the process ended before the run finished; batches it committed are kept",
                                  retryable: true)
        return String(decoding: (try? JSONEncoder().encode([error])) ?? Data("[]".utf8), as: UTF8.self)
    }
}
