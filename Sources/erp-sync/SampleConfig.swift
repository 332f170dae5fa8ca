/// Configuration texts written by `init` and `demo`.
enum SampleConfig {
    /// The commented sample that `erp-sync init` writes (the contract in SPEC.md "Config shape").
    static let text = """
        # erp-sync configuration. Reference: README.md, "Configuration".
        # Secrets: ${ENV_VAR} (or ${ENV_VAR:-default}) anywhere, or passwordFile per source. Never commit passwords.

        destination:
          type: sqlite                      # embedded default
          path: ./audit.sqlite              # relative paths are relative to this file
          # type: postgresql                # production audit database
          # url: postgres://audit:${AUDIT_DB_PASSWORD}@127.0.0.1:5432/audit?sslmode=prefer
          # leasePeriod: 60s                # a run's lease on its source; a dead or paused holder loses it after this long

        defaults:                           # the seed's SyncOptions, same names and defaults
          batchSize: 1000                   # rows per fetch + load + checkpoint transaction, 100..10000
          maxRecords: 50000                 # per run; the run then ends with hasMore = true and the next run continues
          daysBack: 30                      # first incremental run (no checkpoint) starts at now - daysBack; 0 = whole history
          lookback: 5m                      # window behind the checkpoint, re-read when its rows changed (late commits); ids for integer cursors
          deduplication: { enabled: true, windowMinutes: 5, action: flag }   # flag | skip
          maxRetries: 3                     # retries of a failing batch, transient errors only
          retryDelayMs: 1000                # retry n waits retryDelayMs * 2^(n-1) (capped by maxRetryDelayMs), with jitter
          # validation: { maxFuture: 1d, signRules: { sale: nonNegative, refund: any } }

        sources:
          - name: loja-centro               # the id used everywhere (CLI, API, tb_sales.source_id)
            type: sqlite                    # postgresql | mysql (or mariadb) | sqlserver | oracle | sqlite | odbc
            path: ./erp.sqlite              # sqlite sources: the ERP database file
            # host: 127.0.0.1               # server sources: host, port, database, username, password / passwordFile, ssl
            # port: 3306
            # database: erp
            # username: sync_user
            # password: ${ERP_CENTRO_PASSWORD}
            # ssl: prefer                   # disable | prefer | require
            # caFile: /etc/ssl/erp-ca.pem   # verify the server certificate against this CA
            # connectTimeout: 10s
            # readTimeout: 5m               # longest wait for one answer of the server
            # SQL Server, Oracle and other ODBC sources (unixODBC; `erp-sync databases` names the drivers):
            # type: sqlserver               # + host, port (1433), database, username, password; FreeTDS by default, or
            # driver: ODBC Driver 18 for SQL Server
            # type: oracle                  # + host, port (1521), username, password and
            # serviceName: ORCLPDB1
            # driver: Oracle 21 ODBC driver # the Instant Client ODBC driver's name in odbcinst.ini
            # oracleVersion: 11             # Oracle 11g pages with ROWNUM (default 12: FETCH FIRST)
            # type: odbc                    # any driver: connectionString (never with PWD=) or dsn, plus dialect
            # connectionString: "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;DATABASE=erp"
            # dsn: erp                      # a data source from odbc.ini, instead of connectionString
            # dialect: postgresql           # sqlserver | oracle | postgresql | mysql | sqlite | ansi
            timezone: America/Sao_Paulo     # how naive ERP timestamps are read
            currency: BRL
            # Without `stream`, the seed's table is read:
            #   sale_transactions(id, pdv, operator, amount, timestamp, type, reference), cursor (timestamp, id)
            stream:
              table: sale_transactions      # or  query: "SELECT ... FROM ..."  (no ORDER BY / LIMIT)
              primaryKey: [id]
              cursor: { column: timestamp, kind: timestamp }   # kind: timestamp | integer; type: DATETIME2(7) binds as the column's type
              fields:                       # canonical field -> column name, or { sql: <expression> }
                externalId: id
                pdv: pdv
                operator: operator
                amount: amount
                occurredAt: timestamp
                type: type
                reference: reference
              typeMap: { venda: sale, cancelamento: cancel, devolucao: refund }
              # deleted: { sql: "status = 'X'" }   # rows that count as deleted at the source

        # erp-sync serve (README "serve"): the dashboard at http://host:port/, the admin API, the scheduler and webhooks.
        api:
          host: 127.0.0.1                   # listen address
          port: 8080                        # 0 = any free port
          tokens: []                        # bearer tokens as hashes; `erp-sync hash-token` prints a line such as
                                            #   - { name: ops, role: admin, hash: "sha256:<64 hex>" }   (admin | viewer)
          allowAdHocSources: false          # the seed's {host, password, …} bodies; true needs allowedHosts: [...]
          corsOrigins: []                   # browser origins of a dashboard served from elsewhere (CORS)
          transformer: none                 # none | superjson: the dashboard's tRPC client transformer
          maxBatchSize: 100                 # most procedures in one batched request
        # serve:
        #   instanceId: ${HOSTNAME}         # this instance's name when several serve share a PostgreSQL destination
        schedule:                           # without this section serve schedules nothing
          interval: 60m                     # incremental run of each source, at multiples of it since the epoch
          fullSyncAt: "23:00"               # daily full sync, local time (or off)
          timezone: America/Sao_Paulo
          maxConcurrentRuns: 2
          reconcileAfterFullSync: false     # true: reconcile each source after its successful full sync (reconciliationMismatch)
        # notifications:
        #   rejectThreshold: 100            # a run rejecting at least this many rows sends rejectThreshold
        #   dailySummaryAt: "23:55"         # local time (schedule.timezone) of dailySummary, or off
        #   webhooks:                       # POST of the event, HMAC-SHA256 signed (X-ErpSync-Signature)
        #     - { url: "https://detection.internal/hooks/erp-sync", events: [syncSucceeded, syncFailed], secretEnv: DETECTION_WEBHOOK_SECRET }
        #     # events: syncSucceeded | syncFailed | reconciliationMismatch | dailySummary | rejectThreshold (default: the first two)

        """

    /// The demo's configuration: the Sakila payments ERP into the embedded destination.
    static let demo = """
        # erp-sync demo: Sakila payments (BSD-2-Clause sample data) as a POS ERP, synced into SQLite.
        destination:
          type: sqlite
          path: ./audit.sqlite

        defaults:
          batchSize: 1000
          daysBack: 0                       # the Sakila sales are from 2005-2006: read the whole history on the first run
          lookback: 5m

        sources:
          - name: sakila
            type: sqlite
            path: ./sakila-erp.sqlite
            timezone: America/Sao_Paulo
            currency: USD
            stream:
              query: >-
                SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id
                FROM payment p JOIN staff s ON s.staff_id = p.staff_id
              primaryKey: [payment_id]
              cursor: { column: payment_date, kind: timestamp }
              fields:
                externalId: payment_id
                pdv: { sql: "'store-' || store_id" }
                operator: staff_id
                amount: amount
                occurredAt: payment_date
                type: { sql: "'payment'" }
                reference: rental_id
              typeMap: { payment: sale }

        # erp-sync serve --config demo-run/erp-sync.yaml: add the line `erp-sync hash-token` prints under tokens.
        api:
          port: 8080
          tokens: []

        """
}
