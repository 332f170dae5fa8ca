public import Foundation

/// A wall-clock date and time without a zone, as ERPs store it (`DATETIME`, `timestamp without time zone`).
///
/// Parsed from `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]` or a bare `YYYY-MM-DD` (midnight). It becomes an
/// instant only through ``instant(in:)`` with the source's declared time zone.
public struct LocalDateTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    // Stored compactly (16 bytes instead of seven Ints): rows in flight hold one per timestamp column, and
    // ``SourceValue`` is as large as its largest case.
    private var year32: Int32
    private var month8, day8, hour8, minute8, second8: UInt8
    private var microsecond32: Int32

    public var year: Int { get { Int(year32) } set { year32 = Int32(newValue) } }
    public var month: Int { get { Int(month8) } set { month8 = UInt8(newValue) } }
    public var day: Int { get { Int(day8) } set { day8 = UInt8(newValue) } }
    public var hour: Int { get { Int(hour8) } set { hour8 = UInt8(newValue) } }
    public var minute: Int { get { Int(minute8) } set { minute8 = UInt8(newValue) } }
    public var second: Int { get { Int(second8) } set { second8 = UInt8(newValue) } }
    /// Microseconds, 0 ... 999_999.
    public var microsecond: Int { get { Int(microsecond32) } set { microsecond32 = Int32(newValue) } }

    /// Creates a value from its fields; no range checks (use ``init(parsing:)`` for text), but each must fit
    /// its storage: year in `Int32`, month ... second in 0 ... 255, microsecond in `Int32`.
    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, microsecond: Int = 0) {
        (year32, month8, day8, hour8, minute8, second8, microsecond32) =
            (Int32(year), UInt8(month), UInt8(day), UInt8(hour), UInt8(minute), UInt8(second), Int32(microsecond))
    }

    private enum CodingKeys: String, CodingKey {
        case year, month, day, hour, minute, second, microsecond
    }

    /// Decodes the field-per-key form; a field outside its storage range is a `DecodingError.dataCorrupted`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: FixedWidthInteger>(_ key: CodingKeys, as: T.Type) throws -> T {
            let value = try c.decode(Int.self, forKey: key)
            guard let fitted = T(exactly: value) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(key.rawValue) \(value) is out of range")
            }
            return fitted
        }
        year32 = try field(.year, as: Int32.self)
        month8 = try field(.month, as: UInt8.self)
        day8 = try field(.day, as: UInt8.self)
        hour8 = try field(.hour, as: UInt8.self)
        minute8 = try field(.minute, as: UInt8.self)
        second8 = try field(.second, as: UInt8.self)
        microsecond32 = try field(.microsecond, as: Int32.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(year, forKey: .year)
        try c.encode(month, forKey: .month)
        try c.encode(day, forKey: .day)
        try c.encode(hour, forKey: .hour)
        try c.encode(minute, forKey: .minute)
        try c.encode(second, forKey: .second)
        try c.encode(microsecond, forKey: .microsecond)
    }

    /// Why a value is not a usable local date-time.
    public enum ParseError: Error, Equatable, Sendable {
        /// MySQL's zero date or a partial zero date (`0000-00-00 00:00:00`, `2024-00-10`): month or day 0.
        case zeroDate
        /// Fields that name no moment of the calendar: day 30 of February, month 13, hour 24, minute or second
        /// 60, a year outside 1 ... 9999 (PostgreSQL's BC and five-digit years, `infinity` aside). Never rolled
        /// over into a real date (SPEC.md "Validation").
        case impossibleDate
        /// Not in a recognised layout (`2024/01/01`, `yesterday`, `infinity`), or not a date-time at all.
        case invalid
    }

    /// Whether the fields name a real date-time of the proleptic Gregorian calendar with a year in 1 ... 9999:
    /// ``ParseError/zeroDate`` for a zero month or day, ``ParseError/impossibleDate`` for any other field out
    /// of range. Drivers hand over fields as the database stored them (MariaDB keeps `2024-02-30` under
    /// `ALLOW_INVALID_DATES`, and its `STR_TO_DATE` returns it under any `sql_mode`), so every value is checked
    /// here before calendar arithmetic (``secondsAsUTC``) could roll it over into another date.
    /// - Throws: ``ParseError``.
    public func validate() throws(ParseError) {
        if month == 0 || day == 0 { throw .zeroDate }
        guard (1...9999).contains(year), (1...12).contains(month), day <= Self.daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59, (0...999_999).contains(microsecond) else { throw .impossibleDate }
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` with an optional `.f` up to 9
    /// digits (truncated to microseconds), and `T` instead of the space, then checks the fields with
    /// ``validate()``: years 1 ... 9999 (`0009-12-04` is a real, if odd, date); a zero month or day makes a zero
    /// date (MySQL's `NO_ZERO_DATE` rule); `2024-02-30` or `24:00` is an impossible date.
    /// - Throws: ``ParseError``.
    public init(parsing text: String) throws(ParseError) {
        let bytes = Array(text.trimmingSpaces().utf8)
        var index = 0
        func number(_ width: Int) throws(ParseError) -> Int {
            guard index + width <= bytes.count else { throw .invalid }
            var value = 0
            for b in bytes[index..<index + width] {
                guard b >= 48 && b <= 57 else { throw .invalid }
                value = value * 10 + Int(b - 48)
            }
            index += width
            return value
        }
        func expect(_ c: UInt8) throws(ParseError) {
            guard index < bytes.count, bytes[index] == c else { throw .invalid }
            index += 1
        }
        let year = try number(4)
        try expect(UInt8(ascii: "-"))
        let month = try number(2)
        try expect(UInt8(ascii: "-"))
        let day = try number(2)
        var hour = 0, minute = 0, second = 0, micro = 0
        if index < bytes.count {
            guard bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "T") else { throw .invalid }
            index += 1
            hour = try number(2)
            try expect(UInt8(ascii: ":"))
            minute = try number(2)
            if index < bytes.count {
                try expect(UInt8(ascii: ":"))
                second = try number(2)
                if index < bytes.count {
                    try expect(UInt8(ascii: "."))
                    var digits = 0
                    while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                        if digits < 6 { micro = micro * 10 + Int(bytes[index] - 48) }
                        digits += 1
                        index += 1
                    }
                    guard digits > 0, digits <= 9, index == bytes.count else { throw .invalid }
                    for _ in digits..<max(digits, 6) { micro *= 10 }
                }
            }
        }
        self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second, microsecond: micro)
        try validate()
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Seconds since 1970-01-01T00:00:00 as if this wall time were UTC (proleptic Gregorian calendar).
    public var secondsAsUTC: Int64 {
        // Days from civil, Howard Hinnant's algorithm (public domain), valid for all years.
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
    }

    /// The wall time of an instant read in UTC (how drivers hand over zone-less timestamps).
    public init(instant: Instant) {
        self.init(secondsAsUTC: instant.seconds, microsecond: instant.microsecond)
    }

    /// The wall time of `seconds` since the epoch read as UTC.
    public init(secondsAsUTC seconds: Int64, microsecond: Int = 0) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.init(year: Int(y), month: Int(m), day: Int(d), hour: Int(secs / 3600), minute: Int(secs % 3600 / 60),
                  second: Int(secs % 60), microsecond: microsecond)
    }

    /// This wall time shifted by whole seconds (wall-clock arithmetic, no zone involved).
    public func adding(seconds: Int64) -> LocalDateTime {
        LocalDateTime(secondsAsUTC: secondsAsUTC + seconds, microsecond: microsecond)
    }

    /// The instant this wall time denotes in `zone`.
    ///
    /// Deterministic at DST transitions, following java.time's `ZonedDateTime.ofLocal` default:
    /// - in a gap (the clock jumps forward, the wall time never happened) the offset in force *before*
    ///   the transition is used, so the result lands after the gap by the gap's length
    ///   (`2018-11-04 00:30` in America/Sao_Paulo → `03:30Z`, i.e. `01:30-02:00`);
    /// - in an overlap (the clock falls back, the wall time happened twice) the *earlier* instant is used
    ///   (`2019-02-16 23:30` in America/Sao_Paulo → `01:30Z` the next day, i.e. `23:30-02:00`).
    public func instant(in zone: TimeZone) -> Instant {
        let wall = secondsAsUTC
        let before = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall - 86_400))))
        let after = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall + 86_400))))
        let candidates = Set([before, after]).filter { offset in
            Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall - offset)))) == offset
        }
        let seconds: Int64
        if let earliest = candidates.map({ wall - $0 }).min() {
            seconds = earliest
        } else {
            seconds = wall - before
        }
        return Instant(seconds: seconds, microsecond: microsecond)
    }

    /// `YYYY-MM-DD HH:MM:SS`, plus `.ffffff` when the microseconds are not zero. Years outside 0 ... 9999 (which
    /// ``validate()`` refuses, but quarantine shows) with their sign and all their digits: `-0044-03-15`,
    /// `12024-01-01`.
    public var description: String {
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
        if microsecond != 0 { text += "." + pad(microsecond, 6) }
        return text
    }

    public static func < (lhs: LocalDateTime, rhs: LocalDateTime) -> Bool {
        (lhs.secondsAsUTC, lhs.microsecond) < (rhs.secondsAsUTC, rhs.microsecond)
    }
}

/// An instant on the UTC time line with microsecond precision (the precision of PostgreSQL and MySQL
/// `DATETIME(6)`).
public struct Instant: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Microseconds within the second, 0 ... 999_999.
    public var microsecond: Int

    /// Creates an instant from seconds since the epoch and microseconds.
    public init(seconds: Int64, microsecond: Int = 0) {
        self.seconds = seconds
        self.microsecond = microsecond
    }

    /// ``seconds`` of the instants whose UTC date falls in the years 1 ... 9999, the years
    /// ``LocalDateTime/validate()`` accepts.
    public static let supportedSeconds: ClosedRange<Int64> =
        LocalDateTime(year: 1, month: 1, day: 1).secondsAsUTC...LocalDateTime(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59).secondsAsUTC

    /// The instant of a Foundation `Date`, truncated to microseconds.
    public init(_ date: Date) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        microsecond = Int(micros - seconds * 1_000_000)
    }

    /// Parses the ``description`` form (`2005-05-24T22:53:30.000000Z`) or any `…Z` ISO 8601 UTC text.
    public init?(iso8601 text: String) {
        guard text.hasSuffix("Z"), let local = try? LocalDateTime(parsing: String(text.dropLast())) else { return nil }
        self.init(seconds: local.secondsAsUTC, microsecond: local.microsecond)
    }

    /// The Foundation `Date` of this instant.
    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(microsecond) / 1_000_000) }

    /// Microseconds since the epoch.
    public var epochMicroseconds: Int64 { seconds * 1_000_000 + Int64(microsecond) }

    /// ISO 8601 in UTC with six fraction digits, `2005-05-24T22:53:30.000000Z`: fixed width, so text order is
    /// time order (the destination stores instants this way).
    /// Years outside 0 ... 9999 (drivers can deliver them; validation refuses them) print with their sign and
    /// all their digits, as in ``LocalDateTime/description``.
    public var description: String {
        let local = LocalDateTime(secondsAsUTC: seconds)
        guard (0...9999).contains(local.year) else {
            return "\(pad(local.year, 4))-\(pad(local.month, 2))-\(pad(local.day, 2))T\(pad(local.hour, 2)):\(pad(local.minute, 2)):"
                + "\(pad(local.second, 2)).\(pad(microsecond, 6))Z"
        }
        // Written digit by digit: this runs for every record loaded (hash and load), so no interpolation.
        return String(unsafeUninitializedCapacity: 27) { out in
            func put(_ value: Int, _ width: Int, at start: Int) {
                var rest = value
                for index in stride(from: start + width - 1, through: start, by: -1) {
                    out[index] = UInt8(48 + rest % 10)
                    rest /= 10
                }
            }
            put(local.year, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(local.month, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(local.day, 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(local.hour, 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put(local.minute, 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(local.second, 2, at: 17)
            out[19] = UInt8(ascii: ".")
            put(microsecond, 6, at: 20)
            out[26] = UInt8(ascii: "Z")
            return 27
        }
    }

    /// The wall time of this instant in `zone`.
    public func local(in zone: TimeZone) -> LocalDateTime {
        let offset = Int64(zone.secondsFromGMT(for: date))
        return LocalDateTime(secondsAsUTC: seconds + offset, microsecond: microsecond)
    }

    /// The current instant.
    public static var now: Instant { Instant(Date()) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.epochMicroseconds < rhs.epochMicroseconds }
}

/// `value` in decimal with leading zeros up to `width` digits, the sign before them: `pad(7, 2)` is `07`,
/// `pad(-44, 4)` is `-0044`.
func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value.magnitude)
    let digits = text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    return value < 0 ? "-" + digits : digits
}
