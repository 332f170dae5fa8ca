import Foundation
@testable import SyncCore
import Testing

/// Normalization of source timestamps and text (SPEC.md "Reading a source correctly": timezones,
/// exact values, CHAR padding, zero dates).
@Suite struct NormalizationTests {
    let saoPaulo = TimeZone(identifier: "America/Sao_Paulo")!

    func instant(_ local: String, in zone: TimeZone) throws -> String {
        try LocalDateTime(parsing: local).instant(in: zone).description
    }

    // MARK: Driver text

    /// Driver bytes become text only when they are UTF-8, whatever path reads them (the ASCII pass or the
    /// standard library's validation): 10,000 random byte strings, mostly ASCII, some with multi-byte characters
    /// and some broken, agree with `String(validating:)`; broken ones stay their bytes.
    @Test func driverBytesAreTextOnlyWhenTheyAreUTF8() {
        let pieces: [[UInt8]] = [Array("PDV-0".utf8), [0], [0x7F], Array("ção".utf8), Array("€".utf8), Array("😀".utf8), [0xC3], [0xFF],
                                 [0xED, 0xA0, 0x80], [0xC0, 0xAF]]
        for _ in 0..<10_000 {
            let bytes = (0..<Int.random(in: 0...6)).flatMap { _ in pieces[Int.random(in: 0...2) == 0 ? Int.random(in: 0..<pieces.count) : 0] }
            let value = bytes.withUnsafeBytes { SourceValue(utf8: $0) }
            if let text = String(validating: bytes, as: UTF8.self) {
                #expect(value == .text(text), "\(bytes)")
            } else {
                #expect(value == .bytes(Data(bytes)), "\(bytes)")
            }
        }
    }

    /// Stored checkpoints and quarantine keys keep the coding Swift synthesized for ``SourceValue`` (pinned below from
    /// a synthesized copy of the enum), and text holding NUL gets its own case, which PostgreSQL's `jsonb` accepts.
    @Test func sourceValuesKeepTheirStoredCodingAndTextHoldingNULCodesWithoutIt() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let pinned: [(SourceValue, String)] = [
            (.null, #"{"null":{}}"#), (.integer(5), #"{"integer":{"_0":5}}"#), (.decimal("1.5"), #"{"decimal":{"_0":"1.5"}}"#),
            (.double(2.5), #"{"double":{"_0":2.5}}"#), (.text("ab"), #"{"text":{"_0":"ab"}}"#), (.bool(true), #"{"bool":{"_0":true}}"#),
            (.bytes(Data([1, 2])), #"{"bytes":{"_0":"AQI="}}"#), (.text("a\u{0}b"), #"{"textHoldingNUL":{"_0":"YQBi"}}"#),
        ]
        for (value, json) in pinned {
            #expect(String(decoding: try encoder.encode(value), as: UTF8.self) == json)
            #expect(try JSONDecoder().decode(SourceValue.self, from: Data(json.utf8)) == value)
        }
        for value: SourceValue in [.localDateTime(try LocalDateTime(parsing: "2024-03-10 14:00:00.5")), .instant(Instant(seconds: 1_700_000_000, microsecond: 7))] {
            #expect(try JSONDecoder().decode(SourceValue.self, from: try encoder.encode(value)) == value)
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SourceValue.self, from: Data(#"{"text":{"_0":"a"},"null":{}}"#.utf8)) }
    }

    // MARK: Time zones and DST

    @Test func dstGapUsesTheOffsetBeforeTheTransition() throws {
        // 2018-11-04 00:00 -03 jumped to 01:00 -02: 00:30 never happened on the wall clock.
        #expect(try instant("2018-11-04 00:30", in: saoPaulo) == "2018-11-04T03:30:00.000000Z")
        // The first wall time after the gap is the transition instant itself.
        #expect(try instant("2018-11-04 01:00", in: saoPaulo) == "2018-11-04T03:00:00.000000Z")
        // The last minute before the gap is still -03.
        #expect(try instant("2018-11-03 23:59", in: saoPaulo) == "2018-11-04T02:59:00.000000Z")
    }

    @Test func dstOverlapPicksTheEarlierInstant() throws {
        // 2019-02-17 00:00 -02 fell back to 2019-02-16 23:00 -03: 23:30 happened twice.
        #expect(try instant("2019-02-16 23:30", in: saoPaulo) == "2019-02-17T01:30:00.000000Z")
        // Just outside the overlap there is only one reading.
        #expect(try instant("2019-02-16 22:59", in: saoPaulo) == "2019-02-17T00:59:00.000000Z")
        #expect(try instant("2019-02-17 00:00", in: saoPaulo) == "2019-02-17T03:00:00.000000Z")
    }

    @Test func normalWinterAndSummerTimes() throws {
        // Southern winter: standard time, -03.
        #expect(try instant("2018-07-15 12:00:00", in: saoPaulo) == "2018-07-15T15:00:00.000000Z")
        // Southern summer 2018 (DST then in force): -02.
        #expect(try instant("2018-01-15 12:00:00", in: saoPaulo) == "2018-01-15T14:00:00.000000Z")
        // Brazil abolished DST in 2019: January 2024 is -03.
        #expect(try instant("2024-01-15 12:00:00", in: saoPaulo) == "2024-01-15T15:00:00.000000Z")
        // UTC is the identity.
        #expect(try instant("2024-01-15 12:00:00", in: TimeZone(identifier: "UTC")!) == "2024-01-15T12:00:00.000000Z")
    }

    @Test func instantToLocalRoundTripsOutsideTransitions() throws {
        let local = try LocalDateTime(parsing: "2018-01-15 12:34:56.789")
        let back = local.instant(in: saoPaulo).local(in: saoPaulo)
        #expect(back == local)
        // After the gap the instant reads back as the shifted wall time.
        let gap = try LocalDateTime(parsing: "2018-11-04 00:30").instant(in: saoPaulo).local(in: saoPaulo)
        #expect(gap.description == "2018-11-04 01:30:00")
    }

    @Test func naiveTextIsReadInTheSourceZoneButZonedInstantPassesUnchanged() throws {
        let mapper = MapperFixture(timezone: saoPaulo).mapper
        let naive = try mapper.instant(.text("2024-01-15 10:00:00")).get()
        #expect(naive.description == "2024-01-15T13:00:00.000000Z")
        let naiveValue = try mapper.instant(.localDateTime(LocalDateTime(year: 2024, month: 1, day: 15, hour: 10))).get()
        #expect(naiveValue == naive)

        let zoned = Instant(seconds: 1_705_320_000, microsecond: 42) // 2024-01-15T12:00:00.000042Z
        let passed = try mapper.instant(.instant(zoned)).get()
        #expect(passed == zoned)
        #expect(passed.description == "2024-01-15T12:00:00.000042Z")

        #expect(throws: LocalDateTime.ParseError.invalid) { try mapper.instant(.integer(1_705_320_000)).get() }
        #expect(throws: LocalDateTime.ParseError.invalid) { try mapper.instant(.double(1.5)).get() }
    }

    // MARK: Parsing

    @Test func microsecondsArePreserved() throws {
        let full = try LocalDateTime(parsing: "2024-01-15 10:00:00.123456")
        #expect(full.microsecond == 123_456)
        #expect(full.description == "2024-01-15 10:00:00.123456")
        #expect(full.instant(in: saoPaulo).description == "2024-01-15T13:00:00.123456Z")

        #expect(try LocalDateTime(parsing: "2024-01-15 10:00:00.5").microsecond == 500_000)
        #expect(try LocalDateTime(parsing: "2024-01-15 10:00:00.000001").microsecond == 1)
        // Nanoseconds (SQL Server datetime2(7), Oracle TIMESTAMP(9)) are truncated to microseconds.
        #expect(try LocalDateTime(parsing: "2024-01-15 10:00:00.1234567").microsecond == 123_456)
        #expect(try LocalDateTime(parsing: "2024-01-15T10:00:00.999999999").microsecond == 999_999)
        #expect(throws: LocalDateTime.ParseError.invalid) { try LocalDateTime(parsing: "2024-01-15 10:00:00.1234567890") }
        #expect(throws: LocalDateTime.ParseError.invalid) { try LocalDateTime(parsing: "2024-01-15 10:00:00.") }

        let instant = try #require(Instant(iso8601: "2024-01-15T13:00:00.123456Z"))
        #expect(instant.epochMicroseconds == 1_705_323_600_123_456)
    }

    @Test func layoutsAndPadding() throws {
        let expected = LocalDateTime(year: 2024, month: 3, day: 10, hour: 14, minute: 5)
        #expect(try LocalDateTime(parsing: "2024-03-10 14:05") == expected)
        #expect(try LocalDateTime(parsing: "2024-03-10T14:05:00") == expected)
        // CHAR(19)/CHAR(26) padding around a timestamp.
        #expect(try LocalDateTime(parsing: "  2024-03-10 14:05:00   ") == expected)
        #expect(try LocalDateTime(parsing: "2024-03-10") == LocalDateTime(year: 2024, month: 3, day: 10))
    }

    @Test func zeroDatesAreTheirOwnError() {
        #expect(throws: LocalDateTime.ParseError.zeroDate) { try LocalDateTime(parsing: "0000-00-00 00:00:00") }
        #expect(throws: LocalDateTime.ParseError.zeroDate) { try LocalDateTime(parsing: "0000-00-00") }
        #expect(throws: LocalDateTime.ParseError.zeroDate) { try LocalDateTime(parsing: "2024-00-10") }
        #expect(throws: LocalDateTime.ParseError.zeroDate) { try LocalDateTime(parsing: "2024-05-00 12:00:00") }
    }

    @Test func yearNineIsARealDate() throws {
        let odd = try LocalDateTime(parsing: "0009-12-04")
        #expect(odd == LocalDateTime(year: 9, month: 12, day: 4))
        #expect(odd.description == "0009-12-04 00:00:00")
        #expect(odd.instant(in: TimeZone(identifier: "UTC")!).description == "0009-12-04T00:00:00.000000Z")
    }

    @Test(arguments: [
        "2024-1-1", "24-01-01", "2024/01/01", "2024-01-01X10:00", "", "   ", "not a date", "2024-01-01 10",
        "2024-01-01 10:00:00Z", "infinity", "-infinity", "10000-01-01", "0001-01-01 00:00:00 BC",
    ])
    func unrecognisedTextIsInvalid(text: String) {
        #expect(throws: LocalDateTime.ParseError.invalid) { try LocalDateTime(parsing: text) }
    }

    @Test(arguments: [
        "2024-02-30", "2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-01-01 24:00",
        "2024-01-01 23:60", "2024-01-01 23:59:60", "0000-01-01", "9999-99-99 99:99:99",
    ])
    func impossibleDatesAreRejected(text: String) {
        #expect(throws: LocalDateTime.ParseError.impossibleDate) { try LocalDateTime(parsing: text) }
    }

    @Test func leapDays() throws {
        #expect(try LocalDateTime(parsing: "2024-02-29").day == 29)
        #expect(try LocalDateTime(parsing: "2000-02-29").day == 29)
    }

    @Test func wallClockArithmeticCrossesMonthsAndYears() throws {
        let local = try LocalDateTime(parsing: "2023-12-31 23:59:30.250000")
        #expect(local.adding(seconds: 45).description == "2024-01-01 00:00:15.250000")
        #expect(local.adding(seconds: -86_400 * 365).description == "2022-12-31 23:59:30.250000")
    }

    // MARK: Text fields through the mapper

    /// Text fields lose CHAR padding; the external id is a key and is kept exactly (the connectors cut the padding of
    /// a `character(n)` key, ``RecordMapper/externalId(ofKey:)``).
    @Test func charPaddingIsTrimmedFromTextFields() throws {
        let fixture = MapperFixture(typeMap: ["venda": .sale])
        let row = fixture.row([
            "key.0": .text("  1001 "), "externalId": .text("1001   "), "pdv": .text("PDV01     "),
            "operator": .text("\top-7  "), "type": .text("VENDA     "), "reference": .text("CUPOM-55\0\0"),
        ])
        let record = try fixture.mapper.map(row, now: fixture.now).get()
        #expect(record.externalId == "1001   ")
        #expect(record.pdv == "PDV01")
        #expect(record.operator == "op-7")
        #expect(record.typeRaw == "VENDA")
        #expect(record.type == .sale)
        #expect(record.reference == "CUPOM-55")
    }

    @Test func blankReferenceBecomesNil() throws {
        let fixture = MapperFixture()
        let record = try fixture.mapper.map(fixture.row(["reference": .text("        ")]), now: fixture.now).get()
        #expect(record.reference == nil)
    }
}

@Suite struct ZoneConverterTests {
    /// The cached converter gives the same instant as the direct rule for every 7-minute step across both
    /// São Paulo DST transitions of 2018/2019 (the gap and the overlap), the second call hitting the cache.
    @Test func cachedOffsetsMatchTheDirectRuleAcrossTransitions() throws {
        let zone = try #require(TimeZone(identifier: "America/Sao_Paulo"))
        let converter = ZoneConverter(zone: zone)
        for start in [LocalDateTime(year: 2018, month: 11, day: 3, hour: 20), LocalDateTime(year: 2019, month: 2, day: 16, hour: 20)] {
            for step in 0..<120 {
                let local = start.adding(seconds: Int64(step) * 7 * 60 + Int64(step % 60))
                #expect(converter.instant(local) == local.instant(in: zone), "\(local)")
                #expect(converter.instant(local) == local.instant(in: zone), "\(local) (cached)")
            }
        }
    }
}
