// The PostgreSQL wire layer shared by the source and the destination: the pool, the error mapping, the bindings
// and the value decoder, kept together because each part is small and they change together with postgres-nio;
// the settings live in PostgresSettings.swift, the binary value forms in PostgresBinary.swift.
import Foundation
import Logging
import NIOCore
import NIOPosix
public import PostgresNIO
public import SyncCore
import Synchronization

/// A few reusable connections to one database.
///
/// Connections are opened on demand with `PostgresConnection.connect`, so a bad password or a missing
/// database fails the first call at once with the server's error (a retrying pool would hide it behind a
/// timeout); a connection that broke is dropped and the next call opens a new one. Each caller has its
/// connection to itself for the whole closure (a transaction, a COPY, a run lock).
final class PostgresPool: Sendable {
    let settings: PostgresSettings
    let logger: Logger
    private let configuration: PostgresConnection.Configuration
    /// Connections waiting for their next use; after ``close()`` none are kept.
    private let idle = Mutex<(connections: [PostgresConnection], isClosed: Bool)>(([], false))
    private let nextID = Atomic<Int>(1)

    init(settings: PostgresSettings, logger: Logger) throws {
        self.settings = settings
        // postgres-nio's own chatter stays out of the user's log unless it is an error.
        var logger = logger
        logger.logLevel = max(logger.logLevel, .error)
        self.logger = logger
        configuration = try settings.connectionConfiguration()
    }

    /// Runs `body` on a connection of its own, mapping driver errors to ``SyncFailure``.
    ///
    /// A dead connection costs seconds, not the statement timeout: the socket probes an idle server
    /// (``TCPLiveness``), so a server that vanished without a word (power loss, a dropped network) closes the
    /// connection within about 11 s, and a call whose connection closed under it fails within 2 s even when
    /// postgres-nio 1.33.2 never answers it (it can leave a call waiting forever when the server kills the
    /// connection at an unlucky instant, such as idle in a transaction). The call is also bounded by a
    /// client-side deadline (the statement timeout + 30 s) for a server that answers the probes but not the
    /// query (a stopped backend process). Either way the call fails as transient (the transaction never
    /// committed, the connection is dropped) and the engine retries on a new connection.
    func withConnection<T: Sendable>(_ context: String, code: SyncFailure.Code,
                                     _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let deadline = settings.statementTimeoutSeconds > 0 ? settings.statementTimeoutSeconds + 30 : 3600
        do {
            return try await leased(deadline: deadline, body)
        } catch let failure as Deadline.Expired {
            throw SyncFailure(code: code, message: "\(context): no answer from \(settings.host):\(settings.port) within \(failure.seconds) s", isTransient: true)
        } catch is Deadline.Lost {
            throw SyncFailure(code: code, message: "\(context): the connection to \(settings.host):\(settings.port) was closed", isTransient: true)
        } catch {
            throw SyncFailure.postgres(error, code: code, context: context, settings: settings)
        }
    }

    private func leased<T: Sendable>(deadline: Int, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let reused = idle.withLock { $0.connections.popLast() }
        let connection: PostgresConnection
        if let reused, !reused.isClosed {
            connection = reused
        } else {
            connection = try await connect()
        }
        do {
            let value = try await Deadline.run(seconds: deadline, abandonWhen: { connection.isClosed }) { try await body(connection) }
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Opens a connection on a socket with ``TCPLiveness``'s options (postgres-nio's own bootstrap sets none),
    /// then lets postgres-nio run TLS and the startup on it; each step bounded by the connect timeout.
    private func connect() async throws -> PostgresConnection {
        let timeout = TimeAmount.seconds(Int64(settings.connectTimeoutSeconds))
        let channel: any Channel
        do {
            channel = try await TCPLiveness.apply(to: ClientBootstrap(group: PostgresConnection.defaultEventLoopGroup).connectTimeout(timeout))
                .connect(host: settings.host, port: settings.port).get()
        } catch {
            throw Unreachable(underlying: error)
        }
        var established = PostgresConnection.Configuration(establishedChannel: channel, tls: configuration.tls, username: configuration.username,
                                                           password: configuration.password, database: configuration.database)
        established.options = configuration.options
        // SNI and the host-name check name the configured host, as postgres-nio does for a host it connects to.
        if (try? SocketAddress(ipAddress: settings.host, port: 0)) == nil { established.options.tlsServerName = settings.host }
        do {
            return try await PostgresConnection.connect(on: channel.eventLoop, configuration: established, id: nextID.add(1, ordering: .relaxed).oldValue,
                                                        logger: logger)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// The TCP connection to the server could not be opened (refused, unreachable, timed out).
    struct Unreachable: Error {
        var underlying: any Error
    }

    /// Keeps a connection for reuse, or closes it when four are idle already or the pool is closed (a read
    /// still running when its run ended, such as a prefetched page, comes back after ``close()``).
    private func release(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        let surplus = idle.withLock { idle -> PostgresConnection? in
            guard idle.connections.count < 4 && !idle.isClosed else { return connection }
            idle.connections.append(connection)
            return nil
        }
        if let surplus { Task { try? await surplus.close() } }
    }

    /// How many connections wait for reuse.
    var idleCount: Int { idle.withLock { $0.connections.count } }

    func close() async {
        let connections = idle.withLock { idle in
            defer { idle = ([], true) }
            return idle.connections
        }
        for connection in connections { _ = try? await Deadline.run(seconds: 5) { try await connection.close() } }
    }
}

extension SyncFailure {
    /// Classifies a PostgreSQL error by SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html):
    /// connection exceptions (08…), serialization failure (40001), deadlock (40P01), operator intervention
    /// such as `pg_terminate_backend` (57P01–57P03), too many connections (53300) and lost connections are
    /// transient; authentication (28…), a missing database (3D000), table (42P01) or column (42703) and
    /// syntax errors are permanent and named. The SQLSTATE is kept (``SyncFailure/sqlState``): class `22` is a
    /// row the database cannot compute.
    static func postgres(_ error: any Error, code: SyncFailure.Code, context: String, settings: PostgresSettings) -> SyncFailure {
        if let failure = error as? SyncFailure { return failure }
        if error is CancellationError { return SyncFailure(code: .cancelled, message: "\(context): cancelled", isTransient: false) }
        if let failure = error as? PostgresPool.Unreachable {
            return unreachable(failure.underlying, code: code, context: context, settings: settings)
        }
        let target = settings.target
        guard let psql = error as? PSQLError else {
            return SyncFailure(code: code, message: "\(context) (\(target)): \(error)", isTransient: true)
        }
        if let state = psql.serverInfo?[.sqlState] {
            let message = psql.serverInfo?[.message] ?? "\(psql.code)"
            let detail = psql.serverInfo?[.detail].map { " (\($0))" } ?? ""
            var failure = classified(state: state, message: message, detail: detail, code: code, context: context, settings: settings)
            failure.sqlState = state
            return failure
        }
        switch psql.code {
        case .authMechanismRequiresPassword:
            return SyncFailure(code: .authFailed, message: "\(context): \(target) asks for a password and none is configured", isTransient: false)
        case .connectionError:
            return unreachable(psql.underlying, code: code, context: context, settings: settings)
        case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            return SyncFailure(code: code, message: "\(context): the connection to \(settings.host):\(settings.port) was closed", isTransient: true)
        case .sslUnsupported:
            return SyncFailure(code: code, message: "\(context): ssl is 'require' but \(settings.host):\(settings.port) does not offer TLS", isTransient: false)
        default:
            return SyncFailure(code: code, message: "\(context) (\(target)): \(psql.code)", isTransient: false)
        }
    }

    /// A PostgreSQL error that came with a SQLSTATE, classified as ``postgres(_:code:context:settings:)`` says.
    private static func classified(state: String, message: String, detail: String, code: SyncFailure.Code, context: String,
                                   settings: PostgresSettings) -> SyncFailure {
        let target = settings.target
        switch state {
        case "28P01", "28000":
            return SyncFailure(code: .authFailed, message: "\(context): authentication failed for \(target): \(message)", isTransient: false)
        case "3D000":
            return SyncFailure(code: .databaseNotFound, message: "\(context): \(message) on \(settings.host):\(settings.port)", isTransient: false)
        case "42P01":
            return SyncFailure(code: .tableNotFound, message: "\(context): \(message) in \(target)", isTransient: false)
        case "42703":
            return SyncFailure(code: .columnNotFound, message: "\(context): \(message) in \(target)", isTransient: false)
        case "23505":
            return SyncFailure(code: .keyConflict, message: "\(context): \(message)\(detail) [\(state)]", isTransient: true)
        case "40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03", "57014":
            return SyncFailure(code: code, message: "\(context): \(message)\(detail) [\(state)]", isTransient: state != "57014")
        default:
            return SyncFailure(code: code, message: "\(context): \(message)\(detail) [\(state)]", isTransient: state.hasPrefix("08"))
        }
    }

    /// Could not connect at all (refused, unreachable, timed out): transient, but named as unavailability.
    private static func unreachable(_ underlying: (any Error)?, code: SyncFailure.Code, context: String, settings: PostgresSettings) -> SyncFailure {
        let reason = "\(underlying.map { "\($0)" } ?? "")".contains("refused") ? "connection refused" : "no connection"
        let unavailable: SyncFailure.Code = code == .destinationFailed ? .destinationUnavailable : .sourceUnavailable
        return SyncFailure(code: unavailable, message: "\(context): cannot reach \(settings.host):\(settings.port) (\(reason))", isTransient: true)
    }
}

/// TCP keepalive and user timeout on a connection's socket, so a server that vanished without closing it
/// (power loss, a dropped network: no FIN, no RST) is noticed in seconds instead of the kernel's defaults
/// (2 h before the first keepalive probe, ~15 min of retransmissions). Probes start after 5 s idle, every 2 s,
/// and 3 unanswered ones close the connection (~11 s); data left unacknowledged for 11 s closes it too
/// (`TCP_USER_TIMEOUT`, Linux, tcp(7)). A server that is merely slow answers the probes from its kernel, so a
/// long statement is never cut by them.
enum TCPLiveness {
    static let idleSeconds = 5
    static let intervalSeconds = 2
    static let probes = 3
    static let unacknowledgedMilliseconds = 11_000

    static func apply(to bootstrap: ClientBootstrap) -> ClientBootstrap {
        let tcp = NIOBSDSocket.OptionLevel.tcp
        #if os(Linux)
        let idle = NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPIDLE))
        let userTimeout = NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT))
        let linuxOnly = bootstrap.channelOption(ChannelOptions.Types.SocketOption(level: tcp, name: userTimeout), value: unacknowledgedMilliseconds)
        #else
        let idle = NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPALIVE))
        let linuxOnly = bootstrap
        #endif
        return linuxOnly
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .channelOption(ChannelOptions.Types.SocketOption(level: tcp, name: idle), value: idleSeconds)
            .channelOption(ChannelOptions.Types.SocketOption(level: tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPINTVL))), value: intervalSeconds)
            .channelOption(ChannelOptions.Types.SocketOption(level: tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPCNT))), value: probes)
    }
}

extension PostgresBindings {
    /// Appends a source value with the PostgreSQL type it stands for.
    mutating func append(source value: SourceValue) throws {
        switch value {
        case .null: appendNull()
        case .integer(let v): append(v)
        case .decimal(let v):
            if let numeric = Decimal(string: v) { try append(numeric) } else { append(v) }
        case .double(let v): append(v)
        case .text(let v): append(v)
        case .bool(let v): append(v)
        case .bytes(let v): append(ByteBuffer(bytes: v))
        case .localDateTime(let v):
            append(PostgresTimestamp(microseconds: (v.secondsAsUTC - PostgresTimestamp.epochOffset) * 1_000_000 + Int64(v.microsecond), zoned: false))
        case .instant(let v):
            append(PostgresTimestamp(microseconds: (v.seconds - PostgresTimestamp.epochOffset) * 1_000_000 + Int64(v.microsecond), zoned: true))
        }
    }
}

extension SourceValue {
    /// Decodes a result cell exactly: `numeric` to decimal text (digit for digit, from the binary base-10000
    /// form; `NaN` and `±Infinity` as that text), `timestamp` to a naive local date-time and `timestamptz` to an
    /// instant (both from the binary microsecond count), `date` to midnight, integers, floats, booleans and
    /// text as such; any other type as its text, or bytes.
    ///
    /// Hostile-input code: any value the server can send decodes without trapping. `infinity` and `-infinity`
    /// timestamps and dates become that text; years outside 1 ... 9999 (BC dates, PostgreSQL's range reaches
    /// 294276) decode as they are, for the record mapper to refuse with their raw value; text that is not valid
    /// UTF-8 (possible in a `SQL_ASCII` database) stays bytes, never repaired into other characters.
    public init(postgres cell: PostgresCell) {
        guard let buffer = cell.bytes else {
            self = .null
            return
        }
        if cell.format == .binary {
            self = buffer.withUnsafeReadableBytes { SourceValue(postgres: cell.dataType, binary: $0) }
        } else {
            self = buffer.withUnsafeReadableBytes { cell.dataType == .bpchar ? SourceValue(blankPaddedUTF8: $0) : SourceValue(utf8: $0) }
        }
    }

    /// Decodes a non-NULL value of type `type` from its binary form (the type's `typsend`), as ``init(postgres:)``
    /// describes; a `jsonb` as its JSON text, a `uuid` as `UUID.uuidString`, a `character(n)` without its padding, any
    /// other type's bytes as UTF-8 text.
    init(postgres type: PostgresDataType, binary bytes: UnsafeRawBufferPointer) {
        var reader = PostgresBinaryReader(bytes)
        switch type {
        case .int2: self = reader.integer(Int16.self).map { .integer(Int64($0)) } ?? .null
        case .int4: self = reader.integer(Int32.self).map { .integer(Int64($0)) } ?? .null
        case .int8: self = reader.integer(Int64.self).map { .integer($0) } ?? .null
        case .float4: self = reader.integer(UInt32.self).map { .double(Double(Float(bitPattern: $0))) } ?? .null
        case .float8: self = reader.integer(UInt64.self).map { .double(Double(bitPattern: $0)) } ?? .null
        case .bool: self = reader.integer(UInt8.self).map { .bool($0 != 0) } ?? .null
        case .numeric: self = BinaryNumeric.text(&reader).map { .decimal($0) } ?? .null
        case .timestamp, .timestamptz:
            guard let micros = reader.integer(Int64.self) else { self = .null; return }
            if let special = Self.postgresInfinity(micros == .max, micros == .min) { self = special; return }
            // Seconds first: microseconds since 1970 overflow Int64 for PostgreSQL's latest timestamps.
            let (quotient, remainder) = micros.quotientAndRemainder(dividingBy: 1_000_000)
            let seconds = quotient + (remainder < 0 ? -1 : 0) + PostgresTimestamp.epochOffset
            let instant = Instant(seconds: seconds, microsecond: Int(remainder < 0 ? remainder + 1_000_000 : remainder))
            self = type == .timestamptz ? .instant(instant) : .localDateTime(LocalDateTime(instant: instant))
        case .date:
            guard let days = reader.integer(Int32.self) else { self = .null; return }
            if let special = Self.postgresInfinity(days == .max, days == .min) { self = special; return }
            self = .localDateTime(LocalDateTime(instant: Instant(seconds: PostgresTimestamp.epochOffset + Int64(days) * 86_400)))
        case .bytea: self = .bytes(Data(bytes))
        case .bpchar: self = SourceValue(blankPaddedUTF8: bytes)
        case .jsonb:
            // `jsonb_send`: a version byte (1), then the JSON text.
            guard reader.integer(UInt8.self) == 1, let json = reader.bytes(bytes.count - 1) else { self = .bytes(Data(bytes)); return }
            self = SourceValue(utf8: json)
        case .uuid:
            guard bytes.count == 16 else { self = .bytes(Data(bytes)); return }
            self = .text(UUID(uuid: bytes.loadUnaligned(as: uuid_t.self)).uuidString)
        default: self = SourceValue(utf8: bytes)
        }
    }

    /// PostgreSQL's `infinity` / `-infinity` (`DT_NOEND` / `DT_NOBEGIN`, the largest and smallest values of the
    /// binary form, src/include/datatype/timestamp.h) as their text, or `nil` for any finite value.
    private static func postgresInfinity(_ isInfinity: Bool, _ isMinusInfinity: Bool) -> SourceValue? {
        isInfinity ? .text("infinity") : isMinusInfinity ? .text("-infinity") : nil
    }
}

/// Runs an operation with a deadline, abandoning it (not waiting for it) when the deadline passes or what it
/// depends on is gone.
enum Deadline {
    /// The deadline passed.
    struct Expired: Error {
        var seconds: Int
    }

    /// `abandonWhen` held at two checks in a row (one second apart) while the operation had not finished.
    struct Lost: Error {}

    /// Runs `operation`; throws ``Expired`` after `seconds`, or ``Lost`` once `abandonWhen` (checked every second)
    /// is true twice in a row, whichever comes first, leaving the operation to finish on its own. The second
    /// check lets an operation that fails by itself when its connection closes report its own error.
    static func run<T: Sendable>(seconds: Int, abandonWhen isLost: @escaping @Sendable () -> Bool = { false },
                                 _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let resumed = Mutex(false)
        let claim: @Sendable () -> Bool = { resumed.withLock { done in defer { done = true }; return !done } }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let timer = Task {
                let clock = ContinuousClock()
                let end = clock.now.advanced(by: .seconds(seconds))
                var lostChecks = 0
                while clock.now < end {
                    try? await Task.sleep(for: min(.seconds(1), clock.now.duration(to: end)))
                    if Task.isCancelled { return }
                    lostChecks = isLost() ? lostChecks + 1 : 0
                    if lostChecks == 2 {
                        if claim() { continuation.resume(throwing: Lost()) }
                        return
                    }
                }
                if claim() {
                    continuation.resume(throwing: Expired(seconds: seconds))
                }
            }
            Task {
                do {
                    let value = try await operation()
                    timer.cancel()
                    if claim() { continuation.resume(returning: value) }
                } catch {
                    timer.cancel()
                    if claim() { continuation.resume(throwing: error) }
                }
            }
        }
    }
}
