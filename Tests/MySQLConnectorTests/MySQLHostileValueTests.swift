#if MySQL
import Foundation
import SyncCore
import Testing

/// No value from a MariaDB source may crash the process or be changed on its way (issue 15, bugs 2 and 6).
/// MariaDB's `STR_TO_DATE` returns `2024-02-30` for a `CHAR(8)` `20240230` under any `sql_mode`, and
/// `ALLOW_INVALID_DATES` stores it in a DATETIME: such values are quarantined as INVALID_DATE with their raw
/// value, never rolled over into March; extreme decimals, empty and huge text and bytes go through the real
/// driver too.
@Suite struct MySQLHostileValueTests {
    /// One row of `hostile`: its `kind` picks the source, `column` gets the hostile `value` (SQL); the expected
    /// reason and raw text of the broken `field` (`nil` reason: the row loads).
    struct Case: Sendable {
        var kind: String
        var column: String
        var value: String
        var reason: String?
        var field: String
        var raw: String?
    }

    static let cases: [Case] = [
        Case(kind: "str", column: "d8", value: "'20240230'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-02-30 00:00:00"),
        Case(kind: "str", column: "d8", value: "'20230229'", reason: "INVALID_DATE", field: "occurredAt", raw: "2023-02-29 00:00:00"),
        Case(kind: "str", column: "d8", value: "'20240431'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-04-31 00:00:00"),
        Case(kind: "str", column: "d8", value: "'00000000'", reason: "ZERO_DATE", field: "occurredAt", raw: "0000-00-00 00:00:00"),
        Case(kind: "str", column: "d8", value: "'20241301'", reason: "MISSING_FIELD", field: "occurredAt", raw: nil),  // STR_TO_DATE gives NULL
        Case(kind: "str", column: "d8", value: "'20240229'", reason: nil, field: "occurredAt", raw: nil),
        Case(kind: "dt", column: "dt", value: "'2024-02-30 10:00:00'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-02-30 10:00:00"),
        Case(kind: "dt", column: "dt", value: "'2024-04-31 23:59:59'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-04-31 23:59:59"),
        Case(kind: "dt", column: "dt", value: "'9999-12-31 23:59:59'", reason: "FUTURE_TIMESTAMP", field: "occurredAt", raw: "9999-12-31 23:59:59"),
        Case(kind: "dt", column: "amount", value: "12345678901234567890123456789012345678", reason: "INVALID_AMOUNT", field: "amount",
             raw: "12345678901234567890123456789012345678.000000000000000000000000000"),
        Case(kind: "dt", column: "amount", value: "0.000000000000000000000000001", reason: "AMOUNT_SCALE", field: "amount",
             raw: "0.000000000000000000000000001"),
        Case(kind: "dt", column: "amount", value: "123456789012345678901234567890123456.78", reason: nil, field: "amount", raw: nil),
        Case(kind: "dt", column: "pdv", value: "''", reason: "MISSING_FIELD", field: "pdv", raw: ""),
        Case(kind: "dt", column: "pdv", value: "REPEAT('x', 1000000)", reason: "TOO_LONG", field: "pdv", raw: String(repeating: "x", count: 1_000_000)),
        Case(kind: "bin", column: "bin", value: "0xFF", reason: "INVALID_ENCODING", field: "pdv", raw: "base64:/w=="),
        // NUL inside text is valid UTF-8 that PostgreSQL cannot store: it failed its batch on every run and stopped the
        // stream there. Quarantined with its bytes; at the end it is CHAR padding and trimmed.
        Case(kind: "dt", column: "pdv", value: "CONCAT('PD', CHAR(0), 'V')", reason: "INVALID_ENCODING", field: "pdv", raw: "base64:UEQAVg=="),
        Case(kind: "dt", column: "pdv", value: "CONCAT('PDV', CHAR(0))", reason: nil, field: "pdv", raw: nil),
    ]

    static func stream(kind: String) -> StreamConfig {
        let occurred: StreamConfig.Mapping = kind == "str" ? .sql("STR_TO_DATE(d8, '%Y%m%d')") : .column("dt")
        return StreamConfig(
            from: .query("SELECT * FROM hostile WHERE kind = '\(kind)'"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
            fields: [.pdv: .column(kind == "bin" ? "bin" : "pdv"), .operator: .sql("'op'"), .amount: .column("amount"), .occurredAt: occurred,
                     .type: .sql("'venda'")],
            typeMap: ["venda": .sale])
    }

    @Test func impossibleDatesAndExtremeValuesAreQuarantinedWithTheirRawValue() async throws {
        try await MySQLFixture.with { f in
            var statements = [
                "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
                """
                CREATE TABLE hostile (id INT PRIMARY KEY, kind VARCHAR(8) NOT NULL, pdv LONGTEXT DEFAULT 'P', amount DECIMAL(65,27) DEFAULT 10,
                    d8 CHAR(8) DEFAULT '20240301', dt DATETIME DEFAULT '2024-03-01 10:00:00', bin VARBINARY(16), updated_at DATETIME(6))
                """,
            ]
            for (index, item) in Self.cases.enumerated() {
                statements.append("INSERT INTO hostile (id, kind, \(item.column)) VALUES (\(index + 1), '\(item.kind)', \(item.value))")
            }
            statements.append("UPDATE hostile SET updated_at = TIMESTAMP '2024-03-01 12:00:00' + INTERVAL id MINUTE")
            try await MySQLFixture.execute(f.sourceDB, statements)
            #expect(try await MySQLFixture.rows(f.sourceDB, "SELECT CAST(dt AS CHAR) FROM hostile WHERE id = 7") == [["2024-02-30 10:00:00"]])
            #expect(try await MySQLFixture.rows(f.sourceDB, "SELECT COUNT(*) FROM hostile WHERE amount = 123456789012345678901234567890123456.78") == [["1"]])
            for kind in Set(Self.cases.map(\.kind)) {
                let result = try await f.sync(MySQLFixture.options(), source: f.source("maria-\(kind)", stream: Self.stream(kind: kind)))
                #expect(result.status == .success, "\(kind): \(result.errors)")
                #expect(result.recordsFetched == Self.cases.filter { $0.kind == kind }.count, "\(kind)")
            }
            let quarantined = try await f.audit("SELECT external_id, reason_code, raw_json::text FROM tb_sync_errors WHERE kind = 'record'")
            let byId = Dictionary(uniqueKeysWithValues: quarantined.map { ($0[0]!, $0) })
            let loaded = try await f.audit("SELECT external_id, amount::text, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM tb_sales")
            let loadedById = Dictionary(uniqueKeysWithValues: loaded.map { ($0[0]!, $0) })
            for (index, item) in Self.cases.enumerated() {
                let id = String(index + 1)
                guard let reason = item.reason else {
                    #expect(loadedById[id] != nil, "\(item.value) did not load")
                    continue
                }
                #expect(loadedById[id] == nil, "\(item.value) loaded as \(loadedById[id] ?? [])")
                #expect(byId[id]?[1] == reason, "\(item.column) \(item.value): \(byId[id] ?? [])")
                let raw = try byId[id]?[2].map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? nil
                #expect(raw?[item.field] as? String == item.raw, "\(item.column) \(item.value): \(String(describing: raw?[item.field]).prefix(80))")
            }
            let leap = String(Self.cases.firstIndex { $0.value == "'20240229'" }! + 1)
            #expect(loadedById[leap]?[2] == "2024-02-29 03:00:00")
            let wide = String(Self.cases.firstIndex { $0.value == "123456789012345678901234567890123456.78" }! + 1)
            #expect(loadedById[wide]?[1] == "123456789012345678901234567890123456.78")
        }
    }

    /// A key holding NUL goes into the checkpoint (`tb_sync_state.state_json`, `jsonb`, which refuses `\u0000`): a
    /// page ending on it failed its batch on every run. Pages of two rows, each ending on such a key: every row loads
    /// or is quarantined, and the next run resumes from the stored checkpoint. A NUL at the key's end is part of the key
    /// (`2` and `2<NUL>` are two rows): such a key is quarantined too, never loaded as `2`.
    @Test func keysHoldingNULMoveTheCheckpointAndResume() async throws {
        try await MySQLFixture.with { f in
            try await MySQLFixture.execute(f.sourceDB, [
                "CREATE TABLE nulkeys (id VARCHAR(10) PRIMARY KEY, pdv VARCHAR(10), updated_at DATETIME(6))",
                """
                INSERT INTO nulkeys VALUES ('1', 'P', '2024-03-01 10:00:00'), (CONCAT('2', CHAR(0)), 'P', '2024-03-01 10:01:00'),
                    ('3', 'P', '2024-03-01 10:02:00'), (CONCAT('4', CHAR(0), 'x'), 'P', '2024-03-01 10:03:00'), ('5', 'P', '2024-03-01 10:04:00')
                """,
            ])
            let stream = StreamConfig(
                from: .table("nulkeys"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
                fields: [.pdv: .column("pdv"), .operator: .sql("'op'"), .amount: .sql("10"), .occurredAt: .column("updated_at"), .type: .sql("'venda'")],
                typeMap: ["venda": .sale])
            let first = try await f.sync(MySQLFixture.options(batchSize: 2), source: f.source(stream: stream))
            #expect(first.status == .success, "\(first.errors.map(\.message))")
            #expect(first.recordsInserted == 3 && first.recordsRejected == 2)
            #expect(try await f.audit("SELECT external_id FROM tb_sales ORDER BY 1") == [["1"], ["3"], ["5"]])
            let entries = try await f.audit("SELECT external_id, reason_code, key_json::text FROM tb_sync_errors WHERE kind = 'record'")
            #expect(entries.count == 2 && entries.allSatisfy { $0[0] == nil && $0[1] == "INVALID_ENCODING" })
            #expect(entries.allSatisfy { $0[2]?.contains("textHoldingNUL") == true })
            try await MySQLFixture.execute(f.sourceDB, ["INSERT INTO nulkeys VALUES ('6', 'P', '2024-03-01 10:05:00')"])
            let second = try await f.sync(MySQLFixture.options(batchSize: 2), source: f.source(stream: stream))
            #expect(second.status == .success && second.recordsInserted == 1 && second.recordsFetched == 1, "\(second.errors)")
        }
    }
}
#endif
