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
            let table = "recon_payment_\(f.sourceDB.suffix(8))"
            try await MySQLFixture.execute("erp_source", [
                "CREATE TABLE \(table) AS SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id",
                "ALTER TABLE \(table) ADD PRIMARY KEY (payment_id), ADD KEY cursor_key (payment_date, payment_id)",
            ])
            let source = f.source("sakila", stream: SakilaReconciliation.stream(table: table, pdv: "CONCAT('store-', store_id)"), database: "erp_source")
            let scenario = SakilaReconciliation(
                execute: { try await MySQLFixture.execute("erp_source", $0) },
                bucket: { id in
                    let row = try await MySQLFixture.rows("erp_source", "SELECT CONCAT('store-', store_id), DATE_FORMAT(payment_date, '%Y-%m-%d') FROM \(table) WHERE payment_id = \(id)")
                    return ((row.first?[0] ?? nil) ?? "", (row.first?[1] ?? nil) ?? "")
                },
                source: source, makeSource: MySQLFixture.makeSource, auditDB: f.auditDB)
            let outcome: SakilaReconciliation.Outcome
            do {
                outcome = try await scenario.run()
            } catch {
                try await MySQLFixture.execute("erp_source", ["DROP TABLE \(table)"])
                throw error
            }
            try await MySQLFixture.execute("erp_source", ["DROP TABLE \(table)"])
            let problems = ReconciliationExpectations.problems(
                clean: outcome.clean, tampered: outcome.tampered, rows: 16049, deleted: outcome.deleted, changed: outcome.changed,
                added: outcome.added, quarantined: outcome.quarantined, buckets: outcome.buckets)
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}
#endif
