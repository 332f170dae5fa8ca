import Foundation
public import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import SyncCore

/// The production audit database on PostgreSQL.
///
/// Each transaction runs on one pooled connection; the statements of a batch are ``PostgresTransaction``'s
/// (a probe of the stored keys, binary column arrays written with `INSERT … SELECT … FROM unnest(…)`).
///
/// The run lock is a lease, a row of `tb_sync_lock` (README "Several serve instances"): holder run, instance,
/// host and pid, a fencing `token` incremented by every claim, and `expires_at`, always computed and compared by
/// PostgreSQL's clock (`clock_timestamp()`), never a client's. A lease is claimed only when free or expired,
/// renewed while its run is alive (the engine's heartbeat and every batch, ``PostgresTransaction/renewLock(source:syncId:)``),
/// and each batch commits only if its transaction still finds the lease held by its run and token, unexpired: a
/// process that was paused or cut off for longer than the lease commits nothing once it comes back, whichever
/// machine it runs on. No session-level lock is held, so nothing outlives a process that is stopped but whose kernel
/// still answers the server.
public final class PostgresDestination: Destination, AuditLog {
    /// `classid` of the advisory lock that serializes migrations: "ERPS" in ASCII.
    static let lockClass: Int32 = 0x4552_5053

    private let pool: PostgresPool
    private let leases: PostgresLeases

    /// What ``acquireLock(source:syncId:slot:)``'s transaction decided.
    private enum LeaseClaim: Sendable {
        case claimed(token: Int)
        case refused(LockRefusal)
    }

    /// Prepares a pool to the audit database (connections open on first use).
    /// - Parameter lease: the lease period and the instance id leases are held in the name of.
    public init(settings: PostgresSettings, lease: LeaseOptions = LeaseOptions(), logger: Logger = Logger(label: "erp-sync.postgres")) throws {
        leases = PostgresLeases(options: lease)
        do {
            pool = try PostgresPool(settings: settings, logger: logger)
        } catch {
            throw SyncFailure(code: .destinationConfig, message: "TLS settings for \(settings.host): \(error)", isTransient: false)
        }
    }

    public func transaction<T: Sendable>(_ context: String, commits: Bool,
                                         _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T {
        try await connectionTransaction(context, commits: commits) { [leases] connection, logger in
            try await body(PostgresTransaction(connection: connection, logger: logger, leases: leases))
        }
    }

    /// Runs `body` between `BEGIN` and `COMMIT` (`ROLLBACK` unless `commits`) on one pooled connection; rolls back
    /// on any error. The transaction is `READ COMMITTED` whatever the server's `default_transaction_isolation`: each
    /// statement sees what committed before it, which the overlapped batches (``overlapsBatches``) rely on.
    @discardableResult
    func connectionTransaction<T: Sendable>(_ context: String, commits: Bool = true, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await pool.withConnection(context, code: .destinationFailed) { [logger = pool.logger] connection in
            try await connection.run("BEGIN ISOLATION LEVEL READ COMMITTED", logger: logger)
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

    public var leaseSeconds: Int { leases.seconds }

    /// `true`: row locks and `READ COMMITTED` statements (PostgreSQL's default isolation level), each transaction on
    /// its own pooled connection.
    public var overlapsBatches: Bool { true }

    /// Claims the lease of `source` in one transaction: the lease row is locked (`FOR UPDATE SKIP LOCKED`: a row
    /// locked by a batch being committed counts as held, and nothing waits on it), taken only when its `expires_at` has
    /// passed by PostgreSQL's clock or its holder is a process of this host that is gone (``LeaseHolder``), with the next fencing `token`; the slot, if any, is claimed in the same
    /// transaction (`tb_sync_slots`, unique per source, kind and instant), so two instances never run one slot.
    public func acquireLock(source: String, syncId: String, slot: ScheduleSlot?) async throws -> LockRefusal? {
        let lease = leases
        let outcome: LeaseClaim = try await connectionTransaction("claiming the lease of \(source)") { connection, logger in
            let lockRow = """
                SELECT expires_at > clock_timestamp() AS live, \(Self.holderColumns) FROM tb_sync_lock WHERE source_id = $1 FOR UPDATE SKIP LOCKED
                """
            var locked = try await connection.run(lockRow, [.text(source)], logger: logger).first
            if locked == nil {
                // Either the row is locked by a batch being committed (held: its renewal commits first), or the source
                // has never been claimed. The insert comes only then: on a row another transaction has updated, a
                // unique check would wait for that transaction.
                if let busy = try await connection.run("SELECT \(Self.holderColumns) FROM tb_sync_lock WHERE source_id = $1", [.text(source)],
                                                       logger: logger).first {
                    return .refused(.held(by: Self.describe(busy)))
                }
                try await connection.run("""
                    INSERT INTO tb_sync_lock (source_id, sync_id, host, pid, instance_id, token, acquired_at, heartbeat_at, expires_at)
                    VALUES ($1, '', '', 0, '', 0, clock_timestamp(), clock_timestamp(), '-infinity') ON CONFLICT (source_id) DO NOTHING
                    """, [.text(source)], logger: logger)
                locked = try await connection.run(lockRow, [.text(source)], logger: logger).first
            }
            guard let row = locked else { return .refused(.held(by: "a run claiming it at this instant")) }
            let holderGone = LeaseHolder.isGone(host: row["host"]?.text ?? "", pid: row["pid"]?.text.flatMap(Int.init) ?? 0,
                                                thisHost: lease.host, thisPid: lease.pid)
            if row["live"] == .bool(true) && !holderGone { return .refused(.held(by: Self.describe(row))) }
            if let slot, try await connection.run("""
                INSERT INTO tb_sync_slots (source_id, sync_type, slot_at, sync_id, instance_id, claimed_at)
                VALUES ($1, $2, $3::timestamptz, $4, $5, clock_timestamp()) ON CONFLICT DO NOTHING RETURNING 1
                """, [.text(source), .text(slot.syncType.rawValue), .text(slot.dueAt.description), .text(syncId), .text(lease.instanceId)],
                logger: logger).isEmpty {
                let claimer = try await connection.run("""
                    SELECT sync_id, instance_id FROM tb_sync_slots WHERE source_id = $1 AND sync_type = $2 AND slot_at = $3::timestamptz
                    """, [.text(source), .text(slot.syncType.rawValue), .text(slot.dueAt.description)], logger: logger).first
                return .refused(.slotTaken(by: "run \(claimer?["sync_id"]?.text ?? "?") of instance \(claimer?["instance_id"]?.text ?? "?")"))
            }
            let token = try await connection.run("""
                UPDATE tb_sync_lock SET sync_id = $2, host = $3, pid = $4, instance_id = $5, token = token + 1, acquired_at = clock_timestamp(),
                    heartbeat_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => $6::float8)
                WHERE source_id = $1 RETURNING token
                """, [.text(source), .text(syncId), .text(lease.host), .int(lease.pid), .text(lease.instanceId), .int(lease.seconds)],
                logger: logger).first?["token"]?.text.flatMap(Int.init)
            // Runs still RUNNING now that we hold the lease died or lost it without finishing (kill -9, power loss, a
            // lease that expired while the process was paused or cut off).
            try await connection.run("""
                UPDATE tb_erp_sync_audit SET status = 'FAILED', ended_at = $1, error_count = error_count + 1, error_details = $2::jsonb
                WHERE source_id = $3 AND status = 'RUNNING' AND sync_id <> $4
                """, [.text(Instant.now.isoMillis), .text(AbandonedRun.errorJSON), .text(source), .text(syncId)], logger: logger)
            return .claimed(token: token ?? 0)
        }
        switch outcome {
        case .refused(let refusal):
            return refusal
        case .claimed(let token):
            lease.hold(source: source, syncId: syncId, token: token)
            return nil
        }
    }

    /// Ends the lease of run `syncId` (it expires now); a lease another run holds since is left alone.
    public func releaseLock(source: String, syncId: String) async throws {
        guard let token = leases.release(source: source, syncId: syncId) else { return }
        try await connectionTransaction("releasing the lease of \(source)") { connection, logger in
            try await connection.run("UPDATE tb_sync_lock SET expires_at = clock_timestamp() WHERE source_id = $1 AND sync_id = $2 AND token = $3",
                                     [.text(source), .text(syncId), .int(token)], logger: logger)
        }
    }

    /// The holder of an unexpired lease on `source`: run, instance, host and pid, and the expiry.
    public func lockHolder(source: String) async throws -> String? {
        try await read("reading the lease of \(source)") { connection, logger in
            try await Self.holder(of: source, connection: connection, logger: logger)
        }
    }

    private static let holderColumns = """
        sync_id, instance_id, host, pid, token, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS expires_at
        """

    private static func holder(of source: String, connection: PostgresConnection, logger: Logger) async throws -> String? {
        try await connection.run("SELECT \(holderColumns) FROM tb_sync_lock WHERE source_id = $1 AND expires_at > clock_timestamp()",
                                 [.text(source)], logger: logger).first.map(describe)
    }

    private static func describe(_ row: [String: SourceValue]) -> String {
        "run \(row["sync_id"]?.text ?? "?") of instance \(row["instance_id"]?.text ?? "?") (pid \(row["pid"]?.text ?? "?") on \(row["host"]?.text ?? "?"), "
            + "lease \(row["token"]?.text ?? "?") until \(row["expires_at"]?.text ?? "?"))"
    }

    // MARK: the dedup index

    /// Another source's records (`tb_sales`, read through the primary key's leading `source_id`) or an unexpired
    /// lease (by the server's clock).
    public func hasOtherSources(than source: String) async throws -> Bool {
        try await read("checking the sources of tb_sales") { [self] connection, logger in try await otherSources(than: source, connection, logger) }
    }

    private func otherSources(than source: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        if try await PostgresTransaction(connection: connection, logger: logger, leases: leases).hasRecords(ofSourcesOtherThan: source) { return true }
        return try await connection.run("""
            SELECT EXISTS (SELECT 1 FROM tb_sync_lock WHERE source_id <> $1 AND expires_at > clock_timestamp()) AS leased
            """, [.text(source)], logger: logger).first?["leased"] == .bool(true)
    }

    /// One statement on `tb_sales_pdvs`: the pdvs given, or those of `source`'s records, with another source's row.
    public func sharesPdvs(source: String, among pdvs: [String]?) async throws -> Bool {
        try await read("checking the pdvs of other sources") { connection, logger in
            let sql = pdvs == nil
                ? """
                  SELECT EXISTS (SELECT 1 FROM tb_sales_pdvs mine JOIN tb_sales_pdvs other ON other.pdv = mine.pdv AND other.source_id <> mine.source_id
                      WHERE mine.source_id = $1) AS shared
                  """
                : "SELECT EXISTS (SELECT 1 FROM tb_sales_pdvs WHERE pdv = ANY($2) AND source_id <> $1) AS shared"
            return try await connection.run(sql, [.text(source)] + (pdvs.map { [.texts($0)] } ?? []), logger: logger).first?["shared"] == .bool(true)
        }
    }

    /// Drops `tb_sales_dedup` when no pdv of `tb_sales_pdvs` has two sources: checked in the transaction that drops
    /// it, after `LOCK TABLE tb_sales IN ACCESS EXCLUSIVE MODE` (waiting at most 2 s, `lock_timeout`: a waiting exclusive
    /// lock holds up every later reader of the table). A run that meets another source's pdv builds the index again
    /// before it probes (``buildDedupIndex(registering:for:)``). An index already absent is not locked for.
    public func deferDedupIndex(for source: String) async throws -> Bool {
        try await connectionTransaction("deferring the dedup index") { connection, logger in
            let missing = try await connection.run("SELECT to_regclass('tb_sales_dedup') IS NULL AS missing", logger: logger).first?["missing"]
            if missing == .bool(true) { return true }
            try await connection.run("SET LOCAL lock_timeout = '2s'", logger: logger)
            try await connection.run("LOCK TABLE tb_sales IN ACCESS EXCLUSIVE MODE", logger: logger)
            let shared = try await connection.run("SELECT EXISTS (SELECT 1 FROM tb_sales_pdvs GROUP BY pdv HAVING count(*) > 1) AS shared",
                                                  logger: logger).first?["shared"]
            if shared != .bool(false) { return false }
            try await connection.run("DROP INDEX IF EXISTS tb_sales_dedup", logger: logger)
            return true
        }
    }

    /// Looks the index up in the catalog (`to_regclass`) and runs `CREATE INDEX IF NOT EXISTS` only when it is
    /// missing: the statement's `SHARE` lock would otherwise wait for every batch in flight. The build is exempt from
    /// the pool's `statement_timeout` (`SET LOCAL`): on a table a lone source filled for years it may take minutes,
    /// and a build cut off at the timeout would hold the writers of `tb_sales` that long on every run, for nothing.
    public func buildDedupIndex(registering pdvs: [String], for source: String) async throws {
        try await connectionTransaction("building the dedup index") { [leases] connection, logger in
            if !pdvs.isEmpty {
                try await PostgresTransaction(connection: connection, logger: logger, leases: leases).registerPdvs(pdvs, source: source)
            }
            let missing = try await connection.run("SELECT to_regclass('tb_sales_dedup') IS NULL AS missing", logger: logger).first?["missing"]
            guard missing == .bool(true) else { return }
            try await connection.run("SET LOCAL statement_timeout = 0", logger: logger)
            try await connection.run(PostgresMigrations.dedupIndex, logger: logger)
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

    public func hasSkippedDuplicates(source: String) async throws -> Bool {
        try await read("reading the skipped duplicates of \(source)") { connection, logger in
            try await connection.run("SELECT EXISTS (SELECT 1 FROM tb_sync_duplicates WHERE source_id = $1 AND action = 'skip') AS found",
                                     [.text(source)], logger: logger).first?["found"] == .bool(true)
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
        var rows: [[String: SourceValue]] = []
        for try await row in try await query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger) {
            var values: [String: SourceValue] = [:]
            for cell in row { values[cell.columnName] = SourceValue(postgres: cell) }
            rows.append(values)
        }
        return rows
    }

    /// Runs a statement and returns its rows as values in select-list order: for statements run once per batch
    /// with a row per record (no dictionary per row).
    func values(_ sql: String, _ binds: [DestinationBind] = [], logger: Logger) async throws -> [[SourceValue]] {
        var rows: [[SourceValue]] = []
        for try await row in try await query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger) {
            rows.append(row.map(SourceValue.init(postgres:)))
        }
        return rows
    }

    private static func bindings(_ binds: [DestinationBind]) -> PostgresBindings {
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
        return bindings
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
