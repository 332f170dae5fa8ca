public import Foundation
import Synchronization

/// One row of ``StreamQuery/aggregate(pendingAfter:)``: the figures of the source rows sharing a pdv, an hour of
/// `occurredAt`, a deleted value and a pending flag. Values are kept as the source returned them.
public struct SourceGroup: Sendable, Equatable {
    /// The pdv expression's value.
    public var pdv: SourceValue
    /// `occurredAt` truncated to its hour (naive values are wall times of the source's zone).
    public var hour: SourceValue
    /// The deleted expression's value (`0` when the stream has none).
    public var deleted: SourceValue
    /// `true` for rows past the checkpoint: not yet synced.
    public var isPending: Bool
    /// How many rows.
    public var count: Int
    /// `SUM` of the amount expression, exact for DECIMAL/NUMERIC columns.
    public var sum: SourceValue
    /// The smallest and largest cursor value of the group (the drill-down's read range).
    public var firstCursor: SourceValue
    public var lastCursor: SourceValue

    /// Creates a group.
    public init(pdv: SourceValue, hour: SourceValue, deleted: SourceValue, isPending: Bool, count: Int, sum: SourceValue,
                firstCursor: SourceValue, lastCursor: SourceValue) {
        self.pdv = pdv
        self.hour = hour
        self.deleted = deleted
        self.isPending = isPending
        self.count = count
        self.sum = sum
        self.firstCursor = firstCursor
        self.lastCursor = lastCursor
    }

    /// Reads a row laid out as ``StreamQuery/aggregateColumns``.
    public init(aggregateRow row: [SourceValue]) {
        self.init(pdv: row[0], hour: row[1], deleted: row[2], isPending: row[3].isTruthy, count: row[4].text.flatMap { Int($0) } ?? 0,
                  sum: row[5], firstCursor: row[6], lastCursor: row[7])
    }
}

extension SourceValue {
    /// The truth of a flag as ERPs store it (booleans, `0`/`1`, `t`, `true`, `y`, `yes`, `s`, `sim`): the rule of
    /// the deleted mapping (``RecordMapper``) and of reconciliation's flags.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let v): v
        case .integer(let v): v != 0
        default: ["1", "t", "true", "y", "yes", "s", "sim"].contains(text?.trimmingSpaces().lowercased() ?? "")
        }
    }
}

/// `tb_sales` figures of one bucket (pdv, local day) as ``ReconciliationStore/auditDays(source:zone:)`` returns them.
public struct AuditDay: Sendable, Equatable {
    public var pdv: String
    /// `YYYY-MM-DD` in the source's zone (``LocalDays``).
    public var day: String
    /// Rows in `tb_sales` that exist at the source (not marked vanished), deleted-at-source ones included.
    public var rows: Int
    /// Exact sum of their amounts (decimal text).
    public var amount: String
    /// Of ``rows``, those flagged deleted at the source.
    public var deleted: Int
    /// Rows marked vanished (gone from the source), shown apart.
    public var vanished: Int

    /// Creates figures.
    public init(pdv: String, day: String, rows: Int, amount: String, deleted: Int, vanished: Int) {
        self.pdv = pdv
        self.day = day
        self.rows = rows
        self.amount = amount
        self.deleted = deleted
        self.vanished = vanished
    }
}

/// The local day (`YYYY-MM-DD`) of instants in one time zone, remembered per UTC quarter hour: every zone's
/// offset since standard time is a multiple of 15 minutes and tzdata transitions fall on quarter hours, so all
/// instants of one quarter hour share a day. Reconciliation folds hundreds of thousands of groups or rows.
public final class LocalDays: Sendable {
    /// The zone.
    public let zone: TimeZone
    private let days = Mutex<[Int64: String]>([:])

    /// Creates a folder for `zone`.
    public init(zone: TimeZone) {
        self.zone = zone
    }

    /// The day of `instant` in the zone.
    public func day(of instant: Instant) -> String {
        let quarter = instant.seconds >= 0 ? instant.seconds / 900 : (instant.seconds - 899) / 900
        if let day = days.withLock({ $0[quarter] }) { return day }
        let day = String(instant.local(in: zone).description.prefix(10))
        days.withLock { $0[quarter] = day }
        return day
    }
}

/// One `tb_sales` row as the drill-down compares it.
public struct StoredSale: Sendable, Equatable {
    public var externalId: String
    /// The stored `content_hash`.
    public var contentHash: String
    /// The stored amount as decimal text.
    public var amount: String
    /// `true` when marked vanished (gone from the source).
    public var isVanished: Bool

    /// Creates a row.
    public init(externalId: String, contentHash: String, amount: String, isVanished: Bool) {
        self.externalId = externalId
        self.contentHash = contentHash
        self.amount = amount
        self.isVanished = isVanished
    }
}

/// The audit database's side of reconciliation: grouped figures, a bucket's rows, the open quarantine, and the
/// stored reports (`tb_reconciliation`).
public protocol ReconciliationStore: Sendable {
    /// `tb_sales` of `source` grouped by pdv and local day of `occurred_at` in `zone` (one grouped query).
    func auditDays(source: String, zone: TimeZone) async throws -> [AuditDay]

    /// The `tb_sales` rows of `source` at `pdv` with `occurred_at` in `from..<before`.
    func storedSales(source: String, pdv: String, from: Instant, before: Instant) async throws -> [StoredSale]

    /// Quarantined rows (`kind = 'record'`) of `source` whose `external_id` is not in `tb_sales` (rows loaded
    /// since are no longer open), newest first.
    func openQuarantine(source: String) async throws -> [QuarantineEntry]

    /// Stores a report: one `tb_reconciliation` row per bucket.
    func saveReconciliation(_ report: ReconciliationReport) async throws

    /// A stored report: the one with `id`, or the latest of `source`; `nil` when there is none.
    func reconciliation(source: String?, id: String?) async throws -> ReconciliationReport?
}

/// One bucket of a reconciliation: a pdv on one local day of the source.
public struct ReconciliationBucket: Sendable, Codable, Equatable {
    /// How the bucket compares.
    public enum Status: String, Sendable, Codable {
        /// Audit = source − not yet synced − quarantined, for count and sum.
        case match
        /// Nothing is missing, extra or different: the bucket holds rows past the checkpoint (whose older version
        /// may be loaded), listed in ``notYetSyncedIds``.
        case pending
        /// The figures differ: see ``missing``, ``extra``, ``different``.
        case mismatch
    }

    public var pdv: String
    /// `YYYY-MM-DD` in the source's zone; empty for rows whose date cannot be read (they are quarantined).
    public var day: String
    /// Every row at the source, deleted-flagged ones included, and the exact sum of their amounts.
    public var sourceRows: Int
    public var sourceAmount: String
    /// Of ``sourceRows``, those the deleted expression flags.
    public var sourceDeleted: Int
    /// Rows past the checkpoint: not yet synced, not missing.
    public var notYetSynced: Int
    public var notYetSyncedAmount: String
    /// Open quarantine entries of this bucket.
    public var quarantined: Int
    public var quarantinedAmount: String
    /// `tb_sales` rows that exist at the source (deleted-flagged included) and their sum.
    public var auditRows: Int
    public var auditAmount: String
    /// Of ``auditRows``, those flagged deleted at the source.
    public var auditDeleted: Int
    /// `tb_sales` rows marked vanished (gone from the source), shown apart.
    public var vanished: Int
    public var status: Status
    /// External ids at the source, not loaded and not quarantined (drill-down of a mismatched bucket).
    public var missing: [String] = []
    /// External ids in `tb_sales` that the source does not hold in this bucket.
    public var extra: [String] = []
    /// External ids whose stored content or amount differs from the source.
    public var different: [String] = []
    /// External ids of the bucket's open quarantine entries.
    public var quarantinedIds: [String] = []
    /// External ids of the bucket's rows past the checkpoint (drill-down).
    public var notYetSyncedIds: [String] = []

    /// `true` when the status is ``Status/mismatch``.
    public var isMismatch: Bool { status == .mismatch }
}

/// The outcome of one reconciliation of a source: every bucket, in (day, pdv) order.
public struct ReconciliationReport: Sendable, Codable, Equatable {
    /// `rec-<uuid>`.
    public var id: String
    public var source: String
    /// ISO 8601 UTC.
    public var startedAt: String
    /// Wall time of the whole reconciliation, in ms.
    public var durationMs: Int
    /// The checkpoint rows were compared against (`Checkpoint/summary`), `nil` before the first sync.
    public var checkpoint: String?
    /// The local-day range asked for (`YYYY-MM-DD`, inclusive), `nil` for open ends.
    public var from: String?
    public var to: String?
    public var buckets: [ReconciliationBucket]

    /// Buckets whose status is ``ReconciliationBucket/Status/mismatch``.
    public var mismatches: [ReconciliationBucket] { buckets.filter(\.isMismatch) }
    /// `true` when no bucket mismatches.
    public var isMatch: Bool { mismatches.isEmpty }
    /// Sums of the source and audit counts over all buckets.
    public var sourceRows: Int { buckets.reduce(0) { $0 + $1.sourceRows } }
    public var auditRows: Int { buckets.reduce(0) { $0 + $1.auditRows } }

    /// Creates a report.
    public init(id: String, source: String, startedAt: String, durationMs: Int, checkpoint: String?, from: String?, to: String?,
                buckets: [ReconciliationBucket]) {
        self.id = id
        self.source = source
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.checkpoint = checkpoint
        self.from = from
        self.to = to
        self.buckets = buckets
    }
}

extension ReconciliationReport {
    /// A bucket as the JSON object stored in `tb_reconciliation.bucket_json` (sorted keys).
    public static func json(_ bucket: ReconciliationBucket) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(bucket)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Rebuilds a report from its `tb_reconciliation` rows, read as text by column name (`column("day")`); `nil`
    /// when there are none. Both destinations use it.
    public init?(rows: [(String) -> String?]) {
        guard let first = rows.first else { return nil }
        let decoder = JSONDecoder()
        let buckets = rows.compactMap { column in
            column("bucket_json").flatMap { try? decoder.decode(ReconciliationBucket.self, from: Data($0.utf8)) }
        }
        self.init(id: first("reconciliation_id") ?? "", source: first("source_id") ?? "", startedAt: first("started_at") ?? "",
                  durationMs: first("duration_ms").flatMap { Int($0) } ?? 0, checkpoint: first("checkpoint"), from: first("range_from"),
                  to: first("range_to"), buckets: buckets)
    }
}
