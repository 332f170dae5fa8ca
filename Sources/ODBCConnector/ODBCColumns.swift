#if ODBC
import CUnixODBC
import Foundation
import SyncCore

/// How a result column is fetched (its C type and cell size) and what it becomes, decided from
/// `SQLDescribeCol` and `SQL_DESC_TYPE_NAME`. Everything that must stay exact travels as text.
enum ODBCColumnKind: Equatable {
    /// TINYINT … BIGINT as `SQL_C_SBIGINT`: `.integer`.
    case integer
    /// BIT as `SQL_C_BIT`: `.bool`.
    case bit
    /// REAL, FLOAT, DOUBLE as `SQL_C_DOUBLE`: `.double` (the mapper rounds money to the currency scale).
    case double
    /// DECIMAL, NUMERIC, MONEY, SMALLMONEY, Oracle NUMBER (also when a driver reports it as FLOAT): the
    /// driver's text, `.decimal` digit for digit, never a double.
    case decimal(bytes: Int)
    /// DATE, DATETIME, SMALLDATETIME, DATETIME2(≤ 6), Oracle DATE as `SQL_TIMESTAMP_STRUCT`: a naive date-time;
    /// `zoned` (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`, Oracle `WITH LOCAL TIME ZONE`, read in the pinned
    /// UTC session) an instant; `dateTimeTicks` SQL Server `DATETIME`, moved onto its 1/300 s tick.
    case timestamp(zoned: Bool, dateTimeTicks: Bool)
    /// A timestamp with more than 6 fractional digits (DATETIME2(7), Oracle TIMESTAMP(9)), or any SQLite
    /// date-time, fetched as text.
    case preciseTimestamp
    /// SQL Server DATETIMEOFFSET, Oracle TIMESTAMP WITH TIME ZONE as text with its offset: a UTC instant.
    case offsetTimestamp
    /// CHAR, VARCHAR, TEXT, CLOB in the client character set (UTF-8); `fixed` trims CHAR padding.
    case text(bytes: Int, fixed: Bool)
    /// NCHAR, NVARCHAR, NTEXT as `SQL_C_WCHAR` (UTF-16); `fixed` trims NCHAR padding.
    case wideText(bytes: Int, fixed: Bool)
    /// UNIQUEIDENTIFIER (`SQL_GUID`) as text.
    case guid
    /// BINARY, VARBINARY, BLOB: `.bytes`.
    case binary(bytes: Int)

    /// The longest cell bound in a block cursor (characters as reported by the driver, times the encoding's
    /// bytes). Longer (or unbounded: `NVARCHAR(MAX)`, CLOB) columns are read row by row with `SQLGetData`.
    static let longestBoundCharacters = 16_384

    /// Decides a column's kind.
    /// - Parameters:
    ///   - sqlType: `SQLDescribeCol`'s data type.
    ///   - size: its column size (characters, digits or bytes; 0 when unknown).
    ///   - digits: its decimal digits (scale, or fractional second digits).
    ///   - typeName: `SQL_DESC_TYPE_NAME` (`datetime`, `timestamptz`, `TIMESTAMP WITH TIME ZONE`).
    ///   - dialect: the source's dialect (Oracle's approximate numbers are read as text).
    /// - Returns: the kind, and whether the column is too long for a bound buffer.
    static func of(sqlType: Int, size: Int, digits: Int, typeName: String, dialect: SQLDialect) -> (kind: ODBCColumnKind, isLong: Bool) {
        let name = typeName.lowercased()
        let characters = size > 0 ? size : longestBoundCharacters + 1
        let isLong = size <= 0 || size > longestBoundCharacters
        switch sqlType {
        case Int(SQL_TINYINT), Int(SQL_SMALLINT), Int(SQL_INTEGER), Int(SQL_BIGINT):
            return (.integer, false)
        case Int(SQL_BIT): return (.bit, false)
        case Int(SQL_REAL), Int(SQL_FLOAT), Int(SQL_DOUBLE):
            // Oracle's ODBC driver reports NUMBER without precision as a float: text keeps its 38 digits.
            return dialect.timestampBindType == "DATE" ? (.decimal(bytes: 64), false) : (.double, false)
        case Int(SQL_DECIMAL), Int(SQL_NUMERIC):
            return (.decimal(bytes: max(size, 38) + 8), false)
        case Int(SQL_TYPE_DATE), Int(SQL_TYPE_TIMESTAMP), Int(SQL_DATETIME), Int(SQL_TIMESTAMP):
            if name.contains("with time zone") && !name.contains("local") { return (.offsetTimestamp, false) }
            // SQLite keeps date-times as text: read back as that text, a checkpoint compares equal to what is
            // stored (a timestamp parameter would be converted to text with a fraction and sort after it).
            if digits > 6 || dialect.name == "sqlite" { return (.preciseTimestamp, false) }
            let zoned = name.contains("timestamptz") || name.contains("local time zone") || (dialect.name == "mysql" && name == "timestamp")
            return (.timestamp(zoned: zoned, dateTimeTicks: dialect.name == "sqlserver" && name == "datetime"), false)
        case Int(ERP_SQL_SS_TIMESTAMPOFFSET): return (.offsetTimestamp, false)
        case Int(SQL_GUID): return (.guid, false)
        case Int(SQL_WCHAR), Int(SQL_WVARCHAR), Int(SQL_WLONGVARCHAR):
            return (.wideText(bytes: (min(characters, longestBoundCharacters) + 1) * 2, fixed: sqlType == Int(SQL_WCHAR)), isLong)
        case Int(SQL_BINARY), Int(SQL_VARBINARY), Int(SQL_LONGVARBINARY):
            return (.binary(bytes: min(characters, longestBoundCharacters * 4)), isLong)
        case Int(SQL_CHAR), Int(SQL_VARCHAR), Int(SQL_LONGVARCHAR):
            return (.text(bytes: min(characters, longestBoundCharacters) * 4 + 1, fixed: sqlType == Int(SQL_CHAR)), isLong)
        default:
            // TIME, INTERVAL, XML and driver-specific types: their text.
            return (.text(bytes: min(characters, longestBoundCharacters) * 4 + 1, fixed: false), isLong)
        }
    }

    /// The C type requested from the driver.
    var cType: SQLSMALLINT {
        switch self {
        case .integer: SQLSMALLINT(ERP_SQL_C_SBIGINT)
        case .bit: SQLSMALLINT(ERP_SQL_C_BIT)
        case .double: SQLSMALLINT(ERP_SQL_C_DOUBLE)
        case .timestamp: SQLSMALLINT(ERP_SQL_C_TYPE_TIMESTAMP)
        case .wideText: SQLSMALLINT(ERP_SQL_C_WCHAR)
        case .binary: SQLSMALLINT(ERP_SQL_C_BINARY)
        case .decimal, .preciseTimestamp, .offsetTimestamp, .text, .guid: SQLSMALLINT(ERP_SQL_C_CHAR)
        }
    }

    /// Bytes of one bound cell (character cells include the terminator).
    var cellBytes: Int {
        switch self {
        case .integer, .double: 8
        case .bit: 1
        case .timestamp: MemoryLayout<SQL_TIMESTAMP_STRUCT>.stride
        case .preciseTimestamp: 40
        case .offsetTimestamp: 48
        case .guid: 40
        case .decimal(let bytes), .text(let bytes, _), .wideText(let bytes, _), .binary(let bytes): bytes
        }
    }

    /// Whether cells have a length of their own (character and binary data), as opposed to fixed-size structs.
    var isVariableLength: Bool {
        switch self {
        case .integer, .bit, .double, .timestamp: false
        default: true
        }
    }

    /// Bytes of the terminator the driver writes after character data (0 for other types).
    var terminatorBytes: Int {
        switch self {
        case .wideText: 2
        case .decimal, .preciseTimestamp, .offsetTimestamp, .text, .guid: 1
        default: 0
        }
    }

    /// One cell's value.
    /// - Parameters:
    ///   - cell: the cell's bytes as the driver wrote them (character data without its terminator).
    ///   - indicator: the length/indicator (`SQL_NULL_DATA` for NULL).
    func value(_ cell: UnsafeRawBufferPointer, indicator: Int) -> SourceValue {
        if indicator == Int(SQL_NULL_DATA) { return .null }
        func text() -> String { String(decoding: cell, as: UTF8.self) }
        switch self {
        case .integer: return .integer(cell.loadUnaligned(as: Int64.self))
        case .bit: return .bool(cell[0] != 0)
        case .double: return .double(cell.loadUnaligned(as: Double.self))
        case .decimal: return ODBCValues.decimal(text())
        case .timestamp(let zoned, let ticks):
            let t = cell.loadUnaligned(as: SQL_TIMESTAMP_STRUCT.self)
            let value = ODBCValues.localDateTime(year: Int(t.year), month: Int(t.month), day: Int(t.day), hour: Int(t.hour),
                                                 minute: Int(t.minute), second: Int(t.second), fraction: Int(t.fraction))
            guard case .localDateTime(let local) = value else { return value }
            if zoned { return .instant(Instant(seconds: local.secondsAsUTC, microsecond: local.microsecond)) }
            return ticks ? .localDateTime(ODBCValues.sqlServerDateTime(local)) : value
        case .preciseTimestamp: return ODBCValues.preciseTimestamp(text())
        case .offsetTimestamp: return ODBCValues.instant(offsetText: text()).map(SourceValue.instant) ?? .text(text())
        case .text(_, let fixed): return ODBCValues.text(cell, isFixedLength: fixed)
        case .wideText(_, let fixed):
            return cell.withMemoryRebound(to: UInt16.self) { ODBCValues.text(utf16: $0, isFixedLength: fixed) }
        case .guid: return ODBCValues.guid(text())
        case .binary: return .bytes(Data(cell))
        }
    }
}
#endif
