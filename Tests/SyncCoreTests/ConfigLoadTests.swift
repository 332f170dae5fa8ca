import Foundation
@testable import SyncCore
import Testing

/// Loading the YAML configuration (SPEC.md "Config shape"): the documented file parses, and every mistake
/// is a ``ConfigError`` naming the key and its line.
@Suite struct ConfigLoadTests {
    /// The "Config shape" section of SPEC.md, verbatim.
    static let specConfig = """
        destination:
          type: sqlite                      # embedded default; or postgresql
          path: ./audit.sqlite
          # type: postgresql
          # url: postgres://audit:${AUDIT_DB_PASSWORD}@127.0.0.1:5432/audit?sslmode=prefer

        defaults:                           # the seed's SyncOptions, same names and defaults
          batchSize: 1000                   # 100..10000
          maxRecords: 50000                 # per run; the run ends with hasMore = true, next run continues
          daysBack: 30                      # first incremental run (no checkpoint) starts at now - daysBack
          lookback: 5m                      # re-read window behind the checkpoint (late commits)
          deduplication: { enabled: true, windowMinutes: 5, action: flag }   # flag | skip
          maxRetries: 3
          retryDelayMs: 1000

        sources:
          - name: loja-centro               # the id used everywhere (CLI, API, tb_sales.source_id)
            type: mysql                     # postgresql | mysql | sqlserver | oracle | sqlite | odbc
            host: 127.0.0.1
            port: 3306
            database: erp
            username: sync_user
            password: ${ERP_CENTRO_PASSWORD}   # or passwordFile: /run/secrets/erp
            ssl: prefer                     # disable | prefer | require
            timezone: America/Sao_Paulo     # how naive ERP timestamps are read
            stream:                         # optional: without it, the seed's sale_transactions table
              table: sale_transactions      # or  query: "SELECT ... FROM ..."  (no ORDER BY / LIMIT)
              primaryKey: [id]
              cursor: { column: updated_at, kind: timestamp }   # kind: timestamp | integer
              fields:                       # canonical field -> column name, or { sql: <expression> }
                externalId: id
                pdv: pdv
                operator: operator
                amount: amount
                occurredAt: timestamp
                type: type
                reference: reference
              typeMap: { venda: sale, cancelamento: cancel, devolucao: refund }
              deleted: { sql: "status = 'X'" }   # optional: rows that count as deleted at the source
        """

    static let env = ["ERP_CENTRO_PASSWORD": "s3cr3t-from-env"]

    /// A minimal file: `defaults` and the source's extra lines spliced in.
    static func minimal(defaults: String = "", source: String = "", more: String = "") -> String {
        var text = ""
        if !defaults.isEmpty { text += "defaults:\n" + defaults + "\n" }
        text += """
            sources:
              - name: loja-centro
                type: sqlite
                path: /data/erp.sqlite

            """
        if !source.isEmpty { text += source + "\n" }
        return text + more
    }

    /// The error `yaml` fails with.
    func failure(_ yaml: String, environment: [String: String] = [:]) throws -> ConfigError {
        do {
            _ = try SyncConfig.load(yaml: yaml, environment: environment)
        } catch let error as ConfigError {
            return error
        }
        Issue.record("expected a ConfigError")
        throw CancellationError()
    }

    /// 1-based line of the first line of `yaml` containing `marker`.
    func line(of marker: String, in yaml: String) -> Int? {
        yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(marker) }.map { $0 + 1 }
    }

    @Test func specConfigParses() throws {
        let config = try SyncConfig.load(yaml: Self.specConfig, environment: Self.env)
        #expect(config.destination == .sqlite(path: "./audit.sqlite"))
        #expect(config.defaults.batchSize == 1000)
        #expect(config.defaults.maxRecords == 50000)
        #expect(config.defaults.daysBack == 30)
        #expect(config.defaults.lookback == .seconds(300))
        #expect(config.defaults.deduplication.enabled)
        #expect(config.defaults.deduplication.windowMinutes == 5)
        #expect(config.defaults.deduplication.action == .flag)
        #expect(config.defaults.maxRetries == 3)
        #expect(config.defaults.retryDelayMs == 1000)

        #expect(config.sources.count == 1)
        let source = try #require(config.source(named: "loja-centro"))
        #expect(source.type == .mysql)
        #expect(source.host == "127.0.0.1")
        #expect(source.port == 3306)
        #expect(source.database == "erp")
        #expect(source.username == "sync_user")
        #expect(source.password?.value == "s3cr3t-from-env")
        #expect(source.password?.description == "******")
        #expect(source.ssl == .prefer)
        #expect(source.timezone.identifier == "America/Sao_Paulo")
        #expect(source.currency == "BRL")

        let stream = source.stream
        #expect(stream.from == .table("sale_transactions"))
        #expect(stream.primaryKey == ["id"])
        #expect(stream.cursor == StreamConfig.Cursor(column: "updated_at", kind: .timestamp))
        #expect(stream.fields == [.externalId: .column("id"), .pdv: .column("pdv"), .operator: .column("operator"),
                                  .amount: .column("amount"), .occurredAt: .column("timestamp"), .type: .column("type"),
                                  .reference: .column("reference")])
        #expect(stream.typeMap == ["venda": .sale, "cancelamento": .cancel, "devolucao": .refund])
        #expect(stream.deleted == .sql("status = 'X'"))
    }

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let config = try SyncConfig.load(yaml: Self.specConfig, environment: Self.env, relativeTo: "/etc/erp-sync")
        #expect(config.destination == .sqlite(path: "/etc/erp-sync/audit.sqlite"))
    }

    /// `destination.leasePeriod` (default 60 s, 2 s to 1 h) and `serve.instanceId` (default `<hostname>:<pid>`).
    @Test func leasePeriodAndInstanceId() throws {
        let sources = "sources: [{ name: a, type: sqlite, path: x }]\n"
        let defaults = try SyncConfig.load(yaml: sources).lease
        #expect(defaults.periodSeconds == 60 && defaults.instanceId == "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)")
        let set = try SyncConfig.load(yaml: "destination: { type: postgresql, url: \"postgres://u:p@h/d\", leasePeriod: 30s }\nserve: { instanceId: host-a }\n" + sources)
        #expect(set.lease == LeaseOptions(periodSeconds: 30, instanceId: "host-a"))
        #expect(try failure("destination: { leasePeriod: 1s }\n" + sources).path == "destination.leasePeriod")
        #expect(try failure("destination: { leasePeriod: 2h }\n" + sources).path == "destination.leasePeriod")
        #expect(try failure("serve: { instanceId: \"\" }\n" + sources).path == "serve.instanceId")
        #expect(try failure("serve: { instanceid: x }\n" + sources).path == "serve.instanceid")
    }

    @Test func unknownKeyIsNamedWithItsPath() throws {
        let yaml = Self.minimal(defaults: "  batchsize: 500")
        let error = try failure(yaml)
        #expect(error.path == "defaults.batchsize")
        #expect(error.message.contains("unknown key 'batchsize'"))
        #expect(error.message.contains("batchSize"))
        #expect(error.line == line(of: "batchsize", in: yaml))
        #expect(error.description.hasPrefix("config: defaults.batchsize (line \(error.line ?? -1)): "))
    }

    @Test func unknownKeysEverywhere() throws {
        #expect(try failure(Self.minimal(more: "destinaton:\n  type: sqlite\n")).path == "destinaton")
        #expect(try failure(Self.minimal(source: "    hots: db.local")).path == "sources[0].hots")
        #expect(try failure(Self.minimal(source: "    stream:\n      cursor: { column: x, knd: integer }")).path == "sources[0].stream.cursor.knd")
    }

    /// `caFile`, `connectTimeout` and `readTimeout` of a server source: read as a path and seconds; a bad
    /// value names its key and line.
    @Test func tlsCAFileAndTimeouts() throws {
        let ca = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString).pem")
        try Data("-----BEGIN CERTIFICATE-----\n".utf8).write(to: ca)
        defer { try? FileManager.default.removeItem(at: ca) }
        let source = try SyncConfig.load(yaml: Self.minimal(source: "    ssl: require\n    caFile: \(ca.path)\n    connectTimeout: 15s\n    readTimeout: 2m")).sources[0]
        #expect(source.ssl == .require && source.caFile == ca.path)
        #expect(source.connectTimeoutSeconds == 15 && source.readTimeoutSeconds == 120)
        let defaults = try SyncConfig.load(yaml: Self.minimal()).sources[0]
        #expect(defaults.caFile == nil && defaults.connectTimeoutSeconds == nil && defaults.readTimeoutSeconds == nil)
        let yaml = Self.minimal(source: "    readTimeout: soon")
        let error = try failure(yaml)
        #expect(error.path == "sources[0].readTimeout")
        #expect(error.message.contains("'soon'"))
        #expect(error.line == line(of: "readTimeout", in: yaml))
        #expect(try failure(Self.minimal(source: "    connectTimeout: 0s")).path == "sources[0].connectTimeout")
        let missing = try failure(Self.minimal(source: "    caFile: /no/such/ca.pem"))
        #expect(missing.path == "sources[0].caFile" && missing.message.contains("/no/such/ca.pem"))
    }

    @Test func batchSizeOutOfRange() throws {
        let yaml = Self.minimal(defaults: "  batchSize: 50")
        let error = try failure(yaml)
        #expect(error.path == "defaults.batchSize")
        #expect(error.message.contains("between 100 and 10000"))
        #expect(error.message.contains("50"))
        #expect(error.line == line(of: "batchSize", in: yaml))
        #expect(try failure(Self.minimal(defaults: "  batchSize: 10001")).path == "defaults.batchSize")
        #expect(try failure(Self.minimal(defaults: "  batchSize: lots")).message.contains("whole number"))
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  batchSize: 100")).defaults.batchSize == 100)
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  batchSize: 10000")).defaults.batchSize == 10000)
    }

    @Test func missingEnvironmentVariableIsNamed() throws {
        let error = try failure(Self.specConfig, environment: [:])
        #expect(error.path == "sources[0].password")
        #expect(error.message.contains("ERP_CENTRO_PASSWORD"))
        #expect(error.line == line(of: "${ERP_CENTRO_PASSWORD}", in: Self.specConfig))
        // The fallback form needs no variable, and a set variable wins over it.
        let fallback = Self.minimal(source: "    password: ${ERP_PW:-changeme}")
        #expect(try SyncConfig.load(yaml: fallback).sources[0].password?.value == "changeme")
        #expect(try SyncConfig.load(yaml: fallback, environment: ["ERP_PW": "x"]).sources[0].password?.value == "x")
    }

    @Test func badTimezone() throws {
        let yaml = Self.minimal(source: "    timezone: America/Sao_Paolo")
        let error = try failure(yaml)
        #expect(error.path == "sources[0].timezone")
        #expect(error.message.contains("America/Sao_Paolo"))
        #expect(error.line == line(of: "Sao_Paolo", in: yaml))
    }

    @Test func badCursorKind() throws {
        let yaml = Self.minimal(source: "    stream:\n      cursor:\n        column: updated_at\n        kind: datetime")
        let error = try failure(yaml)
        #expect(error.path == "sources[0].stream.cursor.kind")
        #expect(error.message.contains("'datetime' is not one of: timestamp, integer"))
        #expect(error.line == line(of: "kind: datetime", in: yaml))
    }

    @Test func duplicateSourceNames() throws {
        let yaml = """
            sources:
              - name: loja-centro
                type: sqlite
                path: /data/erp.sqlite
              - name: loja-norte
                type: sqlite
                path: /data/norte.sqlite
              - name: loja-centro
                type: sqlite
                path: /data/other.sqlite
            """
        let error = try failure(yaml)
        #expect(error.path == "sources[2].name")
        #expect(error.message.contains("duplicate source name 'loja-centro'"))
    }

    /// An SQLite destination that is a source's own file would get the audit tables inside the ERP.
    @Test func theAuditDatabaseIsNeverASourceFile() throws {
        let yaml = """
            destination: { type: sqlite, path: /data/./erp.sqlite }
            sources:
              - name: loja-norte
                type: sqlite
                path: /data/norte.sqlite
              - name: loja-centro
                type: sqlite
                path: /data/erp.sqlite
            """
        let error = try failure(yaml)
        #expect(error.path == "destination.path")
        #expect(error.message.contains("source 'loja-centro' (sources[1].path)"), "\(error.message)")
    }

    @Test func sourceWithoutStreamReadsTheSeedTable() throws {
        let config = try SyncConfig.load(yaml: Self.minimal())
        let source = config.sources[0]
        #expect(source.stream == .seedDefault)
        #expect(source.stream.from == .table("sale_transactions"))
        #expect(source.stream.cursor == StreamConfig.Cursor(column: "timestamp", kind: .timestamp))
        #expect(source.timezone == TimeZone(identifier: "UTC"))
        #expect(source.path == "/data/erp.sqlite")
        // The defaults when the file has no `defaults`.
        #expect(config.defaults == SyncOptions())
        #expect(config.destination == .sqlite(path: "./audit.sqlite"))
    }

    @Test func durations() throws {
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  lookback: 10m")).defaults.lookback == .seconds(600))
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  lookback: 90s")).defaults.lookback == .seconds(90))
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  lookback: 2h")).defaults.lookback == .seconds(7200))
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  lookback: 1d")).defaults.lookback == .seconds(86_400))
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  lookback: 1000")).defaults.lookback == .units(1000))
        let bad = try failure(Self.minimal(defaults: "  lookback: 10 minutes"))
        #expect(bad.path == "defaults.lookback")
        #expect(try failure(Self.minimal(defaults: "  lookback: -5m")).path == "defaults.lookback")
        // Absurd durations are errors, not arithmetic overflows.
        #expect(try failure(Self.minimal(defaults: "  lookback: 999999999999999999d")).path == "defaults.lookback")
        let maxFuture = try failure(Self.minimal(defaults: "  validation: { maxFuture: 999999999999999999h }"))
        #expect(maxFuture.path == "defaults.validation.maxFuture")
        #expect(try SyncConfig.load(yaml: Self.minimal(defaults: "  validation: { maxFuture: 12h }")).defaults.validation.maxFutureSeconds == 43_200)
    }

    @Test func missingSources() throws {
        let none = try failure("destination:\n  type: sqlite\n  path: ./a.sqlite\n")
        #expect(none.path == "sources")
        #expect(try failure("sources: []\n").path == "sources")
        #expect(try failure("sources:\n").path == "sources")
        #expect(try failure("").message.contains("empty"))
        #expect(try failure("sources: [unclosed").message.contains("not valid YAML"))
    }

    @Test func sourceRequirements() throws {
        let noName = try failure("sources:\n  - type: sqlite\n    path: /x.sqlite\n")
        #expect(noName.path == "sources[0]")
        #expect(noName.message.contains("'name' is required"))
        #expect(noName.line == 2)
        #expect(try failure("sources:\n  - name: \"bad name!\"\n    type: sqlite\n    path: /x\n").path == "sources[0].name")
        #expect(try failure("sources:\n  - name: a\n    type: db2\n    path: /x\n").path == "sources[0].type")
        #expect(try failure("sources:\n  - name: a\n    type: mysql\n    database: erp\n").message.contains("needs 'host'"))
        #expect(try failure("sources:\n  - name: a\n    type: sqlite\n").message.contains("needs 'path'"))
        #expect(try failure(Self.minimal(source: "    port: 70000")).path == "sources[0].port")
        #expect(try failure(Self.minimal(source: "    ssl: maybe")).path == "sources[0].ssl")
        #expect(try failure(Self.minimal(source: "    currency: REAL")).path == "sources[0].currency")
    }

    @Test func streamMappingsAndRequiredFields() throws {
        let yaml = Self.minimal(source: """
                stream:
                  query: "SELECT v.*, c.nome FROM vendas v JOIN caixas c ON c.id = v.caixa"
                  primaryKey: [loja, numero]
                  cursor: { column: rec_no, kind: integer }
                  fields:
                    pdv: loja
                    operator: c_nome
                    amount: valor
                    occurredAt: { sql: "data || ' ' || hora" }
                    type: tipo
                  typeMap: { VENDA: sale, " Cancelamento ": cancel }
                  deleted: excluido
            """)
        let stream = try SyncConfig.load(yaml: yaml).sources[0].stream
        #expect(stream.from == .query("SELECT v.*, c.nome FROM vendas v JOIN caixas c ON c.id = v.caixa"))
        #expect(stream.primaryKey == ["loja", "numero"])
        #expect(stream.cursor == StreamConfig.Cursor(column: "rec_no", kind: .integer))
        #expect(stream.fields[.occurredAt] == .sql("data || ' ' || hora"))
        #expect(stream.fields[.pdv] == .column("loja"))
        #expect(stream.typeMap == ["venda": .sale, "cancelamento": .cancel])
        #expect(stream.deleted == .column("excluido"))

        #expect(try failure(Self.minimal(source: "    stream:\n      query: \"DELETE FROM vendas\"\n      primaryKey: id")).path == "sources[0].stream.query")
        #expect(try failure(Self.minimal(source: "    stream:\n      query: \"SELECT 1; DROP TABLE x\"\n      primaryKey: id")).path == "sources[0].stream.query")
        // A query of its own order or first rows: refused outside parentheses, quotes and comments only.
        for cut in ["SELECT * FROM v LIMIT 100", "SELECT * FROM v ORDER BY id", "select * from v order\n by id", "SELECT * FROM v OFFSET 5",
                    "SELECT * FROM v FETCH FIRST 10 ROWS ONLY", "SELECT * FROM v /* ; */ WHERE x = ';' LIMIT 1"] {
            #expect(QueryText.problem(cut) != nil, "\(cut)")
        }
        for fine in ["SELECT * FROM (SELECT * FROM v ORDER BY id LIMIT 5) t", "SELECT \"limit\", `order` FROM v WHERE note = '; LIMIT 1'",
                     "SELECT * FROM v -- LIMIT 1\nWHERE a[1] = 2", "SELECT v.* FROM vendas v /* ORDER BY x; */ JOIN c ON c.id = v.c",
                     "SELECT 'it''s; LIMIT' AS t FROM v", "SELECT unlimited, orderly FROM v"] {
            #expect(QueryText.problem(fine) == nil, "\(fine)")
        }
        #expect(try failure(Self.minimal(source: "    stream:\n      query: \"SELECT * FROM v LIMIT 100\"\n      primaryKey: id")).message
            .contains("LIMIT"))
        #expect(try failure(Self.minimal(source: "    stream:\n      query: \"SELECT * FROM v\"")).message.contains("primaryKey"))
        #expect(try failure(Self.minimal(source: "    stream:\n      table: v\n      query: \"SELECT * FROM v\"")).path == "sources[0].stream")
        #expect(try failure(Self.minimal(source: "    stream:\n      typeMap: { estorno: reversal }")).path == "sources[0].stream.typeMap.estorno")
        #expect(try failure(Self.minimal(source: "    stream:\n      fields: { valor: amount }")).path == "sources[0].stream.fields.valor")
        #expect(try failure(Self.minimal(source: "    stream:\n      fields: { amount: { sql: x, column: y } }")).path == "sources[0].stream.fields.amount")
    }

    @Test func aCustomTableDoesNotInheritTheSeedColumns() throws {
        // A table with its own key and no `reference` column: only the mapped columns may be read.
        let yaml = Self.minimal(source: """
                stream:
                  table: vendas
                  primaryKey: [nr_venda]
                  cursor: { column: alterado_em, kind: timestamp }
                  fields: { pdv: loja, operator: caixa, amount: valor, occurredAt: data, type: tipo }
            """)
        let stream = try SyncConfig.load(yaml: yaml).sources[0].stream
        #expect(stream.fields[.externalId] == .column("nr_venda"))
        #expect(stream.fields[.reference] == nil)
        #expect(stream.fields.count == 6)

        // A composite key without an explicit externalId: the mapper joins the key values.
        let composite = try SyncConfig.load(yaml: yaml.replacingOccurrences(of: "[nr_venda]", with: "[loja, nr_venda]")).sources[0].stream
        #expect(composite.fields[.externalId] == nil)

        // A required field left out of an explicit mapping is reported, not silently taken from the seed.
        let missing = try failure(yaml.replacingOccurrences(of: ", type: tipo", with: ""))
        #expect(missing.path == "sources[0].stream.fields.type")
    }

    @Test func postgresqlDestination() throws {
        let yaml = "destination:\n  type: postgresql\n  url: postgres://audit:${AUDIT_DB_PASSWORD}@127.0.0.1:5432/audit?sslmode=prefer\n" + Self.minimal()
        let config = try SyncConfig.load(yaml: yaml, environment: ["AUDIT_DB_PASSWORD": "pw"])
        #expect(config.destination == .postgresql(url: "postgres://audit:pw@127.0.0.1:5432/audit?sslmode=prefer"))
        #expect(try failure("destination:\n  type: postgresql\n" + Self.minimal()).path == "destination")
        #expect(try failure("destination:\n  type: mongodb\n" + Self.minimal()).path == "destination.type")
        #expect(try failure("destination:\n  type: sqlite\n  url: postgres://x\n" + Self.minimal()).path == "destination.url")
    }

    @Test func deduplicationAndRetryOptions() throws {
        let options = try SyncConfig.load(yaml: Self.minimal(defaults: """
              deduplication: { enabled: false, windowMinutes: 10, action: skip }
              maxRetries: 5
              retryDelayMs: 250
              maxRetryDelayMs: 8000
              validation: { signRules: { sale: nonNegative, refund: nonPositive } }
            """)).defaults
        #expect(options.deduplication.enabled == false)
        #expect(options.deduplication.windowMinutes == 10)
        #expect(options.deduplication.action == .skip)
        #expect(options.maxRetries == 5)
        #expect(options.retryDelayMs == 250)
        #expect(options.maxRetryDelayMs == 8000)
        #expect(options.validation.signRules == [.sale: .nonNegative, .refund: .nonPositive])
        #expect(try failure(Self.minimal(defaults: "  deduplication: { action: drop }")).path == "defaults.deduplication.action")
        #expect(try failure(Self.minimal(defaults: "  deduplication: { enabled: maybe }")).path == "defaults.deduplication.enabled")
    }

    @Test func errorsCarryLineNumbers() throws {
        let cases = [
            Self.minimal(defaults: "  batchsize: 500"),
            Self.minimal(defaults: "  batchSize: 50"),
            Self.minimal(source: "    timezone: Mars/Olympus"),
            Self.minimal(source: "    stream:\n      cursor: { column: x, kind: float }"),
            Self.minimal(source: "    password: ${NOPE}"),
        ]
        for yaml in cases {
            let error = try failure(yaml)
            let line = try #require(error.line, "\(error)")
            #expect(line >= 1 && line <= yaml.split(separator: "\n", omittingEmptySubsequences: false).count)
            #expect(error.description.contains("(line \(line))"))
        }
    }
}
