@testable import SyncCore
import Testing

/// Exact decimal amounts (SPEC.md: "amount (exact decimal, never Double)").
@Suite struct AmountTests {
    @Test func largeDecimalRoundTripsDigitForDigit() throws {
        let amount = try Amount(parsing: "12345678901234567.89", scale: 2)
        #expect(amount.minorUnits == 1_234_567_890_123_456_789)
        #expect(amount.description == "12345678901234567.89")
        // Beyond Int64 and beyond Double's 15-17 significant digits.
        let huge = try Amount(parsing: "123456789012345678901234567890123456.78", scale: 2)
        #expect(huge.description == "123456789012345678901234567890123456.78")
        #expect(huge.minorUnits > Int128(Int64.max))
    }

    @Test func smallAndNegativeValues() throws {
        let cents = try Amount(parsing: "-0.05", scale: 2)
        #expect(cents.minorUnits == -5)
        #expect(cents.description == "-0.05")
        #expect(cents.isNegative)
        #expect(try Amount(parsing: "0.5", scale: 2).description == "0.50")
        #expect(try Amount(parsing: "-0", scale: 2).description == "0.00")
        #expect(try Amount(parsing: "-0", scale: 2).isNegative == false)
        #expect(try Amount(parsing: "+3", scale: 2).description == "3.00")
        #expect(try Amount(parsing: ".5", scale: 2).description == "0.50")
        #expect(try Amount(parsing: "7.", scale: 2).description == "7.00")
        #expect(try Amount(parsing: "  -19.90  ", scale: 2).minorUnits == -1990)
        #expect(try Amount(parsing: "000123.40", scale: 2).description == "123.40")
    }

    @Test func shortFractionIsPaddedToTheScale() throws {
        let amount = try Amount(parsing: "19.9", scale: 2)
        #expect(amount.minorUnits == 1990)
        #expect(amount.description == "19.90")
        #expect(try Amount(parsing: "1.5", scale: 3).description == "1.500")
    }

    @Test func exactRejectsNonZeroExtraDigitsButAcceptsTrailingZeros() throws {
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "1.005", scale: 2) }
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "0.001", scale: 2) }
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "-0.0000001", scale: 2) }
        let ok = try Amount(parsing: "1.000", scale: 2)
        #expect(ok.minorUnits == 100)
        #expect(ok.description == "1.00")
        #expect(try Amount(parsing: "19.9000000000", scale: 2).description == "19.90")
    }

    /// Hostile text from a source's text column: an exponent at `Int.min` once trapped in `abs`.
    @Test(arguments: ["1e-9223372036854775808", "1e9223372036854775807", "1e99999999999999999999", "NaN", "-Infinity", "1e", "."])
    func hostileTextIsNotANumber(text: String) {
        #expect(throws: Amount.ParseError.notANumber) { try Amount(parsing: text, scale: 2) }
    }

    @Test(arguments: [
        ("0.125", "0.12"), ("0.135", "0.14"), ("0.145", "0.14"), ("0.155", "0.16"),
        ("-0.125", "-0.12"), ("-0.135", "-0.14"), ("0.1251", "0.13"), ("0.12500001", "0.13"),
        ("0.124999", "0.12"), ("0.126", "0.13"), ("9.995", "10.00"), ("0.004", "0.00"), ("0.005", "0.00"),
        ("0.015", "0.02"),
    ])
    func halfEvenRounding(text: String, expected: String) throws {
        #expect(try Amount(parsing: text, scale: 2, rounding: .halfEven).description == expected)
    }

    @Test func floatAmountsRoundFromTheirShortestDecimalText() throws {
        // The recorded FLOAT policy: the shortest text that round-trips (`Double.description`), then half-even.
        // The binary double nearest 2.675 is 2.67499999999999982236431605997495353221893310546875, but its
        // shortest text is "2.675", a tie, which goes to the even neighbour 2.68.
        #expect((2.675).description == "2.675")
        #expect(try Amount(parsing: (2.675).description, scale: 2, rounding: .halfEven).description == "2.68")
        #expect(try Amount(parsing: (2.665).description, scale: 2, rounding: .halfEven).description == "2.66")
        #expect(try Amount(parsing: (0.1 + 0.2).description, scale: 2, rounding: .halfEven).description == "0.30")
        #expect(try Amount(parsing: (1e-7).description, scale: 2, rounding: .halfEven).description == "0.00")
        #expect(try Amount(parsing: (123456.785).description, scale: 2, rounding: .halfEven).description == "123456.78")
    }

    @Test(arguments: [
        ("1e2", "100.00"), ("1E2", "100.00"), ("0.5E-1", "0.05"), ("1.5e1", "15.00"), ("-2E+0", "-2.00"),
        ("19.9e0", "19.90"), ("1990e-2", "19.90"), ("123456e-4", "12.3456"),
    ])
    func exponentForms(text: String, expected: String) throws {
        let scale = expected.split(separator: ".").last.map(\.count) ?? 0
        #expect(try Amount(parsing: text, scale: scale).description == expected)
    }

    @Test func exponentBeyondTheScaleIsExactOrRounded() throws {
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "1e-3", scale: 2) }
        #expect(try Amount(parsing: "1e-3", scale: 2, rounding: .halfEven).minorUnits == 0)
        #expect(try Amount(parsing: "5e-3", scale: 2, rounding: .halfEven).minorUnits == 0)
        #expect(try Amount(parsing: "15e-3", scale: 2, rounding: .halfEven).minorUnits == 2)
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "1e-399", scale: 2) }
    }

    @Test(arguments: ["NaN", "nan", "Infinity", "-Infinity", "inf", "", "   ", "-", "+", ".", "1.2.3", "1,50", "12a",
                      "1e", "e5", "1e2.5", "1e+", "--1", "+-1", "1 000", "0x1F", "1e400", "R$ 10"])
    func notANumber(text: String) {
        #expect(throws: Amount.ParseError.notANumber) { try Amount(parsing: text, scale: 2) }
    }

    @Test func moreThan38DigitsIsOutOfRange() throws {
        let max38 = String(repeating: "9", count: 36) + ".99"
        #expect(try Amount(parsing: max38, scale: 2).description == max38)
        #expect(throws: Amount.ParseError.outOfRange) { try Amount(parsing: String(repeating: "9", count: 37) + ".00", scale: 2) }
        #expect(throws: Amount.ParseError.outOfRange) { try Amount(parsing: "1e40", scale: 2) }
    }

    @Test func yenHasNoMinorUnits() throws {
        #expect(CurrencyScale.scale(of: "JPY") == 0)
        #expect(CurrencyScale.scale(of: "jpy") == 0)
        #expect(CurrencyScale.scale(of: "BRL") == 2)
        #expect(CurrencyScale.scale(of: "KWD") == 3)
        #expect(CurrencyScale.scale(of: "XYZ") == 2)
        let yen = try Amount(parsing: "1500", scale: CurrencyScale.scale(of: "JPY"))
        #expect(yen.minorUnits == 1500)
        #expect(yen.description == "1500")
        #expect(try Amount(parsing: "-1500.00", scale: 0).description == "-1500")
        #expect(throws: Amount.ParseError.tooManyFractionDigits) { try Amount(parsing: "1500.5", scale: 0) }
        #expect(try Amount(parsing: "1500.5", scale: 0, rounding: .halfEven).description == "1500")
        #expect(try Amount(parsing: "1501.5", scale: 0, rounding: .halfEven).description == "1502")
    }

    @Test func comparisonAndSum() throws {
        let a = try Amount(parsing: "19.90", scale: 2)
        let b = try Amount(parsing: "-0.05", scale: 2)
        #expect((a + b).description == "19.85")
        #expect(b < a)
        // Different scales compare by value.
        #expect(try Amount(parsing: "1.5", scale: 1) < Amount(parsing: "1.51", scale: 2))
        #expect(try !(Amount(parsing: "1.50", scale: 2) < Amount(parsing: "1.5", scale: 1)))
    }

    /// The one-pass reading of plain decimal text agrees with the general parse on every text it reads, and
    /// reads the forms drivers deliver; the digit-by-digit printing reads back as the same amount.
    @Test func plainTextReadsAsTheGeneralParseAndPrintsBack() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789.-+ e")
        var read = 0
        for _ in 0..<50_000 {
            let length = Int.random(in: 0...22, using: &generator)
            let text = String((0..<length).map { _ in
                Int.random(in: 0..<4, using: &generator) == 0 ? alphabet.randomElement(using: &generator)! : Character(String(Int.random(in: 0...9, using: &generator)))
            })
            for scale in [0, 2, 3, 4] {
                guard let units = Amount.plainMinorUnits(text, scale: scale) else { continue }
                read += 1
                #expect(units == (try? Amount.minorUnits(parsing: text, scale: scale, rounding: .exact)), "\(text) at scale \(scale)")
            }
        }
        #expect(read > 10_000)
        for (text, scale, units) in [("19.90", 2, 1990), ("-0.05", 2, -5), ("7", 2, 700), ("7.", 2, 700), (".5", 2, 50), ("+3.1", 3, 3100),
                                     ("000123.40", 2, 12340), ("-0", 2, 0), ("123456789012345678", 0, 123_456_789_012_345_678)] as [(String, Int, Int128)] {
            #expect(Amount.plainMinorUnits(text, scale: scale) == units, "\(text)")
        }
        for text in ["1.005", " 1", "1e2", "1234567890123456789", ".", "-", "", "1..2", "1-"] {
            #expect(Amount.plainMinorUnits(text, scale: 2) == nil, "\(text)")
        }
        for _ in 0..<20_000 {
            let scale = Int.random(in: 0...6, using: &generator)
            let digits = Int.random(in: 1...38, using: &generator)
            let magnitude = Int128.random(in: 0...(0..<digits).reduce(Int128(1)) { power, _ in power * 10 } - 1, using: &generator)
            let amount = Amount(minorUnits: Bool.random(using: &generator) ? -magnitude : magnitude, scale: scale)
            let text = amount.description
            #expect(try Amount.minorUnits(parsing: text, scale: scale, rounding: .exact) == amount.minorUnits, "\(text)")
            #expect(scale == 0 ? !text.contains(".") : text.split(separator: ".").last?.count == scale, "\(text)")
        }
    }
}
