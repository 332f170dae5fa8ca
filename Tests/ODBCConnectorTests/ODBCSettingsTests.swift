#if ODBC
import Foundation
@testable import ODBCConnector
import SyncCore
import Testing

/// Connection strings built from the configuration: brace-quoted values, the password only from
/// `password`/`passwordFile`/`${ENV}`, never shown.
@Suite struct ODBCSettingsTests {
    static func load(_ source: String, environment: [String: String] = [:]) throws -> SourceConfig {
        try SyncConfig.load(yaml: "sources:\n  - name: erp\n" + source, environment: environment).sources[0]
    }

    @Test func sqlServerUsesFreeTDSWithTDS74AndUTF8() throws {
        let source = try Self.load("    type: sqlserver\n    host: db.example\n    database: erp\n    username: sync\n    password: ${PW}\n    ssl: require\n",
                                   environment: ["PW": "a;b}c"])
        let settings = ODBCSettings(source: source)
        // FreeTDS reads a braced value up to the first `};`, taking `}` literally; the final `;` closes it.
        let expected = "DRIVER=FreeTDS;SERVER=db.example;PORT=1433;DATABASE=erp;UID=sync;TDS_Version=7.4;ClientCharset=UTF-8;"
            + "Encryption=require;PWD={a;b}c};"
        #expect(try settings.connectionString() == expected)
        #expect(settings.redactedConnectionString.hasSuffix("Encryption=require;PWD=******"))
        #expect(!settings.redactedConnectionString.contains("a;b"))
        #expect(settings.dialect.name == "sqlserver" && settings.sessionSetup.isEmpty)
        // A password FreeTDS cannot read back whole is refused, never passed on cut short.
        var injecting = source
        injecting.password = Secret("x};UID=sa")
        let error = #expect(throws: SyncFailure.self) { try ODBCSettings(source: injecting).connectionString() }
        #expect(error?.code == .sourceConfig && error?.message.contains("UID=sa") == false)
        // FreeTDS ignores a CA file in the connection string: refused, not silently unverified.
        var pinned = source
        pinned.caFile = "/etc/ssl/erp-ca.pem"
        let caError = #expect(throws: SyncFailure.self) { try ODBCSettings(source: pinned).connectionString() }
        #expect(caError?.code == .sourceConfig && caError?.message.contains("freetds.conf") == true)
    }

    @Test func microsoftsDriverGetsItsOwnAttributes() throws {
        let source = try Self.load("    type: sqlserver\n    host: db.example\n    port: 14330\n    database: erp\n    username: sync\n"
                                   + "    driver: ODBC Driver 18 for SQL Server\n    ssl: prefer\n")
        #expect(try ODBCSettings(source: source).connectionString()
                == "DRIVER=ODBC Driver 18 for SQL Server;SERVER=db.example,14330;DATABASE=erp;UID=sync;Encrypt=optional;TrustServerCertificate=yes")
    }

    @Test func oracleUsesEZConnectAndPinsNLS() throws {
        let source = try Self.load("    type: oracle\n    host: ora.example\n    serviceName: ORCLPDB1\n    username: erp\n    password: pw\n"
                                   + "    driver: Oracle 21 ODBC driver\n    oracleVersion: 11\n")
        let settings = ODBCSettings(source: source)
        #expect(try settings.connectionString() == "DRIVER=Oracle 21 ODBC driver;DBQ=ora.example:1521/ORCLPDB1;UID=erp;PWD=pw")
        #expect(settings.dialect.rowLimit == .rowNum && settings.dialect.parameters == .questionMark)
        #expect(settings.sessionSetup.count == 1 && settings.sessionSetup[0].contains("NLS_NUMERIC_CHARACTERS = '.,'"))
        #expect(settings.sessionSetup[0].contains("TIME_ZONE = '+00:00'"))
    }

    @Test func odbcKeepsTheConnectionStringAndAddsTheCredentials() throws {
        let source = try Self.load("    type: odbc\n    connectionString: \"DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432\"\n"
                                   + "    dialect: postgresql\n    username: erp_sync\n    passwordFile: \(try Self.secretFile("s3cr}t"))\n")
        let settings = ODBCSettings(source: source)
        let text = try settings.connectionString()
        #expect(text == "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;UID=erp_sync;PWD={s3cr}}t}")
        // The ODBC reference's `}}`: the password cannot end its value early and add attributes.
        #expect(ODBCConnectionString.attributes(text).last == ODBCConnectionString.Attribute(key: "PWD", value: "s3cr}t"))
        #expect(ODBCConnectionString.attributes(text).count == 5)
        #expect(settings.target == "driver PostgreSQL Unicode")
        #expect(settings.dialect.placeholder(1) == "?" && settings.sessionSetup == ["SET TIME ZONE 'UTC'"])
        let dsn = ODBCSettings(source: try Self.load("    type: odbc\n    dsn: erp\n    dialect: mysql\n"))
        #expect(try dsn.connectionString() == "DSN=erp" && dsn.sessionSetup == ["SET time_zone = '+00:00'"])
    }

    /// The connection string and the statement text reach the driver manager with their UTF-8 length and a NUL just
    /// past it: MariaDB Connector/ODBC reads a connection string whose last attribute is unbraced (`PWD=erp_sync`)
    /// past its length, and took the heap bytes after it for more of the password
    /// (`ODBCSyncTests.sakilaOverMariaDBAndSQLiteODBCEqualsPsqlODBC` failed with `AUTH_FAILED` about one run in ten).
    @Test func stringsForTheDriverEndWithANulPastTheirLength() {
        for text in ["DRIVER={MariaDB Unicode};SERVER=127.0.0.1;UID=erp_sync;PWD=erp_sync", "SELECT 1", "", "café ☕"] {
            let (bytes, terminator) = ODBCConnection.withDriverString(text) { string, length in
                (Array(UnsafeBufferPointer(start: string, count: length)), string[length])
            }
            #expect(bytes == Array(text.utf8) && terminator == 0, "\(text)")
        }
    }

    /// The SQLSTATE of the first diagnostic that is no warning is kept, so a data exception behind a warning is one
    /// (the engine isolates its row) and a lost connection is transient and no data exception (it never is).
    @Test func failuresKeepTheirSQLStateAndOnlyClass22IsADataException() throws {
        let settings = ODBCSettings(source: try Self.load("    type: odbc\n    dsn: erp\n    dialect: ansi\n"))
        let data = SyncFailure.odbc([ODBCDiagnostic(state: "01004", native: 0, message: "String data, right truncated"),
                                     ODBCDiagnostic(state: "22008", native: 0, message: "date/time field value out of range")],
                                    context: "reading the source", settings: settings)
        #expect(data.sqlState == "22008" && data.isDataException && data.code == .sourceQueryFailed)
        let lost = SyncFailure.odbc([ODBCDiagnostic(state: "08S01", native: 0, message: "Communication link failure")],
                                    context: "reading the source", settings: settings)
        #expect(lost.sqlState == "08S01" && lost.isTransient && !lost.isDataException)
    }

    /// A password inside `connectionString` is refused (it would be echoed with the string); so are odbc
    /// sources without a dialect or a target, and keys of other source types.
    @Test(arguments: [
        ("    type: odbc\n    connectionString: \"DRIVER={x};PWD=secret\"\n    dialect: ansi\n", "sources[0].connectionString"),
        ("    type: odbc\n    connectionString: \"DRIVER={x}; password = {se;cret}\"\n    dialect: ansi\n", "sources[0].connectionString"),
        ("    type: odbc\n    connectionString: \"DRIVER={x}\"\n", "sources[0]"),
        ("    type: odbc\n    dialect: ansi\n", "sources[0]"),
        ("    type: odbc\n    dsn: a\n    connectionString: b=c\n    dialect: ansi\n", "sources[0]"),
        ("    type: odbc\n    dsn: a\n    dialect: db2\n", "sources[0].dialect"),
        ("    type: oracle\n    host: h\n    driver: d\n", "sources[0]"),
        ("    type: mysql\n    host: h\n    database: d\n    driver: x\n", "sources[0].driver"),
        ("    type: sqlserver\n    host: h\n    database: d\n    serviceName: x\n", "sources[0].serviceName"),
    ])
    func badODBCConfigurationIsAnError(yaml: String, path: String) {
        let error = #expect(throws: ConfigError.self) { try Self.load(yaml) }
        #expect(error?.path == path, "\(String(describing: error))")
        #expect(error?.description.contains("secret") == false)
    }

    static func secretFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("odbc-secret-\(UUID().uuidString)")
        try Data((text + "\n").utf8).write(to: url)
        return url.path
    }
}
#endif
