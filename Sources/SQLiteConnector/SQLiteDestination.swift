public import SyncCore
import Foundation
import SQLiteNIO

/// The embedded audit database: one SQLite file in WAL mode with `synchronous = FULL`, so a committed batch
/// survives a crash of the process or the machine (https://sqlite.org/pragma.html#pragma_synchronous).
///
/// Each batch is one `BEGIN IMMEDIATE … COMMIT` transaction on one connection; the run lock is a row in
/// `tb_sync_lock`, taken over only when its holder is a dead process on this host or has not written a
/// heartbeat for ``staleLockSeconds``.
public actor SQLiteDestination: Destination, AuditLog {
    /// A lock whose holder has not committed a batch for this long (seconds) is considered abandoned.
    public static let staleLockSeconds: Int64 = 900

    private let connection: SQLiteConnection
    private let path: String
    private let host = ProcessInfo.processInfo.hostName
    private let pid = Int(ProcessInfo.processInfo.processIdentifier)

    /// Opens (creating if needed) the audit database at `path`, in a folder that must exist: a missing folder is
    /// a typo in the configuration, never created (the audit database would be written elsewhere than meant).
    /// - Throws: ``SyncFailure`` `DESTINATION_CONFIG` when the folder is missing, `DESTINATION_READ_ONLY` when
    ///   the file or its folder cannot be written (WAL mode writes `-wal` and `-shm` files beside it; checked
    ///   before opening, so none are left behind), `DESTINATION_UNAVAILABLE`.
    public init(path: String) async throws {
        self.path = path
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw SyncFailure(code: "DESTINATION_CONFIG", message: "the folder \(folder) of the audit database \(path) does not exist; create it first", isTransient: false)
        }
        for target in [folder, path] where FileManager.default.fileExists(atPath: target) && access(target, W_OK) != 0 {
            throw SyncFailure(code: "DESTINATION_READ_ONLY", message: "the audit database \(path) cannot be written: \(target) is not writable (\(String(cString: strerror(errno))))",
                              isTransient: false)
        }
        connection = try await openSQLite(path: path, mustExist: false, code: "DESTINATION_UNAVAILABLE")
        do {
            _ = try await connection.query("PRAGMA busy_timeout = 10000")
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            _ = try await connection.query("PRAGMA synchronous = FULL")
        } catch {
            throw SyncFailure.sqlite(error, code: "DESTINATION_UNAVAILABLE", context: "configuring \(path)")
        }
    }

    // MARK: helpers

    @discardableResult
    private func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction; rolls back on any error.
    private func transaction<T>(_ context: String, _ body: () async throws -> T) async throws -> T {
        do {
            try await query("BEGIN IMMEDIATE")
        } catch {
            throw SyncFailure.sqlite(error, code: "DESTINATION_FAILED", context: context)
        }
        do {
            let value = try await body()
            try await query("COMMIT")
            return value
        } catch {
            _ = try? await query("ROLLBACK")
            throw SyncFailure.sqlite(error, code: "DESTINATION_FAILED", context: context)
        }
    }

    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    // MARK: schema

    public func migrate() async throws {
        try await transaction("migrating \(path)") {
            try await query("CREATE TABLE IF NOT EXISTS tb_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            let applied = Set(try await query("SELECT version FROM tb_schema_migrations").compactMap { $0.column("version")?.integer })
            for migration in SQLiteMigrations.all where !applied.contains(migration.version) {
                for statement in migration.statements { try await query(statement) }
                try await query("INSERT INTO tb_schema_migrations (version, applied_at) VALUES (?, ?)",
                                [.integer(migration.version), .text(Instant.now.description)])
            }
        }
    }

    // MARK: lock

    public func acquireLock(source: String, syncId: String) async throws -> String? {
        try await transaction("locking source \(source)") {
            let now = Instant.now
            if let row = try await query("SELECT sync_id, host, pid, heartbeat_at FROM tb_sync_lock WHERE source_id = ?", [.text(source)]).first {
                let holderHost = row.column("host")?.string ?? ""
                let holderPid = row.column("pid")?.integer ?? 0
                let heartbeat = Instant(iso8601: row.column("heartbeat_at")?.string ?? "") ?? now
                let holderDead = holderHost == host && holderPid != pid && kill(pid_t(holderPid), 0) != 0 && errno == ESRCH
                let stale = now.seconds - heartbeat.seconds > Self.staleLockSeconds
                if !holderDead && !stale {
                    return "run \(row.column("sync_id")?.string ?? "?") by pid \(holderPid) on \(holderHost) since \(heartbeat)"
                }
            }
            try await query("INSERT OR REPLACE INTO tb_sync_lock (source_id, sync_id, host, pid, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
                            [.text(source), .text(syncId), .text(host), .integer(pid), .text(now.description), .text(now.description)])
            // Runs still RUNNING now that we hold the lock died without finishing (kill -9, power loss).
            try await query("""
                UPDATE tb_erp_sync_audit SET status = 'FAILED', ended_at = ?, error_count = error_count + 1, error_details = ?
                WHERE source_id = ? AND status = 'RUNNING' AND sync_id <> ?
                """, [.text(now.isoMillis), .text(AbandonedRun.errorJSON), .text(source), .text(syncId)])
            return nil
        }
    }

    public func releaseLock(source: String, syncId: String) async throws {
        do {
            try await query("DELETE FROM tb_sync_lock WHERE source_id = ? AND sync_id = ?", [.text(source), .text(syncId)])
        } catch {
            throw SyncFailure.sqlite(error, code: "DESTINATION_FAILED", context: "unlocking source \(source)")
        }
    }

    public func lockHolder(source: String) async throws -> String? {
        try await query("SELECT sync_id, pid, host FROM tb_sync_lock WHERE source_id = ?", [.text(source)]).first.map {
            "\($0.column("sync_id")?.string ?? "?") (pid \($0.column("pid")?.integer ?? 0) on \($0.column("host")?.string ?? "?"))"
        }
    }

    // MARK: state and audit

    public func loadState(source: String) async throws -> SyncState {
        do {
            guard let json = try await query("SELECT state_json FROM tb_sync_state WHERE source_id = ?", [.text(source)]).first?.column("state_json")?.string else {
                return SyncState()
            }
            return try JSONDecoder().decode(SyncState.self, from: Data(json.utf8))
        } catch {
            throw SyncFailure.sqlite(error, code: "DESTINATION_FAILED", context: "reading the checkpoint of \(source)")
        }
    }

    private func saveState(_ state: SyncState, source: String, syncId: String) async throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try await query("""
            INSERT INTO tb_sync_state (source_id, state_json, sync_id, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (source_id) DO UPDATE SET state_json = excluded.state_json, sync_id = excluded.sync_id, updated_at = excluded.updated_at
            """, [.text(source), .text(json), .text(syncId), .text(Instant.now.description)])
    }

    public func beginRun(_ run: RunRecord) async throws {
        do {
            try await query("""
                INSERT INTO tb_erp_sync_audit (sync_id, source_id, database_type, sync_type, status, started_at, cursor_from, triggered_by, is_manual)
                VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?)
                """, [.text(run.syncId), .text(run.source), .text(run.databaseType.rawValue), .text(run.syncType.rawValue),
                      .text(run.startTime.isoMillis), run.cursorFrom.map { .text($0) } ?? .null, .text(run.triggeredBy),
                      .integer(run.isManual ? 1 : 0)])
        } catch {
            throw SyncFailure.sqlite(error, code: "DESTINATION_FAILED", context: "writing the audit row")
        }
    }

    public func finishRun(_ result: ErpSyncResult) async throws {
        try await transaction("finishing the audit row") {
            let details = String(decoding: try JSONEncoder().encode(result.errors), as: UTF8.self)
            try await query("""
                UPDATE tb_erp_sync_audit SET status = ?, ended_at = ?, duration_ms = ?, cursor_to = ?, records_fetched = ?,
                    records_processed = ?, records_inserted = ?, records_updated = ?, records_unchanged = ?, records_skipped = ?,
                    records_rejected = ?, records_deleted = ?, has_more = ?, error_count = ?, error_details = ?
                WHERE sync_id = ?
                """, [.text(result.status.rawValue), .text(result.endTime), .integer(result.duration), result.cursorTo.map { .text($0) } ?? .null,
                      .integer(result.recordsFetched), .integer(result.recordsProcessed), .integer(result.recordsInserted),
                      .integer(result.recordsUpdated), .integer(result.recordsUnchanged), .integer(result.recordsSkipped),
                      .integer(result.recordsRejected), .integer(result.recordsDeleted), .integer(result.hasMore ? 1 : 0),
                      .integer(result.errors.count), .text(details), .text(result.syncId)])
            let now = Instant.now.description
            for (index, error) in result.errors.enumerated() {
                try await query("""
                    INSERT OR IGNORE INTO tb_sync_errors (kind, sync_id, source_id, reason_code, message, fingerprint, severity, batch,
                        first_seen_at, last_seen_at) VALUES ('run', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(result.syncId), .text(result.source), .text(error.code), .text(error.message),
                          .text("run:\(result.syncId):\(index)"), .text(error.severity), error.batch.map { .integer($0) } ?? .null,
                          .text(now), .text(now)])
            }
        }
    }

    // MARK: batch commit

    public func commit(_ batch: BatchCommit) async throws -> BatchOutcome {
        try await transaction("loading batch \(batch.batchNumber) of \(batch.source)") {
            let now = Instant.now.description
            let held = try await query("UPDATE tb_sync_lock SET heartbeat_at = ? WHERE source_id = ? AND sync_id = ? RETURNING source_id",
                                       [.text(now), .text(batch.source), .text(batch.syncId)])
            guard !held.isEmpty else {
                throw SyncFailure(code: "LOCK_LOST", message: "the run lock of \(batch.source) was taken over by another run", isTransient: false)
            }
            let ids = batch.records.map(\.externalId)
            let existing = try await existingRecords(source: batch.source, externalIds: ids)
            let isNew = batch.records.contains { existing[$0.externalId] == nil }
            let candidates = batch.deduplication.enabled && isNew
                ? try await dedupCandidates(for: batch.records.filter { existing[$0.externalId] == nil }, window: batch.deduplication.windowMinutes)
                : []
            let plan = BatchPlan.plan(records: batch.records, existing: existing, candidates: candidates, options: batch.deduplication)

            let writes = plan.salesWrites(existing: existing)
            try await upsert(writes.new + writes.changed.map { ($0, nil) }, syncId: batch.syncId, passId: batch.fullPassId, now: now)
            try await recordDuplicates(plan.duplicateWrites(existing: existing), syncId: batch.syncId, now: now)
            if let passId = batch.fullPassId {
                try await markSeen(source: batch.source, externalIds: plan.unchanged.map(\.externalId) + batch.rejected.compactMap(\.externalId), passId: passId)
            }
            for row in batch.rejected {
                try await query("""
                    INSERT INTO tb_sync_errors (kind, sync_id, source_id, external_id, reason_code, message, raw_json, fingerprint, severity, batch,
                        first_seen_at, last_seen_at) VALUES ('record', ?, ?, ?, ?, ?, ?, ?, 'warning', ?, ?, ?)
                    ON CONFLICT (source_id, fingerprint) DO UPDATE SET sync_id = excluded.sync_id, batch = excluded.batch,
                        last_seen_at = excluded.last_seen_at, occurrences = occurrences + 1
                    """, [.text(batch.syncId), .text(batch.source), row.externalId.map { .text($0) } ?? .null, .text(row.reason.rawValue),
                          .text(row.message), .text(row.rawJSON), .text(row.fingerprint), .integer(batch.batchNumber), .text(now), .text(now)])
            }
            if let state = batch.state { try await saveState(state, source: batch.source, syncId: batch.syncId) }
            let outcome = plan.outcome(rejected: batch.rejected.count)
            try await query("""
                UPDATE tb_erp_sync_audit SET records_fetched = records_fetched + ?, records_processed = records_processed + ?,
                    records_inserted = records_inserted + ?, records_updated = records_updated + ?, records_unchanged = records_unchanged + ?,
                    records_skipped = records_skipped + ?, records_rejected = records_rejected + ?, cursor_to = COALESCE(?, cursor_to)
                WHERE sync_id = ?
                """, [.integer(batch.fetched), .integer(batch.fetched - outcome.rejected), .integer(outcome.inserted), .integer(outcome.updated),
                      .integer(outcome.unchanged), .integer(outcome.skipped), .integer(outcome.rejected),
                      (batch.state?.checkpoint).map { .text($0.summary) } ?? .null, .text(batch.syncId)])
            return outcome
        }
    }

    private func existingRecords(source: String, externalIds: [String]) async throws -> [String: ExistingRecord] {
        var existing: [String: ExistingRecord] = [:]
        for chunk in externalIds.chunks(of: 500) {
            let binds = [SQLiteData.text(source)] + chunk.map { .text($0) }
            for row in try await query("SELECT external_id, content_hash, deleted_reason FROM tb_sales WHERE source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))", binds) {
                guard let id = row.column("external_id")?.string, let hash = row.column("content_hash")?.string else { continue }
                existing[id] = ExistingRecord(contentHash: hash, isMarkedVanished: row.column("deleted_reason")?.string == "vanished")
            }
            for row in try await query("SELECT external_id, content_hash FROM tb_sync_duplicates WHERE action = 'skip' AND source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))", binds) {
                guard let id = row.column("external_id")?.string, let hash = row.column("content_hash")?.string else { continue }
                existing[id] = ExistingRecord(contentHash: hash, isSkippedDuplicate: true)
            }
        }
        return existing
    }

    private func dedupCandidates(for records: [SaleTransaction], window: Int) async throws -> [DedupCandidate] {
        guard let source = records.first?.sourceId,
              let earliest = records.map(\.occurredAt).min(), let latest = records.map(\.occurredAt).max() else { return [] }
        let windowSeconds = Int64(window) * 60
        let from = Instant(seconds: earliest.seconds - windowSeconds - 1).description
        let to = Instant(seconds: latest.seconds + windowSeconds + 1).description
        var candidates: [DedupCandidate] = []
        for pdvs in Array(Set(records.map(\.pdv))).chunks(of: 500) {
            let rows = try await query("""
                SELECT source_id, external_id, pdv, operator, amount, currency, occurred_at FROM tb_sales
                WHERE pdv IN (\(Self.placeholders(pdvs.count))) AND occurred_at BETWEEN ? AND ? AND source_id <> ? AND duplicate_of IS NULL
                """, pdvs.map { .text($0) } + [.text(from), .text(to), .text(source)])
            for row in rows {
                guard let candidateSource = row.column("source_id")?.string, let id = row.column("external_id")?.string,
                      let occurred = Instant(iso8601: row.column("occurred_at")?.string ?? "") else { continue }
                candidates.append(DedupCandidate(source: candidateSource, externalId: id, pdv: row.column("pdv")?.string ?? "",
                                                 operator: row.column("operator")?.string ?? "", amount: row.column("amount")?.string ?? "",
                                                 currency: row.column("currency")?.string ?? "", occurredAt: occurred))
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

    private func upsert(_ records: [(record: SaleTransaction, duplicateOf: String?)], syncId: String, passId: String?, now: String) async throws {
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
                ON CONFLICT (source_id, external_id) DO UPDATE SET pdv = excluded.pdv, operator = excluded.operator,
                    amount = excluded.amount, currency = excluded.currency, occurred_at = excluded.occurred_at, type = excluded.type,
                    type_raw = excluded.type_raw, reference = excluded.reference, source_updated_at = excluded.source_updated_at,
                    content_hash = excluded.content_hash, sync_id = excluded.sync_id,
                    last_seen_pass = COALESCE(excluded.last_seen_pass, tb_sales.last_seen_pass),
                    deleted_at_source = CASE WHEN excluded.deleted_reason IS NULL THEN NULL
                        ELSE COALESCE(tb_sales.deleted_at_source, excluded.deleted_at_source) END,
                    deleted_reason = excluded.deleted_reason, updated_at = excluded.updated_at
                """, binds)
        }
    }

    private func recordDuplicates(_ duplicates: [(record: SaleTransaction, duplicateOf: String, action: DeduplicationOptions.Action)], syncId: String, now: String) async throws {
        for (record, original, action) in duplicates {
            try await query("""
                INSERT INTO tb_sync_duplicates (source_id, external_id, duplicate_of, action, content_hash, record_json, sync_id, detected_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (source_id, external_id) DO UPDATE SET content_hash = excluded.content_hash, record_json = excluded.record_json,
                    sync_id = excluded.sync_id, duplicate_of = CASE WHEN excluded.duplicate_of = '' THEN tb_sync_duplicates.duplicate_of
                        ELSE excluded.duplicate_of END
                """, [.text(record.sourceId), .text(record.externalId), .text(original), .text(action.rawValue), .text(record.contentHash),
                      .text(record.json), .text(syncId), .text(now)])
        }
    }

    private func markSeen(source: String, externalIds: [String], passId: String) async throws {
        for chunk in externalIds.chunks(of: 500) {
            try await query("UPDATE tb_sales SET last_seen_pass = ? WHERE source_id = ? AND external_id IN (\(Self.placeholders(chunk.count)))",
                            [.text(passId), .text(source)] + chunk.map { .text($0) })
        }
    }

    public func finishFullPass(source: String, pass: SyncState.FullPass, syncId: String, checkpoint: Checkpoint?) async throws -> Int {
        try await transaction("finishing the full sync of \(source)") {
            let now = Instant.now.description
            let marked = try await query("""
                UPDATE tb_sales SET deleted_at_source = ?, deleted_reason = 'vanished', sync_id = ?, updated_at = ?
                WHERE source_id = ? AND deleted_at_source IS NULL AND (last_seen_pass IS NULL OR last_seen_pass <> ?) AND updated_at < ?
                RETURNING external_id
                """, [.text(now), .text(syncId), .text(now), .text(source), .text(pass.passId), .text(pass.startedAt.description)]).count
            try await saveState(SyncState(checkpoint: checkpoint, fullPass: nil), source: source, syncId: syncId)
            try await query("UPDATE tb_erp_sync_audit SET records_deleted = records_deleted + ? WHERE sync_id = ?", [.integer(marked), .text(syncId)])
            return marked
        }
    }

    // MARK: audit log

    public func history(source: String?, limit: Int) async throws -> [AuditEntry] {
        let rows = try await query("""
            SELECT * FROM tb_erp_sync_audit WHERE (? IS NULL OR source_id = ?) ORDER BY started_at DESC, rowid DESC LIMIT ?
            """, [source.map { .text($0) } ?? .null, source.map { .text($0) } ?? .null, .integer(limit)])
        return rows.map { row in AuditEntry(auditRow: { row.column($0)?.string }) }
    }

    public func quarantine(source: String?, limit: Int) async throws -> [QuarantineEntry] {
        let rows = try await query("""
            SELECT * FROM tb_sync_errors WHERE (? IS NULL OR source_id = ?) ORDER BY last_seen_at DESC, id DESC LIMIT ?
            """, [source.map { .text($0) } ?? .null, source.map { .text($0) } ?? .null, .integer(limit)])
        return rows.map { row in QuarantineEntry(errorRow: { row.column($0)?.string }) }
    }

    public func totals(source: String) async throws -> SourceTotals {
        let counts = try await query("""
            SELECT count(*) AS n, count(deleted_at_source) AS deleted, count(duplicate_of) AS dups FROM tb_sales WHERE source_id = ?
            """, [.text(source)]).first
        let sums = SumBox()
        try await connection.query("SELECT currency, amount FROM tb_sales WHERE source_id = ?", [.text(source)]) { row in
            sums.add(currency: row.column("currency")?.string ?? "", amount: row.column("amount")?.string ?? "")
        }
        return SourceTotals(rows: counts?.column("n")?.integer ?? 0, deleted: counts?.column("deleted")?.integer ?? 0,
                            duplicates: counts?.column("dups")?.integer ?? 0, amountByCurrency: sums.totals)
    }

    /// Closes the database.
    public func close() async {
        try? await connection.close()
    }
}

/// Exact per-currency sums accumulated from streamed rows.
private final class SumBox: @unchecked Sendable {
    private let lock = NSLock()
    private var sums: [String: Amount] = [:]

    func add(currency: String, amount: String) {
        let scale = CurrencyScale.scale(of: currency)
        guard let value = try? Amount(parsing: amount, scale: scale) else { return }
        lock.withLock { sums[currency] = (sums[currency] ?? Amount(minorUnits: 0, scale: scale)) + value }
    }

    var totals: [String: String] { lock.withLock { sums.mapValues(\.description) } }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
