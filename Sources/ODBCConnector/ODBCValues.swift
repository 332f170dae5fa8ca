#if ODBC
import Foundation
public import SyncCore

/// Turns the values ODBC drivers hand over into exact ``SourceValue``s, per each type's documented
/// behaviour. Pure functions: the unit tests feed them the documented wire values.
public enum ODBCValues {
    /// SQL Server `DATETIME` keeps time in ticks of 1/300 s, shown rounded to .000, .003 or .007 s
    /// ("datetime (Transact-SQL)", Accuracy). The millisecond a tick reads as: `round(ticks × 10 / 3)`.
    public static func dateTimeMilliseconds(ticks: Int) -> Int { (ticks * 1000 + 150) / 300 }

    /// The tick a millisecond value is stored as when converted to `DATETIME` (rounded to the nearest
    /// 1/300 s, as `CAST(? AS DATETIME)` does); 1000 ms is the next second's tick 0.
    public static func dateTimeTicks(milliseconds: Int) -> Int { (milliseconds * 300 + 500) / 1000 }

    /// A SQL Server `DATETIME` as `DATETIME` shows it: the fraction moved onto its tick's millisecond, so a
    /// checkpoint taken from a row, bound back as `CAST(? AS DATETIME)`, is that same tick again whichever
    /// rounding the driver applied (FreeTDS rounds to the millisecond, others pass nanoseconds).
    public static func sqlServerDateTime(_ value: LocalDateTime) -> LocalDateTime {
        let ticks = dateTimeTicks(milliseconds: (value.microsecond + 500) / 1000)
        let base = LocalDateTime(year: value.year, month: value.month, day: value.day, hour: value.hour, minute: value.minute, second: value.second)
        return ticks == 300 ? base.adding(seconds: 1) : LocalDateTime(year: base.year, month: base.month, day: base.day, hour: base.hour,
                                                                      minute: base.minute, second: base.second,
                                                                      microsecond: dateTimeMilliseconds(ticks: ticks) * 1000)
    }

    /// A `SQL_TIMESTAMP_STRUCT` (fraction in nanoseconds) as a naive date-time, to the microsecond.
    public static func localDateTime(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, fraction: Int) -> SourceValue {
        guard month != 0 && day != 0 else { return .text(String(format: "%04d-%02d-%02d %02d:%02d:%02d", year, month, day, hour, minute, second)) }
        return .localDateTime(LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second, microsecond: fraction / 1000))
    }

    /// A timestamp with more than 6 fractional digits (`DATETIME2(7)`, Oracle `TIMESTAMP(9)`) fetched as
    /// text: kept as `.text` with all its digits, so a checkpoint compares equal to its row (a microsecond
    /// value would be 100 ns short and re-read the row forever). The record mapper parses it like any text
    /// timestamp.
    public static func preciseTimestamp(_ text: String) -> SourceValue {
        .text(text.trimmingCharacters(in: .whitespaces))
    }

    /// `YYYY-MM-DD HH:MM:SS[.fffffff] ±HH:MM` (SQL Server `DATETIMEOFFSET` as text, Oracle `TIMESTAMP WITH
    /// TIME ZONE` under the pinned `NLS_TIMESTAMP_TZ_FORMAT`) as a UTC instant: the local part minus the
    /// offset ("datetimeoffset (Transact-SQL)"), to the microsecond. `nil` when the text is not that shape.
    public static func instant(offsetText text: String) -> Instant? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.lastIndex(of: " ") else { return nil }
        let offset = trimmed[trimmed.index(after: space)...]
        guard offset.count == 6, let sign = offset.first, sign == "+" || sign == "-",
              let hours = Int(offset.dropFirst().prefix(2)), offset.dropFirst(3).first == ":", let minutes = Int(offset.suffix(2)),
              hours <= 14, minutes < 60,
              let local = try? LocalDateTime(parsing: String(trimmed[..<space])) else { return nil }
        let seconds = Int64(hours * 3600 + minutes * 60) * (sign == "-" ? -1 : 1)
        return Instant(seconds: local.secondsAsUTC - seconds, microsecond: local.microsecond)
    }

    /// Exact decimal text as a driver prints `DECIMAL`, `NUMERIC`, `MONEY` or Oracle `NUMBER` (up to 38
    /// digits): spaces trimmed, a bare leading point given its zero (`.5` → `0.5`, `-.5` → `-0.5`, as Oracle's
    /// text form omits it). Text that is not a plain decimal stays `.text` so the mapper names it.
    public static func decimal(_ text: String) -> SourceValue {
        var value = text.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix(".") { value = "0" + value } else if value.hasPrefix("-.") { value = "-0" + value.dropFirst() }
        let digits = value.hasPrefix("-") ? value.dropFirst() : Substring(value)
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard !digits.isEmpty, parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
            return .text(value)
        }
        return .decimal(value)
    }

    /// Character data in the client character set (UTF-8): `.text`, with `CHAR`'s blank padding cut when
    /// `isFixedLength`; bytes that are not UTF-8 stay `.bytes` so the mapper quarantines them.
    public static func text(_ bytes: UnsafeRawBufferPointer, isFixedLength: Bool) -> SourceValue {
        isFixedLength ? SourceValue(blankPaddedUTF8: bytes) : SourceValue(utf8: bytes)
    }

    /// National character data (`NCHAR`, `NVARCHAR`, `NTEXT`; `SQL_C_WCHAR`, UTF-16 on unixODBC) as UTF-8
    /// `.text`, `NCHAR` padding cut when `isFixedLength`; unpaired surrogates keep the UTF-16 bytes.
    public static func text(utf16 units: UnsafeBufferPointer<UInt16>, isFixedLength: Bool) -> SourceValue {
        var end = units.count
        if isFixedLength { while end > 0 && units[end - 1] == 0x20 { end -= 1 } }
        let slice = UnsafeBufferPointer(rebasing: units[..<end])
        var text = ""
        text.reserveCapacity(slice.count)
        var iterator = slice.makeIterator()
        var decoder = UTF16()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): text.unicodeScalars.append(scalar)
            case .emptyInput: break loop
            case .error: return .bytes(Data(buffer: slice))
            }
        }
        return .text(text)
    }

    /// `UNIQUEIDENTIFIER` (`SQL_GUID` fetched as text): upper-case, as SQL Server prints it.
    public static func guid(_ text: String) -> SourceValue { .text(text.trimmingCharacters(in: .whitespaces).uppercased()) }
}
#endif
