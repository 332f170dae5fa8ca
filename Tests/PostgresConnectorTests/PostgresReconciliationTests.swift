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
            let scenario = SakilaReconciliation(
                execute: { try await PostgresFixture.execute("erp_source", $0) }, pdv: "'store-' || store_id",
                bucket: { table, id in
                    let row = try await PostgresFixture.rows("erp_source", "SELECT 'store-' || store_id, payment_date::date::text FROM \(table) WHERE payment_id = \(id)")
                    return (row.first?[0] ?? "", row.first?[1] ?? "")
                },
                source: f.source("sakila", stream: PostgresFixture.sakilaStream, database: "erp_source"),
                makeSource: { try PostgresSource(settings: PostgresSettings(source: $0)) }, auditDB: f.auditDB)
            let outcome = try await scenario.run()
            let problems = outcome.problems(rows: 16049)
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}
