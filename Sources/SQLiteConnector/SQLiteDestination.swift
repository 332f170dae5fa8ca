public import SyncCore
import Foundation
import SQLiteNIO

/// The embedded audit database: one SQLite file in WAL mode with `synchronous = FULL`, so a committed batch
/// survives a crash of the process or the machine (https://sqlite.org/pragma.html#pragma_synchronous).
///
/// Each transaction is one `BEGIN IMMEDIATE … COMMIT` on the one connection, and the connection serves one
/// caller at a time (``serialized(_:)``), so a statement of one run can never land inside another run's open
/// transaction. The run lock is a row in `tb_sync_lock`, taken over only when its holder is a dead process on
/// this host or has not renewed it (heartbeat, batch) for the lease period, judged by this machine's clock: an
/// SQLite file serves the processes of one machine; several `serve` instances on several hosts need the
/// PostgreSQL destination (README "Several serve instances"). The statements of a batch are
/// ``SQLiteTransaction``'s.
public actor SQLiteDestination: Destination, AuditLog {
    let connection: SQLiteConnection
    private let path: String
    private let host = ProcessInfo.processInfo.hostName
    private let pid = Int(ProcessInfo.processInfo.processIdentifier)
    private let lease: LeaseOptions
    /// Whether a caller is using the connection; others wait in `waiters` (FIFO).
    private var isBusy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Opens (creating if needed) the audit database at `path`, in a folder that must exist: a missing folder is
    /// a typo in the configuration, never created (the audit database would be written elsewhere than meant).
    /// - Throws: ``SyncFailure`` `DESTINATION_CONFIG` when the folder is missing, `DESTINATION_READ_ONLY` when
    ///   the file or its folder cannot be written (WAL mode writes `-wal` and `-shm` files beside it; checked
    ///   before opening, so none are left behind), `DESTINATION_UNAVAILABLE`.
    /// - Parameter lease: the lease period and the instance id locks are held in the name of.
    public init(path: String, lease: LeaseOptions = LeaseOptions()) async throws {
        self.path = path
        self.lease = lease
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw SyncFailure(code: .destinationConfig, message: "the folder \(folder) of the audit database \(path) does not exist; create it first", isTransient: false)
        }
        for target in [folder, path] where FileManager.default.fileExists(atPath: target) && access(target, W_OK) != 0 {
            throw SyncFailure(code: .destinationReadOnly, message: "the audit database \(path) cannot be written: \(target) is not writable (\(String(cString: strerror(errno))))",
                              isTransient: false)
        }
        connection = try await openSQLite(path: path, mustExist: false, code: .destinationUnavailable)
        do {
            _ = try await connection.query("PRAGMA busy_timeout = 10000")
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            _ = try await connection.query("PRAGMA synchronous = FULL")
        } catch {
            throw SyncFailure.sqlite(error, code: .destinationUnavailable, context: "configuring \(path)")
        }
    }

    // MARK: helpers

    /// Runs `body` with the connection to itself: callers queue in arrival order while another one (a
    /// transaction of another run, say) is between two statements.
    func serialized<T>(_ body: () async throws -> T) async rethrows -> T {
        if isBusy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            isBusy = true
        }
        defer {
            if waiters.isEmpty { isBusy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }

    @discardableResult
    func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction (serialized); rolls back on any error.
    func exclusiveTransaction<T>(_ context: String, commits: Bool = true, _ body: () async throws -> T) async throws -> T {
        try await serialized {
            do {
                try await query("BEGIN IMMEDIATE")
            } catch {
                throw SyncFailure.sqlite(error, code: .destinationFailed, context: context)
            }
            do {
                let value = try await body()
                try await query(commits ? "COMMIT" : "ROLLBACK")
                return value
            } catch {
                _ = try? await query("ROLLBACK")
                throw SyncFailure.sqlite(error, code: .destinationFailed, context: context)
            }
        }
    }

    public func transaction<T: Sendable>(_ context: String, commits: Bool,
                                         _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T {
        try await exclusiveTransaction(context, commits: commits) { try await body(SQLiteTransaction(connection: connection)) }
    }

    /// Runs statements outside a transaction (serialized), mapping errors to `DESTINATION_FAILED`.
    @discardableResult
    private func statements<T>(_ context: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await serialized(body)
        } catch {
            throw SyncFailure.sqlite(error, code: .destinationFailed, context: context)
        }
    }

    // MARK: schema

    public func migrate() async throws {
        try await exclusiveTransaction("migrating \(path)") {
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

    public nonisolated var leaseSeconds: Int { lease.periodSeconds }

    public func acquireLock(source: String, syncId: String, slot: ScheduleSlot?) async throws -> LockRefusal? {
        try await exclusiveTransaction("locking source \(source)") {
            let now = Instant.now
            if let row = try await query("SELECT sync_id, host, pid, instance_id, heartbeat_at FROM tb_sync_lock WHERE source_id = ?", [.text(source)]).first {
                let holderHost = row.column("host")?.string ?? ""
                let holderPid = row.column("pid")?.integer ?? 0
                let heartbeat = Instant(iso8601: row.column("heartbeat_at")?.string ?? "") ?? now
                let holderDead = LeaseHolder.isGone(host: holderHost, pid: Int(holderPid), thisHost: host, thisPid: pid)
                let expired = now.seconds - heartbeat.seconds > Int64(lease.periodSeconds)
                if !holderDead && !expired {
                    return .held(by: "run \(row.column("sync_id")?.string ?? "?") of instance \(row.column("instance_id")?.string ?? "?") "
                        + "(pid \(holderPid) on \(holderHost)) since \(heartbeat)")
                }
            }
            if let slot {
                let claimed = try await query("""
                    INSERT INTO tb_sync_slots (source_id, sync_type, slot_at, sync_id, instance_id, claimed_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO NOTHING RETURNING sync_id
                    """, [.text(source), .text(slot.syncType.rawValue), .text(slot.dueAt.description), .text(syncId), .text(lease.instanceId),
                          .text(now.description)])
                if claimed.isEmpty {
                    let claimer = try await query("SELECT sync_id, instance_id FROM tb_sync_slots WHERE source_id = ? AND sync_type = ? AND slot_at = ?",
                                                  [.text(source), .text(slot.syncType.rawValue), .text(slot.dueAt.description)]).first
                    return .slotTaken(by: "run \(claimer?.column("sync_id")?.string ?? "?") of instance \(claimer?.column("instance_id")?.string ?? "?")")
                }
            }
            try await query("""
                INSERT OR REPLACE INTO tb_sync_lock (source_id, sync_id, host, pid, instance_id, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [.text(source), .text(syncId), .text(host), .integer(pid), .text(lease.instanceId), .text(now.description), .text(now.description)])
            // Runs still RUNNING now that we hold the lock died without finishing (kill -9, power loss).
            try await query("""
                UPDATE tb_erp_sync_audit SET status = 'FAILED', ended_at = ?, error_count = error_count + 1, error_details = ?
                WHERE source_id = ? AND status = 'RUNNING' AND sync_id <> ?
                """, [.text(now.isoMillis), .text(AbandonedRun.errorJSON), .text(source), .text(syncId)])
            return nil
        }
    }

    public func releaseLock(source: String, syncId: String) async throws {
        try await statements("unlocking source \(source)") {
            try await query("DELETE FROM tb_sync_lock WHERE source_id = ? AND sync_id = ?", [.text(source), .text(syncId)])
        }
    }

    public func lockHolder(source: String) async throws -> String? {
        try await statements("reading the lock of \(source)") {
            try await query("SELECT sync_id, pid, host, instance_id FROM tb_sync_lock WHERE source_id = ?", [.text(source)]).first.map {
                "run \($0.column("sync_id")?.string ?? "?") of instance \($0.column("instance_id")?.string ?? "?") "
                    + "(pid \($0.column("pid")?.integer ?? 0) on \($0.column("host")?.string ?? "?"))"
            }
        }
    }

    // MARK: the dedup index

    /// Another source's records, or a lock row of another source (held, or left by a process that died: counted,
    /// the safe side).
    public func hasOtherSources(than source: String) async throws -> Bool {
        try await statements("checking the sources of tb_sales") { try await otherSources(than: source) }
    }

    private func otherSources(than source: String) async throws -> Bool {
        if try await SQLiteTransaction(connection: connection).hasRecords(ofSourcesOtherThan: source) { return true }
        return try await !query("SELECT 1 FROM tb_sync_lock WHERE source_id <> ? LIMIT 1", [.text(source)]).isEmpty
    }

    /// One statement on `tb_sales_pdvs`: the pdvs given, or those of `source`'s records, with another source's row.
    public func sharesPdvs(source: String, among pdvs: [String]?) async throws -> Bool {
        try await statements("checking the pdvs of other sources") {
            guard let pdvs else {
                return try await query("""
                    SELECT EXISTS (SELECT 1 FROM tb_sales_pdvs mine JOIN tb_sales_pdvs other ON other.pdv = mine.pdv AND other.source_id <> mine.source_id
                        WHERE mine.source_id = ?) AS shared
                    """, [.text(source)]).first?.column("shared")?.integer == 1
            }
            return try await !SQLiteTransaction(connection: connection).pdvs(ofSourcesOtherThan: source, among: pdvs).isEmpty
        }
    }

    /// Drops `tb_sales_dedup` in one write transaction (SQLite has one writer at a time) that finds no pdv of
    /// `tb_sales_pdvs` with two sources.
    public func deferDedupIndex(for source: String) async throws -> Bool {
        try await exclusiveTransaction("deferring the dedup index") {
            let shared = try await query("SELECT EXISTS (SELECT 1 FROM tb_sales_pdvs GROUP BY pdv HAVING count(*) > 1) AS shared")
            if shared.first?.column("shared")?.integer != 0 { return false }
            try await query("DROP INDEX IF EXISTS tb_sales_dedup")
            return true
        }
    }

    public func buildDedupIndex(registering pdvs: [String], for source: String) async throws {
        try await exclusiveTransaction("building the dedup index") {
            try await SQLiteTransaction(connection: connection).registerPdvs(pdvs, source: source)
            _ = try await query(SQLiteMigrations.dedupIndex)
        }
    }

    // MARK: state and audit

    public func loadState(source: String) async throws -> SyncState {
        try await statements("reading the checkpoint of \(source)") {
            guard let json = try await query("SELECT state_json FROM tb_sync_state WHERE source_id = ?", [.text(source)]).first?.column("state_json")?.string else {
                return SyncState()
            }
            return try JSONDecoder().decode(SyncState.self, from: Data(json.utf8))
        }
    }

    public func beginRun(_ run: SyncRun) async throws {
        try await statements("writing the audit row") {
            try await query("""
                INSERT INTO tb_erp_sync_audit (sync_id, source_id, database_type, sync_type, status, started_at, cursor_from, triggered_by, is_manual)
                VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?)
                """, [.text(run.syncId), .text(run.source), .text(run.request.source.type.rawValue), .text(run.request.syncType.rawValue),
                      .text(run.startTime.isoMillis), run.cursorFrom.map { .text($0) } ?? .null, .text(run.request.triggeredBy),
                      .integer(run.request.isManual ? 1 : 0)])
        }
    }

    public func finishRun(_ result: ErpSyncResult) async throws {
        try await exclusiveTransaction("finishing the audit row") {
            let details = String(decoding: try JSONEncoder().encode(result.errors), as: UTF8.self)
            try await query("""
                UPDATE tb_erp_sync_audit SET status = ?, ended_at = ?, duration_ms = ?, has_more = ?, error_count = ?, error_details = ?
                WHERE sync_id = ?
                """, [.text(result.status.rawValue), .text(result.endTime), .integer(result.duration), .integer(result.hasMore ? 1 : 0),
                      .integer(result.errors.count), .text(details), .text(result.syncId)])
            let now = Instant.now.description
            for (index, error) in result.errors.enumerated() {
                try await query("""
                    INSERT OR IGNORE INTO tb_sync_errors (kind, sync_id, source_id, reason_code, message, fingerprint, severity, batch,
                        first_seen_at, last_seen_at) VALUES ('run', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(result.syncId), .text(result.source), .text(error.code.rawValue), .text(error.message),
                          .text("run:\(result.syncId):\(index)"), .text(error.severity), error.batch.map { .integer($0) } ?? .null,
                          .text(now), .text(now)])
            }
        }
    }

    public func openQuarantinedKeys(source: String, reason: String?, externalIds: [String]?) async throws -> [[SourceValue]] {
        try await statements("reading the quarantine of \(source)") {
            let ids = externalIds.map { ids in String(decoding: (try? JSONEncoder().encode(ids)) ?? Data("[]".utf8), as: UTF8.self) }
            return try await query("""
                SELECT DISTINCT key_json FROM tb_sync_errors
                WHERE source_id = ? AND kind = 'record' AND resolved_at IS NULL AND key_json IS NOT NULL AND (? IS NULL OR reason_code = ?)
                    AND (? IS NULL OR external_id IN (SELECT value FROM json_each(?)))
                """, [.text(source), reason.map { .text($0) } ?? .null, reason.map { .text($0) } ?? .null,
                      ids.map { .text($0) } ?? .null, ids.map { .text($0) } ?? .null]).compactMap { row in
                row.column("key_json")?.string.flatMap { try? JSONDecoder().decode([SourceValue].self, from: Data($0.utf8)) }
            }
        }
    }

    public func hasSkippedDuplicates(source: String) async throws -> Bool {
        try await statements("reading the skipped duplicates of \(source)") {
            try await query("SELECT EXISTS (SELECT 1 FROM tb_sync_duplicates WHERE source_id = ? AND action = 'skip') AS found",
                            [.text(source)]).first?.column("found")?.integer == 1
        }
    }

    // MARK: audit log

    public func history(source: String?, limit: Int) async throws -> [AuditEntry] {
        let rows = try await serialized {
            try await query("""
                SELECT * FROM tb_erp_sync_audit WHERE (? IS NULL OR source_id = ?) ORDER BY started_at DESC, rowid DESC LIMIT ?
                """, [source.map { .text($0) } ?? .null, source.map { .text($0) } ?? .null, .integer(limit)])
        }
        return rows.map { row in AuditEntry(auditRow: { row.column($0)?.string }) }
    }

    public func totals(source: String) async throws -> SourceTotals {
        let sums = SumBox()
        let counts = try await serialized {
            try await connection.query("SELECT currency, amount FROM tb_sales WHERE source_id = ?", [.text(source)]) { row in
                sums.add(currency: row.column("currency")?.string ?? "", amount: row.column("amount")?.string ?? "")
            }
            return try await query("""
                SELECT count(*) AS n, count(deleted_at_source) AS deleted, count(duplicate_of) AS dups FROM tb_sales WHERE source_id = ?
                """, [.text(source)]).first
        }
        return SourceTotals(rows: counts?.column("n")?.integer ?? 0, deleted: counts?.column("deleted")?.integer ?? 0,
                            duplicates: counts?.column("dups")?.integer ?? 0, amountByCurrency: sums.totals)
    }

    /// Closes the database.
    public func close() async {
        try? await connection.close()
    }
}

extension SQLiteDestination {
    public func quarantine(_ filter: QuarantineFilter) async throws -> [QuarantineEntry] {
        func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
        let rows = try await serialized {
            try await query("""
                SELECT * FROM tb_sync_errors WHERE (?1 IS NULL OR source_id = ?1) AND (?2 IS NULL OR sync_id = ?2)
                    AND (?3 IS NULL OR reason_code = ?3) AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR id < ?5)
                    AND (?7 = 1 OR resolved_at IS NULL)
                ORDER BY id DESC LIMIT ?6
                """, [text(filter.source), text(filter.syncId), text(filter.reasonCode), text(filter.kind),
                      filter.beforeId.map { .integer(Int($0)) } ?? .null, .integer(filter.limit), .integer(filter.includeResolved ? 1 : 0)])
        }
        return rows.map { row in QuarantineEntry(errorRow: { row.column($0)?.string }) }
    }

    public func run(syncId: String) async throws -> AuditEntry? {
        try await serialized {
            try await query("SELECT * FROM tb_erp_sync_audit WHERE sync_id = ?", [.text(syncId)]).first.map { row in
                AuditEntry(auditRow: { row.column($0)?.string })
            }
        }
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

extension RandomAccessCollection where Index == Int {
    /// Consecutive slices of at most `size` elements.
    func chunks(of size: Int) -> [SubSequence] {
        stride(from: startIndex, to: endIndex, by: size).map { self[$0..<Swift.min($0 + size, endIndex)] }
    }
}
