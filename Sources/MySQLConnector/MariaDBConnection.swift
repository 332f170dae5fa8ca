// ~420 lines: one C connection and its prepared statements, binding, fetching and decoding MariaDB's types;
// splitting it would spread the unsafe buffer handling of Connector/C over several files.
#if MySQL
import CMariaDB
import Foundation
import SyncCore

/// One MariaDB Connector/C connection (`MYSQL *`) and its prepared statements.
///
/// Every method blocks on the network and must run on a thread of the source's own thread pool, never on
/// an event loop or the cooperative pool. The session is set up once: character set `utf8mb4`,
/// `time_zone = '+00:00'` (so `TIMESTAMP` values arrive as UTC and are read as instants), connect and read
/// timeouts, the TLS mode.
///
/// `@unchecked Sendable`: Connector/C lets a handle move between threads as long as two calls never
/// overlap. A connection is leased to exactly one caller at a time (``MySQLSource`` takes it out of its
/// idle list, runs the caller's blocking closure with it on one pool thread, then returns or closes it),
/// so no two threads ever use it at once.
final class MariaDBConnection: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<MYSQL>
    private let settings: ServerConnectionSettings
    /// Prepared statements by SQL text: keyset pages repeat a few shapes, so each is prepared once.
    private var statements: [String: PreparedStatement] = [:]
    /// The server's connection id, as `KILL <id>` takes it.
    let serverThreadID: UInt
    /// The TLS cipher in use, `nil` for a plain connection.
    let cipher: String?

    /// Connector/C's global state must be initialised once before threads use it
    /// (`mysql_library_init`, which is a macro for `mysql_server_init`).
    private static let libraryReady: Bool = mysql_server_init(0, nil, nil) == 0

    /// Opens a connection.
    /// - Throws: ``SyncFailure`` (`AUTH_FAILED`, `DATABASE_NOT_FOUND`, `SOURCE_UNAVAILABLE`, `TLS_REQUIRED` …).
    init(settings: ServerConnectionSettings) throws(SyncFailure) {
        guard Self.libraryReady, let handle = mysql_init(nil) else {
            throw SyncFailure(code: .sourceUnavailable, message: "MariaDB Connector/C could not allocate a connection", isTransient: true)
        }
        var connectTimeout = UInt32(settings.connectTimeoutSeconds)
        var readTimeout = UInt32(settings.readTimeoutSeconds)
        var on: my_bool = 1
        var tls: my_bool = settings.ssl == .disable ? 0 : 1
        var verify: my_bool = settings.caFile == nil ? 0 : 1
        mysql_options(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        mysql_options(handle, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")
        mysql_options(handle, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout)
        mysql_options(handle, MYSQL_OPT_READ_TIMEOUT, &readTimeout)
        mysql_options(handle, MYSQL_OPT_WRITE_TIMEOUT, &readTimeout)
        mysql_options(handle, MYSQL_REPORT_DATA_TRUNCATION, &on)
        // Connector/C 3.3: MYSQL_OPT_SSL_ENFORCE turns TLS on when the server offers it; without a verified
        // certificate it falls back to plain TCP when the server does not, which is `prefer`. `require` is
        // checked below on the connection itself.
        mysql_options(handle, MYSQL_OPT_SSL_ENFORCE, &tls)
        mysql_options(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify)
        if let caFile = settings.caFile { mysql_options(handle, MYSQL_OPT_SSL_CA, caFile) }
        guard mysql_real_connect(handle, settings.host, settings.username, settings.password,
                                 settings.database.isEmpty ? nil : settings.database,
                                 UInt32(settings.port), nil, 0) != nil else {
            let failure = SyncFailure.mariaDB(errno: mysql_errno(handle), sqlState: String(cString: mysql_sqlstate(handle)),
                                              message: String(cString: mysql_error(handle)), context: "connecting", settings: settings)
            mysql_close(handle)
            throw failure
        }
        let cipher = mysql_get_ssl_cipher(handle).map { String(cString: $0) }
        if settings.ssl == .require && cipher == nil {
            mysql_close(handle)
            throw SyncFailure(code: .tlsRequired, message: "ssl is 'require' but \(settings.host):\(settings.port) did not negotiate TLS",
                              isTransient: false)
        }
        self.handle = handle
        self.settings = settings
        self.cipher = cipher
        serverThreadID = mysql_thread_id(handle)
    }

    /// The server's version string (`10.11.6-MariaDB-0+deb12u1`).
    var serverVersion: String { String(cString: mysql_get_server_info(handle)) }

    /// Runs a read with bound parameters and streams its rows (unbuffered `mysql_stmt_fetch`, no
    /// `mysql_stmt_store_result`), checking `isCancelled` before each row.
    /// - Returns: the rows, one ``SourceValue`` per select-list column.
    /// - Throws: ``SyncFailure``; `CANCELLED` when `isCancelled` turned true. After any throw the connection
    ///   may be mid-result and must be closed, not reused.
    func query(_ statement: SQLStatement, isCancelled: () -> Bool) throws(SyncFailure) -> [[SourceValue]] {
        let prepared = try prepare(statement.sql)
        guard prepared.parameterCount == statement.binds.count else {
            throw SyncFailure(code: .sourceQueryFailed, message: "the statement has \(prepared.parameterCount) parameters, \(statement.binds.count) values given",
                              isTransient: false)
        }
        let parameters = ParameterBuffers(statement.binds)
        if !statement.binds.isEmpty && mysql_stmt_bind_param(prepared.handle, parameters.binds) != 0 {
            throw statementFailure(prepared.handle, "binding parameters")
        }
        let cancelled = SyncFailure(code: .cancelled, message: "reading the source: cancelled", isTransient: false)
        guard mysql_stmt_execute(prepared.handle) == 0 else { throw isCancelled() ? cancelled : statementFailure(prepared.handle, "reading the source") }
        guard mysql_stmt_field_count(prepared.handle) > 0 else { return [] }
        defer { mysql_stmt_free_result(prepared.handle) }
        var rows: [[SourceValue]] = []
        while true {
            if isCancelled() { throw cancelled }
            let status = mysql_stmt_fetch(prepared.handle)
            if status == MYSQL_NO_DATA { return rows }
            if status == 1 { throw isCancelled() ? cancelled : statementFailure(prepared.handle, "reading the source") }
            var grew = false
            if status == MYSQL_DATA_TRUNCATED {
                guard let refetched = prepared.results.refetchTruncated(prepared.handle) else { throw statementFailure(prepared.handle, "reading a long value") }
                grew = refetched
            }
            rows.append(prepared.results.row())
            // Rebound only after the row is read: Connector/C 10.11.18 (Debian 12's libmariadb3) clears the
            // lengths of the current row on `mysql_stmt_bind_result`, which emptied every text of a row with
            // one long value.
            if grew && mysql_stmt_bind_result(prepared.handle, prepared.results.binds) != 0 {
                throw statementFailure(prepared.handle, "reading a long value")
            }
        }
    }

    /// The select-list names of `sql` (the statement is prepared, not run; prepared statements are cached).
    func columnNames(_ sql: String) throws(SyncFailure) -> [String] {
        try prepare(sql).results.names
    }

    /// Asks the server to stop the statement running on connection `id` (`KILL QUERY`): how a read blocked
    /// in the server (a long sort, a lock wait) is cancelled, since the blocked client call cannot be.
    func killQuery(connectionID id: UInt) throws(SyncFailure) {
        _ = try query(SQLStatement(sql: "KILL QUERY \(id)"), isCancelled: { false })
    }

    private func prepare(_ sql: String) throws(SyncFailure) -> PreparedStatement {
        if let prepared = statements[sql] { return prepared }
        if statements.count >= 16 { statements.removeAll() }
        guard let stmt = mysql_stmt_init(handle) else {
            throw connectionFailure("preparing a read")
        }
        guard mysql_stmt_prepare(stmt, sql, UInt(sql.utf8.count)) == 0 else {
            let failure = statementFailure(stmt, "preparing a read")
            mysql_stmt_close(stmt)
            throw failure
        }
        let prepared = PreparedStatement(handle: stmt, parameterCount: Int(mysql_stmt_param_count(stmt)), results: ResultBuffers(stmt))
        guard prepared.results.isEmpty || mysql_stmt_bind_result(stmt, prepared.results.binds) == 0 else {
            throw statementFailure(prepared.handle, "binding result columns")
        }
        statements[sql] = prepared
        return prepared
    }

    /// The failure of a statement call. Connector/C reports a connection lost while rows stream
    /// (`stmt_unbuffered_fetch` in `mariadb_stmt.c`: the server's `KILL`, a dropped socket) on the connection,
    /// not on the statement, whose error number stays 0: the connection's error is taken then. A failure
    /// with no error number at all is transient (``SyncFailure/mariaDB(errno:sqlState:message:context:settings:)``).
    private func statementFailure(_ stmt: UnsafeMutablePointer<MYSQL_STMT>, _ context: String) -> SyncFailure {
        if mysql_stmt_errno(stmt) == 0 { return connectionFailure(context) }
        return SyncFailure.mariaDB(errno: mysql_stmt_errno(stmt), sqlState: String(cString: mysql_stmt_sqlstate(stmt)),
                                   message: String(cString: mysql_stmt_error(stmt)), context: context, settings: settings)
    }

    /// The failure the connection itself reports.
    private func connectionFailure(_ context: String) -> SyncFailure {
        SyncFailure.mariaDB(errno: mysql_errno(handle), sqlState: String(cString: mysql_sqlstate(handle)), message: String(cString: mysql_error(handle)),
                            context: context, settings: settings)
    }

    /// Closes the statements and the connection (`COM_QUIT` when the server is still there).
    func close() {
        statements.removeAll()
        mysql_close(handle)
    }
}

/// A prepared statement with its result buffers, reused by every execution of the same SQL text.
final class PreparedStatement {
    let handle: UnsafeMutablePointer<MYSQL_STMT>
    let parameterCount: Int
    let results: ResultBuffers

    init(handle: UnsafeMutablePointer<MYSQL_STMT>, parameterCount: Int, results: ResultBuffers) {
        self.handle = handle
        self.parameterCount = parameterCount
        self.results = results
    }

    deinit { mysql_stmt_close(handle) }
}

/// How a result column is fetched and what it becomes.
enum ColumnKind {
    /// Integer types (TINYINT, incl. TINYINT(1), … BIGINT, YEAR) fetched as 64-bit: `.integer`.
    case signed
    /// Unsigned integers: `.integer` up to `Int64.max`, above as exact `.decimal` text (BIGINT UNSIGNED).
    case unsigned
    /// FLOAT, DOUBLE: `.double` (the mapper rounds money to the currency scale).
    case double
    /// DECIMAL: the server's exact text, `.decimal`.
    case decimal
    /// DATETIME, DATE: a naive `.localDateTime`, read later in the source's time zone.
    case dateTime
    /// TIMESTAMP: the server converts it to the session zone (UTC, see ``MariaDBConnection``): `.instant`.
    case timestamp
    /// Character data (any non-binary collation, `utf8mb4_bin` included), TIME, ENUM, SET, JSON: `.text`;
    /// invalid UTF-8 stays `.bytes` so the mapper quarantines it.
    case text
    /// Binary strings (charset 63: BINARY, VARBINARY, BLOB), BIT, GEOMETRY: `.bytes`.
    case bytes
    /// The NULL type.
    case null

    /// Charset number of `binary` (MariaDB `SHOW COLLATION`: `binary`, id 63).
    static let binaryCharset: UInt32 = 63

    init(field: MYSQL_FIELD) {
        switch field.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_INT24, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
            self = field.flags & UInt32(UNSIGNED_FLAG) != 0 ? .unsigned : .signed
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE: self = .double
        case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL: self = .decimal
        case MYSQL_TYPE_DATETIME, MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE: self = .dateTime
        case MYSQL_TYPE_TIMESTAMP: self = .timestamp
        case MYSQL_TYPE_NULL: self = .null
        case MYSQL_TYPE_BIT, MYSQL_TYPE_GEOMETRY: self = .bytes
        default: self = field.charsetnr == Self.binaryCharset ? .bytes : .text
        }
    }
}

/// The result bind array (`MYSQL_BIND[]`) and one buffer per column, allocated once per prepared statement
/// and grown when a long value does not fit.
final class ResultBuffers {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    /// Column names (aliases), in select-list order.
    let names: [String]
    private let count: Int
    private let kinds: [ColumnKind]
    private let lengths: UnsafeMutablePointer<UInt>
    private let nulls: UnsafeMutablePointer<my_bool>
    private let errors: UnsafeMutablePointer<my_bool>

    /// Initial size of a text or decimal buffer, bytes (a DECIMAL(65,30) needs 67).
    private static let initialTextCapacity = 128

    init(_ stmt: UnsafeMutablePointer<MYSQL_STMT>) {
        var kinds: [ColumnKind] = []
        var types: [enum_field_types] = []
        var names: [String] = []
        if let metadata = mysql_stmt_result_metadata(stmt) {
            let fields = mysql_fetch_fields(metadata)!
            for index in 0..<Int(mysql_num_fields(metadata)) {
                kinds.append(ColumnKind(field: fields[index]))
                types.append(fields[index].type)
                names.append(String(cString: fields[index].name))
            }
            mysql_free_result(metadata)
        }
        count = kinds.count
        self.kinds = kinds
        self.names = names
        binds = .allocate(capacity: max(count, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(count, 1))
        lengths = .allocate(capacity: max(count, 1))
        lengths.initialize(repeating: 0, count: max(count, 1))
        nulls = .allocate(capacity: max(count, 1))
        nulls.initialize(repeating: 0, count: max(count, 1))
        errors = .allocate(capacity: max(count, 1))
        errors.initialize(repeating: 0, count: max(count, 1))
        for index in 0..<count {
            let (type, size): (enum_field_types, Int) = switch kinds[index] {
            case .signed, .unsigned: (MYSQL_TYPE_LONGLONG, 8)
            case .double: (MYSQL_TYPE_DOUBLE, 8)
            case .dateTime, .timestamp: (types[index], MemoryLayout<MYSQL_TIME>.size)
            case .decimal, .text: (MYSQL_TYPE_STRING, Self.initialTextCapacity)
            case .bytes: (MYSQL_TYPE_BLOB, Self.initialTextCapacity)
            case .null: (MYSQL_TYPE_NULL, 0)
            }
            binds[index].buffer_type = type
            binds[index].buffer = size > 0 ? .allocate(byteCount: size, alignment: 8) : nil
            binds[index].buffer_length = UInt(size)
            binds[index].length = lengths + index
            binds[index].is_null = nulls + index
            binds[index].error = errors + index
            binds[index].is_unsigned = kinds[index] == .unsigned ? 1 : 0
        }
    }

    /// `true` for statements without a result set (`KILL`, DDL).
    var isEmpty: Bool { count == 0 }

    deinit {
        for index in 0..<count { binds[index].buffer?.deallocate() }
        binds.deallocate()
        lengths.deallocate()
        nulls.deallocate()
        errors.deallocate()
    }

    /// After `MYSQL_DATA_TRUNCATED`: grows every buffer that was too small to the value's length and fetches
    /// those columns again (`mysql_stmt_fetch_column`). The caller reads the row, then rebinds the grown
    /// buffers (`mysql_stmt_bind_result`) so later rows fit at once.
    /// - Returns: whether a buffer grew (and needs rebinding); `nil` when Connector/C refused.
    func refetchTruncated(_ stmt: UnsafeMutablePointer<MYSQL_STMT>) -> Bool? {
        var grew = false
        for index in 0..<count where nulls[index] == 0 && lengths[index] > binds[index].buffer_length {
            let capacity = Int(lengths[index]).roundedUpToPowerOfTwo
            binds[index].buffer?.deallocate()
            binds[index].buffer = .allocate(byteCount: capacity, alignment: 8)
            binds[index].buffer_length = UInt(capacity)
            guard mysql_stmt_fetch_column(stmt, binds + index, UInt32(index), 0) == 0 else { return nil }
            grew = true
        }
        return grew
    }

    /// The current row.
    func row() -> [SourceValue] {
        var row: [SourceValue] = []
        row.reserveCapacity(count)
        for index in 0..<count {
            guard nulls[index] == 0, let buffer = binds[index].buffer else {
                row.append(.null)
                continue
            }
            switch kinds[index] {
            case .signed: row.append(.integer(buffer.load(as: Int64.self)))
            case .unsigned:
                let value = buffer.load(as: UInt64.self)
                row.append(value <= UInt64(Int64.max) ? .integer(Int64(value)) : .decimal(String(value)))
            case .double: row.append(.double(buffer.load(as: Double.self)))
            case .decimal: row.append(.decimal(String(decoding: bytes(index, buffer), as: UTF8.self)))
            case .text:
                row.append(SourceValue(utf8: bytes(index, buffer)))
            case .bytes: row.append(.bytes(Data(bytes(index, buffer))))
            case .dateTime, .timestamp: row.append(Self.value(buffer.load(as: MYSQL_TIME.self), kinds[index]))
            case .null: row.append(.null)
            }
        }
        return row
    }

    private func bytes(_ index: Int, _ buffer: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer, count: min(Int(lengths[index]), Int(binds[index].buffer_length)))
    }

    /// A date-time cell. Values that are no date of the calendar become their text, which the record mapper
    /// rejects into quarantine: zero dates (`0000-00-00 00:00:00`) and partial zero dates (`2024-00-10`, legal
    /// under `sql_mode=''`) as `ZERO_DATE`, impossible ones (`2024-02-30`, stored under `ALLOW_INVALID_DATES`
    /// and returned by `STR_TO_DATE` under any `sql_mode`) as `INVALID_DATE`, never rolled over into another
    /// date. Every other value becomes a naive date-time (DATETIME, DATE) or a UTC instant (TIMESTAMP, read
    /// with `time_zone = '+00:00'`). Fields are clamped to their storage before anything else (the protocol's
    /// ranges are narrower, so a real server never needs it).
    static func value(_ time: MYSQL_TIME, _ kind: ColumnKind) -> SourceValue {
        let local = LocalDateTime(year: Int(min(time.year, 99_999)), month: Int(min(time.month, 255)), day: Int(min(time.day, 255)),
                                  hour: Int(min(time.hour, 255)), minute: Int(min(time.minute, 255)), second: Int(min(time.second, 255)),
                                  microsecond: Int(min(time.second_part, 999_999_999)))
        do {
            try local.validate()
        } catch {
            return .text(local.description)
        }
        return kind == .timestamp ? .instant(Instant(seconds: local.secondsAsUTC, microsecond: local.microsecond)) : .localDateTime(local)
    }
}

/// Parameter binds for one execution: values from checkpoints and config travel only here, never in SQL.
final class ParameterBuffers {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    private let count: Int

    /// Binds each value with the MariaDB type it stands for: integers as BIGINT, exact decimals as DECIMAL
    /// (compared exactly, not as double), date-times as DATETIME (instants in UTC, the session zone), text as
    /// a string in the connection's utf8mb4, bytes as a blob.
    init(_ values: [SourceValue]) {
        count = values.count
        binds = .allocate(capacity: max(count, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(count, 1))
        for (index, value) in values.enumerated() {
            func store<T>(_ type: enum_field_types, _ item: T) {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
                buffer.storeBytes(of: item, as: T.self)
                binds[index].buffer_type = type
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(MemoryLayout<T>.size)
            }
            func storeBytes(_ type: enum_field_types, _ bytes: some Collection<UInt8>) {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
                buffer.copyMemory(from: Array(bytes), byteCount: bytes.count)
                binds[index].buffer_type = type
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(bytes.count)
            }
            func storeTime(_ local: LocalDateTime) {
                var time = MYSQL_TIME()
                time.year = UInt32(local.year)
                time.month = UInt32(local.month)
                time.day = UInt32(local.day)
                time.hour = UInt32(local.hour)
                time.minute = UInt32(local.minute)
                time.second = UInt32(local.second)
                time.second_part = UInt(local.microsecond)
                time.time_type = MYSQL_TIMESTAMP_DATETIME
                store(MYSQL_TYPE_DATETIME, time)
            }
            switch value {
            case .null: binds[index].buffer_type = MYSQL_TYPE_NULL
            case .integer(let v): store(MYSQL_TYPE_LONGLONG, v)
            case .double(let v): store(MYSQL_TYPE_DOUBLE, v)
            case .bool(let v): store(MYSQL_TYPE_TINY, Int8(v ? 1 : 0))
            case .decimal(let v): storeBytes(MYSQL_TYPE_NEWDECIMAL, v.utf8)
            case .text(let v): storeBytes(MYSQL_TYPE_STRING, v.utf8)
            case .bytes(let v): storeBytes(MYSQL_TYPE_BLOB, v)
            case .localDateTime(let v): storeTime(v)
            case .instant(let v): storeTime(LocalDateTime(instant: v))
            }
        }
    }

    deinit {
        for index in 0..<count { binds[index].buffer?.deallocate() }
        binds.deallocate()
    }
}

extension Int {
    fileprivate var roundedUpToPowerOfTwo: Int {
        var value = 1
        while value < self { value <<= 1 }
        return value
    }
}
#endif
