import Logging
@testable import PostgresConnector
import SyncTesting
import Testing

/// The connection pool against the real test server.
@Suite(.enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
struct PostgresPoolTests {
    /// A read still running when its run ended (a prefetched page) gives its connection back after the pool
    /// closed: it must be closed, not kept (postgres-nio asserts when an unclosed connection is freed).
    @Test func aConnectionReturnedAfterThePoolClosedIsClosedNotKept() async throws {
        let pool = try PostgresPool(settings: try PostgresFixture.settings("postgres"), logger: Logger(label: "test"))
        let connection = try await pool.withConnection("testing the pool", code: .destinationFailed) { connection in
            await pool.close()
            return connection
        }
        #expect(pool.idleCount == 0)
        for _ in 0..<250 where !connection.isClosed { try await Task.sleep(for: .milliseconds(20)) }
        #expect(connection.isClosed)
    }
}
