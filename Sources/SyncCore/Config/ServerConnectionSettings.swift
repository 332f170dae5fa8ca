/// How to reach one database server: the connection fields every server source shares (MySQL/MariaDB,
/// PostgreSQL, SQL Server, Oracle), built once from a ``SourceConfig``.
///
/// Connectors keep only what is their own beside it (PostgreSQL's certificate check and URL form, ODBC's
/// driver and service name); how each one applies ``ssl`` is documented with the connector.
public struct ServerConnectionSettings: Sendable, Equatable {
    /// Host name or IP address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// The database (schema, catalog) the stream's tables live in; empty for the login's default.
    public var database: String
    /// Login user.
    public var username: String
    /// Login password (from `password`, `passwordFile` or `${ENV}`); `nil` for none. Never part of any message.
    public var password: String?
    /// `disable`, `prefer` or `require`.
    public var ssl: SSLMode
    /// PEM file of the CA that signed the server certificate; when given, the certificate is verified.
    public var caFile: String?
    /// Seconds to wait for the connection and login (default 10).
    public var connectTimeoutSeconds: Int
    /// Seconds to wait for one answer of the server, a query or its next rows (default 300); a server that
    /// stops answering fails the read as transient instead of hanging the run. 0 = no limit.
    public var readTimeoutSeconds: Int

    /// Default ``connectTimeoutSeconds``.
    public static let defaultConnectTimeoutSeconds = 10
    /// Default ``readTimeoutSeconds``.
    public static let defaultReadTimeoutSeconds = 300

    /// Creates settings.
    public init(host: String, port: Int, database: String, username: String, password: String?, ssl: SSLMode = .prefer,
                caFile: String? = nil, connectTimeoutSeconds: Int = Self.defaultConnectTimeoutSeconds,
                readTimeoutSeconds: Int = Self.defaultReadTimeoutSeconds) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.ssl = ssl
        self.caFile = caFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.readTimeoutSeconds = readTimeoutSeconds
    }

    /// The settings of a configured source; what it leaves out takes the type's defaults: host `127.0.0.1`,
    /// ``DatabaseType/defaultPort``, ``DatabaseType/defaultUsername``, no database, the default timeouts.
    public init(source: SourceConfig) {
        self.init(host: source.host ?? "127.0.0.1", port: source.port ?? source.type.defaultPort, database: source.database ?? "",
                  username: source.username ?? source.type.defaultUsername, password: source.password?.value, ssl: source.ssl,
                  caFile: source.caFile, connectTimeoutSeconds: source.connectTimeoutSeconds ?? Self.defaultConnectTimeoutSeconds,
                  readTimeoutSeconds: source.readTimeoutSeconds ?? Self.defaultReadTimeoutSeconds)
    }

    /// `user@host:port/database`, for messages (never the password).
    public var target: String { "\(username)@\(host):\(port)/\(database)" }

    /// `host:port`, for messages.
    public var address: String { "\(host):\(port)" }
}

extension DatabaseType {
    /// The server's usual TCP port: PostgreSQL 5432, MySQL/MariaDB 3306, SQL Server 1433, Oracle 1521; 0 for
    /// file and ODBC sources (their connection string says).
    public var defaultPort: Int {
        switch self {
        case .postgresql: 5432
        case .mysql: 3306
        case .sqlserver: 1433
        case .oracle: 1521
        case .sqlite, .odbc: 0
        }
    }

    /// The login used when a source names none: each server's administrator account (`postgres`, `root`,
    /// `sa`, `system`); empty for file and ODBC sources.
    public var defaultUsername: String {
        switch self {
        case .postgresql: "postgres"
        case .mysql: "root"
        case .sqlserver: "sa"
        case .oracle: "system"
        case .sqlite, .odbc: ""
        }
    }
}

extension SourceConfig {
    /// The dialect this source's statements are written in: its type's, or for `odbc` the configured
    /// `dialect`; sources read through ODBC (`sqlserver`, `oracle`, `odbc`) take `?` parameter markers, and
    /// `oracle` with `oracleVersion: 11` pages with `ROWNUM`.
    public var sqlDialect: SQLDialect {
        switch type {
        case .postgresql: .postgresql
        case .mysql: .mysql
        case .sqlite: .sqlite
        case .sqlserver: SQLDialect.sqlserver.withQuestionMarks
        case .oracle: (oracleVersion == 11 ? SQLDialect.oracle11 : .oracle).withQuestionMarks
        case .odbc: (dialect ?? .ansi).withQuestionMarks
        }
    }
}
