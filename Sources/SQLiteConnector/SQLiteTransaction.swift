import Foundation
import SQLiteNIO
import SyncCore

/// The SQLite statements of each step of the core's commit sequence, run inside the `BEGIN IMMEDIATE`
/// transaction that ``SQLiteDestination/transaction(_:_:)`` opened. Timestamps are stored as ISO 8601 text.
struct SQLiteTransaction: DestinationTransaction {
    let connection: SQLiteConnection

    @discardableResult
    private func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    func renewLock(source: String, syncId: String) async throws -> Bool {
        try await !query("UPDATE tb_sync_lock SET heartbeat_at = ? WHERE source_id = ? AND sync_id = ? RETURNING source_id",
                         [.text(Instant.now.description), .text(source), .text(syncId)]).isEmpty
    }

    func storedRecords(source: String, externalIds: [String]) async throws -> [String: ExistingRecord] {
        var existing: [String: ExistingRecord] = [:]
        for chunk in externalIds.chunks(of: 500) {
            let binds = [SQLiteData.text(source)] + chunk.map { .text($0) }
            for row in try await query("SELECT external_id, content_hash, deleted_reason, quarantined_since FROM tb_sales WHERE source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))", binds) {
                guard let id = row.column("external_id")?.string, let hash = row.column("content_hash")?.string else { continue }
                existing[id] = ExistingRecord(contentHash: hash, isMarkedVanished: row.column("deleted_reason")?.string == "vanished",
                                              isQuarantined: row.column("quarantined_since")?.string != nil)
            }
            for row in try await query("SELECT external_id, content_hash FROM tb_sync_duplicates WHERE action = 'skip' AND source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))", binds) {
                guard let id = row.column("external_id")?.string, let hash = row.column("content_hash")?.string else { continue }
                existing[id] = ExistingRecord(contentHash: hash, isSkippedDuplicate: true)
            }
        }
        return existing
    }

    /// One probe of `tb_sales_pdvs`'s primary key (pdv first) per pdv, in chunks bound as an `IN` list.
    func pdvs(ofSourcesOtherThan source: String, among pdvs: [String]) async throws -> Set<String> {
        var shared = Set<String>()
        for chunk in pdvs.chunks(of: 500) {
            for row in try await query("SELECT DISTINCT pdv FROM tb_sales_pdvs WHERE source_id <> ? AND pdv IN (\(Self.placeholders(chunk.count)))",
                                       [.text(source)] + chunk.map { .text($0) }) {
                if let pdv = row.column("pdv")?.string { shared.insert(pdv) }
            }
        }
        return shared
    }

    /// Whether `tb_sales` holds a record of a source other than `source` (``SQLiteDestination/hasOtherSources(than:)``).
    /// Two probes of the primary key (`source_id` first): the nearest key below and above `source`.
    func hasRecords(ofSourcesOtherThan source: String) async throws -> Bool {
        try await query("""
            SELECT EXISTS (SELECT 1 FROM tb_sales WHERE source_id < ?1) OR EXISTS (SELECT 1 FROM tb_sales WHERE source_id > ?1) AS found
            """, [.text(source)]).first?.column("found")?.integer == 1
    }

    /// One probe of the match-shaped index `tb_sales_dedup` (pdv, operator, amount, occurred_at) per probe, in
    /// chunks of probes bound as a `VALUES` list.
    func dedupCandidates(excludingSource source: String, matching probes: [DedupProbe]) async throws -> [DedupCandidate] {
        var candidates: [DedupCandidate] = []
        for chunk in probes.chunks(of: 1000) {
            let values = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            let rows = try await query("""
                WITH p(pdv, operator, amount, currency, type, lo, hi) AS (VALUES \(values))
                SELECT s.source_id, s.external_id, s.pdv, s.operator, s.amount, s.currency, s.type, s.occurred_at FROM p CROSS JOIN tb_sales s
                WHERE s.pdv = p.pdv AND s.operator = p.operator AND s.amount = p.amount AND s.occurred_at BETWEEN p.lo AND p.hi
                    AND s.currency = p.currency AND s.type = p.type AND s.source_id <> ? AND s.duplicate_of IS NULL
                    AND s.deleted_at_source IS NULL
                """, chunk.flatMap { probe -> [SQLiteData] in
                    [.text(probe.pdv), .text(probe.operator), .text(probe.amount), .text(probe.currency), .text(probe.type),
                     .text(probe.occurredAt.lowerBound.description), .text(probe.occurredAt.upperBound.description)]
                } + [.text(source)])
            for row in rows {
                guard let candidateSource = row.column("source_id")?.string, let id = row.column("external_id")?.string,
                      let occurred = Instant(iso8601: row.column("occurred_at")?.string ?? "") else { continue }
                candidates.append(DedupCandidate(source: candidateSource, externalId: id, pdv: row.column("pdv")?.string ?? "",
                                                 operator: row.column("operator")?.string ?? "", amount: row.column("amount")?.string ?? "",
                                                 currency: row.column("currency")?.string ?? "", type: row.column("type")?.string ?? "",
                                                 occurredAt: occurred))
            }
        }
        var byKey = Dictionary(candidates.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for keys in Array(byKey.keys).chunks(of: 500) {
            for row in try await query("SELECT duplicate_of, source_id, external_id FROM tb_sync_duplicates WHERE duplicate_of IN (\(Self.placeholders(keys.count)))", keys.map { .text($0) }) {
                guard let original = row.column("duplicate_of")?.string, let claimer = row.column("source_id")?.string,
                      let claimerId = row.column("external_id")?.string else { continue }
                byKey[original]?.claimedBy.insert("\(claimer)|\(claimerId)")
            }
        }
        return Array(byKey.values)
    }

    /// New records with a plain `INSERT` (a stored key fails the statement: `KEY_CONFLICT`), changed ones with
    /// `INSERT … ON CONFLICT DO UPDATE`; 400 rows per statement (19 parameters each, under SQLite's 32,766-parameter
    /// limit).
    func writeSales(_ writes: SalesWrites, syncId: String, passId: String?) async throws {
        try await write(writes.new, merging: false, syncId: syncId, passId: passId)
        try await write(writes.changed.map { (record: $0, duplicateOf: String?.none) }, merging: true, syncId: syncId, passId: passId)
    }

    func registerPdvs(_ pdvs: [String], source: String) async throws {
        for chunk in pdvs.chunks(of: 500) {
            try await query("INSERT OR IGNORE INTO tb_sales_pdvs (pdv, source_id) VALUES \(Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", "))",
                            chunk.flatMap { [.text($0), .text(source)] })
        }
    }

    private func write<Records: RandomAccessCollection>(_ records: Records, merging: Bool, syncId: String, passId: String?) async throws
        where Records.Element == (record: SaleTransaction, duplicateOf: String?), Records.Index == Int {
        let now = Instant.now.description
        let columns = 19
        for chunk in records.chunks(of: 400) {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * columns)
            for (record, duplicateOf) in chunk {
                binds += [.text(record.sourceId), .text(record.externalId), .text(record.pdv), .text(record.operator),
                          .text(record.amount.description), .text(record.currency), .text(record.occurredAt.description),
                          .text(record.type.rawValue), .text(record.typeRaw), record.reference.map { .text($0) } ?? .null,
                          record.sourceUpdatedAt.map { .text($0.description) } ?? .null, .text(record.contentHash),
                          duplicateOf.map { .text($0) } ?? .null, record.isDeletedAtSource ? .text(now) : .null,
                          record.isDeletedAtSource ? .text("soft") : .null, .text(syncId), passId.map { .text($0) } ?? .null,
                          .text(now), .text(now)]
            }
            let row = "(" + Self.placeholders(columns) + ")"
            try await query("""
                INSERT INTO tb_sales (source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference,
                    source_updated_at, content_hash, duplicate_of, deleted_at_source, deleted_reason, sync_id, last_seen_pass, ingested_at,
                    updated_at, first_sync_id)
                SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, column10, column11, column12,
                    column13, column14, column15, column16, column17, column18, column19, column16
                FROM (VALUES \(Array(repeating: row, count: chunk.count).joined(separator: ", "))) WHERE true
                \(merging ? Self.mergeChanged : "")
                """, binds)
        }
    }

    /// The `ON CONFLICT` clause that merges a changed record into its stored row.
    private static let mergeChanged = """
                ON CONFLICT (source_id, external_id) DO UPDATE SET pdv = excluded.pdv, operator = excluded.operator,
                    amount = excluded.amount, currency = excluded.currency, occurred_at = excluded.occurred_at, type = excluded.type,
                    type_raw = excluded.type_raw, reference = excluded.reference, source_updated_at = excluded.source_updated_at,
                    content_hash = excluded.content_hash, sync_id = excluded.sync_id,
                    last_seen_pass = COALESCE(excluded.last_seen_pass, tb_sales.last_seen_pass),
                    deleted_at_source = CASE WHEN excluded.deleted_reason IS NULL THEN NULL
                        ELSE COALESCE(tb_sales.deleted_at_source, excluded.deleted_at_source) END,
                    deleted_reason = excluded.deleted_reason, updated_at = excluded.updated_at
                """

    func recordDuplicates(_ duplicates: [DuplicateWrite], syncId: String) async throws {
        let now = Instant.now.description
        for duplicate in duplicates {
            let record = duplicate.record
            try await query("""
                INSERT INTO tb_sync_duplicates (source_id, external_id, duplicate_of, action, content_hash, record_json, sync_id, detected_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (source_id, external_id) DO UPDATE SET content_hash = excluded.content_hash, record_json = excluded.record_json,
                    sync_id = excluded.sync_id, duplicate_of = CASE WHEN excluded.duplicate_of = '' THEN tb_sync_duplicates.duplicate_of
                        ELSE excluded.duplicate_of END
                """, [.text(record.sourceId), .text(record.externalId), .text(duplicate.duplicateOf), .text(duplicate.action.rawValue),
                      .text(record.contentHash), .text(record.json), .text(syncId), .text(now)])
        }
    }

    func markSeen(source: String, externalIds: [String], passId: String) async throws {
        for chunk in externalIds.chunks(of: 500) {
            try await query("UPDATE tb_sales SET last_seen_pass = ? WHERE source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))",
                            [.text(passId), .text(source)] + chunk.map { .text($0) })
        }
    }

    func quarantine(_ rows: [RejectedRow], source: String, syncId: String, batch: Int) async throws {
        let now = Instant.now.description
        for row in rows {
            let key = try row.key.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            try await query("""
                INSERT INTO tb_sync_errors (kind, sync_id, source_id, external_id, reason_code, message, raw_json, fingerprint, severity, batch,
                    first_seen_at, last_seen_at, key_json) VALUES ('record', ?, ?, ?, ?, ?, ?, ?, 'warning', ?, ?, ?, ?)
                ON CONFLICT (source_id, fingerprint) DO UPDATE SET sync_id = excluded.sync_id, batch = excluded.batch,
                    last_seen_at = excluded.last_seen_at, occurrences = occurrences + 1, key_json = excluded.key_json,
                    resolved_at = NULL, resolved_by_sync = NULL, resolution = NULL
                """, [.text(syncId), .text(source), row.externalId.map { .text($0) } ?? .null, .text(row.reason.rawValue),
                      .text(row.message), .text(row.rawJSON), .text(row.fingerprint), .integer(batch), .text(now), .text(now),
                      key.map { .text($0) } ?? .null])
            guard let id = row.externalId else { continue }
            try await query("""
                UPDATE tb_sync_errors SET resolved_at = ?, resolved_by_sync = ?, resolution = 'superseded'
                WHERE source_id = ? AND external_id = ? AND kind = 'record' AND resolved_at IS NULL AND fingerprint <> ?
                """, [.text(now), .text(syncId), .text(source), .text(id), .text(row.fingerprint)])
            try await query("""
                UPDATE tb_sales SET quarantined_since = COALESCE(quarantined_since, ?), quarantine_reason = ?
                WHERE source_id = ? AND external_id = ?
                """, [.text(now), .text(row.reason.rawValue), .text(source), .text(id)])
        }
    }

    func hasOpenQuarantine(source: String) async throws -> Bool {
        try await !query("SELECT 1 FROM tb_sync_errors WHERE source_id = ? AND kind = 'record' AND resolved_at IS NULL LIMIT 1",
                         [.text(source)]).isEmpty
    }

    func resolveQuarantine(source: String, loaded: [String], stale: [String], syncId: String) async throws {
        let now = Instant.now.description
        for chunk in loaded.chunks(of: 500) {
            try await query("""
                UPDATE tb_sync_errors SET resolved_at = ?, resolved_by_sync = ?, resolution = 'loaded'
                WHERE source_id = ? AND kind = 'record' AND resolved_at IS NULL AND external_id IN (\(Self.placeholders(chunk.count)))
                """, [.text(now), .text(syncId), .text(source)] + chunk.map { .text($0) })
        }
        for chunk in stale.chunks(of: 500) {
            try await query("UPDATE tb_sales SET quarantined_since = NULL, quarantine_reason = NULL WHERE source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))",
                            [.text(source)] + chunk.map { .text($0) })
        }
    }

    func saveState(_ state: SyncState, source: String, syncId: String) async throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try await query("""
            INSERT INTO tb_sync_state (source_id, state_json, sync_id, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (source_id) DO UPDATE SET state_json = excluded.state_json, sync_id = excluded.sync_id, updated_at = excluded.updated_at
            """, [.text(source), .text(json), .text(syncId), .text(Instant.now.description)])
    }

    func updateRun(syncId: String, counters: RunCounters) async throws {
        try await query("""
            UPDATE tb_erp_sync_audit SET records_fetched = ?, records_processed = ?, records_inserted = ?, records_updated = ?,
                records_unchanged = ?, records_skipped = ?, records_rejected = ?, records_deleted = ?, cursor_to = ?
            WHERE sync_id = ?
            """, [.integer(counters.fetched), .integer(counters.processed), .integer(counters.inserted), .integer(counters.updated),
                  .integer(counters.unchanged), .integer(counters.skipped), .integer(counters.rejected), .integer(counters.deleted),
                  counters.cursorTo.map { .text($0) } ?? .null, .text(syncId)])
    }

    func markVanished(source: String, pass: SyncState.FullPass, syncId: String) async throws -> Int {
        let now = Instant.now.description
        return try await query("""
            UPDATE tb_sales SET deleted_at_source = ?, deleted_reason = 'vanished', sync_id = ?, updated_at = ?
            WHERE source_id = ? AND deleted_at_source IS NULL AND (last_seen_pass IS NULL OR last_seen_pass <> ?) AND updated_at < ?
            RETURNING external_id
            """, [.text(now), .text(syncId), .text(now), .text(source), .text(pass.passId), .text(pass.startedAt.description)]).count
    }
}
