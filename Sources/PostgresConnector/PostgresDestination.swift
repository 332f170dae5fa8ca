import Foundation
public import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import SyncCore

/// The production audit database on PostgreSQL.
///
/// Each transaction runs on one pooled connection; the statements of a batch are ``PostgresTransaction``'s
/// (a probe of the stored keys, binary column arrays written with `INSERT … SELECT … FROM unnest(…)`). The run lock is a session-level advisory lock
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
            throw SyncFailure(code: .destinationConfig, message: "TLS settings for \(settings.host): \(error)", isTransient: false)
        }
    }

    public func transaction<T: Sendable>(_ context: String, commits: Bool,
                                         _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T {
        try await connectionTransaction(context, commits: commits) { connection, logger in
            try await body(PostgresTransaction(connection: connection, logger: logger))
        }
    }

    /// Runs `body` between `BEGIN` and `COMMIT` (`ROLLBACK` unless `commits`) on one pooled connection; rolls back
    /// on any error.
    @discardableResult
    func connectionTransaction<T: Sendable>(_ context: String, commits: Bool = true, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await pool.withConnection(context, code: .destinationFailed) { [logger = pool.logger] connection in
            try await connection.run("BEGIN", logger: logger)
            do {
                let value = try await body(connection, logger)
                try await connection.run(commits ? "COMMIT" : "ROLLBACK", logger: logger)
                return value
            } catch {
                _ = try? await connection.run("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs read-only statements on one connection, without a transaction around them.
    func read<T: Sendable>(_ context: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await pool.withConnection(context, code: .destinationFailed) { [logger = pool.logger] connection in
            try await body(connection, logger)
        }
    }

    // MARK: schema

    public func migrate() async throws {
        try await connectionTransaction("migrating the audit schema") { connection, logger in
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
            try await pool.withConnection("locking source \(source)", code: .destinationFailed, bounded: false) { [logger = pool.logger] connection in
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
            throw SyncFailure(code: .destinationFailed, message: "could not take the lock of \(source)", isTransient: true)
        }
        guard locked else {
            return try await lockHolder(source: source) ?? "another process holds the advisory lock"
        }
        locks.withLock { $0[source] = HeldLock(syncId: syncId, release: releaseContinuation, task: task) }
        try await connectionTransaction("recording the lock of \(source)") { [host, pid] connection, logger in
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
        try await connectionTransaction("unlocking source \(source)") { connection, logger in
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
            throw SyncFailure(code: .destinationFailed, message: "the checkpoint of \(source) is unreadable: \(error)", isTransient: false)
        }
    }

    public func beginRun(_ run: SyncRun) async throws {
        try await connectionTransaction("writing the audit row") { connection, logger in
            try await connection.run("""
                INSERT INTO tb_erp_sync_audit (sync_id, source_id, database_type, sync_type, status, started_at, cursor_from, triggered_by, is_manual)
                VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7, $8)
                """, [.text(run.syncId), .text(run.source), .text(run.request.source.type.rawValue), .text(run.request.syncType.rawValue),
                      .text(run.startTime.isoMillis), .text(run.cursorFrom), .text(run.request.triggeredBy), .bool(run.request.isManual)],
                    logger: logger)
        }
    }

    public func finishRun(_ result: ErpSyncResult) async throws {
        let details = String(decoding: try JSONEncoder().encode(result.errors), as: UTF8.self)
        try await connectionTransaction("finishing the audit row") { connection, logger in
            try await connection.run("""
                UPDATE tb_erp_sync_audit SET status = $1, ended_at = $2, duration_ms = $3, has_more = $4, error_count = $5,
                    error_details = $6::jsonb
                WHERE sync_id = $7
                """, [.text(result.status.rawValue), .text(result.endTime), .int(result.duration), .bool(result.hasMore),
                      .int(result.errors.count), .text(details), .text(result.syncId)], logger: logger)
            for (index, error) in result.errors.enumerated() {
                try await connection.run("""
                    INSERT INTO tb_sync_errors (kind, sync_id, source_id, reason_code, message, fingerprint, severity, batch, first_seen_at, last_seen_at)
                    VALUES ('run', $1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING
                    """, [.text(result.syncId), .text(result.source), .text(error.code.rawValue), .text(error.message), .text("run:\(result.syncId):\(index)"),
                          .text(error.severity), error.batch.map { .int($0) } ?? .text(nil), .text(Instant.now.description)], logger: logger)
            }
        }
    }

    public func openQuarantinedKeys(source: String, reason: String?, externalIds: [String]?) async throws -> [[SourceValue]] {
        let rows = try await read("reading the quarantine of \(source)") { connection, logger in
            try await connection.run("""
                SELECT DISTINCT key_json::text AS key_json FROM tb_sync_errors
                WHERE source_id = $1 AND kind = 'record' AND resolved_at IS NULL AND key_json IS NOT NULL
                    AND ($2::text IS NULL OR reason_code = $2) AND ($3::text[] IS NULL OR external_id = ANY($3))
                """, [.text(source), .text(reason), externalIds.map { .texts($0) } ?? .text(nil)], logger: logger)
        }
        return rows.compactMap { row in
            row["key_json"]?.text.flatMap { try? JSONDecoder().decode([SourceValue].self, from: Data($0.utf8)) }
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

extension PostgresDestination {
    public func quarantine(_ filter: QuarantineFilter) async throws -> [QuarantineEntry] {
        let rows = try await read("reading the quarantine") { connection, logger in
            try await connection.run("""
                SELECT id, kind, sync_id, source_id, external_id, reason_code, message, raw_json::text AS raw_json, first_seen_at, last_seen_at, occurrences,
                    to_char(resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS resolved_at, resolved_by_sync, resolution
                FROM tb_sync_errors WHERE ($1::text IS NULL OR source_id = $1) AND ($2::text IS NULL OR sync_id = $2)
                    AND ($3::text IS NULL OR reason_code = $3) AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR id < $5::bigint)
                    AND ($7 OR resolved_at IS NULL)
                ORDER BY id DESC LIMIT $6
                """, [.text(filter.source), .text(filter.syncId), .text(filter.reasonCode), .text(filter.kind),
                      .text(filter.beforeId.map(String.init)), .int(filter.limit), .bool(filter.includeResolved)], logger: logger)
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
