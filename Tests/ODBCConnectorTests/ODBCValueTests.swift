#if ODBC
import CUnixODBC
import Foundation
@testable import ODBCConnector
import SyncCore
import Testing

/// Value conversion from the values drivers hand over, per each type's documented behaviour.
@Suite struct ODBCValueTests {
    /// SQL Server `DATETIME` ("datetime (Transact-SQL)": 1/300 s ticks shown as .000, .003, .007): every tick
    /// read as its millisecond and cast back to `DATETIME` is the same tick, so a checkpoint equals its row.
    @Test func everyDateTimeTickRoundTripsThroughItsMillisecond() {
        for tick in 0..<300 {
            #expect(ODBCValues.dateTimeTicks(milliseconds: ODBCValues.dateTimeMilliseconds(ticks: tick)) == tick, "tick \(tick)")
        }
        #expect((0..<6).map(ODBCValues.dateTimeMilliseconds(ticks:)) == [0, 3, 7, 10, 13, 17])
        #expect(ODBCValues.dateTimeMilliseconds(ticks: 299) == 997)
    }

    /// Any driver rounding lands on the tick's documented millisecond; 999 ms rounds into the next second,
    /// as SQL Server's own conversion does.
    @Test func dateTimeValuesMoveOntoTheirTick() {
        func at(_ micro: Int, second: Int = 59) -> LocalDateTime { LocalDateTime(year: 2024, month: 12, day: 31, hour: 23, minute: 59, second: second, microsecond: micro) }
        #expect(ODBCValues.sqlServerDateTime(at(3_333)) == at(3_000))
        #expect(ODBCValues.sqlServerDateTime(at(2_000)) == at(3_000))
        #expect(ODBCValues.sqlServerDateTime(at(6_667)) == at(7_000))
        #expect(ODBCValues.sqlServerDateTime(at(998_000)) == at(997_000))
        #expect(ODBCValues.sqlServerDateTime(at(999_000)) == LocalDateTime(year: 2025, month: 1, day: 1))
    }

    /// `DATETIMEOFFSET` (and Oracle `TIMESTAMP WITH TIME ZONE` text) to UTC; the same wall time on both sides
    /// of New York's 2024 fall-back is an hour apart, and São Paulo's -03:00 is applied as written.
    @Test func offsetTimestampsBecomeUTCInstantsAcrossDST() throws {
        let daylight = try #require(ODBCValues.instant(offsetText: "2024-11-03 01:30:00.1234567 -04:00"))
        let standard = try #require(ODBCValues.instant(offsetText: "2024-11-03 01:30:00.1234567 -05:00"))
        #expect(daylight.description.hasPrefix("2024-11-03T05:30:00.123456"))
        #expect(standard.seconds - daylight.seconds == 3600)
        let saoPaulo = try #require(ODBCValues.instant(offsetText: "2024-03-01 21:00:00 -03:00"))
        #expect(saoPaulo == Instant(seconds: LocalDateTime(year: 2024, month: 3, day: 2).secondsAsUTC))
        #expect(ODBCValues.instant(offsetText: "2024-03-01 21:00:00 +14:00")?.seconds == LocalDateTime(year: 2024, month: 3, day: 1, hour: 7).secondsAsUTC)
        #expect(ODBCValues.instant(offsetText: "2024-03-01 21:00:00") == nil)
        #expect(ODBCValues.instant(offsetText: "2024-03-01 21:00:00 +15:00") == nil)
    }

    /// `MONEY`, `SMALLMONEY`, `DECIMAL(38,s)` and Oracle `NUMBER` as the driver's text: exact, never a double.
    @Test func decimalsStayExactText() {
        #expect(ODBCValues.decimal("922337203685477.5807") == .decimal("922337203685477.5807"))
        #expect(ODBCValues.decimal("-214748.3648") == .decimal("-214748.3648"))
        #expect(ODBCValues.decimal("12345678901234567890123456789012345678") == .decimal("12345678901234567890123456789012345678"))
        #expect(ODBCValues.decimal("0.00000000000000000000000000000000000001") == .decimal("0.00000000000000000000000000000000000001"))
        #expect(ODBCValues.decimal(".5") == .decimal("0.5"))
        #expect(ODBCValues.decimal("-.25") == .decimal("-0.25"))
        #expect(ODBCValues.decimal(" 19.90 ") == .decimal("19.90"))
        #expect(ODBCValues.decimal("1,5") == .text("1,5"))
        #expect(ODBCValues.decimal("1E+2") == .text("1E+2"))
    }

    /// `NVARCHAR` arrives as UTF-16 (`SQL_C_WCHAR`) and leaves as UTF-8; `NCHAR`/`CHAR` padding is cut,
    /// inner spaces kept; an unpaired surrogate is not text.
    @Test func nationalAndPaddedCharacterData() {
        let units = Array("café ☕ 𝄞  ".utf16)
        #expect(units.withUnsafeBufferPointer { ODBCValues.text(utf16: $0, isFixedLength: true) } == .text("café ☕ 𝄞"))
        #expect(units.withUnsafeBufferPointer { ODBCValues.text(utf16: $0, isFixedLength: false) } == .text("café ☕ 𝄞  "))
        let broken: [UInt16] = [0x0061, 0xD800, 0x0062]
        guard case .bytes = broken.withUnsafeBufferPointer({ ODBCValues.text(utf16: $0, isFixedLength: false) }) else {
            Issue.record("an unpaired surrogate became text")
            return
        }
        let padded = Array("PDV 01   ".utf8)
        #expect(padded.withUnsafeBytes { ODBCValues.text($0, isFixedLength: true) } == .text("PDV 01"))
        let latin1: [UInt8] = [0x63, 0x61, 0x66, 0xE9]
        #expect(latin1.withUnsafeBytes { ODBCValues.text($0, isFixedLength: false) } == .bytes(Data(latin1)))
    }

    /// `UNIQUEIDENTIFIER` as SQL Server prints it; `SQL_TIMESTAMP_STRUCT` nanoseconds to microseconds; a
    /// zero date stays text for the mapper to quarantine.
    @Test func guidsTimestampsAndZeroDates() {
        #expect(ODBCValues.guid("6f9619ff-8b86-d011-b42d-00c04fc964ff") == .text("6F9619FF-8B86-D011-B42D-00C04FC964FF"))
        #expect(ODBCValues.localDateTime(year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 59, fraction: 123_456_700)
                == .localDateTime(LocalDateTime(year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 59, microsecond: 123_456)))
        #expect(ODBCValues.localDateTime(year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, fraction: 0) == .text("0000-00-00 00:00:00"))
        #expect(ODBCValues.preciseTimestamp("2024-03-01 10:00:00.1234567") == .text("2024-03-01 10:00:00.1234567"))
    }

    /// How each type is fetched, from `SQLDescribeCol` as FreeTDS, psqlODBC and Oracle's driver report them.
    @Test(arguments: [
        (Int(SQL_TYPE_TIMESTAMP), 23, 3, "datetime", SQLDialect.sqlserver, ODBCColumnKind.timestamp(zoned: false, dateTimeTicks: true)),
        (Int(SQL_TYPE_TIMESTAMP), 16, 0, "smalldatetime", .sqlserver, .timestamp(zoned: false, dateTimeTicks: false)),
        (Int(SQL_TYPE_TIMESTAMP), 27, 7, "datetime2", .sqlserver, .preciseTimestamp),
        (Int(ERP_SQL_SS_TIMESTAMPOFFSET), 34, 7, "datetimeoffset", .sqlserver, .offsetTimestamp),
        (Int(SQL_DECIMAL), 19, 4, "money", .sqlserver, .decimal(bytes: 46)),
        (Int(SQL_NUMERIC), 38, 10, "decimal", .sqlserver, .decimal(bytes: 46)),
        (Int(SQL_BIT), 1, 0, "bit", .sqlserver, .bit),
        (Int(SQL_GUID), 36, 0, "uniqueidentifier", .sqlserver, .guid),
        (Int(SQL_WVARCHAR), 40, 0, "nvarchar", .sqlserver, .wideText(bytes: 82, fixed: false)),
        (Int(SQL_WCHAR), 10, 0, "nchar", .sqlserver, .wideText(bytes: 22, fixed: true)),
        (Int(SQL_CHAR), 8, 0, "char", .sqlserver, .text(bytes: 33, fixed: true)),
        (Int(SQL_TYPE_TIMESTAMP), 26, 6, "timestamptz", .postgresql, .timestamp(zoned: true, dateTimeTicks: false)),
        (Int(SQL_TYPE_TIMESTAMP), 19, 0, "DATE", .oracle, .timestamp(zoned: false, dateTimeTicks: false)),
        (Int(SQL_TYPE_TIMESTAMP), 29, 9, "TIMESTAMP WITH TIME ZONE", .oracle, .offsetTimestamp),
        (Int(SQL_TYPE_TIMESTAMP), 26, 6, "TIMESTAMP WITH LOCAL TIME ZONE", .oracle, .timestamp(zoned: true, dateTimeTicks: false)),
        (Int(SQL_DOUBLE), 15, 0, "NUMBER", .oracle, .decimal(bytes: 64)),
        (Int(SQL_DOUBLE), 15, 0, "float", .sqlserver, .double),
    ])
    func columnKinds(sqlType: Int, size: Int, digits: Int, typeName: String, dialect: SQLDialect, expected: ODBCColumnKind) {
        let (kind, isLong) = ODBCColumnKind.of(sqlType: sqlType, size: size, digits: digits, typeName: typeName, dialect: dialect)
        #expect(kind == expected)
        #expect(!isLong)
    }

    /// `NVARCHAR(MAX)` (size 0) and CLOBs are read whole, row by row, never cut to a bound buffer.
    @Test func unboundedColumnsAreLong() {
        #expect(ODBCColumnKind.of(sqlType: Int(SQL_WVARCHAR), size: 0, digits: 0, typeName: "nvarchar", dialect: .sqlserver).isLong)
        #expect(ODBCColumnKind.of(sqlType: Int(SQL_WLONGVARCHAR), size: 1_073_741_823, digits: 0, typeName: "ntext", dialect: .sqlserver).isLong)
    }
}
#endif
