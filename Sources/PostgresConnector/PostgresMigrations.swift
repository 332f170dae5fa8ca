/// The audit schema for PostgreSQL, as versioned migrations applied in order under an advisory lock and
/// recorded in `tb_schema_migrations`. Never edit a shipped migration: add the next version.
enum PostgresMigrations {
    static let all: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE tb_sales (
                source_id text NOT NULL,
                external_id text NOT NULL,
                pdv text NOT NULL,
                operator text NOT NULL,
                amount numeric NOT NULL,
                currency char(3) NOT NULL,
                occurred_at timestamptz NOT NULL,
                type text NOT NULL,
                type_raw text NOT NULL,
                reference text,
                source_updated_at timestamptz,
                content_hash text NOT NULL,
                duplicate_of text,
                deleted_at_source timestamptz,
                deleted_reason text,
                sync_id text NOT NULL,
                first_sync_id text NOT NULL,
                last_seen_pass text,
                ingested_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (source_id, external_id)
            )
            """,
            "CREATE INDEX tb_sales_dedup ON tb_sales (pdv, occurred_at)",
            """
            CREATE TABLE tb_sync_duplicates (
                source_id text NOT NULL,
                external_id text NOT NULL,
                duplicate_of text NOT NULL,
                action text NOT NULL,
                content_hash text NOT NULL,
                record_json jsonb NOT NULL,
                sync_id text NOT NULL,
                detected_at timestamptz NOT NULL,
                PRIMARY KEY (source_id, external_id)
            )
            """,
            "CREATE INDEX tb_sync_duplicates_original ON tb_sync_duplicates (duplicate_of)",
            """
            CREATE TABLE tb_erp_sync_audit (
                sync_id text PRIMARY KEY,
                source_id text NOT NULL,
                database_type text NOT NULL,
                sync_type text NOT NULL,
                status text NOT NULL,
                started_at text NOT NULL,
                ended_at text,
                duration_ms bigint,
                cursor_from text,
                cursor_to text,
                records_fetched bigint NOT NULL DEFAULT 0,
                records_processed bigint NOT NULL DEFAULT 0,
                records_inserted bigint NOT NULL DEFAULT 0,
                records_updated bigint NOT NULL DEFAULT 0,
                records_unchanged bigint NOT NULL DEFAULT 0,
                records_skipped bigint NOT NULL DEFAULT 0,
                records_rejected bigint NOT NULL DEFAULT 0,
                records_deleted bigint NOT NULL DEFAULT 0,
                has_more boolean NOT NULL DEFAULT false,
                error_count integer NOT NULL DEFAULT 0,
                error_details jsonb,
                triggered_by text NOT NULL,
                is_manual boolean NOT NULL
            )
            """,
            "CREATE INDEX tb_erp_sync_audit_source ON tb_erp_sync_audit (source_id, started_at)",
            """
            CREATE TABLE tb_sync_errors (
                id bigserial PRIMARY KEY,
                kind text NOT NULL,
                sync_id text NOT NULL,
                source_id text NOT NULL,
                external_id text,
                reason_code text NOT NULL,
                message text NOT NULL,
                raw_json jsonb,
                fingerprint text NOT NULL,
                severity text NOT NULL,
                batch integer,
                first_seen_at text NOT NULL,
                last_seen_at text NOT NULL,
                occurrences integer NOT NULL DEFAULT 1,
                UNIQUE (source_id, fingerprint)
            )
            """,
            """
            CREATE TABLE tb_sync_state (
                source_id text PRIMARY KEY,
                state_json jsonb NOT NULL,
                sync_id text NOT NULL,
                updated_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE tb_sync_lock (
                source_id text PRIMARY KEY,
                sync_id text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                acquired_at timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL
            )
            """,
        ]),
        // The quarantine lifecycle: entries are resolved when a valid version loads (or superseded by a newer
        // rejection), audit records whose source row turned invalid are marked, keys kept for `reprocess`.
        (2, [
            "ALTER TABLE tb_sales ADD COLUMN quarantined_since timestamptz, ADD COLUMN quarantine_reason text",
            """
            ALTER TABLE tb_sync_errors ADD COLUMN key_json jsonb, ADD COLUMN resolved_at timestamptz, ADD COLUMN resolved_by_sync text,
                ADD COLUMN resolution text
            """,
            "CREATE INDEX tb_sync_errors_open ON tb_sync_errors (source_id, external_id) WHERE resolved_at IS NULL AND kind = 'record'",
        ]),
        // Reconciliation reports: one row per bucket (pdv, local day) of a run; `bucket_json` holds the bucket with
        // its drill-down lists, the other columns its figures for queries.
        (3, [
            """
            CREATE TABLE tb_reconciliation (
                reconciliation_id text NOT NULL,
                source_id text NOT NULL,
                pdv text NOT NULL,
                day text NOT NULL,
                source_rows bigint NOT NULL,
                source_amount numeric NOT NULL,
                not_yet_synced bigint NOT NULL,
                quarantined bigint NOT NULL,
                audit_rows bigint NOT NULL,
                audit_amount numeric NOT NULL,
                status text NOT NULL,
                bucket_json jsonb NOT NULL,
                started_at timestamptz NOT NULL,
                duration_ms bigint NOT NULL,
                checkpoint text,
                range_from text,
                range_to text,
                PRIMARY KEY (reconciliation_id, pdv, day)
            )
            """,
            "CREATE INDEX tb_reconciliation_source ON tb_reconciliation (source_id, started_at)",
        ]),
        // Leases instead of session advisory locks (several `serve` instances): the instance holding a source, a
        // fencing token incremented by every claim, the expiry by the server's clock ('-infinity': free); and the
        // scheduled slots claimed, one row per source, kind and instant.
        (4, [
            """
            ALTER TABLE tb_sync_lock ADD COLUMN instance_id text NOT NULL DEFAULT '', ADD COLUMN token bigint NOT NULL DEFAULT 0,
                ADD COLUMN expires_at timestamptz NOT NULL DEFAULT '-infinity'
            """,
            """
            CREATE TABLE tb_sync_slots (
                source_id text NOT NULL,
                sync_type text NOT NULL,
                slot_at timestamptz NOT NULL,
                sync_id text NOT NULL,
                instance_id text NOT NULL,
                claimed_at timestamptz NOT NULL,
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
        // A record's ingestion times are the writing transaction's start (`now()`), filled by the server: a COPY
        // of new records leaves both columns out, so the server parses two timestamps fewer per row.
        (6, [
            "ALTER TABLE tb_sales ALTER COLUMN ingested_at SET DEFAULT now(), ALTER COLUMN updated_at SET DEFAULT now()",
        ]),
        // The pdvs each source has records at, written by the batch that writes them (``PostgresTransaction/registerPdvs``): a batch
        // probes for cross-source duplicates only at the pdvs another source has (``DestinationTransaction/pdvs(ofSourcesOtherThan:among:)``).
        (7, [
            "CREATE TABLE tb_sales_pdvs (pdv text NOT NULL, source_id text NOT NULL, PRIMARY KEY (pdv, source_id))",
            "INSERT INTO tb_sales_pdvs SELECT DISTINCT pdv, source_id FROM tb_sales",
        ]),
    ]

    /// The match-shaped dedup index as it is now: created by migration 5, dropped during a first load and built
    /// again after it (``DedupIndex``).
    static let dedupIndex = "CREATE INDEX IF NOT EXISTS tb_sales_dedup ON tb_sales (pdv, operator, amount, occurred_at)"
}
