public import Foundation
import Yams

extension SyncConfig {
    /// Reads a configuration file.
    /// - Parameters:
    ///   - path: the YAML file.
    ///   - environment: values for `${VAR}` references (default: the process environment).
    /// - Throws: ``ConfigError`` naming the key, for a missing file, bad YAML or a bad value.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SyncConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isFolder: ObjCBool = false
            let reason = !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) ? "no such file (run `erp-sync init` to write a sample)"
                : isFolder.boolValue ? "it is a folder" : "permission denied"
            throw ConfigError(path: "", message: "cannot read \(path): \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(path: "", message: "\(path) is not UTF-8 text")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try load(yaml: text, environment: environment, relativeTo: base)
    }

    /// Parses configuration text.
    /// - Parameters:
    ///   - yaml: the YAML document (shape in SPEC.md "Config shape").
    ///   - environment: values for `${VAR}` and `${VAR:-default}`.
    ///   - relativeTo: folder that relative file paths (`destination.path`, `passwordFile`, sqlite `path`)
    ///     are resolved against; `nil` keeps them as written.
    /// - Throws: ``ConfigError``.
    public static func load(yaml: String, environment: [String: String] = [:], relativeTo base: String? = nil) throws -> SyncConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw ConfigError(path: "", message: "the file is empty") }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(path: "", message: "not valid YAML: \(error)")
        }
        let reader = ConfigReader(base: base)
        return try reader.config(ConfigNode(node: root, path: "", environment: environment))
    }
}

/// Turns YAML nodes into typed configuration, one function per section (the `serve` sections are in
/// `SyncConfig+LoadServe.swift`).
struct ConfigReader {
    let base: String?

    /// Whether two paths name one file: the same path once `.` and `..` are resolved, or, when both exist, the same
    /// file (a symbolic link to it).
    static func sameFile(_ first: String, _ second: String) -> Bool {
        let a = URL(fileURLWithPath: first).standardizedFileURL, b = URL(fileURLWithPath: second).standardizedFileURL
        return a.path == b.path || a.resolvingSymlinksInPath().path == b.resolvingSymlinksInPath().path
    }

    func resolve(_ path: String) -> String {
        guard let base, !path.hasPrefix("/"), !base.isEmpty else { return path }
        return URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
    }

    func config(_ node: ConfigNode) throws -> SyncConfig {
        var destination = DestinationConfig.sqlite(path: resolve("./audit.sqlite"))
        var defaults = SyncOptions()
        var sources: [SourceConfig] = []
        var sawSources = false
        var api = APIConfig()
        var schedule = ScheduleConfig()
        schedule.enabled = false  // no `schedule` section: serve schedules nothing (issue 15)
        var notifications = NotificationsConfig()
        var lease = LeaseOptions()
        for (key, value) in try node.requireMapping(allowed: ["destination", "defaults", "sources", "api", "schedule", "notifications", "serve"]) {
            switch key {
            case "destination":
                destination = try self.destination(value)
                if let period = value.child("leasePeriod") { lease.periodSeconds = try Self.leasePeriod(period) }
            case "serve": lease.instanceId = try instanceId(value) ?? lease.instanceId
            case "defaults": defaults = try options(value)
            case "api": api = try self.api(value)
            case "schedule": schedule = try self.schedule(value)
            case "notifications": notifications = try self.notifications(value)
            default:
                sawSources = true
                sources = try value.sequence().map(source)
            }
        }
        guard sawSources, !sources.isEmpty else { throw ConfigError(path: "sources", message: "at least one source is required") }
        var seen: Set<String> = []
        for (index, source) in sources.enumerated() where !seen.insert(source.name).inserted {
            throw ConfigError(path: "sources[\(index)].name", message: "duplicate source name '\(source.name)'")
        }
        // The audit tables are written into the destination: never into an ERP's own file.
        if case .sqlite(let audit) = destination,
           let (index, source) = sources.enumerated().first(where: { $1.path.map { Self.sameFile(audit, $0) } == true }) {
            throw ConfigError(path: "destination.path",
                              message: "'\(audit)' is the database file of source '\(source.name)' (sources[\(index)].path): the audit database must be another file")
        }
        var config = SyncConfig(destination: destination, defaults: defaults, sources: sources)
        config.api = api
        config.schedule = schedule
        config.notifications = notifications
        config.lease = lease
        return config
    }

    func destination(_ node: ConfigNode) throws -> DestinationConfig {
        let entries = try node.requireMapping(allowed: ["type", "path", "url", "leasePeriod"])
        let type = try node.child("type")?.string() ?? "sqlite"
        switch type {
        case "sqlite":
            if entries.contains(where: { $0.0 == "url" }) { throw node.child("url")!.error("'url' is for postgresql; sqlite takes 'path'") }
            return .sqlite(path: resolve(try node.child("path")?.string() ?? "./audit.sqlite"))
        case "postgresql":
            guard let url = try node.child("url")?.string() else { throw node.error("postgresql needs 'url' (postgres://user:pass@host:5432/db)") }
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw node.child("url")!.error("expected a postgres:// URL")
            }
            return .postgresql(url: url)
        default:
            throw node.child("type")!.error("'\(type)' is not a destination type (sqlite, postgresql)")
        }
    }

    func options(_ node: ConfigNode) throws -> SyncOptions {
        var options = SyncOptions()
        let keys: Set<String> = ["batchSize", "maxRecords", "daysBack", "lookback", "deduplication", "maxRetries",
                                 "retryDelayMs", "maxRetryDelayMs", "validation"]
        for (key, value) in try node.requireMapping(allowed: keys) {
            switch key {
            case "batchSize": options.batchSize = try value.int(in: 100...10_000)
            case "maxRecords": options.maxRecords = try value.int(in: 1...100_000_000)
            case "daysBack": options.daysBack = try value.int(in: SyncOptions.daysBackRange)
            case "lookback": options.lookback = try lookback(value)
            case "maxRetries": options.maxRetries = try value.int(in: 0...20)
            case "retryDelayMs": options.retryDelayMs = try value.int(in: 0...600_000)
            case "maxRetryDelayMs": options.maxRetryDelayMs = try value.int(in: 0...3_600_000)
            case "deduplication": options.deduplication = try deduplication(value)
            default: options.validation = try validation(value)
            }
        }
        return options
    }

    func lookback(_ node: ConfigNode) throws -> Lookback {
        let text = try node.string()
        if let units = Int64(text), units >= 0 { return .units(units) }
        guard let seconds = Self.durationSeconds(text) else {
            throw node.error("expected a duration such as 30s, 5m, 2h, 1d (or a number of cursor units for integer cursors), got '\(text)'")
        }
        return .seconds(seconds)
    }

    /// `destination.leasePeriod`: a duration from 2 s to 1 h, in seconds.
    static func leasePeriod(_ node: ConfigNode) throws -> Int {
        let text = try node.string()
        guard let seconds = durationSeconds(text), (2...3600).contains(seconds) else {
            throw node.error("expected a lease period from 2s to 1h, such as 30s, 60s or 5m, got '\(text)'")
        }
        return Int(seconds)
    }

    /// `90s`, `5m`, `2h`, `1d` → seconds; `nil` for anything else, including values too large to count in
    /// seconds (a typo must be a config error, not an arithmetic overflow trap).
    static func durationSeconds(_ text: String) -> Int64? {
        guard let unit = text.last, let value = Int64(text.dropLast()), value >= 0 else { return nil }
        let factor: Int64
        switch unit {
        case "s": factor = 1
        case "m": factor = 60
        case "h": factor = 3600
        case "d": factor = 86_400
        default: return nil
        }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : seconds
    }

    func deduplication(_ node: ConfigNode) throws -> DeduplicationOptions {
        var options = DeduplicationOptions()
        for (key, value) in try node.requireMapping(allowed: ["enabled", "windowMinutes", "action"]) {
            switch key {
            case "enabled": options.enabled = try value.bool()
            case "windowMinutes": options.windowMinutes = try value.int(in: 0...1440)
            default: options.action = try value.oneOf(DeduplicationOptions.Action.self)
            }
        }
        return options
    }

    func validation(_ node: ConfigNode) throws -> ValidationOptions {
        var options = ValidationOptions()
        for (key, value) in try node.requireMapping(allowed: ["signRules", "maxFuture"]) {
            if key == "maxFuture" {
                let text = try value.string()
                guard let seconds = Self.durationSeconds(text) else { throw value.error("expected a duration such as 1d or 12h, got '\(text)'") }
                options.maxFutureSeconds = seconds
            } else {
                var rules: [TransactionType: ValidationOptions.Sign] = [:]
                for (typeName, sign) in try value.requireMapping(allowed: Set(TransactionType.allCases.map(\.rawValue))) {
                    rules[TransactionType(rawValue: typeName)!] = try sign.oneOf(ValidationOptions.Sign.self)
                }
                options.signRules = rules
            }
        }
        return options
    }

    func source(_ node: ConfigNode) throws -> SourceConfig {
        let keys: Set<String> = ["name", "type", "host", "port", "database", "path", "username", "password", "passwordFile",
                                 "ssl", "caFile", "connectTimeout", "readTimeout", "timezone", "currency", "stream",
                                 "driver", "serviceName", "oracleVersion", "connectionString", "dsn", "dialect"]
        let entries = try node.requireMapping(allowed: keys)
        guard let nameNode = node.child("name") else { throw node.error("'name' is required") }
        let name = try nameNode.string()
        guard !name.isEmpty, name.count <= 64,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw nameNode.error("'\(name)' must be 1-64 letters, digits, '-', '_' or '.'")
        }
        guard let typeNode = node.child("type") else { throw node.error("'type' is required (\(DatabaseType.allCases.map(\.rawValue).joined(separator: ", ")))") }
        let typeName = try typeNode.string()
        guard let type = DatabaseType(configName: typeName) else {
            let names = DatabaseType.allCases.map(\.rawValue) + DatabaseType.aliases.keys.sorted().map { "\($0) (= \(DatabaseType.aliases[$0]!.rawValue))" }
            throw typeNode.error("'\(typeName)' is not one of: \(names.joined(separator: ", "))")
        }
        var source = SourceConfig(name: name, type: type)
        for (key, value) in entries {
            switch key {
            case "host": source.host = try value.string()
            case "port": source.port = try value.int(in: 1...65_535)
            case "database": source.database = try value.string()
            case "path": source.path = resolve(try value.string())
            case "username": source.username = try value.string()
            case "password": source.password = Secret(try value.string())
            case "passwordFile":
                let file = resolve(try value.string())
                guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                    throw value.error("cannot read password file \(file)")
                }
                source.password = Secret(text.trimmingCharacters(in: .newlines))
            case "ssl": source.ssl = try value.oneOf(SSLMode.self)
            case "caFile":
                let file = resolve(try value.string())
                guard FileManager.default.isReadableFile(atPath: file) else { throw value.error("cannot read CA file \(file)") }
                source.caFile = file
            case "connectTimeout": source.connectTimeoutSeconds = try timeout(value)
            case "readTimeout": source.readTimeoutSeconds = try timeout(value)
            case "timezone":
                let zoneName = try value.string()
                guard let zone = TimeZone(identifier: zoneName) else {
                    throw value.error("'\(zoneName)' is not an IANA time zone name (e.g. America/Sao_Paulo, UTC)")
                }
                source.timezone = zone
            case "currency":
                let code = try value.string().uppercased()
                guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isLetter }) else { throw value.error("expected an ISO 4217 code such as BRL") }
                source.currency = code
            case "stream": source.stream = try stream(value)
            case "driver": source.driver = try nonEmpty(value)
            case "serviceName": source.serviceName = try nonEmpty(value)
            case "oracleVersion": source.oracleVersion = try value.int(in: 11...99)
            case "connectionString": source.connectionString = try connectionString(value)
            case "dsn": source.dsn = try nonEmpty(value)
            case "dialect":
                let name = try value.string()
                guard let dialect = SQLDialect.named[name] else {
                    throw value.error("'\(name)' is not a dialect (\(SQLDialect.named.keys.sorted().joined(separator: ", ")))")
                }
                source.dialect = dialect
            default: break
            }
        }
        try checkODBCKeys(node, source, present: Set(entries.map(\.0)))
        if entries.contains(where: { $0.0 == "password" }) && entries.contains(where: { $0.0 == "passwordFile" }) {
            throw node.error("give either 'password' or 'passwordFile', not both")
        }
        switch source.type {
        case .sqlite:
            guard source.path != nil else { throw node.error("a sqlite source needs 'path' (the ERP database file)") }
        case .odbc:
            guard (source.connectionString == nil) != (source.dsn == nil) else {
                throw node.error("an odbc source needs either 'connectionString' or 'dsn'")
            }
            guard source.dialect != nil else {
                throw node.error("an odbc source needs 'dialect' (\(SQLDialect.named.keys.sorted().joined(separator: ", ")))")
            }
        case .oracle:
            guard source.host != nil else { throw node.error("an oracle source needs 'host'") }
            guard source.serviceName != nil else { throw node.error("an oracle source needs 'serviceName' (the database's service, e.g. ORCLPDB1)") }
            guard source.driver != nil else {
                throw node.error("an oracle source needs 'driver': the name of the Oracle Instant Client ODBC driver in odbcinst.ini")
            }
        case .postgresql, .mysql, .sqlserver:
            guard source.host != nil else { throw node.error("a \(source.type.rawValue) source needs 'host'") }
            guard source.database != nil else { throw node.error("a \(source.type.rawValue) source needs 'database'") }
        }
        return source
    }

    /// Keys that only some types take are refused elsewhere, so a misplaced one never passes silently.
    func checkODBCKeys(_ node: ConfigNode, _ source: SourceConfig, present: Set<String>) throws {
        let allowed: [String: Set<DatabaseType>] = [
            "driver": [.sqlserver, .oracle], "serviceName": [.oracle], "oracleVersion": [.oracle],
            "connectionString": [.odbc], "dsn": [.odbc], "dialect": [.odbc],
        ]
        for (key, types) in allowed.sorted(by: { $0.key < $1.key }) where present.contains(key) && !types.contains(source.type) {
            throw node.child(key)!.error("'\(key)' is for \(types.map(\.rawValue).sorted().joined(separator: ", ")) sources, not \(source.type.rawValue)")
        }
    }

    func nonEmpty(_ node: ConfigNode) throws -> String {
        let text = try node.string()
        guard !text.isEmpty else { throw node.error("must not be empty") }
        return text
    }

    /// An ODBC connection string; one carrying a password (`PWD=`, `PASSWORD=`) is refused: secrets go in
    /// `password`, `passwordFile` or `${ENV}` so that they are never echoed with the string.
    func connectionString(_ node: ConfigNode) throws -> String {
        let text = try nonEmpty(node)
        let keys = ODBCConnectionString.attributes(text).map { $0.key.uppercased() }
        if keys.contains("PWD") || keys.contains("PASSWORD") {
            throw node.error("must not carry the password (PWD=…): give it as 'password', 'passwordFile' or ${ENV}")
        }
        return text
    }

    /// A timeout: a duration (`10s`, `5m`) of 1 second to 1 day.
    func timeout(_ node: ConfigNode) throws -> Int {
        let text = try node.string()
        guard let seconds = Self.durationSeconds(text), (1...86_400).contains(seconds) else {
            throw node.error("expected a duration from 1s to 1d such as 10s or 5m, got '\(text)'")
        }
        return Int(seconds)
    }

    func stream(_ node: ConfigNode) throws -> StreamConfig {
        let entries = try node.requireMapping(allowed: ["table", "query", "primaryKey", "cursor", "fields", "typeMap", "deleted"])
        var stream = StreamConfig.seedDefault
        var explicitExternalId = false
        let table = try node.child("table")?.string()
        let query = try node.child("query")?.string()
        switch (table, query) {
        case (.some, .some): throw node.error("give either 'table' or 'query', not both")
        case (let table?, nil):
            guard !table.isEmpty else { throw node.child("table")!.error("must not be empty") }
            stream.from = .table(table)
        case (nil, let query?):
            let upper = query.uppercased()
            guard upper.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("SELECT")
                    || upper.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("WITH") else {
                throw node.child("query")!.error("must be a SELECT (or WITH … SELECT) statement")
            }
            if let problem = QueryText.problem(query) { throw node.child("query")!.error(problem) }
            stream.from = .query(query)
        case (nil, nil): break
        }
        for (key, value) in entries {
            switch key {
            case "primaryKey":
                if case .sequence = value.node {
                    stream.primaryKey = try value.sequence().map { try $0.string() }
                } else {
                    stream.primaryKey = [try value.string()]
                }
                guard !stream.primaryKey.isEmpty, !stream.primaryKey.contains("") else { throw value.error("needs at least one column") }
            case "cursor":
                for (cursorKey, cursorValue) in try value.requireMapping(allowed: ["column", "kind", "type"]) {
                    switch cursorKey {
                    case "column": stream.cursor.column = try cursorValue.string()
                    case "kind": stream.cursor.kind = try cursorValue.oneOf(StreamConfig.Cursor.Kind.self)
                    default:
                        // Written into SQL text as a cast target, so only a type name: letters, digits, `_`, `(n)`, `(p,s)`.
                        let type = try cursorValue.string()
                        guard type.range(of: #"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9]+(,[0-9]+)?\))?$"#, options: .regularExpression) != nil else {
                            throw cursorValue.error("expected an SQL type name such as DATETIME, DATETIME2(7) or TIMESTAMP(6), got '\(type)'")
                        }
                        stream.cursor.sqlType = type
                    }
                }
            case "fields":
                // An explicit mapping replaces the seed's: a custom table need not have the seed's columns
                // (`reference`, `id`), and a required field left out is reported below.
                var fields: [StreamConfig.Field: StreamConfig.Mapping] = [:]
                for (fieldName, mapping) in try value.requireMapping(allowed: Set(StreamConfig.Field.allCases.map(\.rawValue))) {
                    fields[StreamConfig.Field(rawValue: fieldName)!] = try self.mapping(mapping)
                }
                explicitExternalId = fields[.externalId] != nil
                stream.fields = fields
            case "typeMap":
                var map: [String: TransactionType] = [:]
                guard case .mapping(let mapping) = value.node else { throw value.error("expected ERP value: canonical type pairs") }
                for (k, v) in mapping {
                    let child = ConfigNode(node: v, path: "\(value.path).\(k.string ?? "?")", environment: value.environment)
                    map[(k.string ?? "").trimmingSpaces().lowercased()] = try child.oneOf(TransactionType.self)
                }
                stream.typeMap = map
            case "deleted": stream.deleted = try mapping(value)
            default: break
            }
        }
        if !explicitExternalId {
            // `externalId` follows the primary key: its column, or (composite key) the key values joined with `|`.
            stream.fields[.externalId] = stream.primaryKey.count == 1 ? .column(stream.primaryKey[0]) : nil
        }
        for required in [StreamConfig.Field.pdv, .operator, .amount, .occurredAt, .type] where stream.fields[required] == nil {
            throw ConfigError(path: "\(node.path).fields.\(required.rawValue)", message: "is required", line: node.line)
        }
        if case .query = stream.from, node.child("primaryKey") == nil {
            throw node.error("a query stream needs 'primaryKey' (the columns that identify a row of the query)")
        }
        return stream
    }

    func mapping(_ node: ConfigNode) throws -> StreamConfig.Mapping {
        if case .mapping = node.node {
            let entries = try node.requireMapping(allowed: ["sql", "column"])
            guard entries.count == 1 else { throw node.error("give exactly one of 'column' or 'sql'") }
            let text = try entries[0].1.string()
            guard !text.isEmpty else { throw entries[0].1.error("must not be empty") }
            return entries[0].0 == "sql" ? .sql(text) : .column(text)
        }
        let column = try node.string()
        guard !column.isEmpty else { throw node.error("must name a column, or be { sql: <expression> }") }
        return .column(column)
    }
}
