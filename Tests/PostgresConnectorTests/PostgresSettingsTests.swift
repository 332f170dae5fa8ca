import PostgresConnector
import SyncCore
import Testing

/// Destination URLs: libpq's `sslmode` values and the timeouts, without a server.
@Suite struct PostgresSettingsTests {
    @Test(arguments: [
        ("disable", SSLMode.disable, PostgresSettings.CertificateCheck.whenCAGiven),
        ("prefer", .prefer, .whenCAGiven),
        ("require", .require, .whenCAGiven),
        ("verify-ca", .require, .chain),
        ("verify-full", .require, .full),
    ])
    func sslmodeSetsTLSAndTheCertificateCheck(mode: String, ssl: SSLMode, check: PostgresSettings.CertificateCheck) throws {
        let settings = try PostgresSettings(url: "postgres://u:p@db.example:5433/audit?sslmode=\(mode)")
        #expect(settings.ssl == ssl)
        #expect(settings.certificateCheck == check)
        #expect(settings.port == 5433 && settings.database == "audit")
    }

    @Test(arguments: ["sslmode=requir", "connect_timeout=ten", "statement_timeout=-5"])
    func aBadQueryValueIsAConfigErrorNamingIt(query: String) {
        let error = #expect(throws: SyncFailure.self) { try PostgresSettings(url: "postgres://u:p@db.example/audit?\(query)") }
        #expect(error?.code == .destinationConfig)
        #expect(error?.message.contains(String(query.split(separator: "=")[1])) == true)
    }

    @Test func timeoutsAreReadInSeconds() throws {
        let settings = try PostgresSettings(url: "postgres://u:p@db.example/audit?connect_timeout=3&statement_timeout=0")
        #expect(settings.connectTimeoutSeconds == 3 && settings.statementTimeoutSeconds == 0)
    }
}
