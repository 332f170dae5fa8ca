import Foundation
import PostgresConnector
import SyncCore
import Testing

/// The audit queries `erp.getErrors` and `erp.getRun` use, on a real PostgreSQL audit database.
@Suite struct PostgresAuditQueryTests {
    @Test func quarantineFiltersAndPagesByIdAndARunIsFoundBySyncId() async throws {
        try await PostgresFixture.with { f in
            // Three sales with a negative amount (the default sign rule quarantines them) and one valid sale.
            try await PostgresFixture.execute(f.sourceDB, [PostgresFixture.createSales, """
                INSERT INTO sale_transactions VALUES
                (1, 'P1', 'op1', -1.00, '2024-03-01 10:00:00', 'venda', 101, '2024-03-01 10:00:00'),
                (2, 'P1', 'op1', -2.00, '2024-03-01 10:01:00', 'venda', 102, '2024-03-01 10:01:00'),
                (3, 'P1', 'op1', -3.00, '2024-03-01 10:02:00', 'venda', 103, '2024-03-01 10:02:00'),
                (4, 'P1', 'op1', 4.00, '2024-03-01 10:03:00', 'venda', 104, '2024-03-01 10:03:00')
                """])
            let source = f.source(stream: PostgresFixture.stream)
            let run = try await f.sync(PostgresFixture.options(), source: source)
            #expect(run.recordsRejected == 3 && run.recordsInserted == 1, "\(run.errors)")
            let destination = try PostgresDestination(settings: try PostgresFixture.settings(f.auditDB))
            let firstPage = try await destination.quarantine(QuarantineFilter(source: "pg", kind: "record", limit: 2))
            #expect(firstPage.count == 2)
            #expect(firstPage.map(\.id) == firstPage.map(\.id).sorted(by: >))
            let secondPage = try await destination.quarantine(QuarantineFilter(source: "pg", kind: "record", beforeId: firstPage.last?.id, limit: 2))
            #expect(secondPage.count == 1)
            #expect(Set((firstPage + secondPage).compactMap(\.externalId)) == ["1", "2", "3"])
            let reason = try #require(firstPage.first?.reasonCode)
            #expect(try await destination.quarantine(QuarantineFilter(syncId: run.syncId, reasonCode: reason, limit: 10)).count == 3)
            #expect(try await destination.quarantine(QuarantineFilter(source: "other", limit: 10)).isEmpty)
            #expect(try await destination.quarantine(QuarantineFilter(kind: "run", limit: 10)).isEmpty)

            let entry = try #require(try await destination.run(syncId: run.syncId))
            #expect(entry.result.syncId == run.syncId)
            #expect(entry.result.recordsRejected == 3)
            #expect(entry.result.status == run.status)
            #expect(try await destination.run(syncId: "no-such-run") == nil)
            await destination.close()
        }
    }
}
