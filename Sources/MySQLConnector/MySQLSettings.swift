#if MySQL
public import SyncCore

/// Connection settings for one MySQL or MariaDB database.
public struct MySQLSettings: Sendable, Equatable {
    /// Host name or IP address; `localhost` makes Connector/C use the local socket, `127.0.0.1` TCP.
    public var host: String
    /// TCP port (3306).
    public var port: Int
    /// The schema (database) the stream's tables live in; empty for none.
    public var database: String
    /// Login user.
    public var username: String
    /// Login password; `nil` for none. Never part of any message.
    public var password: String?
    /// `disable` (plain TCP), `prefer` (TLS when the server offers it, certificate not verified unless
    /// `caFile` is given; plain otherwise) or `require` (TLS or fail: the connection is checked for a cipher
    /// after the handshake, so a client library that would silently fall back cannot weaken it).
    public var ssl: SSLMode
    /// PEM file of the CA that signed the server certificate; when given, the certificate is verified.
    public var caFile: String?
    /// Seconds to wait for the TCP connection and handshake (`MYSQL_OPT_CONNECT_TIMEOUT`, default 10).
    public var connectTimeoutSeconds: Int
    /// Seconds to wait for each answer of the server (`MYSQL_OPT_READ_TIMEOUT`, also used as
    /// `MYSQL_OPT_WRITE_TIMEOUT`; default 300): a server that stops answering mid-read fails the read as
    /// transient instead of hanging the run.
    public var readTimeoutSeconds: Int

    /// Creates settings.
    public init(host: String, port: Int = 3306, database: String, username: String, password: String?, ssl: SSLMode = .prefer,
                caFile: String? = nil, connectTimeoutSeconds: Int = 10, readTimeoutSeconds: Int = 300) {
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

    /// Settings of a configured source (port 3306 and user `root` when not given).
    public init(source: SourceConfig) {
        self.init(host: source.host ?? "127.0.0.1", port: source.port ?? 3306, database: source.database ?? "",
                  username: source.username ?? "root", password: source.password?.value, ssl: source.ssl, caFile: source.caFile,
                  connectTimeoutSeconds: source.connectTimeoutSeconds ?? 10, readTimeoutSeconds: source.readTimeoutSeconds ?? 300)
    }

    /// `user@host:port/database`, for messages (never the password).
    var target: String { "\(username)@\(host):\(port)/\(database)" }
}
#endif
