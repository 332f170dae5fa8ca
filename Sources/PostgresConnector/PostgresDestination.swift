import Foundation
public import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import SyncCore

/// The production audit database on PostgreSQL.
///
/// Each batch is one transaction on one connection: a probe finds which of its keys are stored, then the
/// records are bound as binary column arrays and written with `INSERT … SELECT … FROM unnest(…)` (new ones)
/// and `… ON CONFLICT DO UPDATE` (changed ones), together with the quarantined rows, the checkpoint and the
/// run's counters. The run lock is a session-level advisory lock
/// (`pg_try_advisory_lock`) held on a dedicated connection for the whole run, so two processes — on any
/// machines sharing this database — never sync one source at once; `tb_sync_lock` shows the holder.
public final class PostgresDestination: Destination, AuditLog {
    /// `classid` of the advisory locks: "ERPS" in ASCII; `objid` is `hashtext(source)`.
    static let lockClass: Int32 = 0x4552_5053

    private let pool: PostgresPool
    private let locks = Mutex<[String: HeldLock]>([:])
    private let host = ProcessInfo.processInfo.hostName
    private let pid = Int(ProcessInfo.processInfo.processIdentifier)

    private struct HeldLock: Sendable {
        var syncId: String
        var release: AsyncStream<Void>.Continuation
        var task: Task<Void, any Error>
    }

    /// Prepares a pool to the audit database (connections open on first use).
    public init(settings: PostgresSettings, logger: Logger = Logger(label: "erp-sync.postgres")) throws {
        do {
            pool = try PostgresPool(settings: settings, logger: logger)
        } catch {
            throw SyncFailure(code: "DESTINATION_CONFIG", message: "TLS settings for \(settings.host): \(error)", isTransient: false)
        }
    }

    @discardableResult
    private func transaction<T: Sendable>(_ context: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await pool.withConnection(context, code: "DESTINATION_FAILED") { [logger = pool.logger] connection in
            try await connection.run("BEGIN", logger: logger)
            do {
                let value = try await body(connection, logger)
                try await connection.run("COMMIT", logger: logger)
                return value
            } catch {
                _ = try? await connection.run("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs read-only statements on one connection, without a transaction around them.
    private func read<T: Sendable>(_ context: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await pool.withConnection(context, code: "DESTINATION_FAILED") { [logger = pool.logger] connection in
            try await body(connection, logger)
        }
    }

    // MARK: schema

    public func migrate() async throws {
        try await transaction("migrating the audit schema") { connection, logger in
            try await connection.run("SELECT pg_advisory_xact_lock($1::int4, 0)", [.int(Int(Self.lockClass))], logger: logger)
            try await connection.run("CREATE TABLE IF NOT EXISTS tb_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)", logger: logger)
            let applied = Set(try await connection.run("SELECT version FROM tb_schema_migrations", logger: logger).compactMap { $0["version"]?.text.flatMap(Int.init) })
            for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                for statement in migration.statements { try await connection.run(statement, logger: logger) }
                try await connection.run("INSERT INTO tb_schema_migrations (version, applied_at) VALUES ($1, now())", [.int(migration.version)], logger: logger)
            }
        }
    }

    // MARK: lock

    public func acquireLock(source: String, syncId: String) async throws -> String? {
        let (acquired, acquiredContinuation) = AsyncStream<Bool>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let pool = pool
        let task = Task {
            defer { acquiredContinuation.finish() }
            try await pool.withConnection("locking source \(source)", code: "DESTINATION_FAILED", bounded: false) { [logger = pool.logger] connection in
                let rows = try await connection.run("SELECT pg_try_advisory_lock($1::int4, hashtext($2)) AS locked",
                                                    [.int(Int(Self.lockClass)), .text(source)], logger: logger)
                let locked = rows.first?["locked"] == .bool(true)
                acquiredContinuation.yield(locked)
                guard locked else { return }
                for await _ in release { break }
                _ = try? await connection.run("SELECT pg_advisory_unlock($1::int4, hashtext($2))", [.int(Int(Self.lockClass)), .text(source)], logger: logger)
            }
        }
        var iterator = acquired.makeAsyncIterator()
        guard let locked = await iterator.next() else {
            try await task.value
            throw SyncFailure(code: "DESTINATION_FAILED", message: "could not take the lock of \(source)", isTransient: true)
        }
        guard locked else {
            return try await lockHolder(source: source) ?? "another process holds the advisory lock"
        }
        locks.withLock { $0[source] = HeldLock(syncId: syncId, release: releaseContinuation, task: task) }
        try await transaction("recording the lock of \(source)") { [host, pid] connection, logger in
            try await connection.run("""
                INSERT INTO tb_sync_lock (source_id, sync_id, host, pid, acquired_at, heartbeat_at) VALUES ($1, $2, $3, $4, now(), now())
                ON CONFLICT (source_id) DO UPDATE SET sync_id = excluded.sync_id, host = excluded.host, pid = excluded.pid,
                    acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at
                """, [.text(source), .text(syncId), .text(host), .int(pid)], logger: logger)
            // Runs still RUNNING now that we hold the lock died without finishing (kill -9, power loss).
            try await connection.run("""
                UPDATE tb_erp_sync_audit SET status = 'FAILED', ended_at = $1, error_count = error_count + 1, error_details = $2::jsonb
                WHERE source_id = $3 AND status = 'RUNNING' AND sync_id <> $4
                """, [.text(Instant.now.isoMillis), .text(AbandonedRun.errorJSON), .text(source), .text(syncId)], logger: logger)
        }
        return nil
    }

    public func releaseLock(source: String, syncId: String) async throws {
        let held = locks.withLock { locks -> HeldLock? in
            guard locks[source]?.syncId == syncId else { return nil }
            return locks.removeValue(forKey: source)
        }
        try await transaction("unlocking source \(source)") { connection, logger in
            try await connection.run("DELETE FROM tb_sync_lock WHERE source_id = $1 AND sync_id = $2", [.text(source), .text(syncId)], logger: logger)
        }
        if let held {
            held.release.yield()
            held.release.finish()
            // The unlock runs on the lock's own connection; if the server killed it, the session's locks are
            // already gone and the call may never answer, so it is not waited for long.
            _ = try? await Deadline.run(seconds: 5) { try await held.task.value }
        }
    }

    public func lockHolder(source: String) async throws -> String? {
        try await read("reading the lock of \(source)") { connection, logger in
            try await connection.run("SELECT sync_id, pid, host FROM tb_sync_lock WHERE source_id = $1", [.text(source)], logger: logger).first.map {
                "run \($0["sync_id"]?.text ?? "?") by pid \($0["pid"]?.text ?? "?") on \($0["host"]?.text ?? "?")"
            }
        }
    }

    // MARK: state and audit

    public func loadState(source: String) async throws -> SyncState {
        let json = try await read("reading the checkpoint of \(source)") { connection, logger in
            try await connection.run("SELECT state_json::text AS state FROM tb_sync_state WHERE source_id = $1", [.text(source)], logger: logger).first?["state"]?.text
        }
        guard let json else { return SyncState() }
        do {
            return try JSONDecoder().decode(SyncState.self, from: Data(json.utf8))
        } catch {
            throw SyncFailure(code: "DESTINATION_FAILED", message: "the checkpoint of \(source) is unreadable: \(error)", isTransient: false)
        }
    }

    private static func saveState(_ state: SyncState, source: String, syncId: String, on connection: PostgresConnection, logger: Logger) async throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try await connection.run("""
            INSERT INTO tb_sync_state (source_id, state_json, sync_id, updated_at) VALUES ($1, $2::jsonb, $3, now())
            ON CONFLICT (source_id) DO UPDATE SET state_json = excluded.state_json, sync_id = excluded.sync_id, updated_at = excluded.updated_at
            """, [.text(source), .text(json), .text(syncId)], logger: logger)
    }

    public func beginRun(_ run: RunRecord) async throws {
        try await transaction("writing the audit row") { connection, logger in
            try await connection.run("""
                INSERT INTO tb_erp_sync_audit (sync_id, source_id, database_type, sync_type, status, started_at, cursor_from, triggered_by, is_manual)
                VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7, $8)
                """, [.text(run.syncId), .text(run.source), .text(run.databaseType.rawValue), .text(run.syncType.rawValue),
                      .text(run.startTime.isoMillis), .text(run.cursorFrom), .text(run.triggeredBy), .bool(run.isManual)], logger: logger)
        }
    }

    public func finishRun(_ result: ErpSyncResult) async throws {
        let details = String(decoding: try JSONEncoder().encode(result.errors), as: UTF8.self)
        try await transaction("finishing the audit row") { connection, logger in
            try await connection.run("""
                UPDATE tb_erp_sync_audit SET status = $1, ended_at = $2, duration_ms = $3, cursor_to = $4, records_fetched = $5,
                    records_processed = $6, records_inserted = $7, records_updated = $8, records_unchanged = $9, records_skipped = $10,
                    records_rejected = $11, records_deleted = $12, has_more = $13, error_count = $14, error_details = $15::jsonb
                WHERE sync_id = $16
                """, [.text(result.status.rawValue), .text(result.endTime), .int(result.duration), .text(result.cursorTo),
                      .int(result.recordsFetched), .int(result.recordsProcessed), .int(result.recordsInserted), .int(result.recordsUpdated),
                      .int(result.recordsUnchanged), .int(result.recordsSkipped), .int(result.recordsRejected), .int(result.recordsDeleted),
                      .bool(result.hasMore), .int(result.errors.count), .text(details), .text(result.syncId)], logger: logger)
            for (index, error) in result.errors.enumerated() {
                try await connection.run("""
                    INSERT INTO tb_sync_errors (kind, sync_id, source_id, reason_code, message, fingerprint, severity, batch, first_seen_at, last_seen_at)
                    VALUES ('run', $1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING
                    """, [.text(result.syncId), .text(result.source), .text(error.code), .text(error.message), .text("run:\(result.syncId):\(index)"),
                          .text(error.severity), error.batch.map { .int($0) } ?? .text(nil), .text(Instant.now.description)], logger: logger)
            }
        }
    }

    // MARK: batch commit

    public func commit(_ batch: BatchCommit) async throws -> BatchOutcome {
        // The columns of every record as a new row, encoded while the probes below run: for the usual batch (all
        // records new, no duplicates) that is exactly the insert, so the server does not wait for the encoding.
        let allAsNew = Task { SalesColumns(batch.records.map { ($0, nil) }) }
        defer { allAsNew.cancel() }
        return try await transaction("loading batch \(batch.batchNumber) of \(batch.source)") { connection, logger in
            let held = try await connection.run("UPDATE tb_sync_lock SET heartbeat_at = now() WHERE source_id = $1 AND sync_id = $2 RETURNING source_id",
                                                [.text(batch.source), .text(batch.syncId)], logger: logger)
            guard !held.isEmpty else {
                throw SyncFailure(code: "LOCK_LOST", message: "the run lock of \(batch.source) is no longer held by this run", isTransient: false)
            }
            var existing: [String: ExistingRecord] = [:]
            if !batch.records.isEmpty {
                let ids = batch.records.map(\.externalId)
                // One index probe per key (LATERAL … LIMIT 1 keeps the nested loop): `external_id = ANY($2)` lets the
                // planner pick a sequential scan while a first load outgrows the table's statistics, which makes each
                // batch cost as much as the whole table.
                for row in try await connection.run("""
                    SELECT k.external_id, s.content_hash, s.deleted_reason, false AS skipped FROM unnest($2::text[]) AS k(external_id)
                        CROSS JOIN LATERAL (SELECT content_hash, deleted_reason FROM tb_sales
                            WHERE source_id = $1 AND external_id = k.external_id LIMIT 1) AS s
                    UNION ALL
                    SELECT external_id, content_hash, NULL, true FROM tb_sync_duplicates WHERE action = 'skip' AND source_id = $1 AND external_id = ANY($2)
                    """, [.text(batch.source), .texts(ids)], logger: logger) {
                    guard let id = row["external_id"]?.text, let hash = row["content_hash"]?.text else { continue }
                    existing[id] = ExistingRecord(contentHash: hash, isMarkedVanished: row["deleted_reason"]?.text == "vanished",
                                                  isSkippedDuplicate: row["skipped"] == .bool(true))
                }
            }
            let fresh = batch.records.filter { existing[$0.externalId] == nil }
            let candidates = batch.deduplication.enabled && !fresh.isEmpty
                ? try await Self.dedupCandidates(for: fresh, window: batch.deduplication.windowMinutes, on: connection, logger: logger) : []
            let plan = BatchPlan.plan(records: batch.records, existing: existing, candidates: candidates, options: batch.deduplication)

            let writes = plan.salesWrites(existing: existing)
            let isAllNew = writes.new.count == batch.records.count && writes.new.allSatisfy { $0.duplicateOf == nil }
            let newColumns = isAllNew ? await allAsNew.value : SalesColumns(writes.new)
            try await Self.write(newColumns, isNew: true, syncId: batch.syncId, passId: batch.fullPassId, on: connection, logger: logger)
            try await Self.write(SalesColumns(writes.changed.map { ($0, nil) }), isNew: false, syncId: batch.syncId, passId: batch.fullPassId,
                                 on: connection, logger: logger)
            let duplicates = plan.duplicateWrites(existing: existing)
            for (record, original, action) in duplicates {
                try await connection.run("""
                    INSERT INTO tb_sync_duplicates (source_id, external_id, duplicate_of, action, content_hash, record_json, sync_id, detected_at)
                    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now())
                    ON CONFLICT (source_id, external_id) DO UPDATE SET content_hash = excluded.content_hash, record_json = excluded.record_json,
                        sync_id = excluded.sync_id, duplicate_of = CASE WHEN excluded.duplicate_of = '' THEN tb_sync_duplicates.duplicate_of
                            ELSE excluded.duplicate_of END
                    """, [.text(record.sourceId), .text(record.externalId), .text(original), .text(action.rawValue), .text(record.contentHash),
                          .text(record.json), .text(batch.syncId)], logger: logger)
            }
            if let passId = batch.fullPassId {
                let seen = plan.unchanged.map(\.externalId) + batch.rejected.compactMap(\.externalId)
                if !seen.isEmpty {
                    try await connection.run("UPDATE tb_sales SET last_seen_pass = $1 WHERE source_id = $2 AND external_id = ANY($3)",
                                             [.text(passId), .text(batch.source), .texts(seen)], logger: logger)
                }
            }
            let now = Instant.now.description
            for row in batch.rejected {
                try await connection.run("""
                    INSERT INTO tb_sync_errors (kind, sync_id, source_id, external_id, reason_code, message, raw_json, fingerprint, severity, batch,
                        first_seen_at, last_seen_at) VALUES ('record', $1, $2, $3, $4, $5, $6::jsonb, $7, 'warning', $8, $9, $9)
                    ON CONFLICT (source_id, fingerprint) DO UPDATE SET sync_id = excluded.sync_id, batch = excluded.batch,
                        last_seen_at = excluded.last_seen_at, occurrences = tb_sync_errors.occurrences + 1
                    """, [.text(batch.syncId), .text(batch.source), .text(row.externalId), .text(row.reason.rawValue), .text(row.message),
                          .text(row.rawJSON), .text(row.fingerprint), .int(batch.batchNumber), .text(now)], logger: logger)
            }
            if let state = batch.state { try await Self.saveState(state, source: batch.source, syncId: batch.syncId, on: connection, logger: logger) }
            let outcome = plan.outcome(rejected: batch.rejected.count)
            try await connection.run("""
                UPDATE tb_erp_sync_audit SET records_fetched = records_fetched + $1, records_processed = records_processed + $2,
                    records_inserted = records_inserted + $3, records_updated = records_updated + $4, records_unchanged = records_unchanged + $5,
                    records_skipped = records_skipped + $6, records_rejected = records_rejected + $7, cursor_to = COALESCE($8, cursor_to)
                WHERE sync_id = $9
                """, [.int(batch.fetched), .int(batch.fetched - outcome.rejected), .int(outcome.inserted), .int(outcome.updated),
                      .int(outcome.unchanged), .int(outcome.skipped), .int(outcome.rejected), .text(batch.state?.checkpoint?.summary),
                      .text(batch.syncId)], logger: logger)
            return outcome
        }
    }

    private static func dedupCandidates(for records: [SaleTransaction], window: Int, on connection: PostgresConnection, logger: Logger) async throws -> [DedupCandidate] {
        guard let source = records.first?.sourceId, let earliest = records.map(\.occurredAt).min(),
              let latest = records.map(\.occurredAt).max() else { return [] }
        let seconds = Int64(window) * 60 + 1
        let rows = try await connection.run("""
            SELECT s.source_id, s.external_id, s.pdv, s.operator, s.amount::text AS amount, s.currency,
                to_char(s.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
                (SELECT array_agg(d.source_id || '|' || d.external_id) FROM tb_sync_duplicates d
                  WHERE d.duplicate_of = s.source_id || '|' || s.external_id)::text[] AS claimed_by
            FROM tb_sales s
            WHERE s.pdv = ANY($1) AND s.occurred_at BETWEEN $2::timestamptz AND $3::timestamptz AND s.source_id <> $4 AND s.duplicate_of IS NULL
            """, [.texts(Array(Set(records.map(\.pdv)))), .text(Instant(seconds: earliest.seconds - seconds).description),
                  .text(Instant(seconds: latest.seconds + seconds).description), .text(source)], logger: logger)
        return rows.compactMap { row in
            guard let candidateSource = row["source_id"]?.text, let id = row["external_id"]?.text,
                  let occurred = Instant(iso8601: row["occurred_at"]?.text ?? "") else { return nil }
            let claims = row["claimed_by"]?.text.map { PostgresArrayText.parse($0) } ?? []
            return DedupCandidate(source: candidateSource, externalId: id, pdv: row["pdv"]?.text ?? "", operator: row["operator"]?.text ?? "",
                                  amount: Amount.canonical(row["amount"]?.text ?? "", currency: row["currency"]?.text ?? ""),
                                  currency: row["currency"]?.text ?? "", occurredAt: occurred, claimedBy: Set(claims))
        }
    }

    /// Writes records into `tb_sales` with one set-based statement: each per-record column travels as one
    /// bound binary array (``PostgresArrayColumn``), expanded by `unnest`; the values shared by the batch
    /// (source, run, pass, time) are scalars. New records (`isNew`: no row under their key, as read in this
    /// transaction while the run lock is held) go in with a plain `INSERT`, which costs the server about a third
    /// less than `ON CONFLICT`'s speculative insertion; changed ones with `INSERT … ON CONFLICT DO UPDATE`.
    /// A key stored meanwhile by a writer that ignores the run lock fails the batch (unique violation) instead
    /// of being overwritten, and the batch's retry sees it as stored.
    ///
    /// Not `COPY`: postgres-nio 1.33.2's `copyFrom` never returns when the connection is terminated just
    /// before it starts ("leaked its continuation", seen with `pg_terminate_backend`), which would hang the
    /// run; a bound statement fails cleanly and the batch is retried on a new connection.
    private static func write(_ columns: SalesColumns, isNew: Bool, syncId: String, passId: String?,
                              on connection: PostgresConnection, logger: Logger) async throws {
        guard let source = columns.sourceId else { return }
        try await connection.run("""
            INSERT INTO tb_sales (source_id, external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference,
                source_updated_at, content_hash, duplicate_of, deleted_at_source, deleted_reason, sync_id, first_sync_id, last_seen_pass,
                ingested_at, updated_at)
            SELECT $1::text, external_id, pdv, operator, amount::numeric, currency, occurred_at, type, type_raw, reference,
                source_updated_at, content_hash, duplicate_of, CASE WHEN deleted THEN $4::timestamptz END, CASE WHEN deleted THEN 'soft' END,
                $2::text, $2::text, $3::text, $4::timestamptz, $4::timestamptz
            FROM unnest($5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                AS staged(external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
                    content_hash, duplicate_of, deleted)
            \(isNew ? "" : mergeChanged)
            """, [.text(source), .text(syncId), .text(passId), .text(Instant.now.description),
                  .column(columns.externalId), .column(columns.pdv), .column(columns.operator), .column(columns.amount),
                  .column(columns.currency), .column(columns.occurredAt), .column(columns.type), .column(columns.typeRaw),
                  .column(columns.reference), .column(columns.sourceUpdatedAt), .column(columns.contentHash),
                  .column(columns.duplicateOf), .column(columns.deleted)], logger: logger)
    }

    /// The `ON CONFLICT` clause that merges a changed record (``write(_:isNew:syncId:passId:on:logger:)``) into its stored row.
    private static let mergeChanged = """
        ON CONFLICT (source_id, external_id) DO UPDATE SET pdv = excluded.pdv, operator = excluded.operator, amount = excluded.amount,
            currency = excluded.currency, occurred_at = excluded.occurred_at, type = excluded.type, type_raw = excluded.type_raw,
            reference = excluded.reference, source_updated_at = excluded.source_updated_at, content_hash = excluded.content_hash,
            sync_id = excluded.sync_id, last_seen_pass = COALESCE(excluded.last_seen_pass, tb_sales.last_seen_pass),
            deleted_at_source = CASE WHEN excluded.deleted_reason IS NULL THEN NULL
                ELSE COALESCE(tb_sales.deleted_at_source, excluded.deleted_at_source) END,
            deleted_reason = excluded.deleted_reason, updated_at = excluded.updated_at
        """

    public func finishFullPass(source: String, pass: SyncState.FullPass, syncId: String, checkpoint: Checkpoint?) async throws -> Int {
        try await transaction("finishing the full sync of \(source)") { connection, logger in
            let marked = try await connection.run("""
                UPDATE tb_sales SET deleted_at_source = now(), deleted_reason = 'vanished', sync_id = $1, updated_at = now()
                WHERE source_id = $2 AND deleted_at_source IS NULL AND last_seen_pass IS DISTINCT FROM $3 AND updated_at < $4::timestamptz
                RETURNING 1
                """, [.text(syncId), .text(source), .text(pass.passId), .text(pass.startedAt.description)], logger: logger).count
            try await Self.saveState(SyncState(checkpoint: checkpoint, fullPass: nil), source: source, syncId: syncId, on: connection, logger: logger)
            try await connection.run("UPDATE tb_erp_sync_audit SET records_deleted = records_deleted + $1 WHERE sync_id = $2", [.int(marked), .text(syncId)], logger: logger)
            return marked
        }
    }

    // MARK: audit log

    public func history(source: String?, limit: Int) async throws -> [AuditEntry] {
        let rows = try await read("reading the history") { connection, logger in
            try await connection.run("""
                SELECT sync_id, source_id, database_type, sync_type, status, started_at, ended_at, duration_ms, cursor_from, cursor_to,
                    records_fetched, records_processed, records_inserted, records_updated, records_unchanged, records_skipped,
                    records_rejected, records_deleted, has_more, error_details::text AS error_details, triggered_by, is_manual
                FROM tb_erp_sync_audit WHERE ($1::text IS NULL OR source_id = $1) ORDER BY started_at DESC LIMIT $2
                """, [.text(source), .int(limit)], logger: logger)
        }
        return rows.map { row in AuditEntry(auditRow: { row[$0]?.text }) }
    }

    public func quarantine(source: String?, limit: Int) async throws -> [QuarantineEntry] {
        let rows = try await read("reading the quarantine") { connection, logger in
            try await connection.run("""
                SELECT id, kind, sync_id, source_id, external_id, reason_code, message, raw_json::text AS raw_json, first_seen_at, last_seen_at, occurrences
                FROM tb_sync_errors WHERE ($1::text IS NULL OR source_id = $1) ORDER BY last_seen_at DESC, id DESC LIMIT $2
                """, [.text(source), .int(limit)], logger: logger)
        }
        return rows.map { row in QuarantineEntry(errorRow: { row[$0]?.text }) }
    }

    public func totals(source: String) async throws -> SourceTotals {
        try await read("summing \(source)") { connection, logger in
            let counts = try await connection.run("""
                SELECT count(*) AS n, count(deleted_at_source) AS deleted, count(duplicate_of) AS dups FROM tb_sales WHERE source_id = $1
                """, [.text(source)], logger: logger).first
            var sums: [String: String] = [:]
            for row in try await connection.run("SELECT currency, sum(amount)::text AS total FROM tb_sales WHERE source_id = $1 GROUP BY currency",
                                                [.text(source)], logger: logger) {
                let currency = row["currency"]?.text ?? ""
                sums[currency] = Amount.canonical(row["total"]?.text ?? "0", currency: currency)
            }
            return SourceTotals(rows: Int(counts?["n"]?.text ?? "") ?? 0, deleted: Int(counts?["deleted"]?.text ?? "") ?? 0,
                                duplicates: Int(counts?["dups"]?.text ?? "") ?? 0, amountByCurrency: sums)
        }
    }

    public func close() async {
        let held = locks.withLock { locks in
            defer { locks.removeAll() }
            return Array(locks.values)
        }
        for lock in held {
            lock.release.finish()
            _ = try? await Deadline.run(seconds: 5) { try await lock.task.value }
        }
        await pool.close()
    }
}

/// A bound parameter of the destination's own statements.
enum DestinationBind: Sendable {
    case text(String?)
    case int(Int)
    case bool(Bool)
    case texts([String])
    case column(PostgresArrayColumn)
}

extension PostgresConnection {
    /// Runs a statement and returns its rows as column name → value.
    @discardableResult
    func run(_ sql: String, _ binds: [DestinationBind] = [], logger: Logger) async throws -> [[String: SourceValue]] {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .text(let value): bindings.append(value)
            case .int(let value): bindings.append(Int64(value))
            case .bool(let value): bindings.append(value)
            case .texts(let values): bindings.append(values)
            case .column(let column): bindings.append(column)
            }
        }
        var rows: [[String: SourceValue]] = []
        for try await row in try await query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            var values: [String: SourceValue] = [:]
            for cell in row { values[cell.columnName] = SourceValue(postgres: cell) }
            rows.append(values)
        }
        return rows
    }
}


/// Reads PostgreSQL's text form of a `text[]` (`{a,"b c",NULL}`).
enum PostgresArrayText {
    static func parse(_ text: String) -> [String] {
        guard text.hasPrefix("{"), text.hasSuffix("}") else { return [] }
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var wasQuoted = false
        for character in text.dropFirst().dropLast() {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                wasQuoted = true
            } else if character == "," && !quoted {
                if wasQuoted || current != "NULL" { items.append(current) }
                current = ""
                wasQuoted = false
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty || wasQuoted, wasQuoted || current != "NULL" { items.append(current) }
        return items
    }
}

/// The per-record `tb_sales` columns of a batch, each as one binary array parameter.
struct SalesColumns: Sendable {
    /// The source of the records; `nil` when there are none.
    let sourceId: String?
    var externalId, pdv, `operator`, amount, currency, type, typeRaw, reference, contentHash, duplicateOf: PostgresArrayColumn
    var occurredAt, sourceUpdatedAt: PostgresArrayColumn
    var deleted: PostgresArrayColumn

    /// Encodes the records (one source), each with the original it duplicates, if flagged.
    init(_ records: [(record: SaleTransaction, duplicateOf: String?)]) {
        sourceId = records.first?.record.sourceId
        let text = PostgresArrayColumn(.text, capacity: records.count)
        (externalId, pdv, `operator`, amount, currency, type, typeRaw, reference, contentHash, duplicateOf) =
            (text, text, text, text, text, text, text, text, text, text)
        occurredAt = PostgresArrayColumn(.timestamptz, capacity: records.count)
        sourceUpdatedAt = occurredAt
        deleted = PostgresArrayColumn(.bool, capacity: records.count)
        for (record, original) in records {
            externalId.append(record.externalId)
            pdv.append(record.pdv)
            `operator`.append(record.operator)
            amount.append(record.amount.description)
            currency.append(record.currency)
            occurredAt.append(record.occurredAt)
            type.append(record.type.rawValue)
            typeRaw.append(record.typeRaw)
            reference.append(record.reference)
            sourceUpdatedAt.append(record.sourceUpdatedAt)
            contentHash.append(record.contentHash)
            duplicateOf.append(original)
            deleted.append(record.isDeletedAtSource)
        }
    }
}

extension PostgresDestination {
    public func quarantine(_ filter: QuarantineFilter) async throws -> [QuarantineEntry] {
        let rows = try await read("reading the quarantine") { connection, logger in
            try await connection.run("""
                SELECT id, kind, sync_id, source_id, external_id, reason_code, message, raw_json::text AS raw_json, first_seen_at, last_seen_at, occurrences
                FROM tb_sync_errors WHERE ($1::text IS NULL OR source_id = $1) AND ($2::text IS NULL OR sync_id = $2)
                    AND ($3::text IS NULL OR reason_code = $3) AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR id < $5::bigint)
                ORDER BY id DESC LIMIT $6
                """, [.text(filter.source), .text(filter.syncId), .text(filter.reasonCode), .text(filter.kind),
                      .text(filter.beforeId.map(String.init)), .int(filter.limit)], logger: logger)
        }
        return rows.map { row in QuarantineEntry(errorRow: { row[$0]?.text }) }
    }

    public func run(syncId: String) async throws -> AuditEntry? {
        let rows = try await read("reading run \(syncId)") { connection, logger in
            try await connection.run("""
                SELECT sync_id, source_id, database_type, sync_type, status, started_at, ended_at, duration_ms, cursor_from, cursor_to,
                    records_fetched, records_processed, records_inserted, records_updated, records_unchanged, records_skipped,
                    records_rejected, records_deleted, has_more, error_details::text AS error_details, triggered_by, is_manual
                FROM tb_erp_sync_audit WHERE sync_id = $1
                """, [.text(syncId)], logger: logger)
        }
        return rows.first.map { row in AuditEntry(auditRow: { row[$0]?.text }) }
    }
}
