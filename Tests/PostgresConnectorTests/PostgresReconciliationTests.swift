import Foundation
import IntegrationTesting
import PostgresConnector
import SyncCore
import SyncTesting
import Testing

/// Reconciliation of Sakila on the real PostgreSQL server (source and audit database).
@Suite(.enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct PostgresReconciliationTests {
    @Test func sakilaMatchesThenEveryTamperedRowIsNamedInItsBucket() async throws {
        try await PostgresFixture.with { f in
            let table = "recon_payment_\(f.sourceDB.suffix(8))"
            try await PostgresFixture.execute("erp_source", [
                "CREATE TABLE \(table) AS SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id",
                "ALTER TABLE \(table) ADD PRIMARY KEY (payment_id)",
            ])
            let source = f.source("sakila", stream: SakilaReconciliation.stream(table: table, pdv: "'store-' || store_id"), database: "erp_source")
            let scenario = SakilaReconciliation(
                execute: { try await PostgresFixture.execute("erp_source", $0) },
                bucket: { id in
                    let row = try await PostgresFixture.rows("erp_source", "SELECT 'store-' || store_id, payment_date::date::text FROM \(table) WHERE payment_id = \(id)")
                    return (row.first?[0] ?? "", row.first?[1] ?? "")
                },
                source: source, makeSource: { try PostgresSource(settings: PostgresSettings(source: $0)) }, auditDB: f.auditDB)
            let outcome: SakilaReconciliation.Outcome
            do {
                outcome = try await scenario.run()
            } catch {
                try await PostgresFixture.execute("erp_source", ["DROP TABLE \(table)"])
                throw error
            }
            try await PostgresFixture.execute("erp_source", ["DROP TABLE \(table)"])
            let problems = ReconciliationExpectations.problems(
                clean: outcome.clean, tampered: outcome.tampered, rows: 16049, deleted: outcome.deleted, changed: outcome.changed,
                added: outcome.added, quarantined: outcome.quarantined, buckets: outcome.buckets)
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}
