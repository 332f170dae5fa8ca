public import Foundation

/// The whole configuration file: where to write, run defaults, and the sources.
///
/// Shape and defaults are the contract in SPEC.md ("Config shape"); ``load(yaml:environment:)`` reads it.
public struct SyncConfig: Sendable {
    /// The audit database.
    public var destination: DestinationConfig
    /// Run options shared by all sources (the seed's `SyncOptions`).
    public var defaults: SyncOptions
    /// The ERP sources, names unique.
    public var sources: [SourceConfig]
    /// `erp-sync serve`: the HTTP API.
    public var api = APIConfig()
    /// `erp-sync serve`: the scheduler.
    public var schedule = ScheduleConfig()
    /// `erp-sync serve`: webhooks.
    public var notifications = NotificationsConfig()
    /// The run lock: lease period (`destination.leasePeriod`) and this process's instance id (`serve.instanceId`).
    public var lease = LeaseOptions()

    /// Creates a configuration.
    public init(destination: DestinationConfig, defaults: SyncOptions = SyncOptions(), sources: [SourceConfig]) {
        self.destination = destination
        self.defaults = defaults
        self.sources = sources
    }

    /// The source called `name`.
    public func source(named name: String) -> SourceConfig? { sources.first { $0.name == name } }
}

/// How a run holds its source (README "Several serve instances"): a lease in the destination, renewed while the run
/// is alive and checked by every batch's commit, held in the name of an instance.
public struct LeaseOptions: Sendable, Equatable {
    /// Seconds a lease stays valid without renewal (`destination.leasePeriod`, default 60 s, 2 s to 1 h): how long
    /// the sources of an instance that died, or was paused or cut off, wait before another instance takes them over.
    /// On PostgreSQL the expiry is judged by the server's clock.
    public var periodSeconds = 60
    /// Names this process in leases, slots and `erp.getStatus` (`serve.instanceId`; default `<hostname>:<pid>`).
    public var instanceId = LeaseOptions.defaultInstanceId

    /// `<hostname>:<pid>` of this process.
    public static var defaultInstanceId: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// The defaults: 60 s, `<hostname>:<pid>`.
    public init(periodSeconds: Int = 60, instanceId: String = LeaseOptions.defaultInstanceId) {
        self.periodSeconds = periodSeconds
        self.instanceId = instanceId
    }
}

/// Where the audit tables live.
public enum DestinationConfig: Sendable, Equatable {
    /// An embedded SQLite file (the default, `./audit.sqlite`), opened in WAL mode.
    case sqlite(path: String)
    /// A PostgreSQL server, `postgres://user:pass@host:port/db?sslmode=prefer`.
    case postgresql(url: String)

    /// `sqlite` or `postgresql`.
    public var typeName: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgresql: "postgresql"
        }
    }
}

/// Run options: the seed's `SyncOptions` with the same names and defaults, plus `lookback`.
public struct SyncOptions: Sendable, Equatable {
    /// Rows per fetch + load + checkpoint transaction, 100 ... 10000 (default 1000).
    public var batchSize: Int = 1000
    /// Rows per run (default 50000); a run that stops there reports `hasMore = true`.
    public var maxRecords: Int = 50000
    /// Where the first incremental run (no checkpoint yet) starts: now − `daysBack` days, in the source's
    /// time zone (default 30). `0` means the whole history.
    public var daysBack: Int = 30
    /// The accepted `daysBack`, in days: a hundred years. Beyond it the start date leaves the calendar (a trillion days
    /// back trapped the process); the config file, the `--days-back` flag and the API's `syncNow` all check it here.
    public static let daysBackRange = 0...36_500
    /// How far behind the checkpoint an incremental run starts re-reading, to catch rows committed late; the
    /// window is re-read only when its rows changed since the last run (``LookbackWindow``).
    public var lookback: Lookback = .seconds(300)
    /// Cross-source duplicate detection.
    public var deduplication: DeduplicationOptions = DeduplicationOptions()
    /// Retries of a failing batch for transient errors (default 3).
    public var maxRetries: Int = 3
    /// First retry delay in ms (default 1000); the n-th retry waits `retryDelayMs * 2^(n-1)`, capped at
    /// ``maxRetryDelayMs``, with jitter.
    public var retryDelayMs: Int = 1000
    /// Upper bound of one retry delay in ms (default 30000).
    public var maxRetryDelayMs: Int = 30000
    /// Row validation rules.
    public var validation: ValidationOptions = ValidationOptions()

    /// The seed's defaults.
    public init() {}
}

/// The re-read window behind the checkpoint.
public enum Lookback: Sendable, Equatable {
    /// For timestamp cursors: seconds of cursor time (`5m`, `30s`, `2h`).
    case seconds(Int64)
    /// For integer cursors: cursor units (a plain number, e.g. `1000` ids back).
    case units(Int64)
}

/// Deduplication across sources (SPEC.md "Deduplication across ERPs").
public struct DeduplicationOptions: Sendable, Equatable {
    /// What happens to a detected duplicate.
    public enum Action: String, Sendable, CaseIterable {
        /// Keep the row and set `duplicate_of` (default).
        case flag
        /// Keep it out of `tb_sales`; it is recorded in `tb_sync_errors` with reason `DUPLICATE`.
        case skip
    }
    /// Default `true`.
    public var enabled = true
    /// Two records are duplicates when |Δ occurredAt| ≤ this many minutes (default 5).
    public var windowMinutes = 5
    /// Default ``Action/flag``.
    public var action: Action = .flag

    /// The defaults: enabled, 5 minutes, flag.
    public init() {}
}

/// Validation rules applied to every mapped record.
public struct ValidationOptions: Sendable, Equatable {
    /// The sign an amount may have for a type.
    public enum Sign: String, Sendable, CaseIterable {
        /// ≥ 0.
        case nonNegative
        /// ≤ 0.
        case nonPositive
        /// Either.
        case any
    }
    /// Sign rule per type; types not listed accept any sign. Default: `sale` and `discount` … only `sale`
    /// must be ≥ 0; cancellations and refunds are legitimate with either sign (ERPs differ).
    public var signRules: [TransactionType: Sign] = [.sale: .nonNegative]
    /// How far in the future `occurredAt` may lie, in seconds (default 86400: a day of clock skew).
    public var maxFutureSeconds: Int64 = 86_400

    /// The defaults.
    public init() {}
}

/// Database engines a source can be.
public enum DatabaseType: String, Sendable, CaseIterable, Codable {
    case postgresql, mysql, sqlserver, oracle, sqlite, odbc

    /// Other names a configuration may give a type: `mariadb` is read by the `mysql` connector (MariaDB
    /// Connector/C speaks to both).
    public static let aliases: [String: DatabaseType] = ["mariadb": .mysql]

    /// The type a configuration names: a raw value or one of ``aliases``.
    public init?(configName name: String) {
        guard let type = DatabaseType(rawValue: name) ?? Self.aliases[name] else { return nil }
        self = type
    }
}

/// One ERP database and the stream read from it.
public struct SourceConfig: Sendable {
    /// The id used everywhere (CLI, API, `tb_sales.source_id`); letters, digits, `-`, `_`, `.`.
    public var name: String
    public var type: DatabaseType
    public var host: String?
    public var port: Int?
    public var database: String?
    /// For `sqlite` sources: the database file.
    public var path: String?
    public var username: String?
    /// Never printed; from `${ENV}` or `passwordFile`.
    public var password: Secret?
    /// `disable`, `prefer` (default) or `require`.
    public var ssl: SSLMode
    /// PEM file of the CA that signed the server certificate; when set, the certificate is verified.
    public var caFile: String?
    /// Seconds to wait for a connection to open; `nil` = the connector's default (10).
    public var connectTimeoutSeconds: Int?
    /// Seconds to wait for the server's answer to one read (a query, the next rows); `nil` = the connector's
    /// default (300).
    public var readTimeoutSeconds: Int?
    /// ODBC sources (`sqlserver`, `oracle`, `odbc`): the ODBC driver, as named in `odbcinst.ini` (`FreeTDS`,
    /// `ODBC Driver 18 for SQL Server`) or a driver library path; `nil` = `FreeTDS` for `sqlserver`.
    public var driver: String?
    /// `oracle` sources: the service name the listener knows the database by (`ORCLPDB1`).
    public var serviceName: String?
    /// `oracle` sources: the server's major version; 11 pages with the `ROWNUM` form, 12 and later (the
    /// default) with `FETCH FIRST`.
    public var oracleVersion: Int?
    /// `odbc` sources: an ODBC connection string without the password (`DRIVER={…};SERVER=…`), or `nil` when
    /// ``dsn`` names a data source.
    public var connectionString: String?
    /// `odbc` sources: a data source name from `odbc.ini`.
    public var dsn: String?
    /// `odbc` sources: the SQL dialect of the database behind the driver.
    public var dialect: SQLDialect?
    /// How naive ERP timestamps are read (IANA name; default UTC).
    public var timezone: TimeZone
    /// Currency when the stream maps none (default `BRL`).
    public var currency: String
    /// What to read and how it maps.
    public var stream: StreamConfig

    /// Creates a source; `stream` defaults to the seed's `sale_transactions` table.
    public init(name: String, type: DatabaseType, host: String? = nil, port: Int? = nil, database: String? = nil,
                path: String? = nil, username: String? = nil, password: Secret? = nil, ssl: SSLMode = .prefer,
                caFile: String? = nil, connectTimeoutSeconds: Int? = nil, readTimeoutSeconds: Int? = nil, timezone: TimeZone = TimeZone(identifier: "UTC")!, currency: String = "BRL",
                stream: StreamConfig = .seedDefault) {
        self.name = name
        self.type = type
        self.host = host
        self.port = port
        self.database = database
        self.path = path
        self.username = username
        self.password = password
        self.ssl = ssl
        self.caFile = caFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.readTimeoutSeconds = readTimeoutSeconds
        self.timezone = timezone
        self.currency = currency
        self.stream = stream
    }
}

/// TLS use towards a source.
public enum SSLMode: String, Sendable, CaseIterable {
    case disable, prefer, require
}

/// A secret value that never shows in descriptions or logs.
public struct Secret: Sendable, Equatable, CustomStringConvertible {
    /// The secret itself; read it only to hand it to a driver.
    public let value: String
    /// Wraps a secret.
    public init(_ value: String) { self.value = value }
    /// Always `******`.
    public var description: String { "******" }
}

/// Which table or query holds the transactions and how its columns become a ``SaleTransaction``.
public struct StreamConfig: Sendable, Equatable {
    /// A table (optionally `schema.table`) or a `SELECT` without `ORDER BY`/`LIMIT`.
    public enum From: Sendable, Equatable {
        case table(String)
        case query(String)
    }
    /// A canonical field's origin: a column of the table/query, or an SQL expression in the source's dialect.
    public enum Mapping: Sendable, Equatable {
        case column(String)
        case sql(String)
    }
    /// The position column and its kind.
    public struct Cursor: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// A date-time column, e.g. `updated_at` / `write_date`.
            case timestamp
            /// A monotonically increasing number, e.g. a record number.
            case integer
        }
        public var column: String
        public var kind: Kind
        /// The column's SQL type as the server declares it (`DATETIME`, `DATETIME2(7)`, `DATE`, `TIMESTAMP`;
        /// config `cursor.type`): checkpoint values are cast to it in the SQL text so they compare exactly like
        /// the column. `nil` = the dialect's default (``SQLDialect/timestampBindType``).
        public var sqlType: String?
        /// Creates a cursor definition.
        public init(column: String, kind: Kind, sqlType: String? = nil) {
            self.column = column
            self.kind = kind
            self.sqlType = sqlType
        }
    }
    /// Canonical fields that can be mapped.
    public enum Field: String, Sendable, CaseIterable {
        case externalId, pdv, `operator`, amount, currency, occurredAt, type, reference, sourceUpdatedAt
    }

    public var from: From
    /// Columns that identify a row; the keyset tie-breaker after the cursor.
    public var primaryKey: [String]
    public var cursor: Cursor
    /// Mapping per canonical field; `externalId` defaults to the primary key, `currency` and
    /// `sourceUpdatedAt` are optional.
    public var fields: [Field: Mapping]
    /// ERP type value (case-insensitive) → canonical type; values already canonical need no entry.
    public var typeMap: [String: TransactionType]
    /// Optional SQL condition (or column) that is true for rows deleted at the source.
    public var deleted: Mapping?

    /// Creates a stream definition.
    public init(from: From, primaryKey: [String], cursor: Cursor, fields: [Field: Mapping],
                typeMap: [String: TransactionType] = [:], deleted: Mapping? = nil) {
        self.from = from
        self.primaryKey = primaryKey
        self.cursor = cursor
        self.fields = fields
        self.typeMap = typeMap
        self.deleted = deleted
    }

    /// The seed's table: `sale_transactions(id, pdv, operator, amount, timestamp, type, reference)`,
    /// cursor `(timestamp, id)`.
    public static let seedDefault = StreamConfig(
        from: .table("sale_transactions"), primaryKey: ["id"], cursor: Cursor(column: "timestamp", kind: .timestamp),
        fields: [.externalId: .column("id"), .pdv: .column("pdv"), .operator: .column("operator"),
                 .amount: .column("amount"), .occurredAt: .column("timestamp"), .type: .column("type"),
                 .reference: .column("reference")])
}
