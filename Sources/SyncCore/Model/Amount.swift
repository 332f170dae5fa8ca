/// An exact decimal money amount: an integer count of minor units at a fixed scale.
///
/// Amounts never pass through `Double`: they are parsed from the driver's decimal text
/// (`"12345678901234567.89"`), kept as `Int128` minor units, and printed back digit for digit.
/// Up to 38 significant digits fit, which covers `NUMERIC(38, s)` and MySQL `DECIMAL(65, s)` values
/// that real ERPs use.
public struct Amount: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value in minor units (for scale 2, cents).
    public let minorUnits: Int128
    /// Digits after the decimal point (2 for BRL, 0 for JPY).
    public let scale: Int

    /// Creates an amount from minor units at a scale.
    public init(minorUnits: Int128, scale: Int) {
        self.minorUnits = minorUnits
        self.scale = scale
    }

    /// Why decimal text could not become an amount at the requested scale.
    public enum ParseError: Error, Equatable, Sendable {
        /// Not a decimal number (empty, letters, `NaN`, `Infinity`, several points …).
        case notANumber
        /// The value has non-zero digits beyond the currency's scale (e.g. `1.005` in BRL).
        case tooManyFractionDigits
        /// More than 38 significant digits.
        case outOfRange
    }

    /// How digits beyond the scale are treated when parsing.
    public enum Rounding: Sendable {
        /// Extra non-zero digits are an error: exact sources (DECIMAL/NUMERIC) must fit the currency.
        case exact
        /// Round half to even ("banker's rounding", IEEE 754 default), used for FLOAT/REAL columns.
        case halfEven
    }

    /// Parses decimal text such as `"-19.90"`, `"+3"`, `"1e2"`, `"0.5E-1"`.
    /// - Parameters:
    ///   - text: the decimal text; surrounding spaces are ignored.
    ///   - scale: digits after the point of the result.
    ///   - rounding: what to do with non-zero digits beyond `scale`.
    /// - Throws: ``ParseError``.
    public init(parsing text: String, scale: Int, rounding: Rounding = .exact) throws(ParseError) {
        if let units = Self.plainMinorUnits(text, scale: scale) {
            self.init(minorUnits: units, scale: scale)
        } else {
            self.init(minorUnits: try Self.minorUnits(parsing: text, scale: scale, rounding: rounding), scale: scale)
        }
    }

    /// The general parse of ``init(parsing:scale:rounding:)``: spaces, exponents, any digit count up to 38,
    /// digits beyond the scale.
    static func minorUnits(parsing text: String, scale: Int, rounding: Rounding) throws(ParseError) -> Int128 {
        var chars = Substring(text.trimmingSpaces())
        var negative = false
        if let first = chars.first, first == "-" || first == "+" {
            negative = first == "-"
            chars = chars.dropFirst()
        }
        var exponent = 0
        if let e = chars.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(chars[chars.index(after: e)...]), value.magnitude < 400 else { throw .notANumber }
            exponent = value
            chars = chars[..<e]
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var seenPoint = false
        for c in chars.utf8 {
            if c == UInt8(ascii: ".") {
                guard !seenPoint else { throw .notANumber }
                seenPoint = true
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                digits.append(c - UInt8(ascii: "0"))
                if seenPoint { fractionDigits += 1 }
            } else {
                throw .notANumber
            }
        }
        guard !digits.isEmpty else { throw .notANumber }
        // value = digits * 10^(exponent - fractionDigits); shift to `scale` fraction digits.
        let shift = exponent - fractionDigits + scale
        var kept = digits
        var dropped: [UInt8] = []
        if shift >= 0 {
            kept.append(contentsOf: repeatElement(0, count: shift))
        } else {
            let cut = max(0, kept.count + shift)
            dropped = Array(kept[cut...])
            if dropped.count < -shift { dropped.insert(contentsOf: repeatElement(0, count: -shift - dropped.count), at: 0) }
            kept = Array(kept[..<cut])
        }
        while kept.count > 1 && kept.first == 0 { kept.removeFirst() }
        guard kept.count <= 38 else { throw .outOfRange }
        var units: Int128 = 0
        for d in kept { units = units * 10 + Int128(d) }
        if dropped.contains(where: { $0 != 0 }) {
            guard rounding == .halfEven else { throw .tooManyFractionDigits }
            let first = dropped[0]
            let restNonZero = dropped.dropFirst().contains { $0 != 0 }
            if first > 5 || (first == 5 && (restNonZero || units % 2 == 1)) { units += 1 }
        }
        return negative ? -units : units
    }

    /// The minor units of the text every driver delivers for an exact column — an optional sign, at most 18
    /// digits with an optional point, no more fraction digits than `scale`, nothing else — read in one pass
    /// without allocating; `nil` for any other text, which the general parse ``minorUnits(parsing:scale:rounding:)``
    /// reads (or refuses). Both give the same units for every text this one reads (`AmountTests`).
    static func plainMinorUnits(_ text: String, scale: Int) -> Int128? {
        guard scale <= 18 else { return nil }
        var text = text
        return text.withUTF8 { bytes -> Int128? in
            var index = 0
            var negative = false
            if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
                negative = first == UInt8(ascii: "-")
                index = 1
            }
            var value: Int64 = 0
            var digits = 0
            var fractionDigits = 0
            var seenPoint = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ".") {
                    guard !seenPoint else { return nil }
                    seenPoint = true
                } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    digits += 1
                    guard digits <= 18 else { return nil }
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                    if seenPoint { fractionDigits += 1 }
                } else {
                    return nil
                }
                index += 1
            }
            guard digits > 0, fractionDigits <= scale else { return nil }
            var units = Int128(value)
            for _ in fractionDigits..<scale { units *= 10 }
            return negative ? -units : units
        }
    }

    /// The amount as fixed-point text with exactly `scale` fraction digits: `"19.90"`, `"-0.05"`, `"7"`. Written
    /// digit by digit (it runs for every record loaded: the content hash and the load).
    public var description: String {
        let magnitude = minorUnits.magnitude
        if let small = UInt64(exactly: magnitude) { return Self.text(small, negative: minorUnits < 0, scale: scale) }
        return Self.text(magnitude, negative: minorUnits < 0, scale: scale)
    }

    /// ``description`` of a magnitude: written from the last digit back, the point after `scale` digits, at least
    /// one digit before it.
    private static func text<Magnitude: UnsignedInteger>(_ magnitude: Magnitude, negative: Bool, scale: Int) -> String {
        var digits = 1
        var rest = magnitude / 10
        while rest != 0 {
            digits += 1
            rest /= 10
        }
        let length = max(digits, scale + 1) + (scale > 0 ? 1 : 0) + (negative ? 1 : 0)
        return String(unsafeUninitializedCapacity: length) { out in
            var index = length - 1
            var written = 0
            var rest = magnitude
            repeat {
                out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                index -= 1
                written += 1
                if written == scale {
                    out[index] = UInt8(ascii: ".")
                    index -= 1
                }
            } while rest != 0 || written <= scale
            if negative { out[0] = UInt8(ascii: "-") }
            return length
        }
    }

    /// `true` when the amount is below zero.
    public var isNegative: Bool { minorUnits < 0 }

    /// Orders amounts of the same scale; amounts of different scales compare by value.
    public static func < (lhs: Amount, rhs: Amount) -> Bool {
        let scale = max(lhs.scale, rhs.scale)
        return lhs.rescaled(to: scale) < rhs.rescaled(to: scale)
    }

    private func rescaled(to target: Int) -> Int128 {
        var value = minorUnits
        for _ in scale..<max(scale, target) { value *= 10 }
        return value
    }

    /// The sum of amounts of one scale.
    public static func + (lhs: Amount, rhs: Amount) -> Amount {
        precondition(lhs.scale == rhs.scale, "amounts of different scales")
        return Amount(minorUnits: lhs.minorUnits + rhs.minorUnits, scale: lhs.scale)
    }
}

extension Amount {
    /// `text` printed at the currency's scale (`"19.9"` → `"19.90"` for BRL), or `text` unchanged when it is
    /// not an exact amount at that scale. Destinations use it to compare stored amounts with record amounts.
    public static func canonical(_ text: String, currency: String) -> String {
        (try? Amount(parsing: text, scale: CurrencyScale.scale(of: currency)))?.description ?? text
    }
}

/// Minor-unit digits per ISO 4217 currency code; codes not listed use 2.
public enum CurrencyScale {
    private static let exceptions: [String: Int] = [
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
        "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4,
    ]

    /// Digits after the point for `currency` (ISO 4217 minor unit), e.g. 2 for `BRL`, 0 for `JPY`.
    public static func scale(of currency: String) -> Int { exceptions[currency.uppercased()] ?? 2 }
}

extension String {
    /// The string without leading and trailing spaces, tabs, CR, LF and NUL (CHAR padding). Works on the
    /// UTF-8 bytes: the pads are ASCII, so cutting at them keeps every other character whole.
    func trimmingSpaces() -> String {
        func isPad(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x00 }
        let bytes = utf8
        guard let first = bytes.first, let last = bytes.last else { return self }
        if !isPad(first) && !isPad(last) { return self }
        guard let start = bytes.firstIndex(where: { !isPad($0) }), let end = bytes.lastIndex(where: { !isPad($0) }) else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}
