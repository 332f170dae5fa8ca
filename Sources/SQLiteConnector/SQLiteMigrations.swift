/// The audit schema for SQLite, as versioned migrations applied in order and recorded in
/// `tb_schema_migrations`. Never edit a shipped migration: add the next version.
enum SQLiteMigrations {
    static let all: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE tb_sales (
                source_id TEXT NOT NULL,
                external_id TEXT NOT NULL,
                pdv TEXT NOT NULL,
                operator TEXT NOT NULL,
                amount TEXT NOT NULL,
                currency TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                type TEXT NOT NULL,
                type_raw TEXT NOT NULL,
                reference TEXT,
                source_updated_at TEXT,
                content_hash TEXT NOT NULL,
                duplicate_of TEXT,
                deleted_at_source TEXT,
                deleted_reason TEXT,
                sync_id TEXT NOT NULL,
                first_sync_id TEXT NOT NULL,
                last_seen_pass TEXT,
                ingested_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (source_id, external_id)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX tb_sales_dedup ON tb_sales (pdv, occurred_at)",
            "CREATE INDEX tb_sales_occurred ON tb_sales (occurred_at)",
            """
            CREATE TABLE tb_sync_duplicates (
                source_id TEXT NOT NULL,
                external_id TEXT NOT NULL,
                duplicate_of TEXT NOT NULL,
                action TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                record_json TEXT NOT NULL,
                sync_id TEXT NOT NULL,
                detected_at TEXT NOT NULL,
                PRIMARY KEY (source_id, external_id)
            )
            """,
            "CREATE INDEX tb_sync_duplicates_original ON tb_sync_duplicates (duplicate_of)",
            """
            CREATE TABLE tb_erp_sync_audit (
                sync_id TEXT PRIMARY KEY,
                source_id TEXT NOT NULL,
                database_type TEXT NOT NULL,
                sync_type TEXT NOT NULL,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                ended_at TEXT,
                duration_ms INTEGER,
                cursor_from TEXT,
                cursor_to TEXT,
                records_fetched INTEGER NOT NULL DEFAULT 0,
                records_processed INTEGER NOT NULL DEFAULT 0,
                records_inserted INTEGER NOT NULL DEFAULT 0,
                records_updated INTEGER NOT NULL DEFAULT 0,
                records_unchanged INTEGER NOT NULL DEFAULT 0,
                records_skipped INTEGER NOT NULL DEFAULT 0,
                records_rejected INTEGER NOT NULL DEFAULT 0,
                records_deleted INTEGER NOT NULL DEFAULT 0,
                has_more INTEGER NOT NULL DEFAULT 0,
                error_count INTEGER NOT NULL DEFAULT 0,
                error_details TEXT,
                triggered_by TEXT NOT NULL,
                is_manual INTEGER NOT NULL
            )
            """,
            "CREATE INDEX tb_erp_sync_audit_source ON tb_erp_sync_audit (source_id, started_at)",
            """
            CREATE TABLE tb_sync_errors (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                sync_id TEXT NOT NULL,
                source_id TEXT NOT NULL,
                external_id TEXT,
                reason_code TEXT NOT NULL,
                message TEXT NOT NULL,
                raw_json TEXT,
                fingerprint TEXT NOT NULL,
                severity TEXT NOT NULL,
                batch INTEGER,
                first_seen_at TEXT NOT NULL,
                last_seen_at TEXT NOT NULL,
                occurrences INTEGER NOT NULL DEFAULT 1,
                UNIQUE (source_id, fingerprint)
            )
            """,
            """
            CREATE TABLE tb_sync_state (
                source_id TEXT PRIMARY KEY,
                state_json TEXT NOT NULL,
                sync_id TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE tb_sync_lock (
                source_id TEXT PRIMARY KEY,
                sync_id TEXT NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                acquired_at TEXT NOT NULL,
                heartbeat_at TEXT NOT NULL
            )
            """,
        ]),
        // The quarantine lifecycle: entries are resolved when a valid version loads (or superseded by a newer
        // rejection), audit records whose source row turned invalid are marked, keys kept for `reprocess`.
        (2, [
            "ALTER TABLE tb_sales ADD COLUMN quarantined_since TEXT",
            "ALTER TABLE tb_sales ADD COLUMN quarantine_reason TEXT",
            "ALTER TABLE tb_sync_errors ADD COLUMN key_json TEXT",
            "ALTER TABLE tb_sync_errors ADD COLUMN resolved_at TEXT",
            "ALTER TABLE tb_sync_errors ADD COLUMN resolved_by_sync TEXT",
            "ALTER TABLE tb_sync_errors ADD COLUMN resolution TEXT",
            "CREATE INDEX tb_sync_errors_open ON tb_sync_errors (source_id, external_id) WHERE resolved_at IS NULL AND kind = 'record'",
        ]),
        // Reconciliation reports: one row per bucket (pdv, local day) of a run; `bucket_json` holds the bucket with
        // its drill-down lists, the other columns its figures for queries.
        (3, [
            """
            CREATE TABLE tb_reconciliation (
                reconciliation_id TEXT NOT NULL,
                source_id TEXT NOT NULL,
                pdv TEXT NOT NULL,
                day TEXT NOT NULL,
                source_rows INTEGER NOT NULL,
                source_amount TEXT NOT NULL,
                not_yet_synced INTEGER NOT NULL,
                quarantined INTEGER NOT NULL,
                audit_rows INTEGER NOT NULL,
                audit_amount TEXT NOT NULL,
                status TEXT NOT NULL,
                bucket_json TEXT NOT NULL,
                started_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                checkpoint TEXT,
                range_from TEXT,
                range_to TEXT,
                PRIMARY KEY (reconciliation_id, pdv, day)
            )
            """,
            "CREATE INDEX tb_reconciliation_source ON tb_reconciliation (source_id, started_at)",
        ]),
        // The instance holding a lock, and the scheduled slots claimed (one row per source, kind and instant), as on
        // PostgreSQL.
        (4, [
            "ALTER TABLE tb_sync_lock ADD COLUMN instance_id TEXT NOT NULL DEFAULT ''",
            """
            CREATE TABLE tb_sync_slots (
                source_id TEXT NOT NULL,
                sync_type TEXT NOT NULL,
                slot_at TEXT NOT NULL,
                sync_id TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                claimed_at TEXT NOT NULL,
                PRIMARY KEY (source_id, sync_type, slot_at)
            )
            """,
        ]),
        // The dedup index shaped by the match fields: a batch probes exactly the (pdv, operator, amount) of its new
        // records in their window, instead of every record of its pdvs in the batch's time span (which read a burst
        // of one source at one instant again for every batch).
        (5, [
            "DROP INDEX tb_sales_dedup",
            dedupIndex,
        ]),
        // The pdvs each source has records at, written with the records: a batch probes for cross-source duplicates
        // only at the pdvs another source has.
        (6, [
            "CREATE TABLE tb_sales_pdvs (pdv TEXT NOT NULL, source_id TEXT NOT NULL, PRIMARY KEY (pdv, source_id)) WITHOUT ROWID",
            "INSERT INTO tb_sales_pdvs SELECT DISTINCT pdv, source_id FROM tb_sales",
        ]),
    ]

    /// The match-shaped dedup index as it is now: created by migration 5, dropped during a first load and built
    /// again after it (``DedupIndex``).
    static let dedupIndex = "CREATE INDEX IF NOT EXISTS tb_sales_dedup ON tb_sales (pdv, operator, amount, occurred_at)"
}
