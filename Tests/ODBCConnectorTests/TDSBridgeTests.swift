#if ODBC
import Foundation
import ODBCConnector
import SyncCore
import Testing

/// The FreeTDS path for real: FreeTDS through unixODBC against pysqlbridge, a TDS endpoint started by
/// `scripts/tds-bridge.sh` (`ERP_SYNC_TDS_PORT`, `ERP_SYNC_TDS_PASSWORD`). It is not SQL Server: it proves the
/// login (with a password holding `;` and `}`), TLS, the wrong-password error, NVARCHAR, NULLs and the first
/// `TOP` keyset page through our connector. pysqlbridge 2.1.3 refuses the parameterised forms FreeTDS sends
/// ("Must declare the scalar variable @P1"; a DATETIME2 parameter: "RPC parameter has type 0x2a, which this
/// project cannot read"), so pages after a checkpoint, and T-SQL semantics, are not verified here.
@Suite(.serialized) struct TDSBridgeTests {
    static func source(ssl: SSLMode = .prefer, password: String? = nil, cursor: StreamConfig.Cursor = .init(column: "id", kind: .integer)) -> SourceConfig {
        let environment = ODBCFixture.environment
        let stream = StreamConfig(from: .table("dbo.vendas"), primaryKey: ["id"], cursor: cursor,
                                  fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"),
                                           .occurredAt: .column("updated_at"), .type: .sql("CASE WHEN [amount] < 0 THEN 'refund' ELSE 'sale' END"),
                                           .reference: .column("note")])
        return SourceConfig(name: "tds", type: .sqlserver, host: "127.0.0.1", port: Int(environment["ERP_SYNC_TDS_PORT"] ?? "") ?? 14333,
                            database: "master", username: "erp", password: Secret(password ?? environment["ERP_SYNC_TDS_PASSWORD"] ?? ""),
                            ssl: ssl, stream: stream)
    }

    static var available: Bool {
        ODBCFixture.available("TDSBridgeTests", drivers: ["FreeTDS"], variables: ["ERP_SYNC_TDS_PORT", "ERP_SYNC_TDS_PASSWORD"])
    }

    @Test(arguments: [SSLMode.prefer, .require, .disable])
    func logsInWithEachTLSMode(ssl: SSLMode) async throws {
        guard Self.available else { return }
        let reader = ODBCSource(settings: ODBCSettings(source: Self.source(ssl: ssl)))
        let description = try await reader.testConnection()
        await reader.close()
        #expect(description.contains("SQL Server") && description.contains("erp@127.0.0.1"), "\(description)")
    }

    @Test func aWrongPasswordIsAuthFailed() async throws {
        guard Self.available else { return }
        let reader = ODBCSource(settings: ODBCSettings(source: Self.source(password: "wrong;pass}")))
        let error = await #expect(throws: SyncFailure.self) { try await reader.testConnection() }
        await reader.close()
        #expect(error?.code == .authFailed && error?.isTransient == false, "\(String(describing: error))")
        #expect(error?.message.contains("wrong;pass") == false)
    }

    /// A full sync: NVARCHAR `café ☕` arrives as UTF-8, an empty CSV cell as NULL, amounts exact.
    @Test func aFullSyncReadsNVarCharAndNulls() async throws {
        guard Self.available else { return }
        try await ODBCFixture.withFolder { folder in
            let audit = folder.appendingPathComponent("audit.sqlite").path
            let result = try await ODBCFixture.sync(Self.source(), audit: audit, full: true)
            #expect(result.status == .success && result.recordsInserted == 4, "\(result.errors)")
            let loaded = try await ODBCFixture.loaded(audit)
            #expect(loaded == ["1|10.50|2024-03-01T10:00:00.000000Z|PDV-01|op1|sale", "2|20.25|2024-03-01T10:00:01.000000Z|PDV-01|op2|sale",
                               "3|30.00|2024-03-01T10:00:01.000000Z|PDV-02|op1|sale", "4|-5.75|2024-03-01T10:00:02.000000Z|PDV-02|op3|refund"])
        }
        let reader = ODBCSource(settings: ODBCSettings(source: Self.source()))
        let rows = try await reader.fetch(SQLStatement(sql: "SELECT TOP (4) [id], [note] FROM [dbo].[vendas] ORDER BY [id]"))
        await reader.close()
        #expect(rows.map { $0[1] } == [.text("café ☕"), .null, .text("plain"), .text("estorno")])
    }

    /// The first keyset page as the T-SQL dialect writes it (`SELECT TOP (n) … ORDER BY cursor, key`), cut
    /// at n rows in keyset order.
    @Test func theFirstTopKeysetPage() async throws {
        guard Self.available else { return }
        let source = Self.source(cursor: .init(column: "updated_at", kind: .timestamp))
        let page = StreamQuery(stream: source.stream, dialect: source.sqlDialect).page(from: .start, limit: 3)
        #expect(page.sql.hasPrefix("SELECT TOP (3) src.[updated_at], src.[id]") && page.sql.hasSuffix("ORDER BY src.[updated_at], src.[id]"))
        let reader = ODBCSource(settings: ODBCSettings(source: source))
        let rows = try await reader.fetch(page)
        await reader.close()
        // The bridge serves the CSV's dates as NVARCHAR text.
        #expect(rows.map { [$0[0], $0[1]] } == [[.text("2024-03-01 10:00:00"), .integer(1)], [.text("2024-03-01 10:00:01"), .integer(2)],
                                                [.text("2024-03-01 10:00:01"), .integer(3)]])
    }
}
#endif
