#if ODBC
public import SyncCore

/// How to reach a source through unixODBC: the connection string handed to `SQLDriverConnect`, the
/// dialect, the session set-up and the timeouts.
///
/// Strings are built from the configuration, never pasted: every value is brace-quoted
/// (``ODBCConnectionString/attribute(_:_:)``), so a password holding `;` or `}` cannot add attributes, and the
/// password only ever comes from `password`, `passwordFile` or `${ENV}` (a `PWD=` in `connectionString` is a
/// config error).
public struct ODBCSettings: Sendable {
    /// The connection string's attributes without the password, in order.
    public var attributes: [ODBCConnectionString.Attribute]
    /// `connectionString` as the user wrote it (an `odbc` source), kept verbatim ahead of ``attributes``.
    public var verbatim: String?
    /// The password, added as `PWD={…}` only when connecting.
    var password: String?
    /// The dialect of the database behind the driver (with `?` markers).
    public var dialect: SQLDialect
    /// Seconds for the login (`SQL_ATTR_LOGIN_TIMEOUT`), default 10.
    public var connectTimeoutSeconds: Int
    /// Seconds for each statement (`SQL_ATTR_QUERY_TIMEOUT`), default 300; 0 = none.
    public var readTimeoutSeconds: Int
    /// Where the source is, for messages (`sa@db.example:1433/erp`, a DSN name, or the driver).
    public var target: String
    /// A setting the driver cannot honour, refused at connect time rather than silently ignored.
    var unsupported: String?

    /// The settings of a configured `sqlserver`, `oracle` or `odbc` source.
    ///
    /// - `sqlserver`: the `FreeTDS` driver unless `driver` names another, `TDS_Version=7.4` and
    ///   `ClientCharset=UTF-8` for FreeTDS (so `VARCHAR` arrives as UTF-8 and `NVARCHAR` as UTF-16), `Encryption`
    ///   `off`/`request`/`require` after `ssl` (a `caFile` is refused: FreeTDS would ignore it); Microsoft's driver gets `Encrypt=no/optional/yes` and
    ///   `TrustServerCertificate=yes` unless `caFile` is given.
    /// - `oracle`: `DBQ=host:port/serviceName` (EZConnect) for the named Instant Client driver.
    /// - `odbc`: the `connectionString` or `DSN={dsn}`, plus `UID` when `username` is given.
    public init(source: SourceConfig) {
        let server = ServerConnectionSettings(source: source)
        dialect = source.sqlDialect
        connectTimeoutSeconds = server.connectTimeoutSeconds
        readTimeoutSeconds = server.readTimeoutSeconds
        password = server.password
        typealias Attribute = ODBCConnectionString.Attribute
        switch source.type {
        case .oracle:
            let driver = source.driver ?? ""
            attributes = [Attribute(key: "DRIVER", value: driver), Attribute(key: "DBQ", value: "\(server.host):\(server.port)/\(source.serviceName ?? "")"),
                          Attribute(key: "UID", value: server.username)]
            target = "\(server.username)@\(server.host):\(server.port)/\(source.serviceName ?? "")"
        case .odbc:
            verbatim = source.connectionString
            attributes = source.dsn.map { [Attribute(key: "DSN", value: $0)] } ?? []
            if let username = source.username { attributes.append(Attribute(key: "UID", value: username)) }
            target = source.dsn.map { "DSN \($0)" }
                ?? ODBCConnectionString.attributes(source.connectionString ?? "").first { $0.key.uppercased() == "DRIVER" }.map { "driver \($0.value)" }
                ?? "ODBC"
        default:
            let driver = source.driver ?? Self.freeTDS
            attributes = [Attribute(key: "DRIVER", value: driver), Attribute(key: "SERVER", value: server.host),
                          Attribute(key: "PORT", value: String(server.port)), Attribute(key: "DATABASE", value: server.database),
                          Attribute(key: "UID", value: server.username)]
            if Self.isFreeTDS(driver) {
                attributes += [Attribute(key: "TDS_Version", value: "7.4"), Attribute(key: "ClientCharset", value: "UTF-8"),
                               Attribute(key: "Encryption", value: ["disable": "off", "prefer": "request", "require": "require"][server.ssl.rawValue]!)]
                if server.caFile != nil {
                    // Tried: FreeTDS 1.3 ignores a CA file in the connection string and logs in to a server whose
                    // certificate that CA did not sign.
                    unsupported = "caFile: FreeTDS does not verify the server certificate against a CA file given in the connection string; "
                        + "set 'ca file' in freetds.conf or use Microsoft's driver (driver: ODBC Driver 18 for SQL Server)"
                }
            } else {
                // Microsoft's driver takes the port after a comma in SERVER.
                attributes[1] = Attribute(key: "SERVER", value: "\(server.host),\(server.port)")
                attributes.remove(at: 2)
                attributes.append(Attribute(key: "Encrypt", value: ["disable": "no", "prefer": "optional", "require": "yes"][server.ssl.rawValue]!))
                if server.caFile == nil { attributes.append(Attribute(key: "TrustServerCertificate", value: "yes")) }
                if let caFile = server.caFile { attributes.append(Attribute(key: "ServerCertificate", value: caFile)) }
            }
            target = server.target
        }
    }

    /// The driver a `sqlserver` source uses when it names none (Debian `tdsodbc`).
    public static let freeTDS = "FreeTDS"

    static func isFreeTDS(_ driver: String) -> Bool {
        driver.lowercased().contains("freetds") || driver.hasSuffix("libtdsodbc.so")
    }

    /// How the driver reads braces: FreeTDS's own way, else the ODBC reference's.
    var braceStyle: ODBCConnectionString.BraceStyle {
        let driver = attributes.first { $0.key.uppercased() == "DRIVER" }?.value
            ?? ODBCConnectionString.attributes(verbatim ?? "").first { $0.key.uppercased() == "DRIVER" }?.value ?? ""
        return Self.isFreeTDS(driver) ? .freeTDS : .doubled
    }

    /// The connection string without the password, for `erp-sync sql` and messages; a password is shown as
    /// `PWD=******`.
    public var redactedConnectionString: String {
        let shown = quoted(attributes).map { $0.text ?? "\($0.key)=<holds '};', which FreeTDS cannot read>" }
        return (verbatimPart + shown + (password == nil ? [] : ["PWD=******"])).joined(separator: ";")
    }

    /// The connection string `SQLDriverConnect` receives, password last. Never logged.
    /// - Throws: ``SyncFailure`` `SOURCE_CONFIG` when a value cannot be quoted for the driver (FreeTDS and `};`)
    ///   or a setting cannot be honoured (FreeTDS and `caFile`).
    func connectionString() throws(SyncFailure) -> String {
        if let unsupported { throw SyncFailure(code: .sourceConfig, message: unsupported, isTransient: false) }
        var all = attributes
        if let password { all.append(ODBCConnectionString.Attribute(key: "PWD", value: password)) }
        var parts = verbatimPart
        for (key, text) in quoted(all) {
            guard let text else {
                throw SyncFailure(code: .sourceConfig, message: "the \(key == "PWD" ? "password" : key) holds '};', which the FreeTDS driver "
                                  + "cannot read inside a connection string", isTransient: false)
            }
            parts.append(text)
        }
        // FreeTDS also ends a braced value at a `}` closing the string: a final `;` keeps a trailing `}` inside.
        return parts.joined(separator: ";") + (braceStyle == .freeTDS ? ";" : "")
    }

    private var verbatimPart: [String] { verbatim.map { [$0.hasSuffix(";") ? String($0.dropLast()) : $0] } ?? [] }

    private func quoted(_ list: [ODBCConnectionString.Attribute]) -> [(key: String, text: String?)] {
        list.map { ($0.key, ODBCConnectionString.attribute($0.key, $0.value, style: braceStyle)) }
    }

    /// Statements run once on each new connection so that values never depend on the server's or the
    /// login's defaults: PostgreSQL and MySQL sessions in UTC (zoned values then arrive as UTC); Oracle's NLS
    /// settings pinned (`.` as decimal point, ISO dates, the session in UTC, so `NUMBER` text and `TIMESTAMP
    /// WITH LOCAL TIME ZONE` read the same on every server; Oracle Database Globalization Support Guide,
    /// "Setting NLS Parameters").
    public var sessionSetup: [String] {
        switch dialect.name {
        case "oracle", "oracle11":
            ["ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,' NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS' "
                + "NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9' NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM' "
                + "TIME_ZONE = '+00:00'"]
        case "postgresql": ["SET TIME ZONE 'UTC'"]
        case "mysql": ["SET time_zone = '+00:00'"]
        default: []
        }
    }
}
#endif
