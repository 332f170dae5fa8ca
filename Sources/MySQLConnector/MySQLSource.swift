#if MySQL
import NIOPosix
public import SyncCore
import Synchronization

/// An ERP on MySQL or MariaDB, read through MariaDB Connector/C.
///
/// Reads are server-side prepared statements (`mysql_stmt_prepare`, parameters bound with
/// `mysql_stmt_bind_param`, never pasted into SQL) whose rows stream from the server one at a time
/// (`mysql_stmt_fetch` without `mysql_stmt_store_result`). Values stay exact: `DECIMAL` as the server's
/// decimal text, `BIGINT UNSIGNED` digit for digit, `TINYINT(1)` as an integer, `DATETIME(6)` with
/// microseconds as naive local time (read in the source's `timezone`), `TIMESTAMP` as a UTC instant (the
/// session runs with `time_zone = '+00:00'`), zero dates as text the mapper quarantines.
///
/// Connector/C blocks, so every call runs on this source's own thread pool (three threads: a read, a
/// concurrent estimate, a `KILL QUERY`), never on a NIO event loop or Swift's cooperative pool. A cancelled
/// task's statement is killed in the server and its read stops at once (`CANCELLED`); a server that stops
/// answering fails the read after `readTimeoutSeconds` (transient, retried on a new connection).
public final class MySQLSource: SQLSource {
    public let dialect = SQLDialect.mysql
    private let settings: ServerConnectionSettings
    private let threads: NIOThreadPool
    private let idle = Mutex<[MariaDBConnection]>([])

    /// Creates the source and starts its thread pool; connections open on first use. Call ``close()`` to
    /// close them and stop the threads.
    ///
    /// How Connector/C reads the settings: host `localhost` means the local socket, `127.0.0.1` TCP; `ssl`
    /// `prefer` is TLS when the server offers it (the certificate verified only when `caFile` is given), plain
    /// otherwise, and `require` is TLS or fail (checked for a cipher after the handshake, so a client library
    /// that would silently fall back cannot weaken it); `connectTimeoutSeconds` is
    /// `MYSQL_OPT_CONNECT_TIMEOUT`, `readTimeoutSeconds` both `MYSQL_OPT_READ_TIMEOUT` and `..._WRITE_TIMEOUT`.
    public init(settings: ServerConnectionSettings) {
        self.settings = settings
        threads = NIOThreadPool(numberOfThreads: 3)
        threads.start()
    }

    public func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]] {
        try await withConnection { connection, isCancelled in
            try connection.query(statement, isCancelled: isCancelled)
        }
    }

    /// The optimizer's row estimate (`EXPLAIN`: the largest `rows` of the plan's lines, i.e. the biggest table
    /// the read scans), so a large table is never counted. A join that multiplies rows is underestimated; the
    /// figure only drives progress and ETA.
    public func estimateRows(_ statement: SQLStatement) async throws -> Int? {
        let explain = SQLStatement(sql: "EXPLAIN " + statement.sql, binds: statement.binds)
        return try await withConnection { connection, isCancelled in
            // The column is found by name: MySQL 8 and MariaDB order EXPLAIN's columns differently.
            guard let rows = try connection.columnNames(explain.sql).firstIndex(of: "rows") else { return nil }
            return try connection.query(explain, isCancelled: isCancelled).compactMap { $0[rows].text.flatMap(Int.init) }.max()
        }
    }

    public func testConnection() async throws -> String {
        let settings = settings
        return try await withConnection { connection, _ in
            let tls = connection.cipher.map { "TLS cipher \($0)" } ?? "no TLS"
            return "MariaDB/MySQL \(connection.serverVersion), \(settings.target), \(tls)"
        }
    }

    public func close() async {
        let connections = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        _ = try? await threads.runIfActive { for connection in connections { connection.close() } }
        try? await threads.shutdownGracefully()
    }

    /// Runs `body` on a pool thread with a connection of its own (an idle one, or a new one), passing a check
    /// that turns true when the calling task is cancelled. On cancellation the statement is also stopped in
    /// the server (`KILL QUERY` from a second connection), so a read waiting on the server ends at once. The
    /// connection goes back to the idle list when `body` succeeds and is closed when it throws (it may be
    /// mid-result or broken).
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (MariaDBConnection, () -> Bool) throws -> T) async throws -> T {
        let cancellation = Cancellation()
        let settings = settings
        let reused = idle.withLock { $0.popLast() }
        do {
            return try await withTaskCancellationHandler {
                try await threads.runIfActive { [self] in
                    let connection = try reused ?? MariaDBConnection(settings: settings)
                    cancellation.begin(connectionID: connection.serverThreadID)
                    do {
                        let value = try body(connection) { cancellation.isCancelled }
                        cancellation.end()
                        let surplus = self.idle.withLock { connections -> Bool in
                            guard connections.count < 2 else { return true }
                            connections.append(connection)
                            return false
                        }
                        if surplus { connection.close() }
                        return value
                    } catch {
                        cancellation.end()
                        connection.close()
                        throw error
                    }
                }
            } onCancel: { [threads] in
                guard let running = cancellation.cancel() else { return }
                Task {
                    _ = try? await threads.runIfActive {
                        let killer = try MariaDBConnection(settings: settings)
                        defer { killer.close() }
                        try killer.killQuery(connectionID: running)
                    }
                }
            }
        } catch let failure as SyncFailure {
            throw failure
        } catch {
            throw SyncFailure(code: .sourceUnavailable, message: "the MySQL source is closed: \(error)", isTransient: false)
        }
    }
}

/// The cancellation state of one call: whether its task was cancelled, and which server connection (if any)
/// is running its statement right now.
final class Cancellation: Sendable {
    private struct State {
        var isCancelled = false
        var connectionID: UInt?
    }
    private let state = Mutex(State())

    var isCancelled: Bool { state.withLock { $0.isCancelled } }

    /// The call's statement is about to run on server connection `id`.
    func begin(connectionID id: UInt) { state.withLock { $0.connectionID = id } }

    /// The call no longer uses the connection.
    func end() { state.withLock { $0.connectionID = nil } }

    /// Marks the call cancelled; returns the server connection whose statement must be killed, if one runs.
    func cancel() -> UInt? {
        state.withLock { state in
            state.isCancelled = true
            return state.connectionID
        }
    }
}

extension SyncFailure {
    /// Classifies a MariaDB/MySQL error by its number (MariaDB "Error Codes" reference; client errors
    /// 2000–2999 from Connector/C `errmsg.h`): access denied (1044, 1045, 1698) is `AUTH_FAILED`, an unknown
    /// database (1049) `DATABASE_NOT_FOUND`, table (1146) `TABLE_NOT_FOUND`, column (1054)
    /// `COLUMN_NOT_FOUND`, all permanent. A refused or unreachable server (2002, 2003, 2005) is
    /// `SOURCE_UNAVAILABLE`; a lost or killed connection (2006, 2013, 2055, 1927, 1053), an interrupted query
    /// (1317), too many connections (1040), a lock wait timeout (1205) or deadlock (1213) are transient.
    /// Other client-side errors are transient, other server errors (syntax 1064 …) permanent. A call that
    /// failed with no error number (0) is transient: nothing says the statement itself is at fault (Connector/C
    /// 3.3 reports some connections killed mid-read so, seen in the chaos suite). `sqlState` is kept
    /// (``SyncFailure/sqlState``; MariaDB maps a data error such as 1690 "out of range" to class `22`), but for
    /// the two data errors MariaDB reports under the generic `HY000`: 1366 (incorrect value for a column) and 1411
    /// (incorrect value for a function, `STR_TO_DATE` in strict mode), read as `22018`, invalid character value.
    static func mariaDB(errno: UInt32, sqlState reported: String?, message: String, context: String, settings: ServerConnectionSettings) -> SyncFailure {
        let text = "\(context): \(message) [\(errno)]"
        var failure = switch errno {
        case 0:
            SyncFailure(code: .sourceQueryFailed, message: "\(context): Connector/C gave no error number ('\(message)') (\(settings.host):\(settings.port))", isTransient: true)
        case 1044, 1045, 1698:
            SyncFailure(code: .authFailed, message: "\(context): authentication failed for \(settings.target): \(message) [\(errno)]", isTransient: false)
        case 1049: SyncFailure(code: .databaseNotFound, message: "\(text) on \(settings.host):\(settings.port)", isTransient: false)
        case 1146: SyncFailure(code: .tableNotFound, message: "\(text) in \(settings.target)", isTransient: false)
        case 1054: SyncFailure(code: .columnNotFound, message: "\(text) in \(settings.target)", isTransient: false)
        case 2002, 2003, 2005:
            SyncFailure(code: .sourceUnavailable, message: "\(context): cannot reach \(settings.host):\(settings.port): \(message) [\(errno)]", isTransient: true)
        case 2026: SyncFailure(code: .tlsFailed, message: "\(text) (\(settings.host):\(settings.port))", isTransient: false)
        case 1040, 1053, 1205, 1213, 1317, 1927, 2006, 2013, 2055:
            SyncFailure(code: .sourceQueryFailed, message: "\(text) (\(settings.host):\(settings.port))", isTransient: true)
        default: SyncFailure(code: .sourceQueryFailed, message: "\(text) (\(settings.target))", isTransient: (2000..<3000).contains(errno))
        }
        failure.sqlState = errno == 0 ? nil : errno == 1366 || errno == 1411 ? "22018" : reported
        return failure
    }
}
#endif
