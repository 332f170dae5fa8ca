public import SyncCore
public import Foundation
import SQLiteNIO
import Synchronization

/// Reconciliation on the embedded audit database. Amounts are stored as exact text, which SQLite's `sum()`
/// would add as floating point, and SQLite knows no time zones, so `tb_sales` is read once in one pass and
/// grouped into local days (``LocalDays``) and summed exactly here.
extension SQLiteDestination: ReconciliationStore {
    /// Scale the slot sums are kept at: enough digits for every ISO 4217 currency (at most 4).
    private static let sumScale = 6

    public func auditDays(source: String, zone: TimeZone) async throws -> [AuditDay] {
        struct Figures {
            var rows = 0
            var amount: Int128 = 0
            var deleted = 0
            var vanished = 0
        }
        let days = LocalDays(zone: zone)
        let buckets = Mutex<[String: [String: Figures]]>([:])
        try await serialized {
            do {
                try await connection.query("""
                    SELECT pdv, occurred_at, amount, deleted_at_source IS NOT NULL AS deleted, deleted_reason FROM tb_sales WHERE source_id = ?
                    """, [.text(source)]) { row in
                    guard let occurred = Instant(iso8601: row.column("occurred_at")?.string ?? "") else { return }
                    let day = days.day(of: occurred)
                    let pdv = row.column("pdv")?.string ?? ""
                    let amount = (try? Amount(parsing: row.column("amount")?.string ?? "", scale: Self.sumScale))?.minorUnits ?? 0
                    let isVanished = row.column("deleted_reason")?.string == "vanished"
                    let isDeleted = row.column("deleted")?.integer == 1
                    buckets.withLock { buckets in
                        var figures = buckets[pdv, default: [:]][day, default: Figures()]
                        if isVanished {
                            figures.vanished += 1
                        } else {
                            figures.rows += 1
                            figures.amount += amount
                            if isDeleted { figures.deleted += 1 }
                        }
                        buckets[pdv, default: [:]][day] = figures
                    }
                }
            } catch {
                throw SyncFailure.sqlite(error, code: .destinationFailed, context: "summing tb_sales of \(source)")
            }
        }
        return buckets.withLock { buckets in
            buckets.flatMap { pdv, byDay in
                byDay.map { day, figures in
                    AuditDay(pdv: pdv, day: day, rows: figures.rows, amount: Amount(minorUnits: figures.amount, scale: Self.sumScale).description,
                             deleted: figures.deleted, vanished: figures.vanished)
                }
            }
        }
    }

    public func storedSales(source: String, pdv: String, from: Instant, before: Instant) async throws -> [StoredSale] {
        try await serialized {
            try await query("""
                SELECT external_id, content_hash, amount, deleted_reason FROM tb_sales
                WHERE source_id = ? AND pdv = ? AND occurred_at >= ? AND occurred_at < ?
                """, [.text(source), .text(pdv), .text(from.description), .text(before.description)])
        }.map { row in
            StoredSale(externalId: row.column("external_id")?.string ?? "", contentHash: row.column("content_hash")?.string ?? "",
                       amount: row.column("amount")?.string ?? "", isVanished: row.column("deleted_reason")?.string == "vanished")
        }
    }

    public func openQuarantine(source: String) async throws -> [QuarantineEntry] {
        try await serialized {
            try await query("""
                SELECT * FROM tb_sync_errors e WHERE e.source_id = ? AND e.kind = 'record'
                    AND NOT EXISTS (SELECT 1 FROM tb_sales s WHERE s.source_id = e.source_id AND s.external_id = e.external_id)
                ORDER BY e.id DESC
                """, [.text(source)])
        }.map { row in QuarantineEntry(errorRow: { row.column($0)?.string }) }
    }

    public func saveReconciliation(_ report: ReconciliationReport) async throws {
        try await exclusiveTransaction("saving reconciliation \(report.id)") {
            for bucket in report.buckets {
                try await query("""
                    INSERT INTO tb_reconciliation (reconciliation_id, source_id, pdv, day, source_rows, source_amount, not_yet_synced, quarantined,
                        audit_rows, audit_amount, status, bucket_json, started_at, duration_ms, checkpoint, range_from, range_to)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(report.id), .text(report.source), .text(bucket.pdv), .text(bucket.day), .integer(bucket.sourceRows),
                          .text(bucket.sourceAmount), .integer(bucket.notYetSynced), .integer(bucket.quarantined), .integer(bucket.auditRows),
                          .text(bucket.auditAmount), .text(bucket.status.rawValue), .text(ReconciliationReport.json(bucket)),
                          .text(report.startedAt), .integer(report.durationMs), report.checkpoint.map { .text($0) } ?? .null,
                          report.from.map { .text($0) } ?? .null, report.to.map { .text($0) } ?? .null])
            }
        }
    }

    public func reconciliation(source: String?, id: String?) async throws -> ReconciliationReport? {
        func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
        let rows = try await serialized {
            try await query("""
                SELECT * FROM tb_reconciliation WHERE reconciliation_id = coalesce(?1, (
                    SELECT reconciliation_id FROM tb_reconciliation WHERE (?2 IS NULL OR source_id = ?2) ORDER BY started_at DESC LIMIT 1))
                ORDER BY day, pdv
                """, [text(id), text(source)])
        }
        return ReconciliationReport(rows: rows.map { row in { row.column($0)?.string } })
    }
}
