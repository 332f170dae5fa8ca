#if ODBC
import NIOPosix
public import SyncCore
import Synchronization

/// An ERP read through unixODBC: SQL Server (FreeTDS or Microsoft's driver), Oracle (Instant Client
/// ODBC), or any database with an ODBC driver (`type: odbc` + `dialect:`).
///
/// Reads are prepared statements (`SQLPrepare`, parameters bound with `SQLBindParameter`, never pasted into
/// SQL) fetched with block cursors (see ``ODBCConnection``); values stay exact (see ``ODBCColumnKind``).
/// Drivers block, so every call runs on this source's own thread pool (three threads: a read, a concurrent
/// estimate, spare), never on a NIO event loop or Swift's cooperative pool, as ``MySQLSource`` does. A
/// cancelled task's statement is stopped with `SQLCancel` (`CANCELLED`); a server that stops answering fails
/// the read after `readTimeoutSeconds` (`SQL_ATTR_QUERY_TIMEOUT`, transient, retried on a new connection).
public final class ODBCSource: SQLSource {
    public let dialect: SQLDialect
    /// The connection settings (the password only inside).
    public let settings: ODBCSettings
    private let threads: NIOThreadPool
    private let idle = Mutex<[ODBCConnection]>([])

    /// Creates the source and starts its thread pool; connections open on first use. Call ``close()``.
    public init(settings: ODBCSettings) {
        self.settings = settings
        dialect = settings.dialect
        threads = NIOThreadPool(numberOfThreads: 3)
        threads.start()
    }

    public func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]] {
        try await withConnection { connection, cancellation in
            try connection.query(statement, cancellation: cancellation)
        }
    }

    public func testConnection() async throws -> String {
        let target = settings.target
        return try await withConnection { connection, _ in "\(connection.serverVersion) over ODBC, \(target)" }
    }

    public func close() async {
        let connections = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        _ = try? await threads.runIfActive { for connection in connections { connection.close() } }
        try? await threads.shutdownGracefully()
    }

    /// Runs `body` on a pool thread with a connection of its own (an idle one, or a new one). On task
    /// cancellation the running statement is cancelled (`SQLCancel`). The connection goes back to the idle
    /// list when `body` succeeds and is closed when it throws (it may be mid-result or broken).
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (ODBCConnection, ODBCCancellation) throws -> T) async throws -> T {
        let cancellation = ODBCCancellation()
        let settings = settings
        let reused = idle.withLock { $0.popLast() }
        do {
            return try await withTaskCancellationHandler {
                try await threads.runIfActive { [self] in
                    let connection = try reused ?? ODBCConnection(settings: settings)
                    do {
                        let value = try body(connection, cancellation)
                        let surplus = self.idle.withLock { connections -> Bool in
                            guard connections.count < 2 else { return true }
                            connections.append(connection)
                            return false
                        }
                        if surplus { connection.close() }
                        return value
                    } catch {
                        connection.close()
                        throw error
                    }
                }
            } onCancel: {
                cancellation.cancel()
            }
        } catch let failure as SyncFailure {
            throw failure
        } catch {
            throw SyncFailure(code: .sourceUnavailable, message: "the ODBC source is closed: \(error)", isTransient: false)
        }
    }
}
#endif
