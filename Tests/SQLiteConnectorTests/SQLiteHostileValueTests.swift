import Foundation
import SQLiteNIO
import SyncCore
import Testing

/// No value from an SQLite source may crash the process or be changed on its way (issue 15, bugs 2 and 6).
/// SQLite stores any value in a column without a declared type, so each hostile value goes in as itself,
/// through the real driver, and comes out quarantined with its raw value or loaded exactly.
@Suite struct SQLiteHostileValueTests {
    /// One row: the column that gets the hostile value, the value, the expected reason and raw text of the broken
    /// field (`nil` reason: the row loads).
    struct Case: Sendable {
        var column: String
        var value: SQLiteData
        var reason: String?
        var field: String
        var raw: String?
    }

    static let cases: [Case] = [
        Case(column: "occurred", value: .text("2024-02-30 10:00:00"), reason: "INVALID_DATE", field: "occurredAt", raw: "2024-02-30 10:00:00"),
        Case(column: "occurred", value: .text("2024-13-01 10:00:00"), reason: "INVALID_DATE", field: "occurredAt", raw: "2024-13-01 10:00:00"),
        Case(column: "occurred", value: .text("2024-01-01 24:00:00"), reason: "INVALID_DATE", field: "occurredAt", raw: "2024-01-01 24:00:00"),
        Case(column: "occurred", value: .text("0000-01-01 10:00:00"), reason: "INVALID_DATE", field: "occurredAt", raw: "0000-01-01 10:00:00"),
        Case(column: "occurred", value: .text("infinity"), reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "infinity"),
        Case(column: "occurred", value: .text("10000-01-01 00:00:00"), reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "10000-01-01 00:00:00"),
        Case(column: "occurred", value: .integer(1_709_290_800), reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "1709290800"),
        Case(column: "occurred", value: .text("2024-02-29 10:00:00"), reason: nil, field: "occurredAt", raw: nil),
        Case(column: "amount", value: .float(.infinity), reason: "INVALID_AMOUNT", field: "amount", raw: "inf"),
        Case(column: "amount", value: .float(-.infinity), reason: "INVALID_AMOUNT", field: "amount", raw: "-inf"),
        // An exponent at Int.min once trapped (`abs` overflow) and killed the process.
        Case(column: "amount", value: .text("1e-9223372036854775808"), reason: "INVALID_AMOUNT", field: "amount", raw: "1e-9223372036854775808"),
        Case(column: "amount", value: .text("123456789012345678901234567890123456789"), reason: "INVALID_AMOUNT", field: "amount",
             raw: "123456789012345678901234567890123456789"),
        Case(column: "amount", value: .text("123456789012345678901234567890123456.78"), reason: nil, field: "amount", raw: nil),
        Case(column: "pdv", value: .text(""), reason: "MISSING_FIELD", field: "pdv", raw: ""),
        Case(column: "pdv", value: .text(String(repeating: "x", count: 1_000_000)), reason: "TOO_LONG", field: "pdv",
             raw: String(repeating: "x", count: 1_000_000)),
        Case(column: "pdv", value: .blob(ByteBuffer(bytes: [0xFF, 0xFE])), reason: "INVALID_ENCODING", field: "pdv", raw: "base64://4="),
    ]

    @Test func extremeAndSpecialValuesAreQuarantinedWithTheirRawValueAndNeverTrap() async throws {
        try await Fixture.with { f in
            try await f.execute("CREATE TABLE hostile (id INTEGER PRIMARY KEY, pdv, amount, occurred, updated_at)")
            for (index, item) in Self.cases.enumerated() {
                var row: [String: SQLiteData] = ["pdv": .text("P"), "amount": .text("10.00"), "occurred": .text("2024-03-01 10:00:00")]
                row[item.column] = item.value
                try await f.execute("INSERT INTO hostile VALUES (?, ?, ?, ?, ?)", [
                    .integer(index + 1), row["pdv"]!, row["amount"]!, row["occurred"]!, .text(String(format: "2024-03-01 12:%02d:00", index)),
                ])
            }
            let stream = StreamConfig(
                from: .table("hostile"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
                fields: [.pdv: .column("pdv"), .operator: .sql("'op'"), .amount: .column("amount"), .occurredAt: .column("occurred"),
                         .type: .sql("'venda'")],
                typeMap: ["venda": .sale])
            let result = await f.sync(sources: [f.source(stream: stream)])
            #expect(result.status == .success, "\(result.errors)")
            #expect(result.recordsFetched == Self.cases.count)
            #expect(result.recordsRejected == Self.cases.filter { $0.reason != nil }.count)
            let quarantined = try await f.auditRows("SELECT external_id, reason_code, raw_json FROM tb_sync_errors WHERE kind = 'record'")
            let byId = Dictionary(uniqueKeysWithValues: quarantined.map { ($0["external_id"]!, $0) })
            let sales = try await f.sales()
            for (index, item) in Self.cases.enumerated() {
                let id = String(index + 1)
                guard let reason = item.reason else {
                    #expect(sales[id] != nil, "\(item.value) did not load")
                    continue
                }
                #expect(sales[id] == nil, "\(item.value) loaded")
                #expect(byId[id]?["reason_code"] == reason, "\(item.column) \(item.value): \(byId[id]?["reason_code"] ?? "not quarantined")")
                let raw = try byId[id]?["raw_json"].map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? nil
                #expect(raw?[item.field] as? String == item.raw, "\(item.column): \(String(describing: raw?[item.field]).prefix(80))")
            }
            let wide = String(Self.cases.firstIndex { $0.reason == nil && $0.column == "amount" }! + 1)
            #expect(sales[wide]?["amount"] == "123456789012345678901234567890123456.78")
            let leap = String(Self.cases.firstIndex { $0.reason == nil && $0.column == "occurred" }! + 1)
            #expect(sales[leap]?["occurred_at"]?.hasPrefix("2024-02-29T13:00:00") == true, "\(sales[leap] ?? [:])")
        }
    }
    /// An impossible date in a text cursor (`2024-03-01 25:00:00`, `2024-02-30 …`) sorts after or among real ones: the
    /// row is quarantined and the read goes past it, but the checkpoint stays on the last row with a real cursor, so
    /// a sale written later that day (`17:00`, before `25:00:00` as text) is read by the next run. It was lost: the
    /// checkpoint moved to the impossible value.
    @Test func anImpossibleTextCursorNeverBecomesTheCheckpoint() async throws {
        try await Fixture.with { f in
            try await f.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, pdv, amount, occurred, updated_at)")
            try await f.execute("""
                INSERT INTO sales VALUES (1, 'P', '10.00', '2024-03-01 10:00:00', '2024-03-01 10:00:00'),
                    (2, 'P', '11.00', '2024-03-01 10:00:00', '2024-03-01 25:00:00')
                """)
            let stream = StreamConfig(
                from: .table("sales"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
                fields: [.pdv: .column("pdv"), .operator: .sql("'op'"), .amount: .column("amount"), .occurredAt: .column("occurred"),
                         .type: .sql("'venda'")],
                typeMap: ["venda": .sale])
            let first = await f.sync(sources: [f.source(stream: stream)])
            #expect(first.recordsInserted == 1 && first.recordsRejected == 1 && first.cursorTo == "2024-03-01 10:00:00 #1", "\(first.errors)")
            try await f.execute("INSERT INTO sales VALUES (3, 'P', '12.00', '2024-03-01 17:00:00', '2024-03-01 17:00:00')")
            let second = await f.sync(sources: [f.source(stream: stream)])
            #expect(second.recordsInserted == 1 && second.cursorTo == "2024-03-01 17:00:00 #3", "\(second.errors)")
            #expect(try await f.sales().keys.sorted() == ["1", "3"])
        }
    }
    /// A missing table or column of an SQLite source is a configuration error (`TABLE_NOT_FOUND`, `COLUMN_NOT_FOUND`,
    /// exit 78), as from the other sources, not a failed query (exit 1).
    @Test func aMissingTableOrColumnIsAConfigurationError() async throws {
        try await Fixture.with { f in
            try await f.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, pdv, amount, occurred, updated_at)")
            var stream = StreamConfig(
                from: .table("nosuchtable"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
                fields: [.pdv: .column("pdv"), .operator: .sql("'op'"), .amount: .column("amount"), .occurredAt: .column("occurred"),
                         .type: .sql("'venda'")])
            let table = await f.sync(sources: [f.source(stream: stream)])
            #expect(table.status == .failed && table.errors.map(\.code).contains(.tableNotFound), "\(table.errors)")
            stream.from = .table("sales")
            stream.fields[.pdv] = .column("nosuchcol")
            let column = await f.sync(sources: [f.source(stream: stream)])
            #expect(column.status == .failed && column.errors.map(\.code).contains(.columnNotFound), "\(column.errors)")
        }
    }
}
