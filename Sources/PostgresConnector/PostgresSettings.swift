import Foundation
import NIOSSL
import PostgresNIO
public import SyncCore

/// Connection settings for one PostgreSQL database: the shared ``ServerConnectionSettings`` plus what is
/// PostgreSQL's own, the certificate check of libpq's `sslmode` and the `postgres://` URL form of the
/// destination. The shared fields read through (`settings.host`).
///
/// How the shared fields apply here: `ssl` `prefer` is TLS if the server offers it, certificate not verified
/// (libpq's `prefer`), `require` TLS or fail, the certificate verified only when `caFile` (libpq's
/// `sslrootcert`) is given; `readTimeoutSeconds` is sent as `statement_timeout`.
@dynamicMemberLookup
public struct PostgresSettings: Sendable, Equatable {
    /// Host, port, database, login, TLS mode, CA file and timeouts.
    public var connection: ServerConnectionSettings
    /// How the server certificate is checked under TLS.
    public var certificateCheck: CertificateCheck

    /// Creates settings.
    public init(connection: ServerConnectionSettings, certificateCheck: CertificateCheck = .whenCAGiven) {
        self.connection = connection
        self.certificateCheck = certificateCheck
    }

    /// A shared read-only property (`target`, `address`).
    public subscript<Value>(dynamicMember keyPath: KeyPath<ServerConnectionSettings, Value>) -> Value {
        connection[keyPath: keyPath]
    }

    /// A shared connection field.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<ServerConnectionSettings, Value>) -> Value {
        get { connection[keyPath: keyPath] }
        set { connection[keyPath: keyPath] = newValue }
    }

    /// Longest a statement may run, in seconds, sent as `statement_timeout` (default 300; 0 = none): the
    /// shared read timeout.
    public var statementTimeoutSeconds: Int {
        get { connection.readTimeoutSeconds }
        set { connection.readTimeoutSeconds = newValue }
    }

    /// How the server certificate is checked, after libpq's `sslmode`.
    public enum CertificateCheck: Sendable, Equatable {
        /// Against `caFile` when one is given (chain and host name), else not at all (`prefer`, `require`).
        case whenCAGiven
        /// The chain, against `caFile` or the system's trust roots, not the host name (`verify-ca`).
        case chain
        /// The chain and that the certificate names the host (`verify-full`).
        case full
    }

    /// Settings of a configured source (port 5432 and user `postgres` when not given); its `readTimeout`
    /// becomes the statement timeout.
    public init(source: SourceConfig) {
        self.init(connection: ServerConnectionSettings(source: source))
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=prefer&sslrootcert=/ca.pem&connect_timeout=10&statement_timeout=300`
    /// (timeouts in seconds); any other parameter is an error.
    /// - Throws: ``SyncFailure`` `DESTINATION_CONFIG` naming what is wrong (never the password).
    public init(url: String) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty else {
            throw SyncFailure(code: .destinationConfig, message: "expected postgres://user:password@host:port/database", isTransient: false)
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw SyncFailure(code: .destinationConfig, message: "the postgres URL names no database (…/database)", isTransient: false)
        }
        // An unknown parameter is refused, not ignored: `?sslmod=require` must not leave the connection weaker
        // than the user wrote.
        let known = ["sslmode", "sslrootcert", "connect_timeout", "statement_timeout"]
        if let unknown = (components.queryItems ?? []).first(where: { !known.contains($0.name) }) {
            throw SyncFailure(code: .destinationConfig, message: "unknown parameter '\(unknown.name)' in the postgres URL (known: \(known.joined(separator: ", ")))",
                              isTransient: false)
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        var ssl = SSLMode.prefer
        var check = CertificateCheck.whenCAGiven
        if let mode = query["sslmode"] {
            switch mode {
            case "disable": ssl = .disable
            case "prefer", "allow": ssl = .prefer
            case "require": ssl = .require
            case "verify-ca": (ssl, check) = (.require, .chain)
            case "verify-full": (ssl, check) = (.require, .full)
            default:
                throw SyncFailure(code: .destinationConfig, message: "sslmode '\(mode)' is not disable, prefer, require, verify-ca or verify-full",
                                  isTransient: false)
            }
        }
        func seconds(_ name: String, default value: Int) throws -> Int {
            guard let text = query[name] else { return value }
            guard let number = Int(text), number >= 0 else {
                throw SyncFailure(code: .destinationConfig, message: "\(name) '\(text)' is not a whole number of seconds", isTransient: false)
            }
            return number
        }
        let connection = ServerConnectionSettings(
            host: host, port: components.port ?? DatabaseType.postgresql.defaultPort, database: database,
            username: components.user?.removingPercentEncoding ?? DatabaseType.postgresql.defaultUsername,
            password: components.password?.removingPercentEncoding, ssl: ssl, caFile: query["sslrootcert"],
            connectTimeoutSeconds: try seconds("connect_timeout", default: ServerConnectionSettings.defaultConnectTimeoutSeconds),
            readTimeoutSeconds: try seconds("statement_timeout", default: ServerConnectionSettings.defaultReadTimeoutSeconds))
        self.init(connection: connection, certificateCheck: check)
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = connection.caFile { tls.trustRoots = .file(caFile) }
        switch certificateCheck {
        case .whenCAGiven: if connection.caFile == nil { tls.certificateVerification = .none }
        case .chain: tls.certificateVerification = .noHostnameVerification
        case .full: tls.certificateVerification = .fullVerification
        }
        let mode: PostgresConnection.Configuration.TLS = switch connection.ssl {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: tls))
        case .require: .require(try NIOSSLContext(configuration: tls))
        }
        var configuration = PostgresConnection.Configuration(host: connection.host, port: connection.port, username: connection.username,
                                                             password: connection.password, database: connection.database, tls: mode)
        configuration.options.connectTimeout = .seconds(Int64(connection.connectTimeoutSeconds))
        if statementTimeoutSeconds > 0 {
            configuration.options.additionalStartupParameters = [("statement_timeout", "\(statementTimeoutSeconds)s")]
        }
        configuration.options.additionalStartupParameters.append(("application_name", "erp-sync"))
        // The server side of a dead connection: a backend whose client vanished mid-transaction keeps its row
        // locks (the run's checkpoint and lock rows) until the server notices, by default after 2 h of TCP
        // silence, and every later run waits on them. Keepalive probes from the server (runtime-config-connection:
        // tcp_keepalives_*) notice in ~11 s when it has nothing unacknowledged to send; when it has (its answer to
        // the last statement was lost), a transaction left idle for 15 s is rolled back
        // (idle_in_transaction_session_timeout; a batch's statements follow each other within milliseconds).
        configuration.options.additionalStartupParameters += [
            ("tcp_keepalives_idle", "\(TCPLiveness.idleSeconds)"), ("tcp_keepalives_interval", "\(TCPLiveness.intervalSeconds)"),
            ("tcp_keepalives_count", "\(TCPLiveness.probes)"),
            ("idle_in_transaction_session_timeout", "\(Self.idleInTransactionSeconds)s"),
        ]
        return configuration
    }

    /// Seconds after which the server rolls back a transaction of ours left idle (its client vanished): no batch
    /// transaction is ever idle that long (its statements follow each other within milliseconds).
    static let idleInTransactionSeconds = 15
}
