import Logging
import NIOCore
import NIOPosix
@testable import PostgresConnector
import PostgresNIO
import SyncCore
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

    /// The chaos suite's case (scripts/chaos.sh, "dest. conn. killed idle in txn"): a connection killed while idle
    /// in a transaction fails the call in seconds, as transient, not after the statement timeout + 30 s.
    @Test func aConnectionKilledIdleInATransactionFailsInSeconds() async throws {
        let pool = try PostgresPool(settings: try PostgresFixture.settings("postgres"), logger: Logger(label: "test"))
        let started = ContinuousClock.now
        let failure = await #expect(throws: SyncFailure.self) {
            try await pool.withConnection("testing a killed connection", code: .destinationFailed) { connection in
                try await connection.run("BEGIN", logger: PostgresFixture.logger)
                let pid = try await connection.run("SELECT pg_backend_pid() AS pid", logger: PostgresFixture.logger).first?["pid"]
                guard case .integer(let pid) = pid else { throw CancellationError() }
                _ = try await PostgresFixture.rows("postgres", "SELECT pg_terminate_backend(\(pid))")
                try await connection.run("SELECT 1", logger: PostgresFixture.logger)
            }
        }
        #expect(failure?.isTransient == true)
        #expect(started.duration(to: .now) < .seconds(30))
        await pool.close()
    }

    /// The server side of a vanished client (the chaos suite's "dest. conn. silent"): each session asks the server to
    /// probe its client and to roll back a transaction left idle, so an orphaned batch never holds the lock and
    /// checkpoint rows for hours.
    @Test func theServerProbesItsClientAndEndsAnAbandonedTransaction() async throws {
        let pool = try PostgresPool(settings: try PostgresFixture.settings("postgres"), logger: Logger(label: "test"))
        let row = try await pool.withConnection("reading the session's settings", code: .destinationFailed) { connection in
            try await connection.run("""
                SELECT current_setting('tcp_keepalives_idle') AS idle, current_setting('tcp_keepalives_interval') AS interval,
                       current_setting('tcp_keepalives_count') AS count, current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction
                """, logger: PostgresFixture.logger).first
        }
        #expect(row?["idle"] == .text("\(TCPLiveness.idleSeconds)"))
        #expect(row?["interval"] == .text("\(TCPLiveness.intervalSeconds)"))
        #expect(row?["count"] == .text("\(TCPLiveness.probes)"))
        #expect(row?["idle_in_transaction"] == .text("15s"))
        await pool.close()
    }

    /// Connections are opened with ``TCPLiveness``'s keepalive options, read back from the socket.
    @Test func socketsProbeAnIdleServer() async throws {
        let settings = try PostgresFixture.settings("postgres")
        let channel = try await TCPLiveness.apply(to: ClientBootstrap(group: PostgresConnection.defaultEventLoopGroup))
            .connect(host: settings.host, port: settings.port).get()
        let tcp = NIOBSDSocket.OptionLevel.tcp
        #expect(try await channel.getOption(.socketOption(.so_keepalive)).get() != 0)
        #expect(try await channel.getOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: CInt(TCP_KEEPIDLE)))).get()
                == TCPLiveness.idleSeconds)
        #expect(try await channel.getOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: CInt(TCP_USER_TIMEOUT)))).get()
                == TCPLiveness.unacknowledgedMilliseconds)
        try await channel.close()
    }
}

/// The client-side deadline of a database call.
@Suite struct DeadlineTests {
    /// A call whose connection is gone is abandoned after two checks, long before its deadline.
    @Test func aCallWhoseConnectionIsGoneIsAbandonedInSeconds() async throws {
        let started = ContinuousClock.now
        await #expect(throws: Deadline.Lost.self) {
            try await Deadline.run(seconds: 600, abandonWhen: { true }) { try await Task.sleep(for: .seconds(600)) }
        }
        #expect(started.duration(to: .now) < .seconds(20))
    }

    /// An operation that fails by itself when its connection closes reports its own error, not `Lost`.
    @Test func anOperationsOwnErrorWinsOverTheWatch() async throws {
        struct Closed: Error {}
        await #expect(throws: Closed.self) {
            try await Deadline.run(seconds: 600, abandonWhen: { true }) { throw Closed() }
        }
    }
}
