#if ODBC
import CUnixODBC
import Foundation
import SyncCore
import Synchronization

/// One unixODBC connection (`SQLHDBC`).
///
/// Every method blocks and must run on a thread of the source's own pool. Rows are fetched with block
/// cursors: column-wise bound buffers (`SQL_ATTR_ROW_BIND_TYPE = SQL_BIND_BY_COLUMN`) holding up to
/// ``rowsetBytes`` per `SQLFetch` (`SQL_ATTR_ROW_ARRAY_SIZE` rows), so a page costs a few driver calls and
/// memory stays bounded whatever the row count. A statement with a column too long to bind (`NVARCHAR(MAX)`,
/// CLOB, or a value longer than its buffer) is read row by row with `SQLGetData` instead, whole.
///
/// `@unchecked Sendable`: a connection is leased to one caller at a time (see ``ODBCSource``), and ODBC lets
/// a handle move between threads as long as calls never overlap; the one call made from another thread is
/// `SQLCancel`, which the ODBC reference allows on a statement running synchronously.
final class ODBCConnection: @unchecked Sendable {
    private let dbc: SQLHDBC
    private let settings: ODBCSettings
    /// `DBMS name version` from `SQLGetInfo`.
    let serverVersion: String

    /// Bytes of bound buffers per `SQLFetch` (rows × row width, at most 1000 rows).
    static let rowsetBytes = 4 << 20

    /// The process's ODBC 3 environment. `nonisolated(unsafe)`: set once, then only passed to
    /// `SQLAllocHandle`, which unixODBC serialises on the environment.
    nonisolated(unsafe) private static let environment: SQLHENV? = {
        var env: SQLHANDLE?
        guard SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_ENV), nil, &env) == SQLRETURN(SQL_SUCCESS), let env else { return nil }
        _ = erp_odbc_set_env_version3(env)
        return env
    }()

    /// Connects with `SQLDriverConnect` and runs the session set-up.
    /// - Throws: ``SyncFailure`` (`AUTH_FAILED`, `SOURCE_UNAVAILABLE`, `DRIVER_NOT_FOUND` …).
    init(settings: ODBCSettings) throws(SyncFailure) {
        let text = try settings.connectionString()
        var handle: SQLHANDLE?
        guard let env = Self.environment, SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_DBC), env, &handle) == SQLRETURN(SQL_SUCCESS), let handle else {
            throw SyncFailure(code: .sourceUnavailable, message: "unixODBC could not allocate a connection", isTransient: true)
        }
        _ = erp_odbc_set_connect_integer(handle, SQLINTEGER(SQL_ATTR_LOGIN_TIMEOUT), SQLULEN(settings.connectTimeoutSeconds))
        _ = erp_odbc_set_connect_integer(handle, SQLINTEGER(SQL_ATTR_CONNECTION_TIMEOUT), SQLULEN(settings.readTimeoutSeconds))
        let rc = Self.withDriverString(text) { string, length in
            SQLDriverConnect(handle, nil, string, SQLSMALLINT(length), nil, 0, nil, SQLUSMALLINT(SQL_DRIVER_NOPROMPT))
        }
        guard Self.succeeded(rc) else {
            let failure = SyncFailure.odbc(Self.diagnostics(SQLSMALLINT(SQL_HANDLE_DBC), handle), context: connectingContext, settings: settings)
            SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_DBC), handle)
            throw failure
        }
        dbc = handle
        self.settings = settings
        serverVersion = [SQL_DBMS_NAME, SQL_DBMS_VER].map { Self.info(handle, SQLUSMALLINT($0)) }.joined(separator: " ")
        do {
            for statement in settings.sessionSetup { _ = try query(SQLStatement(sql: statement), cancellation: ODBCCancellation()) }
        } catch {
            close()
            throw error
        }
    }

    /// Calls `body` with `text` as UTF-8 for an ODBC string argument and its length in bytes, the bytes followed by
    /// a NUL outside that length. The length is what the ODBC reference says counts, but MariaDB Connector/ODBC 3.1.15
    /// (Debian 12, under unixODBC 2.3.11) reads a connection string past it when the last attribute is unbraced and
    /// has no `;`: `…;PWD=erp_sync` followed by other heap bytes was sent as a longer, wrong password, an
    /// intermittent `AUTH_FAILED` (a packet capture showed a scramble of neither the password nor any part of the
    /// string; the same string followed by non-NUL bytes fails every time). The NUL ends every such read where the
    /// string ends. Used for the connection string and the statement text; bound parameters travel with their
    /// length indicator, which the drivers honour.
    static func withDriverString<R>(_ text: String, _ body: (UnsafeMutablePointer<SQLCHAR>, Int) -> R) -> R {
        var bytes = Array(text.utf8)
        bytes.append(0)
        let length = bytes.count - 1
        return bytes.withUnsafeMutableBufferPointer { body($0.baseAddress!, length) }
    }

    private static func info(_ dbc: SQLHDBC, _ type: SQLUSMALLINT) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        var length: SQLSMALLINT = 0
        guard succeeded(SQLGetInfo(dbc, type, &buffer, SQLSMALLINT(buffer.count), &length)) else { return "?" }
        return String(decoding: buffer.prefix(Int(min(Int(length), buffer.count - 1))), as: UTF8.self)
    }

    static func succeeded(_ rc: SQLRETURN) -> Bool { rc == SQLRETURN(SQL_SUCCESS) || rc == SQLRETURN(SQL_SUCCESS_WITH_INFO) }

    /// The diagnostic records of a handle: SQLSTATE, native error, message.
    static func diagnostics(_ type: SQLSMALLINT, _ handle: SQLHANDLE) -> [ODBCDiagnostic] {
        var records: [ODBCDiagnostic] = []
        for index in 1...8 {
            var state = [UInt8](repeating: 0, count: 6)
            var native: SQLINTEGER = 0
            var message = [UInt8](repeating: 0, count: 1024)
            var length: SQLSMALLINT = 0
            guard succeeded(SQLGetDiagRec(type, handle, SQLSMALLINT(index), &state, &native, &message, SQLSMALLINT(message.count), &length)) else { break }
            records.append(ODBCDiagnostic(state: String(decoding: state.prefix(5), as: UTF8.self), native: Int(native),
                                          message: String(decoding: message.prefix(min(Int(length), message.count - 1)), as: UTF8.self)))
        }
        return records
    }

    /// Runs a read with bound parameters and returns its rows (one ``SourceValue`` per select-list column),
    /// checking `cancellation` between fetches; a cancel from another task stops a blocked call with `SQLCancel`.
    /// - Throws: ``SyncFailure``; `CANCELLED` after a cancel. After any throw the connection must be closed.
    ///
    /// Statements run with `SQLExecDirect`, not `SQLPrepare`: FreeTDS then sends a parameterised read as one
    /// `sp_executesql` call instead of a prepare round trip, and servers cache the plan by text anyway.
    func query(_ statement: SQLStatement, cancellation: ODBCCancellation) throws(SyncFailure) -> [[SourceValue]] {
        var handle: SQLHANDLE?
        guard SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_STMT), dbc, &handle) == SQLRETURN(SQL_SUCCESS), let stmt = handle else {
            throw SyncFailure.odbc(Self.diagnostics(SQLSMALLINT(SQL_HANDLE_DBC), dbc), context: "starting a read", settings: settings)
        }
        let parameters = ODBCParameters(statement.binds)
        defer {
            SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_STMT), stmt)
            withExtendedLifetime(parameters) {}
        }
        for (index, bind) in parameters.binds.enumerated() {
            let rc = SQLBindParameter(stmt, SQLUSMALLINT(index + 1), SQLSMALLINT(SQL_PARAM_INPUT), bind.cType, bind.sqlType, bind.columnSize,
                                      bind.decimalDigits, bind.buffer, bind.length, bind.indicator)
            guard Self.succeeded(rc) else { throw failure(stmt, "binding parameter \(index + 1)") }
        }
        _ = erp_odbc_set_statement_integer(stmt, SQLINTEGER(SQL_ATTR_QUERY_TIMEOUT), SQLULEN(settings.readTimeoutSeconds))
        guard cancellation.begin(stmt) else { throw ODBCCancellation.cancelled }
        defer { cancellation.end() }
        func execute() -> SQLRETURN { Self.withDriverString(statement.sql) { sql, length in SQLExecDirect(stmt, sql, SQLINTEGER(length)) } }
        let rc = execute()
        guard Self.succeeded(rc) || rc == SQLRETURN(SQL_NO_DATA) else { throw cancellation.isCancelled ? ODBCCancellation.cancelled : failure(stmt, "reading the source") }
        var count: SQLSMALLINT = 0
        SQLNumResultCols(stmt, &count)
        guard count > 0 else { return [] }
        let columns = try describe(stmt, count: Int(count))
        if !columns.contains(where: \.isLong), let rows = try fetchBlocks(stmt, columns.map(\.kind), cancellation) { return rows }
        // A column too long to bind, or a value longer than its buffer: read the statement again, row by row.
        SQLFreeStmt(stmt, SQLUSMALLINT(SQL_CLOSE))
        guard Self.succeeded(execute()) else { throw cancellation.isCancelled ? ODBCCancellation.cancelled : failure(stmt, "reading the source") }
        return try fetchRows(stmt, columns.map(\.kind), cancellation)
    }

    private func describe(_ stmt: SQLHSTMT, count: Int) throws(SyncFailure) -> [(kind: ODBCColumnKind, isLong: Bool)] {
        var columns: [(kind: ODBCColumnKind, isLong: Bool)] = []
        for index in 1...count {
            var name = [UInt8](repeating: 0, count: 256)
            var nameLength: SQLSMALLINT = 0, type: SQLSMALLINT = 0, digits: SQLSMALLINT = 0, nullable: SQLSMALLINT = 0
            var size: SQLULEN = 0
            guard Self.succeeded(SQLDescribeCol(stmt, SQLUSMALLINT(index), &name, SQLSMALLINT(name.count), &nameLength, &type, &size, &digits, &nullable)) else {
                throw failure(stmt, "describing result column \(index)")
            }
            var typeName = [UInt8](repeating: 0, count: 128)
            var typeNameLength: SQLSMALLINT = 0
            _ = SQLColAttribute(stmt, SQLUSMALLINT(index), SQLUSMALLINT(SQL_DESC_TYPE_NAME), &typeName, SQLSMALLINT(typeName.count), &typeNameLength, nil)
            let typeText = String(decoding: typeName.prefix { $0 != 0 }, as: UTF8.self)
            columns.append(ODBCColumnKind.of(sqlType: Int(type), size: Int(clamping: size), digits: Int(digits), typeName: typeText, dialect: settings.dialect))
        }
        return columns
    }

    /// Block-cursor fetch; `nil` when a value did not fit its buffer (the caller reads row by row instead).
    private func fetchBlocks(_ stmt: SQLHSTMT, _ kinds: [ODBCColumnKind], _ cancellation: ODBCCancellation) throws(SyncFailure) -> [[SourceValue]]? {
        let rowBytes = kinds.reduce(0) { $0 + $1.cellBytes + MemoryLayout<SQLLEN>.stride }
        let rowset = max(1, min(1000, Self.rowsetBytes / max(rowBytes, 1)))
        let buffers = kinds.map { UnsafeMutableRawPointer.allocate(byteCount: $0.cellBytes * rowset, alignment: 8) }
        let indicators = kinds.map { _ in UnsafeMutablePointer<SQLLEN>.allocate(capacity: rowset) }
        let fetched = UnsafeMutablePointer<SQLULEN>.allocate(capacity: 1)
        defer {
            SQLFreeStmt(stmt, SQLUSMALLINT(SQL_UNBIND))
            _ = erp_odbc_set_statement_integer(stmt, SQLINTEGER(SQL_ATTR_ROW_ARRAY_SIZE), 1)
            _ = erp_odbc_set_statement_pointer(stmt, SQLINTEGER(SQL_ATTR_ROWS_FETCHED_PTR), nil)
            buffers.forEach { $0.deallocate() }
            indicators.forEach { $0.deallocate() }
            fetched.deallocate()
        }
        _ = erp_odbc_set_statement_integer(stmt, SQLINTEGER(SQL_ATTR_ROW_BIND_TYPE), SQLULEN(SQL_BIND_BY_COLUMN))
        guard Self.succeeded(erp_odbc_set_statement_integer(stmt, SQLINTEGER(SQL_ATTR_ROW_ARRAY_SIZE), SQLULEN(rowset))),
              Self.succeeded(erp_odbc_set_statement_pointer(stmt, SQLINTEGER(SQL_ATTR_ROWS_FETCHED_PTR), fetched)) else {
            throw failure(stmt, "setting up the block cursor")
        }
        for (index, kind) in kinds.enumerated() {
            guard Self.succeeded(SQLBindCol(stmt, SQLUSMALLINT(index + 1), kind.cType, buffers[index], SQLLEN(kind.cellBytes), indicators[index])) else {
                throw failure(stmt, "binding result column \(index + 1)")
            }
        }
        var rows: [[SourceValue]] = []
        while true {
            if cancellation.isCancelled { throw ODBCCancellation.cancelled }
            fetched.pointee = 0
            let rc = SQLFetch(stmt)
            if rc == SQLRETURN(SQL_NO_DATA) { return rows }
            guard Self.succeeded(rc) else { throw cancellation.isCancelled ? ODBCCancellation.cancelled : failure(stmt, "reading the source") }
            for row in 0..<Int(fetched.pointee) {
                var values: [SourceValue] = []
                values.reserveCapacity(kinds.count)
                for (index, kind) in kinds.enumerated() {
                    let indicator = Int(indicators[index][row])
                    let capacity = kind.cellBytes - kind.terminatorBytes
                    // Truncated (01004): longer than its buffer, or of unknown length.
                    if kind.isVariableLength && (indicator == Int(SQL_NO_TOTAL) || indicator > capacity) { return nil }
                    let length = kind.isVariableLength ? max(0, min(indicator, capacity)) : kind.cellBytes
                    let cell = UnsafeRawBufferPointer(start: buffers[index] + row * kind.cellBytes, count: length)
                    values.append(kind.value(cell, indicator: indicator))
                }
                rows.append(values)
            }
        }
    }

    /// Row-at-a-time fetch with `SQLGetData` in chunks: values of any length, read whole.
    private func fetchRows(_ stmt: SQLHSTMT, _ kinds: [ODBCColumnKind], _ cancellation: ODBCCancellation) throws(SyncFailure) -> [[SourceValue]] {
        var rows: [[SourceValue]] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if cancellation.isCancelled { throw ODBCCancellation.cancelled }
            let rc = SQLFetch(stmt)
            if rc == SQLRETURN(SQL_NO_DATA) { return rows }
            guard Self.succeeded(rc) else { throw cancellation.isCancelled ? ODBCCancellation.cancelled : failure(stmt, "reading the source") }
            var values: [SourceValue] = []
            for (index, kind) in kinds.enumerated() {
                var data: [UInt8] = []
                var isNull = false
                while true {
                    var indicator: SQLLEN = 0
                    let rc = chunk.withUnsafeMutableBytes { SQLGetData(stmt, SQLUSMALLINT(index + 1), kind.cType, $0.baseAddress, SQLLEN($0.count), &indicator) }
                    if rc == SQLRETURN(SQL_NO_DATA) { break }
                    guard Self.succeeded(rc) else { throw failure(stmt, "reading result column \(index + 1)") }
                    if indicator == SQLLEN(SQL_NULL_DATA) { isNull = true; break }
                    let room = kind.isVariableLength ? chunk.count - kind.terminatorBytes : kind.cellBytes
                    let available = indicator == SQLLEN(SQL_NO_TOTAL) ? room : min(Int(indicator), room)
                    data.append(contentsOf: chunk[0..<available])
                    if rc == SQLRETURN(SQL_SUCCESS) || !kind.isVariableLength { break }
                }
                values.append(data.withUnsafeBytes { kind.value($0, indicator: isNull ? Int(SQL_NULL_DATA) : $0.count) })
            }
            rows.append(values)
        }
    }

    private func failure(_ stmt: SQLHSTMT, _ context: String) -> SyncFailure {
        SyncFailure.odbc(Self.diagnostics(SQLSMALLINT(SQL_HANDLE_STMT), stmt), context: context, settings: settings)
    }

    /// Disconnects.
    func close() {
        SQLDisconnect(dbc)
        SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_DBC), dbc)
    }
}

/// One diagnostic record (`SQLGetDiagRec`).
struct ODBCDiagnostic: Sendable {
    /// The five-character SQLSTATE (`28000`, `08S01`, `42S02`).
    var state: String
    /// The driver's or server's own error number (SQL Server 18456, MariaDB 1045 …).
    var native: Int
    /// The message, prefixed by the driver (`[FreeTDS][SQL Server]…`).
    var message: String
}

/// Whether a call was cancelled, and the statement to `SQLCancel` while one runs.
final class ODBCCancellation: Sendable {
    private struct State {
        var isCancelled = false
        var running: UInt?
    }
    private let state = Mutex(State())

    static let cancelled = SyncFailure(code: .cancelled, message: "reading the source: cancelled", isTransient: false)

    var isCancelled: Bool { state.withLock { $0.isCancelled } }

    /// The statement starts running; `false` when the call was cancelled already.
    func begin(_ stmt: SQLHSTMT) -> Bool {
        state.withLock { state in
            state.running = UInt(bitPattern: stmt)
            return !state.isCancelled
        }
    }

    /// The statement no longer runs; waits for a `SQLCancel` in progress.
    func end() { state.withLock { $0.running = nil } }

    /// Marks the call cancelled and cancels its running statement (`SQLCancel` from this thread, under the lock
    /// so the statement cannot be freed meanwhile).
    func cancel() {
        state.withLock { state in
            state.isCancelled = true
            if let running = state.running, let stmt = SQLHSTMT(bitPattern: running) { SQLCancel(stmt) }
        }
    }
}

/// Parameter buffers for one execution: values from checkpoints and config travel only here.
final class ODBCParameters {
    struct Bind {
        var cType: SQLSMALLINT
        var sqlType: SQLSMALLINT
        var columnSize: SQLULEN
        var decimalDigits: SQLSMALLINT
        var buffer: UnsafeMutableRawPointer
        var length: SQLLEN
        var indicator: UnsafeMutablePointer<SQLLEN>
    }
    private(set) var binds: [Bind] = []

    /// Binds each value as the SQL type it stands for: integers as BIGINT, exact decimals as DECIMAL text
    /// (precision and scale from the digits), date-times as TIMESTAMP with microseconds (instants in UTC, the
    /// session zone), ASCII text as VARCHAR and other text as UTF-16 WVARCHAR (a VARCHAR parameter keeps a
    /// SQL Server index on a VARCHAR key usable), booleans as BIT, bytes as VARBINARY.
    init(_ values: [SourceValue]) {
        for value in values {
            switch value {
            case .null: add(SQLSMALLINT(ERP_SQL_C_CHAR), SQLSMALLINT(SQL_VARCHAR), size: 1, digits: 0, bytes: [0], indicator: SQLLEN(SQL_NULL_DATA))
            case .integer(let v): add(SQLSMALLINT(ERP_SQL_C_SBIGINT), SQLSMALLINT(SQL_BIGINT), size: 19, digits: 0, bytes: withUnsafeBytes(of: v, Array.init))
            case .double(let v): add(SQLSMALLINT(ERP_SQL_C_DOUBLE), SQLSMALLINT(SQL_DOUBLE), size: 15, digits: 0, bytes: withUnsafeBytes(of: v, Array.init))
            case .bool(let v): add(SQLSMALLINT(ERP_SQL_C_BIT), SQLSMALLINT(SQL_BIT), size: 1, digits: 0, bytes: [v ? 1 : 0])
            case .decimal(let v):
                let digits = v.filter(\.isNumber).count
                let scale = v.split(separator: ".").dropFirst().first?.count ?? 0
                add(SQLSMALLINT(ERP_SQL_C_CHAR), SQLSMALLINT(SQL_DECIMAL), size: max(digits, 1), digits: scale, bytes: Array(v.utf8))
            case .text(let v) where v.utf8.allSatisfy({ $0 < 0x80 }):
                add(SQLSMALLINT(ERP_SQL_C_CHAR), SQLSMALLINT(SQL_VARCHAR), size: max(v.utf8.count, 1), digits: 0, bytes: Array(v.utf8))
            case .text(let v):
                let units = Array(v.utf16)
                add(SQLSMALLINT(ERP_SQL_C_WCHAR), SQLSMALLINT(SQL_WVARCHAR), size: max(units.count, 1), digits: 0,
                    bytes: units.withUnsafeBytes(Array.init))
            case .bytes(let v): add(SQLSMALLINT(ERP_SQL_C_BINARY), SQLSMALLINT(SQL_VARBINARY), size: max(v.count, 1), digits: 0, bytes: Array(v))
            case .localDateTime(let v): addTimestamp(v)
            case .instant(let v): addTimestamp(LocalDateTime(instant: v))
            }
        }
    }

    private func addTimestamp(_ v: LocalDateTime) {
        var t = SQL_TIMESTAMP_STRUCT()
        t.year = SQLSMALLINT(v.year)
        t.month = SQLUSMALLINT(v.month)
        t.day = SQLUSMALLINT(v.day)
        t.hour = SQLUSMALLINT(v.hour)
        t.minute = SQLUSMALLINT(v.minute)
        t.second = SQLUSMALLINT(v.second)
        t.fraction = SQLUINTEGER(v.microsecond * 1000)
        add(SQLSMALLINT(ERP_SQL_C_TYPE_TIMESTAMP), SQLSMALLINT(SQL_TYPE_TIMESTAMP), size: 26, digits: 6, bytes: withUnsafeBytes(of: t, Array.init))
    }

    private func add(_ cType: SQLSMALLINT, _ sqlType: SQLSMALLINT, size: Int, digits: Int, bytes: [UInt8], indicator: SQLLEN? = nil) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        let length = UnsafeMutablePointer<SQLLEN>.allocate(capacity: 1)
        length.pointee = indicator ?? SQLLEN(bytes.count)
        binds.append(Bind(cType: cType, sqlType: sqlType, columnSize: SQLULEN(size), decimalDigits: SQLSMALLINT(digits), buffer: buffer,
                          length: SQLLEN(bytes.count), indicator: length))
    }

    deinit {
        for bind in binds {
            bind.buffer.deallocate()
            bind.indicator.deallocate()
        }
    }
}

/// The context of failures while connecting (``SyncFailure/odbc(_:context:settings:)`` reads a lost link there as
/// an unreachable server).
let connectingContext = "connecting"

extension SyncFailure {
    /// Classifies ODBC diagnostics by SQLSTATE (ODBC reference, "Appendix A: ODBC Error Codes") and the
    /// messages drivers use for the same cases: `28000` or a driver's "password authentication failed",
    /// "Access denied", "Login failed" is `AUTH_FAILED`; `IM002`/`IM003` or unixODBC's "Can't open lib" (no
    /// such driver or DSN) is `DRIVER_NOT_FOUND`; `42S02`/`42P01` `TABLE_NOT_FOUND`, `42S22`/`42703` `COLUMN_NOT_FOUND`, all permanent.
    /// `08001` (cannot connect), and any `08…` while connecting (FreeTDS: 08S01 "Unable to connect"), is
    /// `SOURCE_UNAVAILABLE`; any other `08…` (link failure, connection killed),
    /// `HYT00`/`HYT01` (timeout), `40001`/`40P01` (serialization failure, deadlock), `57P0x` (PostgreSQL
    /// terminated the backend), lost connections (MariaDB 2006/2013, FreeTDS 20004/20006/20017 and their
    /// messages) are transient; `HY008` is `CANCELLED`. The SQLSTATE of the first diagnostic that is no warning
    /// (`01…`) is kept (``SyncFailure/sqlState``): class `22` is a row the database cannot compute.
    static func odbc(_ records: [ODBCDiagnostic], context: String, settings: ODBCSettings) -> SyncFailure {
        let first = records.first(where: { !$0.state.hasPrefix("01") }) ?? records.first ?? ODBCDiagnostic(state: "HY000", native: 0, message: "no diagnostics")
        var failure = classified(first, among: records, context: context, settings: settings)
        failure.sqlState = first.state
        return failure
    }

    /// The failure `first` (the diagnostic ``odbc(_:context:settings:)`` reads, of `records`) stands for.
    private static func classified(_ first: ODBCDiagnostic, among records: [ODBCDiagnostic], context: String, settings: ODBCSettings) -> SyncFailure {
        let text = "\(context): \(first.message) [\(first.state)\(first.native != 0 ? "/\(first.native)" : "")]"
        let message = first.message.lowercased()
        let lostConnection = ["server closed the connection", "lost connection", "gone away", "terminating connection", "connection reset",
                              "broken pipe", "could not send data", "communication link", "no connection to the server", "unexpected eof"]
            .contains { message.contains($0) } || [2006, 2013, 20004, 20006, 20017].contains(first.native)
        if first.state == "28000" || ["password authentication failed", "access denied", "login failed"].contains(where: { message.contains($0) }) {
            return SyncFailure(code: .authFailed, message: "\(context): authentication failed for \(settings.target): \(first.message)", isTransient: false)
        }
        if records.contains(where: { ["IM002", "IM003"].contains($0.state) }) || message.contains("can't open lib") {
            return SyncFailure(code: .driverNotFound, message: "\(text): the ODBC driver or DSN is not installed (see `odbcinst -q -d`)", isTransient: false)
        }
        switch first.state {
        case "42S02", "42P01": return SyncFailure(code: .tableNotFound, message: "\(text) in \(settings.target)", isTransient: false)
        case "42S22", "42703": return SyncFailure(code: .columnNotFound, message: "\(text) in \(settings.target)", isTransient: false)
        case "HY008": return SyncFailure(code: .cancelled, message: "\(context): cancelled", isTransient: false)
        case let state where state == "08001" && !lostConnection || state.hasPrefix("08") && context == connectingContext:
            return SyncFailure(code: .sourceUnavailable, message: "\(text) (\(settings.target))", isTransient: true)
        default:
            let transient = first.state.hasPrefix("08") || ["HYT00", "HYT01", "40001", "40P01", "57P01", "57P02", "57P03"].contains(first.state) || lostConnection
            return SyncFailure(code: .sourceQueryFailed, message: "\(text) (\(settings.target))", isTransient: transient)
        }
    }
}
#endif
