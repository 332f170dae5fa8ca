import Foundation
import Logging
@testable import SyncCore
import SyncTesting
import Testing

/// Validation rules of ``RecordMapper/map(_:now:)`` (SPEC.md "Validation"): every rejection carries a reason
/// code and the raw values.
@Suite struct ValidationTests {
    let fixture = MapperFixture(typeMap: ["venda": .sale, "cancelamento": .cancel, "devolucao": .refund])

    func rejection(_ overrides: [String: SourceValue], fixture: MapperFixture? = nil) throws -> RejectedRow {
        let fixture = fixture ?? self.fixture
        switch fixture.mapper.map(fixture.row(overrides), now: fixture.now) {
        case .success(let record): throw Unexpected(record: record)
        case .failure(let rejected): return rejected
        }
    }

    func record(_ overrides: [String: SourceValue], fixture: MapperFixture? = nil) throws -> SaleTransaction {
        let fixture = fixture ?? self.fixture
        return try fixture.mapper.map(fixture.row(overrides), now: fixture.now).get()
    }

    struct Unexpected: Error { var record: SaleTransaction }

    @Test func columnsFollowTheSeedLayout() {
        #expect(fixture.query.columns == ["cursor", "key.0", "externalId", "pdv", "operator", "amount", "occurredAt", "type", "reference"])
    }

    @Test func validRowBecomesACanonicalRecord() throws {
        let record = try record([:])
        #expect(record.sourceId == "loja-centro")
        #expect(record.externalId == "1001")
        #expect(record.pdv == "PDV01")
        #expect(record.operator == "op-7")
        #expect(record.amount.description == "19.90")
        #expect(record.currency == "BRL")
        #expect(record.occurredAt.description == "2024-03-10T17:00:00.000000Z")
        #expect(record.type == .sale)
        #expect(record.typeRaw == "venda")
        #expect(record.reference == "CUPOM-55")
        // A timestamp cursor doubles as the source's update time.
        #expect(record.sourceUpdatedAt?.description == "2024-03-10T17:00:00.000000Z")
        #expect(record.isDeletedAtSource == false)
        #expect(fixture.mapper.position(of: fixture.row()) == Checkpoint(cursor: .text("2024-03-10 14:00:00"), key: [.integer(1001)]))
    }

    @Test(arguments: [SourceValue.null, .text(""), .text("     ")])
    func missingPdv(value: SourceValue) throws {
        let rejected = try rejection(["pdv": value])
        #expect(rejected.reason == .missingField)
        #expect(rejected.message.hasPrefix("pdv:"))
        #expect(rejected.externalId == "1001")
    }

    @Test func missingOtherRequiredFields() throws {
        #expect(try rejection(["operator": .null]).reason == .missingField)
        #expect(try rejection(["type": .text("")]).reason == .missingField)
        #expect(try rejection(["amount": .null]).message.hasPrefix("amount:"))
        #expect(try rejection(["occurredAt": .null]).message.hasPrefix("occurredAt:"))
        let noKey = try rejection(["externalId": .null])
        #expect(noKey.reason == .missingField)
        #expect(noKey.externalId == nil)
    }

    @Test func zeroDates() throws {
        let occurred = try rejection(["occurredAt": .text("0000-00-00 00:00:00")])
        #expect(occurred.reason == .zeroDate)
        #expect(occurred.message.hasPrefix("occurredAt:"))
        #expect(try rejection(["occurredAt": .text("2024-00-10")]).reason == .zeroDate)
        let cursor = try rejection(["cursor": .text("0000-00-00 00:00:00")])
        #expect(cursor.reason == .zeroDate)
        #expect(cursor.message.contains("cursor timestamp"))
    }

    @Test func invalidTimestamp() throws {
        #expect(try rejection(["occurredAt": .text("infinity")]).reason == .invalidTimestamp)
        #expect(try rejection(["occurredAt": .integer(1_710_000_000)]).reason == .invalidTimestamp)
        #expect(try rejection(["cursor": .text("yesterday")]).reason == .invalidTimestamp)
        // Year 9 is odd but real: it maps.
        #expect(try record(["occurredAt": .text("0009-12-04 00:00:00")]).occurredAt.description.hasPrefix("0009-12-04T"))
    }

    /// Impossible calendar values (issue 15, bug 2) are INVALID_DATE with the raw value, whichever form the
    /// driver delivered them in: text, driver-built fields (MariaDB's `2024-02-30`), an instant beyond year 9999.
    /// Fields that calendar arithmetic would roll over (Feb 30 → Mar 1) must never load.
    @Test(arguments: [
        SourceValue.text("2024-02-30 10:00:00"), .text("2023-02-29"), .text("2024-13-01 10:00:00"), .text("2024-01-01 24:00:00"),
        .text("0000-01-01 10:00:00"), .localDateTime(LocalDateTime(year: 2024, month: 2, day: 30, hour: 10)),
        .localDateTime(LocalDateTime(year: 2024, month: 13, day: 1)), .localDateTime(LocalDateTime(year: 2024, month: 1, day: 1, hour: 24)),
        .localDateTime(LocalDateTime(year: 0, month: 1, day: 1)), .localDateTime(LocalDateTime(year: 294_276, month: 12, day: 31)),
        .localDateTime(LocalDateTime(year: -44, month: 3, day: 15)), .instant(Instant(seconds: 253_402_300_800)),
        .instant(Instant(seconds: -62_135_596_801)),
    ])
    func impossibleDatesAreInvalidDateNeverRolledOver(value: SourceValue) throws {
        for field in ["occurredAt", "cursor"] {
            let rejected = try rejection([field: value])
            #expect(rejected.reason == .invalidDate, "\(field) \(value): \(rejected.message)")
            #expect(rejected.raw[field] == .some(value.jsonValue))
        }
        // And as a sourceUpdatedAt column: the same rule.
        var stream = StreamConfig.seedDefault
        stream.fields[.sourceUpdatedAt] = .column("reference")
        let source = SourceConfig(name: "loja-centro", type: .sqlite, path: "/tmp/erp.sqlite", timezone: TimeZone(identifier: "UTC")!,
                                  currency: "BRL", stream: stream)
        let query = StreamQuery(stream: stream, dialect: .sqlite)
        let mapper = RecordMapper(source: source, validation: ValidationOptions())
        let valid = Dictionary(uniqueKeysWithValues: zip(fixture.query.columns, fixture.row()))
        let row = query.columns.map { $0 == "sourceUpdatedAt" ? value : valid[$0] ?? .null }
        guard case .failure(let rejected) = mapper.map(row, now: fixture.now) else { Issue.record("\(value) loaded"); return }
        #expect(rejected.reason == .invalidDate)
    }

    /// Raw values outside the years 0 ... 9999 are shown with their sign and all their digits.
    @Test func outOfRangeYearsPrintInFull() {
        #expect(LocalDateTime(year: -44, month: 3, day: 15).description == "-0044-03-15 00:00:00")
        #expect(LocalDateTime(year: 294_276, month: 12, day: 31).description == "294276-12-31 00:00:00")
        #expect(Instant(seconds: 253_402_300_800).description == "10000-01-01T00:00:00.000000Z")
        #expect(Instant(seconds: 253_402_300_799).description == "9999-12-31T23:59:59.000000Z")
    }

    @Test func nullCursor() throws {
        let rejected = try rejection(["cursor": .null])
        #expect(rejected.reason == .nullCursor)
        #expect(rejected.raw["cursor"] == .some(nil))
    }

    @Test func futureTimestamp() throws {
        // now = 2024-03-11T00:00:00Z; default tolerance one day.
        let tooFar = try rejection(["occurredAt": .instant(Instant(seconds: fixture.now.seconds + 86_401))])
        #expect(tooFar.reason == .futureTimestamp)
        let edge = try record(["occurredAt": .instant(Instant(seconds: fixture.now.seconds + 86_400))])
        #expect(edge.occurredAt.seconds == fixture.now.seconds + 86_400)
        // Naive text: 2024-03-12 22:00 in São Paulo is 2024-03-13T01:00Z, 49 h ahead.
        #expect(try rejection(["occurredAt": .text("2024-03-12 22:00:00")]).reason == .futureTimestamp)

        var strict = ValidationOptions()
        strict.maxFutureSeconds = 60
        let strictFixture = MapperFixture(validation: strict)
        #expect(try rejection(["occurredAt": .instant(Instant(seconds: strictFixture.now.seconds + 61))], fixture: strictFixture).reason == .futureTimestamp)
    }

    @Test func negativeSaleIsASignMismatchButNegativeCancelIsAccepted() throws {
        let sale = try rejection(["amount": .decimal("-19.90")])
        #expect(sale.reason == .signMismatch)
        #expect(sale.message.contains("sale"))

        let cancel = try record(["amount": .decimal("-19.90"), "type": .text("cancelamento")])
        #expect(cancel.type == .cancel)
        #expect(cancel.typeRaw == "cancelamento")
        #expect(cancel.amount.description == "-19.90")
        // Positive cancellations exist too (ERPs differ), and unknown types map to `other`.
        #expect(try record(["amount": .decimal("19.90"), "type": .text("Cancelamento")]).type == .cancel)
        #expect(try record(["amount": .decimal("-1.00"), "type": .text("estorno-x")]).type == .other)
        // An unmapped value that is already canonical needs no entry.
        #expect(try record(["amount": .decimal("-1.00"), "type": .text("REFUND")]).type == .refund)
        // Zero is non-negative.
        #expect(try record(["amount": .decimal("0.00")]).amount.minorUnits == 0)
    }

    @Test func configurableSignRules() throws {
        var rules = ValidationOptions()
        rules.signRules = [.sale: .nonNegative, .cancel: .nonPositive]
        let strict = MapperFixture(typeMap: ["cancelamento": .cancel], validation: rules)
        #expect(try rejection(["amount": .decimal("5.00"), "type": .text("cancelamento")], fixture: strict).reason == .signMismatch)
        #expect(try record(["amount": .decimal("-5.00"), "type": .text("cancelamento")], fixture: strict).type == .cancel)
    }

    @Test func amountScale() throws {
        let rejected = try rejection(["amount": .decimal("1.005")])
        #expect(rejected.reason == .amountScale)
        #expect(rejected.message.contains("BRL"))
        #expect(try record(["amount": .decimal("1.000")]).amount.description == "1.00")
        #expect(try record(["amount": .text(" 19.9 ")]).amount.description == "19.90")
        #expect(try rejection(["amount": .text("abc")]).reason == .invalidAmount)
        #expect(try rejection(["amount": .text("NaN")]).reason == .invalidAmount)

        let yen = MapperFixture(currency: "JPY")
        let yenRecord = try record(["amount": .decimal("1500")], fixture: yen)
        #expect(yenRecord.amount.description == "1500")
        #expect(yenRecord.currency == "JPY")
        #expect(try rejection(["amount": .decimal("1500.50")], fixture: yen).reason == .amountScale)
    }

    @Test func tooLongText() throws {
        let limit = try #require(RecordMapper.maxLengths[.pdv])
        let rejected = try rejection(["pdv": .text(String(repeating: "P", count: limit + 1))])
        #expect(rejected.reason == .tooLong)
        #expect(rejected.message.contains("\(limit + 1) characters"))
        #expect(try record(["pdv": .text(String(repeating: "P", count: limit))]).pdv.count == limit)
        // Padding does not count.
        #expect(try record(["pdv": .text(String(repeating: "P", count: limit) + "    ")]).pdv.count == limit)
        // Characters, not bytes: 64 × "Ç" (128 UTF-8 bytes) fits.
        #expect(try record(["pdv": .text(String(repeating: "Ç", count: limit))]).pdv.count == limit)
        #expect(try rejection(["externalId": .text(String(repeating: "9", count: 129))]).reason == .tooLong)
        #expect(try rejection(["reference": .text(String(repeating: "r", count: 257))]).reason == .tooLong)
    }

    @Test func invalidUTF8IsAnEncodingError() throws {
        let bad = Data([0x50, 0x44, 0xFF, 0xFE])
        let rejected = try rejection(["pdv": .bytes(bad)])
        #expect(rejected.reason == .invalidEncoding)
        #expect(rejected.raw["pdv"] == .some("base64:" + bad.base64EncodedString()))
        #expect(rejected.rawJSON.contains("\"pdv\":\"base64:UET//g==\""))
        // Valid UTF-8 bytes are text.
        #expect(try record(["pdv": .bytes(Data("PDV-Ç".utf8))]).pdv == "PDV-Ç")
        #expect(try rejection(["operator": .bytes(Data([0xC3, 0x28]))]).reason == .invalidEncoding)
    }

    /// U+0000 is valid UTF-8, but PostgreSQL's `text` and `jsonb` cannot hold it: inside a value it is refused as an
    /// encoding error (every mapped text field and the key), kept in the raw values as base64 and never as the
    /// entry's key; at either end it is CHAR padding and trimmed.
    @Test func nulInsideTextIsAnEncodingErrorAndAtTheEndsIsPadding() throws {
        for field in ["pdv", "operator", "type", "reference"] {
            let rejected = try rejection([field: .text("A\u{0}B")])
            #expect(rejected.reason == .invalidEncoding, "\(field): \(rejected.message)")
            #expect(rejected.message.hasPrefix("\(field):"))
            #expect(rejected.raw[field] == .some("base64:QQBC"))
            #expect(rejected.externalId == "1001")
        }
        #expect(try rejection(["pdv": .bytes(Data([0x41, 0x00, 0x42]))]).raw["pdv"] == .some("base64:QQBC"))
        let key = try rejection(["externalId": .text("10\u{0}01")])
        #expect(key.reason == .invalidEncoding)
        #expect(key.externalId == nil && key.key == [.integer(1001)])
        #expect(!key.rawJSON.contains("\\u0000"))
        // A NUL at the end of the external id is part of it (not padding): refused like one inside, never cut to `1001`.
        #expect(try rejection(["externalId": .text("1001\u{0}")]).reason == .invalidEncoding)
        #expect(try record(["pdv": .text("\u{0}PDV-1\u{0}\u{0}")]).pdv == "PDV-1")
        // Messages quote the bad value, never with its NUL (written `\0`, or the value as base64; the raw values keep it).
        for (field, value) in [("amount", "1\u{0}2"), ("occurredAt", "2024-03-10\u{0}14:00:00"), ("cursor", "2024-03-10 14:00:00\u{0}x")] {
            let rejected = try rejection([field: .text(value)])
            #expect(!rejected.message.holdsNUL, "\(field): \(rejected.message)")
            #expect(rejected.raw[field] == .some("base64:" + Data(value.utf8).base64EncodedString()))
        }
    }

    @Test func invalidUTF8InAnyMappedFieldIsAnEncodingError() throws {
        let bad = SourceValue.bytes(Data([0x31, 0xFF]))
        for field in ["externalId", "amount", "occurredAt", "type", "reference"] {
            let rejected = try rejection([field: bad])
            #expect(rejected.reason == .invalidEncoding, "\(field): \(rejected.message)")
            #expect(rejected.message.hasPrefix("\(field):"))
        }
        // A binary primary key is fine when the external id is mapped to another column.
        #expect(try record(["key.0": bad]).externalId == "1001")
    }

    @Test func compositeKeyWithoutExternalIdMapping() throws {
        var stream = StreamConfig.seedDefault
        stream.primaryKey = ["loja", "nr"]
        stream.fields[.externalId] = nil
        let source = SourceConfig(name: "loja-norte", type: .sqlite, path: "/tmp/erp.sqlite", stream: stream)
        let query = StreamQuery(stream: stream, dialect: .sqlite)
        let mapper = RecordMapper(source: source, validation: ValidationOptions())
        func row(_ key: [SourceValue]) -> [SourceValue] {
            let values: [String: SourceValue] = [
                "cursor": .text("2024-03-10 14:00:00"), "key.0": key[0], "key.1": key[1], "pdv": .text("PDV01"),
                "operator": .text("op-7"), "amount": .decimal("5.00"), "occurredAt": .text("2024-03-10 14:00:00"),
                "type": .text("sale"), "reference": .null,
            ]
            return query.columns.map { values[$0] ?? .null }
        }
        let now = Instant(seconds: 1_710_115_200)
        // Each value exactly (a space is part of a key), `|` and `\` escaped, so two keys never share an id.
        #expect(try mapper.map(row([.integer(3), .text("A-9 ")]), now: now).get().externalId == "3|A-9 ")
        #expect(try mapper.map(row([.integer(3), .text("A-9")]), now: now).get().externalId == "3|A-9")
        #expect(try mapper.map(row([.text("x|y"), .text("z")]), now: now).get().externalId == #"x\|y|z"#)
        #expect(try mapper.map(row([.text("x"), .text("y|z")]), now: now).get().externalId == #"x|y\|z"#)
        #expect(try mapper.map(row([.text(#"a\"#), .text("b")]), now: now).get().externalId == #"a\\|b"#)
        #expect(RecordMapper.externalId(ofKey: [.text(" K1\t")]) == " K1\t", "a one-column key is its text, exactly")
        #expect(mapper.position(of: row([.integer(3), .text("A-9")])).key == [.integer(3), .text("A-9")])
        guard case .failure(let missing) = mapper.map(row([.integer(3), .null]), now: now) else {
            Issue.record("a NULL key part must be rejected")
            return
        }
        #expect(missing.reason == .missingField)
        guard case .failure(let encoding) = mapper.map(row([.integer(3), .bytes(Data([0xFF]))]), now: now) else {
            Issue.record("an undecodable key part must be rejected")
            return
        }
        #expect(encoding.reason == .invalidEncoding)
        #expect(encoding.message.hasPrefix("key.1:"))
    }

    @Test func floatAmountsAreRoundedHalfEvenToTheCurrencyScale() throws {
        #expect(try record(["amount": .double(19.9)]).amount.description == "19.90")
        #expect(try record(["amount": .double(0.1 + 0.2)]).amount.description == "0.30")
        #expect(try record(["amount": .double(0.125)]).amount.description == "0.12")
        #expect(try record(["amount": .double(0.135)]).amount.description == "0.14")
        #expect(try record(["amount": .double(2.675)]).amount.description == "2.68")
        #expect(try record(["amount": .double(1234.5678)]).amount.description == "1234.57")
        #expect(try record(["amount": .double(1e-9)]).amount.description == "0.00")
        #expect(try record(["amount": .double(1e6)]).amount.description == "1000000.00")
        #expect(try rejection(["amount": .double(.nan)]).reason == .invalidAmount)
        #expect(try rejection(["amount": .double(.infinity)]).reason == .invalidAmount)
        #expect(try rejection(["amount": .double(1e300)]).reason == .invalidAmount)
        #expect(try rejection(["amount": .double(-0.5)]).reason == .signMismatch)
    }

    @Test func rejectionKeepsTheRawValues() throws {
        let rejected = try rejection(["amount": .decimal("-19.90"), "reference": .null, "pdv": .text("PDV 07  ")])
        #expect(rejected.reason == .signMismatch)
        #expect(rejected.externalId == "1001")
        #expect(rejected.raw["amount"] == .some("-19.90"))
        #expect(rejected.raw["reference"] == .some(nil))
        #expect(rejected.raw["pdv"] == .some("PDV 07  "))
        #expect(rejected.raw["key.0"] == .some("1001"))

        let json = rejected.rawJSON
        #expect(json.contains("\"amount\":\"-19.90\""))
        #expect(json.contains("\"reference\":null"))
        #expect(json.contains("\"occurredAt\":\"2024-03-10 14:00:00\""))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == Set(fixture.query.columns))
        #expect(object["externalId"] as? String == "1001")
        // Sorted keys: the JSON text (and so the fingerprint) is stable.
        #expect(json == rejected.rawJSON)
        #expect(rejected.fingerprint == (try self.rejection(["amount": .decimal("-19.90"), "reference": .null, "pdv": .text("PDV 07  ")])).fingerprint)
        #expect(rejected.fingerprint != (try self.rejection(["amount": .decimal("-19.91"), "reference": .null])).fingerprint)
    }

    @Test func contentHashCoversSourceFields() throws {
        let a = try record([:])
        #expect(a.contentHash == (try record([:])).contentHash)
        #expect(a.contentHash.count == 64)
        #expect(a.contentHash != (try record(["amount": .decimal("19.91")])).contentHash)
        #expect(a.contentHash != (try record(["reference": .null])).contentHash)
        #expect(a.contentHash != (try record(["type": .text("VENDA")])).contentHash)
    }
}

/// How ``PageReader`` turns a page's rows into a batch: the rows it holds back and where the page's position stays.
@Suite struct PageReaderTests {
    let fixture = MapperFixture(typeMap: ["venda": .sale])

    var reader: PageReader {
        PageReader(source: MemorySource(primaryKey: ["id"]), stream: fixture.source.stream, mapper: fixture.mapper,
                   retry: RetryPolicy(maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1), logger: Logger(label: "test"), now: { [fixture] in fixture.now })
    }

    func row(_ id: Int64, cursor: String, amount: String = "19.90") -> [SourceValue] {
        fixture.row(["key.0": .integer(id), "externalId": .integer(id), "cursor": .text(cursor), "amount": .decimal(amount)])
    }

    /// A row refused for its cursor (beyond the future limit, an impossible date in a text cursor) is read past but never
    /// becomes the checkpoint: a later row with an accepted cursor does. Had the checkpoint moved to `2024-03-10 25:00:00`
    /// (text, sorting after the day's every real time), the rows written later that day would never be read.
    @Test func aRowRefusedForItsCursorNeverBecomesTheCheckpoint() {
        let rows = [row(1, cursor: "2024-03-10 14:00:00"), row(2, cursor: "2024-03-20 00:00:00"), row(3, cursor: "2024-03-21 00:00:00")]
        let page = reader.prepare(rows)
        #expect(page.records.map(\.externalId) == ["1"])
        #expect(page.rejected.map(\.reason) == [.futureCursor, .futureCursor] && page.rejected.allSatisfy(\.refusesCursor))
        #expect(page.last == fixture.mapper.position(of: rows[2]), "the read goes on after them")
        #expect(page.checkpoint == fixture.mapper.position(of: rows[0]))
        #expect(reader.prepare(Array(rows.dropFirst())).checkpoint == nil, "none accepted: the saved checkpoint stays")
        let impossible = [row(4, cursor: "2024-03-10 15:00:00"), row(5, cursor: "2024-03-10 25:00:00")]
        #expect(reader.prepare(impossible).checkpoint == fixture.mapper.position(of: impossible[0]))
        #expect(reader.prepare(impossible).rejected.map(\.reason) == [.invalidDate])
        let after = impossible + [row(6, cursor: "2024-03-11 09:00:00")]
        #expect(reader.prepare(after).checkpoint == fixture.mapper.position(of: after[2]), "a later accepted cursor moves it")
        // Other refusals (here the amount) keep the row's place in the stream.
        let badAmount = [row(7, cursor: "2024-03-10 16:00:00", amount: "x")]
        #expect(reader.prepare(badAmount).checkpoint == fixture.mapper.position(of: badAmount[0]))
    }

    /// Two rows of a page with one external id: the same values load once; other values are quarantined as
    /// `DUPLICATE_KEY`, never dropped nor merged into the first.
    @Test func aRepeatedExternalIdWithOtherValuesIsQuarantined() {
        let rows = [row(1, cursor: "2024-03-10 14:00:00"), row(1, cursor: "2024-03-10 14:00:00"), row(1, cursor: "2024-03-10 14:00:01", amount: "29.90")]
        let page = reader.prepare(rows)
        #expect(page.records.count == 1 && page.records[0].amount.description == "19.90")
        #expect(page.rejected.map(\.reason) == [.duplicateKey])
        #expect(page.rejected.first?.raw["amount"] == .some("29.90") && page.rejected.first?.externalId == "1")
        #expect(page.rowCount == 3)
    }
}
