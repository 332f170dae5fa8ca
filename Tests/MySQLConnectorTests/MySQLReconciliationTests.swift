#if MySQL
import Foundation
import IntegrationTesting
import MySQLConnector
import SyncCore
import SyncTesting
import Testing

/// Reconciliation of Sakila on the real MariaDB server (PostgreSQL audit database): the aggregate groups by
/// `DATE_FORMAT` hours, so it needs no time-zone tables (`CONVERT_TZ` would return NULL without them).
@Suite(.enabled(if: TestServers.available("ERP_SYNC_MYSQL_HOST") && TestServers.available("ERP_SYNC_PG_URL"),
                "needs MariaDB and PostgreSQL: set ERP_SYNC_MYSQL_HOST and ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct MySQLReconciliationTests {
    @Test func sakilaMatchesThenEveryTamperedRowIsNamedInItsBucket() async throws {
        try await MySQLFixture.with { f in
            let scenario = SakilaReconciliation(
                execute: { try await MySQLFixture.execute("erp_source", $0) }, pdv: "CONCAT('store-', store_id)",
                bucket: { table, id in
                    let row = try await MySQLFixture.rows("erp_source", "SELECT CONCAT('store-', store_id), DATE_FORMAT(payment_date, '%Y-%m-%d') FROM \(table) WHERE payment_id = \(id)")
                    return ((row.first?[0] ?? nil) ?? "", (row.first?[1] ?? nil) ?? "")
                },
                source: f.source("sakila", stream: MySQLFixture.sakilaStream, database: "erp_source"), makeSource: MySQLFixture.makeSource,
                auditDB: f.auditDB)
            let outcome = try await scenario.run()
            let problems = outcome.problems(rows: 16049)
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}
#endif
