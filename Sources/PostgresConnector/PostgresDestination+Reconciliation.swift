public import SyncCore
public import Foundation

/// Reconciliation on the PostgreSQL audit database: `numeric` sums are exact in SQL, so `tb_sales` is grouped
/// by the server in one query.
extension PostgresDestination: ReconciliationStore {
    /// Groups by `to_char(occurred_at AT TIME ZONE zone, 'YYYY-MM-DD')`: PostgreSQL's own tzdata, the IANA database
    /// Foundation's `TimeZone` also reads, so the days are those ``LocalDays`` computes.
    public func auditDays(source: String, zone: TimeZone) async throws -> [AuditDay] {
        let rows = try await read("summing tb_sales of \(source)") { connection, logger in
            try await connection.run("""
                SELECT pdv, to_char(occurred_at AT TIME ZONE $2, 'YYYY-MM-DD') AS day,
                    count(*) FILTER (WHERE deleted_reason IS DISTINCT FROM 'vanished') AS n,
                    coalesce(sum(amount) FILTER (WHERE deleted_reason IS DISTINCT FROM 'vanished'), 0)::text AS total,
                    count(*) FILTER (WHERE deleted_at_source IS NOT NULL AND deleted_reason IS DISTINCT FROM 'vanished') AS deleted,
                    count(*) FILTER (WHERE deleted_reason = 'vanished') AS vanished
                FROM tb_sales WHERE source_id = $1 GROUP BY 1, 2
                """, [.text(source), .text(zone.identifier)], logger: logger)
        }
        return rows.map { row in
            func int(_ name: String) -> Int { row[name]?.text.flatMap { Int($0) } ?? 0 }
            return AuditDay(pdv: row["pdv"]?.text ?? "", day: row["day"]?.text ?? "", rows: int("n"), amount: row["total"]?.text ?? "0",
                            deleted: int("deleted"), vanished: int("vanished"))
        }
    }

    public func storedSales(source: String, pdv: String, from: Instant, before: Instant) async throws -> [StoredSale] {
        let rows = try await read("reading tb_sales of \(source)") { connection, logger in
            try await connection.run("""
                SELECT external_id, content_hash, amount::text AS amount, deleted_reason FROM tb_sales
                WHERE source_id = $1 AND pdv = $2 AND occurred_at >= $3::timestamptz AND occurred_at < $4::timestamptz
                """, [.text(source), .text(pdv), .text(from.description), .text(before.description)], logger: logger)
        }
        return rows.map { row in
            StoredSale(externalId: row["external_id"]?.text ?? "", contentHash: row["content_hash"]?.text ?? "",
                       amount: row["amount"]?.text ?? "", isVanished: row["deleted_reason"]?.text == "vanished")
        }
    }

    public func openQuarantine(source: String) async throws -> [QuarantineEntry] {
        let rows = try await read("reading the quarantine of \(source)") { connection, logger in
            try await connection.run("""
                SELECT id, kind, sync_id, source_id, external_id, reason_code, message, raw_json::text AS raw_json, first_seen_at, last_seen_at, occurrences
                FROM tb_sync_errors e WHERE e.source_id = $1 AND e.kind = 'record'
                    AND NOT EXISTS (SELECT 1 FROM tb_sales s WHERE s.source_id = e.source_id AND s.external_id = e.external_id)
                ORDER BY e.id DESC
                """, [.text(source)], logger: logger)
        }
        return rows.map { row in QuarantineEntry(errorRow: { row[$0]?.text }) }
    }

    public func saveReconciliation(_ report: ReconciliationReport) async throws {
        guard !report.buckets.isEmpty else { return }
        func column(_ value: (ReconciliationBucket) -> String) -> DestinationBind { .texts(report.buckets.map(value)) }
        let binds: [DestinationBind] = [
            .text(report.id), .text(report.source), .text(report.startedAt), .int(report.durationMs), .text(report.checkpoint),
            .text(report.from), .text(report.to),
            column(\.pdv), column(\.day), column { String($0.sourceRows) }, column(\.sourceAmount), column { String($0.notYetSynced) },
            column { String($0.quarantined) }, column { String($0.auditRows) }, column(\.auditAmount), column(\.status.rawValue),
            column(ReconciliationReport.json),
        ]
        try await connectionTransaction("saving reconciliation \(report.id)") { connection, logger in
            try await connection.run("""
                INSERT INTO tb_reconciliation (reconciliation_id, source_id, pdv, day, source_rows, source_amount, not_yet_synced, quarantined,
                    audit_rows, audit_amount, status, bucket_json, started_at, duration_ms, checkpoint, range_from, range_to)
                SELECT $1, $2, b.pdv, b.day, b.source_rows::bigint, b.source_amount::numeric, b.not_yet_synced::bigint, b.quarantined::bigint,
                    b.audit_rows::bigint, b.audit_amount::numeric, b.status, b.bucket_json::jsonb, $3::timestamptz, $4, $5, $6, $7
                FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
                    AS b(pdv, day, source_rows, source_amount, not_yet_synced, quarantined, audit_rows, audit_amount, status, bucket_json)
                """, binds, logger: logger)
        }
    }

    public func reconciliation(source: String?, id: String?) async throws -> ReconciliationReport? {
        let rows = try await read("reading a reconciliation") { connection, logger in
            try await connection.run("""
                SELECT reconciliation_id, source_id, bucket_json::text AS bucket_json, started_at, duration_ms, checkpoint, range_from, range_to
                FROM tb_reconciliation WHERE reconciliation_id = coalesce($1::text, (
                    SELECT reconciliation_id FROM tb_reconciliation WHERE ($2::text IS NULL OR source_id = $2) ORDER BY started_at DESC LIMIT 1))
                ORDER BY day, pdv
                """, [.text(id), .text(source)], logger: logger)
        }
        return ReconciliationReport(rows: rows.map { row in { row[$0]?.text } })
    }
}
