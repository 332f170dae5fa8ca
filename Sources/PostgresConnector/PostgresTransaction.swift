import Foundation
import Logging
import NIOCore
import PostgresNIO
import SyncCore

/// The PostgreSQL statements of each step of the core's commit sequence, run on the connection of the
/// transaction that ``PostgresDestination/transaction(_:_:)`` opened.
struct PostgresTransaction: DestinationTransaction {
    let connection: PostgresConnection
    let logger: Logger
    /// The leases of this process (their fencing tokens).
    let leases: PostgresLeases

    /// The fencing check, by PostgreSQL's clock: the lease row must still name this run and its token and not have
    /// expired; it is then extended by the lease period and stays locked (`UPDATE`) until this transaction ends, so
    /// no claim can take it over in between. The transaction also gets `idle_in_transaction_session_timeout` of
    /// the lease period (at least 5 s, at most the session's 15 s): a process stopped inside it cannot keep the row
    /// locked for longer; it is set by the same statement (its `RETURNING` list, evaluated for the renewed row), one
    /// round trip for both.
    func renewLock(source: String, syncId: String) async throws -> Bool {
        guard let token = leases.token(source: source, syncId: syncId) else { return false }
        return try await !connection.run("""
            UPDATE tb_sync_lock SET heartbeat_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => $4::float8)
            WHERE source_id = $1 AND sync_id = $2 AND token = $3 AND expires_at > clock_timestamp()
            RETURNING set_config('idle_in_transaction_session_timeout', $5, true) AS timeout
            """, [.text(source), .text(syncId), .int(token), .int(leases.seconds),
                  .text("\(min(max(leases.seconds, 5), PostgresSettings.idleInTransactionSeconds))s")], logger: logger).isEmpty
    }

    /// One index probe per key (`LATERAL … LIMIT 1` keeps the nested loop): `external_id = ANY($2)` lets the
    /// planner pick a sequential scan while a first load outgrows the table's statistics, which makes each
    /// batch cost as much as the whole table.
    func storedRecords(source: String, externalIds: [String]) async throws -> [String: ExistingRecord] {
        var existing: [String: ExistingRecord] = [:]
        existing.reserveCapacity(externalIds.count)
        for row in try await connection.values("""
            SELECT k.external_id, s.content_hash, s.deleted_reason, false AS skipped, s.quarantined FROM unnest($2::text[]) AS k(external_id)
                CROSS JOIN LATERAL (SELECT content_hash, deleted_reason, quarantined_since IS NOT NULL AS quarantined FROM tb_sales
                    WHERE source_id = $1 AND external_id = k.external_id LIMIT 1) AS s
            UNION ALL
            SELECT external_id, content_hash, NULL, true, false FROM tb_sync_duplicates WHERE action = 'skip' AND source_id = $1 AND external_id = ANY($2)
            """, [.text(source), .texts(externalIds)], logger: logger) {
            guard row.count == 5, let id = row[0].text, let hash = row[1].text else { continue }
            existing[id] = ExistingRecord(contentHash: hash, isMarkedVanished: row[2].text == "vanished",
                                          isSkippedDuplicate: row[3] == .bool(true), isQuarantined: row[4] == .bool(true))
        }
        return existing
    }

    /// One probe of `tb_sales_pdvs`'s primary key (pdv first) per pdv.
    func pdvs(ofSourcesOtherThan source: String, among pdvs: [String]) async throws -> Set<String> {
        let rows = try await connection.run("SELECT DISTINCT pdv FROM tb_sales_pdvs WHERE pdv = ANY($2) AND source_id <> $1",
                                            [.text(source), .texts(pdvs)], logger: logger)
        return Set(rows.compactMap { $0["pdv"]?.text })
    }

    /// Whether `tb_sales` holds a record of a source other than `source` (``PostgresDestination/hasOtherSources(than:)``).
    /// Two probes of the primary key (`source_id` first): the nearest key below and above `source`. Written as
    /// `max`/`min`, which PostgreSQL always plans as one step of an index scan; `EXISTS (… WHERE source_id < $1)`
    /// got a generic plan of two sequential scans (the estimate of an inequality is a third of the table), which made
    /// every batch cost a read of the whole table (10 s of a 1,000,000-row first load).
    func hasRecords(ofSourcesOtherThan source: String) async throws -> Bool {
        try await connection.run("""
            SELECT (SELECT max(source_id) FROM tb_sales WHERE source_id < $1) IS NOT NULL
                OR (SELECT min(source_id) FROM tb_sales WHERE source_id > $1) IS NOT NULL AS found
            """, [.text(source)], logger: logger).first?["found"] == .bool(true)
    }

    /// One probe of the match-shaped index `tb_sales_dedup` (pdv, operator, amount, occurred_at) per probe
    /// (`OFFSET 0` keeps the `LATERAL` a nested loop of index probes: flattened, the planner hashes a sequential scan
    /// of `tb_sales` for every batch).
    func dedupCandidates(excludingSource source: String, matching probes: [DedupProbe]) async throws -> [DedupCandidate] {
        let rows = try await connection.run("""
            SELECT s.source_id, s.external_id, s.pdv, s.operator, s.amount::text AS amount, s.currency, s.type,
                to_char(s.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
                (SELECT array_agg(d.source_id || '|' || d.external_id) FROM tb_sync_duplicates d
                  WHERE d.duplicate_of = s.source_id || '|' || s.external_id)::text[] AS claimed_by
            FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                    AS p(pdv, operator, amount, currency, type, lo, hi)
                CROSS JOIN LATERAL (SELECT * FROM tb_sales t WHERE t.pdv = p.pdv AND t.operator = p.operator AND t.amount = p.amount::numeric
                    AND t.occurred_at BETWEEN p.lo::timestamptz AND p.hi::timestamptz OFFSET 0) AS s
            WHERE s.currency = p.currency AND s.type = p.type AND s.source_id <> $1 AND s.duplicate_of IS NULL
                AND s.deleted_at_source IS NULL
            """, [.text(source), .texts(probes.map(\.pdv)), .texts(probes.map(\.operator)), .texts(probes.map(\.amount)),
                  .texts(probes.map(\.currency)), .texts(probes.map(\.type)), .texts(probes.map(\.occurredAt.lowerBound.description)),
                  .texts(probes.map(\.occurredAt.upperBound.description))],
            logger: logger)
        var candidates: [String: DedupCandidate] = [:]
        for row in rows {
            guard let candidateSource = row["source_id"]?.text, let id = row["external_id"]?.text,
                  let occurred = Instant(iso8601: row["occurred_at"]?.text ?? "") else { continue }
            let claims = row["claimed_by"]?.text.map { PostgresArrayText.parse($0) } ?? []
            let candidate = DedupCandidate(source: candidateSource, externalId: id, pdv: row["pdv"]?.text ?? "", operator: row["operator"]?.text ?? "",
                                           amount: Amount.canonical(row["amount"]?.text ?? "", currency: row["currency"]?.text ?? ""),
                                           currency: row["currency"]?.text ?? "", type: row["type"]?.text ?? "", occurredAt: occurred,
                                           claimedBy: Set(claims))
            candidates[candidate.key] = candidate
        }
        return Array(candidates.values)
    }

    func writeSales(_ writes: SalesWrites, syncId: String, passId: String?) async throws {
        if !writes.new.isEmpty {
            try await copyNew(writes.new, syncId: syncId, passId: passId)
        }
        if !writes.changed.isEmpty {
            try await mergeChanged(SalesColumns(writes.changed), syncId: syncId, passId: passId)
        }
    }

    func registerPdvs(_ pdvs: [String], source: String) async throws {
        try await connection.run("INSERT INTO tb_sales_pdvs (pdv, source_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                                 [.texts(pdvs), .text(source)], logger: logger)
    }

    /// Inserts new records (no row under their key, as read in this transaction while the run's lease is held, or
    /// a batch that assumed new keys) with `COPY tb_sales FROM STDIN` in the binary format
    /// (``SalesCopy``), streamed in chunks of ``SalesCopy/chunkBytes`` so the server inserts one chunk while the
    /// next is encoded. `COPY` costs the server about a fifth less than an `INSERT … SELECT FROM unnest(…)` of the
    /// same rows, the binary format another ~30 % less than the text format (no timestamp, numeric or escape
    /// parsing; 1,000,000 rows from a file with the primary key: 9.5 s → 6.7 s), and a first load writes most rows
    /// this way. A stored key fails the batch with `KEY_CONFLICT` (SQLSTATE 23505) instead of being overwritten,
    /// and the batch is planned again with the probe of stored keys. Times are the transaction's `now()`:
    /// `ingested_at` and `updated_at` by their defaults, `deleted_at_source` of a record first seen deleted by an
    /// update of those rows.
    ///
    /// postgres-nio 1.33.2's `copyFrom` never returns when the server ends the connection just before the
    /// `COPY` starts ("leaked its continuation", seen with `pg_terminate_backend`): the transaction's call is
    /// abandoned within 2 s of its connection closing (``PostgresPool/withConnection(_:code:_:)``), so the batch
    /// fails as transient and is retried on a new connection.
    private func copyNew(_ records: NewRecords, syncId: String, passId: String?) async throws {
        let shared = SalesCopy.Shared(syncId: syncId, passId: passId)
        try await connection.copyFrom(table: "tb_sales", columns: SalesCopy.binaryColumns, logger: logger) { writer in
            var chunk = SalesCopy.start()
            for (record, original) in records {
                SalesCopy.append(record, duplicateOf: original, shared: shared, to: &chunk)
                if chunk.readableBytes >= SalesCopy.chunkBytes {
                    try await writer.write(chunk)
                    chunk = SalesCopy.chunk()
                }
            }
            SalesCopy.finish(&chunk)
            try await writer.write(chunk)
        }
        // A record first seen already deleted at the source gets the batch's time too (a COPY row cannot say `now()`).
        let deleted = records.filter(\.record.isDeletedAtSource).map(\.record.externalId)
        guard let source = records.first?.record.sourceId, !deleted.isEmpty else { return }
        try await connection.run("UPDATE tb_sales SET deleted_at_source = now() WHERE source_id = $1 AND external_id = ANY($2)",
                                 [.text(source), .texts(deleted)], logger: logger)
    }

    /// Merges changed records into their stored rows with one set-based statement: each per-record column travels
    /// as one bound binary array (``PostgresArrayColumn``), expanded by `unnest`; the values shared by the batch
    /// (source, run, pass, time) are scalars. A changed record is never a new duplicate (`duplicate_of` is written
    /// only when a record is first stored, and the merge keeps the stored one).
    private func mergeChanged(_ columns: SalesColumns, syncId: String, passId: String?) async throws {
        guard let source = columns.sourceId else { return }
        try await connection.run("""
            INSERT INTO tb_sales (\(SalesCopy.columns.joined(separator: ", ")))
            SELECT $1::text, external_id, pdv, operator, amount::numeric, currency, occurred_at, type, type_raw, reference,
                source_updated_at, content_hash, NULL, CASE WHEN deleted THEN now() END, CASE WHEN deleted THEN 'soft' END,
                $2::text, $2::text, $3::text
            FROM unnest($4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                AS staged(external_id, pdv, operator, amount, currency, occurred_at, type, type_raw, reference, source_updated_at,
                    content_hash, deleted)
            \(Self.mergeChanged)
            """, [.text(source), .text(syncId), .text(passId),
                  .column(columns.externalId), .column(columns.pdv), .column(columns.operator), .column(columns.amount),
                  .column(columns.currency), .column(columns.occurredAt), .column(columns.type), .column(columns.typeRaw),
                  .column(columns.reference), .column(columns.sourceUpdatedAt), .column(columns.contentHash),
                  .column(columns.deleted)], logger: logger)
    }

    /// The `ON CONFLICT` clause that merges a changed record into its stored row.
    private static let mergeChanged = """
        ON CONFLICT (source_id, external_id) DO UPDATE SET pdv = excluded.pdv, operator = excluded.operator, amount = excluded.amount,
            currency = excluded.currency, occurred_at = excluded.occurred_at, type = excluded.type, type_raw = excluded.type_raw,
            reference = excluded.reference, source_updated_at = excluded.source_updated_at, content_hash = excluded.content_hash,
            sync_id = excluded.sync_id, last_seen_pass = COALESCE(excluded.last_seen_pass, tb_sales.last_seen_pass),
            deleted_at_source = CASE WHEN excluded.deleted_reason IS NULL THEN NULL
                ELSE COALESCE(tb_sales.deleted_at_source, excluded.deleted_at_source) END,
            deleted_reason = excluded.deleted_reason, updated_at = now()
        """

    func recordDuplicates(_ duplicates: [DuplicateWrite], syncId: String) async throws {
        for duplicate in duplicates {
            let record = duplicate.record
            try await connection.run("""
                INSERT INTO tb_sync_duplicates (source_id, external_id, duplicate_of, action, content_hash, record_json, sync_id, detected_at)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now())
                ON CONFLICT (source_id, external_id) DO UPDATE SET content_hash = excluded.content_hash, record_json = excluded.record_json,
                    sync_id = excluded.sync_id, duplicate_of = CASE WHEN excluded.duplicate_of = '' THEN tb_sync_duplicates.duplicate_of
                        ELSE excluded.duplicate_of END
                """, [.text(record.sourceId), .text(record.externalId), .text(duplicate.duplicateOf), .text(duplicate.action.rawValue),
                      .text(record.contentHash), .text(record.json), .text(syncId)], logger: logger)
        }
    }

    func markSeen(source: String, externalIds: [String], passId: String) async throws {
        try await connection.run("UPDATE tb_sales SET last_seen_pass = $1 WHERE source_id = $2 AND external_id = ANY($3)",
                                 [.text(passId), .text(source), .texts(externalIds)], logger: logger)
    }

    func quarantine(_ rows: [RejectedRow], source: String, syncId: String, batch: Int) async throws {
        let now = Instant.now.description
        for row in rows {
            let key = try row.key.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            try await connection.run("""
                INSERT INTO tb_sync_errors (kind, sync_id, source_id, external_id, reason_code, message, raw_json, fingerprint, severity, batch,
                    first_seen_at, last_seen_at, key_json) VALUES ('record', $1, $2, $3, $4, $5, $6::jsonb, $7, 'warning', $8, $9, $9, $10::jsonb)
                ON CONFLICT (source_id, fingerprint) DO UPDATE SET sync_id = excluded.sync_id, batch = excluded.batch,
                    last_seen_at = excluded.last_seen_at, occurrences = tb_sync_errors.occurrences + 1, key_json = excluded.key_json,
                    resolved_at = NULL, resolved_by_sync = NULL, resolution = NULL
                """, [.text(syncId), .text(source), .text(row.externalId), .text(row.reason.rawValue), .text(row.message),
                      .text(row.rawJSON), .text(row.fingerprint), .int(batch), .text(now), .text(key)], logger: logger)
            guard let id = row.externalId else { continue }
            try await connection.run("""
                UPDATE tb_sync_errors SET resolved_at = now(), resolved_by_sync = $1, resolution = 'superseded'
                WHERE source_id = $2 AND external_id = $3 AND kind = 'record' AND resolved_at IS NULL AND fingerprint <> $4
                """, [.text(syncId), .text(source), .text(id), .text(row.fingerprint)], logger: logger)
            try await connection.run("""
                UPDATE tb_sales SET quarantined_since = COALESCE(quarantined_since, now()), quarantine_reason = $1
                WHERE source_id = $2 AND external_id = $3
                """, [.text(row.reason.rawValue), .text(source), .text(id)], logger: logger)
        }
    }

    /// One probe of the partial index on open entries.
    func hasOpenQuarantine(source: String) async throws -> Bool {
        try await connection.run("""
            SELECT EXISTS (SELECT 1 FROM tb_sync_errors WHERE source_id = $1 AND kind = 'record' AND resolved_at IS NULL) AS open
            """, [.text(source)], logger: logger).first?["open"] == .bool(true)
    }

    func resolveQuarantine(source: String, loaded: [String], stale: [String], syncId: String) async throws {
        // The partial index on open entries keeps this a probe of a small index, whatever the batch size.
        try await connection.run("""
            UPDATE tb_sync_errors SET resolved_at = now(), resolved_by_sync = $1, resolution = 'loaded'
            WHERE source_id = $2 AND kind = 'record' AND resolved_at IS NULL AND external_id = ANY($3)
            """, [.text(syncId), .text(source), .texts(loaded)], logger: logger)
        if !stale.isEmpty {
            try await connection.run("UPDATE tb_sales SET quarantined_since = NULL, quarantine_reason = NULL WHERE source_id = $1 AND external_id = ANY($2)",
                                     [.text(source), .texts(stale)], logger: logger)
        }
    }

    func saveState(_ state: SyncState, source: String, syncId: String) async throws {
        try await connection.run(Self.saveState, try Self.stateBinds(state, source: source, syncId: syncId), logger: logger)
    }

    func updateRun(syncId: String, counters: RunCounters) async throws {
        try await connection.run(Self.updateRun, Self.runBinds(syncId: syncId, counters: counters), logger: logger)
    }

    /// Both in one statement when there is a state to save: the checkpoint's upsert as a data-modifying `WITH`
    /// (run exactly once, referenced or not: PostgreSQL manual, "WITH Queries", "Data-Modifying Statements in
    /// WITH"), then the counters' update.
    func saveProgress(_ state: SyncState?, source: String, syncId: String, counters: RunCounters) async throws {
        guard let state else { return try await updateRun(syncId: syncId, counters: counters) }
        try await connection.run(Self.saveProgress,
                                 try Self.stateBinds(state, source: source, syncId: syncId) + Self.runBinds(syncId: syncId, counters: counters),
                                 logger: logger)
    }

    private static let saveState = """
        INSERT INTO tb_sync_state (source_id, state_json, sync_id, updated_at) VALUES ($1, $2::jsonb, $3, now())
        ON CONFLICT (source_id) DO UPDATE SET state_json = excluded.state_json, sync_id = excluded.sync_id, updated_at = excluded.updated_at
        """

    private static func stateBinds(_ state: SyncState, source: String, syncId: String) throws -> [DestinationBind] {
        [.text(source), .text(String(decoding: try JSONEncoder().encode(state), as: UTF8.self)), .text(syncId)]
    }

    /// The counters' `UPDATE` ($1 … $10), and the same after the state's upsert ($1 … $3) in one statement: both
    /// written once, not per batch.
    private static let updateRun = updateRun(firstBind: 1)
    private static let saveProgress = "WITH state AS (\(saveState)) \(updateRun(firstBind: 4))"

    /// The counters' `UPDATE`, its ten parameters numbered from `$first`.
    private static func updateRun(firstBind first: Int) -> String {
        let names = ["records_fetched", "records_processed", "records_inserted", "records_updated", "records_unchanged", "records_skipped",
                     "records_rejected", "records_deleted", "cursor_to"]
        let sets = names.enumerated().map { "\($1) = $\(first + $0)" }.joined(separator: ", ")
        return "UPDATE tb_erp_sync_audit SET \(sets) WHERE sync_id = $\(first + names.count)"
    }

    private static func runBinds(syncId: String, counters: RunCounters) -> [DestinationBind] {
        [.int(counters.fetched), .int(counters.processed), .int(counters.inserted), .int(counters.updated), .int(counters.unchanged),
         .int(counters.skipped), .int(counters.rejected), .int(counters.deleted), .text(counters.cursorTo), .text(syncId)]
    }

    func markVanished(source: String, pass: SyncState.FullPass, syncId: String) async throws -> Int {
        try await connection.run("""
            UPDATE tb_sales SET deleted_at_source = now(), deleted_reason = 'vanished', sync_id = $1, updated_at = now()
            WHERE source_id = $2 AND deleted_at_source IS NULL AND last_seen_pass IS DISTINCT FROM $3 AND updated_at < $4::timestamptz
            RETURNING 1
            """, [.text(syncId), .text(source), .text(pass.passId), .text(pass.startedAt.description)], logger: logger).count
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

/// The per-record `tb_sales` columns of a batch of changed records, each as one binary array parameter.
struct SalesColumns: Sendable {
    /// The source of the records; `nil` when there are none.
    let sourceId: String?
    var externalId, pdv, `operator`, amount, currency, type, typeRaw, reference, contentHash: PostgresArrayColumn
    var occurredAt, sourceUpdatedAt: PostgresArrayColumn
    var deleted: PostgresArrayColumn

    /// Encodes the records (one source).
    init(_ records: [SaleTransaction]) {
        sourceId = records.first?.sourceId
        let text = PostgresArrayColumn(.text, capacity: records.count)
        (externalId, pdv, `operator`, amount, currency, type, typeRaw, reference, contentHash) = (text, text, text, text, text, text, text, text, text)
        occurredAt = PostgresArrayColumn(.timestamptz, capacity: records.count)
        sourceUpdatedAt = occurredAt
        deleted = PostgresArrayColumn(.bool, capacity: records.count)
        for record in records {
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
            deleted.append(record.isDeletedAtSource)
        }
    }
}

/// The rows of new records for `COPY tb_sales FROM STDIN WITH (FORMAT binary)` (PostgreSQL documentation, "COPY",
/// "Binary Format"): a signature and two zero `int32`s, then per row an `int16` column count and each column as a
/// length-prefixed field in its type's binary form (``PostgresFieldWriter``), then
/// an `int16` -1. Instants travel as microseconds since 2000-01-01 UTC, amounts as `numeric` digit groups at the
/// currency's scale, text as its UTF-8 bytes: the server parses no text and nothing needs escaping.
enum SalesCopy {
    /// The `tb_sales` columns a record writes, in this order: each `COPY` row, and the merge of changed records.
    /// `ingested_at` and `updated_at` are not among them: they are the transaction's `now()` (their default since
    /// migration 6), so every row of a batch carries the batch's time without the server reading it per row.
    static let columns = ["source_id", "external_id", "pdv", "operator", "amount", "currency", "occurred_at", "type", "type_raw",
                          "reference", "source_updated_at", "content_hash", "duplicate_of", "deleted_at_source", "deleted_reason",
                          "sync_id", "first_sync_id", "last_seen_pass"]

    /// ``columns`` as postgres-nio 1.33.2's `copyFrom(table:columns:)` takes them for a binary `COPY`: its
    /// `PostgresCopyFromFormat` offers only the text format, and it writes each column name between double
    /// quotes as given, then `) FROM STDIN WITH (FORMAT text)`. The last name therefore closes the statement
    /// itself with `WITH (FORMAT binary)` and turns postgres-nio's ending into a comment. The names are this
    /// file's constants, never input; a postgres-nio that quoted them would fail every first load's `COPY` (the
    /// destination's tests), not change what is stored.
    static let binaryColumns = Array(columns.dropLast()) + [columns[columns.count - 1] + #"") FROM STDIN WITH (FORMAT binary) --"#]

    /// Bytes encoded before they are sent: large enough to amortize a write, small enough for the server to start
    /// inserting while the rest of the batch is encoded, and with its row of slack below glibc's 128 KiB
    /// `M_MMAP_THRESHOLD`, so each chunk reuses heap memory instead of a fresh `mmap` whose pages fault in again.
    static let chunkBytes = 120 * 1024

    /// The values every row of one batch shares.
    struct Shared {
        var syncId: String
        var passId: String?
    }

    /// An empty chunk with room for ``chunkBytes`` and one more row.
    static func chunk() -> ByteBuffer {
        ByteBufferAllocator().buffer(capacity: chunkBytes + 4096)
    }

    /// The first chunk of a `COPY`: the binary format's header (signature, flags 0, no header extension).
    static func start() -> ByteBuffer {
        var buffer = chunk()
        buffer.writeBytes(Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(Int32(0))
        return buffer
    }

    /// Ends the last chunk with the trailer (a column count of -1).
    static func finish(_ buffer: inout ByteBuffer) {
        buffer.writeInteger(Int16(-1))
    }

    /// Appends one record's row.
    static func append(_ record: SaleTransaction, duplicateOf original: String?, shared: Shared, to buffer: inout ByteBuffer) {
        let deletedReason = record.isDeletedAtSource ? "soft" : nil
        typealias Field = PostgresFieldWriter
        let bound = 2 + Field.bound(record.sourceId) + Field.bound(record.externalId) + Field.bound(record.pdv) + Field.bound(record.operator)
            + Field.amountBound + Field.bound(record.currency) + Field.instantBound + Field.bound(record.type.rawValue)
            + Field.bound(record.typeRaw) + Field.bound(record.reference) + Field.instantBound + Field.bound(record.contentHash)
            + Field.bound(original) + Field.bound(nil) + Field.bound(deletedReason) + 2 * Field.bound(shared.syncId) + Field.bound(shared.passId)
        buffer.writePostgresFields(bound: bound) { row in
            row.integer(Int16(columns.count))
            row.text(record.sourceId)
            row.text(record.externalId)
            row.text(record.pdv)
            row.text(record.operator)
            row.amount(record.amount)
            row.text(record.currency)
            row.instant(record.occurredAt)
            row.text(record.type.rawValue)
            row.text(record.typeRaw)
            row.text(record.reference)
            row.instant(record.sourceUpdatedAt)
            row.text(record.contentHash)
            row.text(original)
            row.null()  // deleted_at_source: set after the COPY (``PostgresTransaction/copyNew``)
            row.text(deletedReason)
            row.text(shared.syncId)
            row.text(shared.syncId)
            row.text(shared.passId)
        }
    }
}
