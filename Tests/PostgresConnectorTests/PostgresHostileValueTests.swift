import Foundation
import NIOCore
import PostgresNIO
@testable import PostgresConnector
import SyncCore
import Testing

/// No value from a PostgreSQL source may crash the process or be changed on its way (issue 15, bugs 2 and 6):
/// the extreme and special values of each type go through the real driver and are quarantined with their raw
/// value, or load exactly.
@Suite struct PostgresHostileValueTests {
    /// One case: a row of `hostile` whose `kind` picks the source (which column is `occurredAt`, which is
    /// `amount`), the SQL of its hostile value, and the expected reason code and raw text of the field it breaks
    /// (`nil` reason: the row loads).
    struct Case: Sendable {
        var kind: String
        var column: String
        var value: String
        var reason: String?
        var field: String
        var raw: String?
    }

    static let cases: [Case] = [
        // timestamp: infinity used to overflow Int64 arithmetic (SIGILL); BC and five-digit years are no dates.
        Case(kind: "ts", column: "ts", value: "'infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "infinity"),
        Case(kind: "ts", column: "ts", value: "'-infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "-infinity"),
        Case(kind: "ts", column: "ts", value: "'0001-01-01 00:00:00 BC'", reason: "INVALID_DATE", field: "occurredAt", raw: "0000-01-01 00:00:00"),
        Case(kind: "ts", column: "ts", value: "'294276-12-31 23:59:59'", reason: "INVALID_DATE", field: "occurredAt", raw: "294276-12-31 23:59:59"),
        Case(kind: "ts", column: "ts", value: "'9999-12-31 23:59:59'", reason: "FUTURE_TIMESTAMP", field: "occurredAt", raw: "9999-12-31 23:59:59"),
        // timestamptz
        Case(kind: "tstz", column: "tstz", value: "'infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "infinity"),
        Case(kind: "tstz", column: "tstz", value: "'-infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "-infinity"),
        Case(kind: "tstz", column: "tstz", value: "'10000-01-01 00:00:00+00'", reason: "INVALID_DATE", field: "occurredAt", raw: "10000-01-01T00:00:00.000000Z"),
        Case(kind: "tstz", column: "tstz", value: "'0001-01-01 00:00:00+00 BC'", reason: "INVALID_DATE", field: "occurredAt", raw: "0000-01-01T00:00:00.000000Z"),
        // date
        Case(kind: "d", column: "d", value: "'infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "infinity"),
        Case(kind: "d", column: "d", value: "'-infinity'", reason: "INVALID_TIMESTAMP", field: "occurredAt", raw: "-infinity"),
        Case(kind: "d", column: "d", value: "'4713-01-01 BC'", reason: "INVALID_DATE", field: "occurredAt", raw: "-4712-01-01 00:00:00"),
        Case(kind: "d", column: "d", value: "'5874897-12-31'", reason: "INVALID_DATE", field: "occurredAt", raw: "5874897-12-31 00:00:00"),
        // text parsed by the mapping: impossible calendar values are never rolled over (bug 2)
        Case(kind: "t", column: "t", value: "'2024-02-30 10:00:00'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-02-30 10:00:00"),
        Case(kind: "t", column: "t", value: "'2024-13-01 10:00:00'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-13-01 10:00:00"),
        Case(kind: "t", column: "t", value: "'2024-01-01 24:00:00'", reason: "INVALID_DATE", field: "occurredAt", raw: "2024-01-01 24:00:00"),
        Case(kind: "t", column: "t", value: "'2024-02-29 10:00:00'", reason: nil, field: "occurredAt", raw: nil),
        // numeric: special values and more digits than 38
        Case(kind: "ts", column: "amount", value: "'NaN'", reason: "INVALID_AMOUNT", field: "amount", raw: "NaN"),
        Case(kind: "ts", column: "amount", value: "'Infinity'", reason: "INVALID_AMOUNT", field: "amount", raw: "Infinity"),
        Case(kind: "ts", column: "amount", value: "'-Infinity'", reason: "INVALID_AMOUNT", field: "amount", raw: "-Infinity"),
        Case(kind: "ts", column: "amount", value: "12345678901234567890123456789012345678", reason: "INVALID_AMOUNT", field: "amount",
             raw: "12345678901234567890123456789012345678"),
        Case(kind: "ts", column: "amount", value: "123456789012345678901234567890123456.78", reason: nil, field: "amount", raw: nil),
        // float8 amounts
        Case(kind: "f", column: "f", value: "'NaN'", reason: "INVALID_AMOUNT", field: "amount", raw: "nan"),
        Case(kind: "f", column: "f", value: "'Infinity'", reason: "INVALID_AMOUNT", field: "amount", raw: "inf"),
        Case(kind: "f", column: "f", value: "'-Infinity'", reason: "INVALID_AMOUNT", field: "amount", raw: "-inf"),
        Case(kind: "f", column: "f", value: "1e308", reason: "INVALID_AMOUNT", field: "amount", raw: "1e+308"),
        // text: empty and huge
        Case(kind: "ts", column: "pdv", value: "''", reason: "MISSING_FIELD", field: "pdv", raw: ""),
        Case(kind: "ts", column: "pdv", value: "repeat('x', 1000000)", reason: "TOO_LONG", field: "pdv", raw: String(repeating: "x", count: 1_000_000)),
    ]

    /// The source reading the rows of one `kind`: `occurredAt` from the column of that name (`ts` for `f`),
    /// `amount` from `f` for `f`.
    static func stream(kind: String) -> StreamConfig {
        let occurred = kind == "f" ? "ts" : kind
        let amount = kind == "f" ? "f" : "amount"
        return StreamConfig(
            from: .query("SELECT id, pdv, \(amount) AS amount, \(occurred) AS occurred, updated_at FROM hostile WHERE kind = '\(kind)'"),
            primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
            fields: [.pdv: .column("pdv"), .operator: .sql("'op'"), .amount: .column("amount"), .occurredAt: .column("occurred"),
                     .type: .sql("'venda'")],
            typeMap: ["venda": .sale])
    }

    @Test func extremeAndSpecialValuesAreQuarantinedWithTheirRawValueAndNeverTrap() async throws {
        try await PostgresFixture.with { f in
            var statements = [
                """
                CREATE TABLE hostile (id int PRIMARY KEY, kind text NOT NULL, pdv text DEFAULT 'P', amount numeric DEFAULT 10.00,
                    f float8 DEFAULT 10.0, ts timestamp DEFAULT '2024-03-01 10:00', tstz timestamptz DEFAULT '2024-03-01 10:00+00',
                    d date DEFAULT '2024-03-01', t text DEFAULT '2024-03-01 10:00:00', updated_at timestamp)
                """,
            ]
            for (index, item) in Self.cases.enumerated() {
                statements.append("INSERT INTO hostile (id, kind, \(item.column)) VALUES (\(index + 1), '\(item.kind)', \(item.value))")
            }
            statements.append("UPDATE hostile SET updated_at = timestamp '2024-03-01 12:00' + id * interval '1 minute'")
            try await PostgresFixture.execute(f.sourceDB, statements)
            for kind in Set(Self.cases.map(\.kind)) {
                let result = try await f.sync(PostgresFixture.options(), source: f.source("pg-\(kind)", stream: Self.stream(kind: kind)))
                #expect(result.status == .success, "\(kind): \(result.errors)")
                #expect(result.recordsFetched == Self.cases.filter { $0.kind == kind }.count, "\(kind)")
            }
            let quarantined = try await PostgresFixture.rows(f.auditDB, "SELECT external_id, reason_code, raw_json::text FROM tb_sync_errors WHERE kind = 'record'")
            let byId = Dictionary(uniqueKeysWithValues: quarantined.map { ($0[0]!, $0) })
            let loaded = try await PostgresFixture.rows(f.auditDB, "SELECT external_id, amount::text, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM tb_sales")
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
            // Exact values load digit for digit; Feb 29 of a leap year is a real date.
            let wide = String(Self.cases.firstIndex { $0.value == "123456789012345678901234567890123456.78" }! + 1)
            #expect(loadedById[wide]?[1] == "123456789012345678901234567890123456.78")
            let leap = String(Self.cases.firstIndex { $0.value == "'2024-02-29 10:00:00'" }! + 1)
            #expect(loadedById[leap]?[2] == "2024-02-29 13:00:00")
        }
    }

    /// In a `SQL_ASCII` database text is bytes the server never checks: invalid UTF-8 must be quarantined as
    /// INVALID_ENCODING with its bytes, never repaired into other characters and loaded.
    @Test func invalidUTF8FromASQLASCIIDatabaseIsQuarantinedNotRepaired() async throws {
        try await PostgresFixture.with { f in
            let database = f.sourceDB + "_ascii"
            try await PostgresFixture.execute("postgres", ["CREATE DATABASE \(database) ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"])
            do {
                try await PostgresFixture.execute(database, [
                    PostgresFixture.createSales,
                    """
                    INSERT INTO sale_transactions VALUES
                        (1, E'PDV\\xff', 'op', 10.00, '2024-03-01 10:00', 'venda', NULL, '2024-03-01 10:00'),
                        (2, 'PDV2', 'op', 11.00, '2024-03-01 10:01', 'venda', NULL, '2024-03-01 10:01')
                    """,
                ])
                let result = try await f.sync(PostgresFixture.options(), source: f.source(stream: PostgresFixture.stream, database: database))
                #expect(result.status == .success, "\(result.errors)")
                #expect(result.recordsInserted == 1 && result.recordsRejected == 1)
                let quarantined = try await PostgresFixture.rows(f.auditDB, "SELECT external_id, reason_code, raw_json->>'pdv' FROM tb_sync_errors WHERE kind = 'record'")
                #expect(quarantined == [["1", "INVALID_ENCODING", "base64:UERW/w=="]])
            } catch {
                try? await PostgresFixture.execute("postgres", ["DROP DATABASE \(database) WITH (FORCE)"])
                throw error
            }
            try await PostgresFixture.execute("postgres", ["DROP DATABASE \(database) WITH (FORCE)"])
        }
    }

    /// Binary `numeric` values read as exactly the text PostgreSQL prints for them (`numeric_out`), across signs,
    /// weights (zero groups inside, before and after the point) and display scales.
    @Test func binaryNumericsReadAsPostgreSQLsOwnText() async throws {
        let source = try PostgresSource(settings: try PostgresFixture.settings("postgres"))
        let rows = try await source.fetch(SQLStatement(sql: """
            SELECT v, v::text FROM (
                SELECT round(((random() - 0.5) * 10 ^ (g % 44 - 20))::numeric, g % 23) AS v FROM generate_series(1, 3000) g
                UNION ALL SELECT v::numeric FROM unnest(ARRAY['0', '0.00', '-0.5', '1', '10000', '100000000', '9999.9999', '0.0001',
                    '0.00000001', '1e-30', '-123456789012345678901234567890.123456789', '10000.00010000', '5.', '-0.000']) v
            ) t
            """))
        await source.close()
        #expect(rows.count == 3014)
        for row in rows {
            guard case .decimal(let decoded) = row[0] else {
                Issue.record("not a decimal: \(row[0])")
                continue
            }
            #expect(decoded == row[1].text, "binary \(decoded) vs text \(row[1].text ?? "NULL")")
        }
    }

    /// A page read as one array per column (``SQLStatement/columnCount`` set) decodes every value exactly as the
    /// same statement read row by row: each built-in type the decoder knows, NULLs, empty text, types it does not know
    /// (an enum, an interval), and domains — whose arrays name the domain, resolved to its base type through a chain
    /// of domains — in the statement's order over many rows. A statement with an array-typed column, which
    /// `array_agg` cannot read so, is read row by row.
    @Test func aPageOfColumnArraysReadsWhatRowByRowReads() async throws {
        try await PostgresFixture.with { f in
            try await PostgresFixture.execute(f.sourceDB, [
                "CREATE TYPE mood AS ENUM ('venda', 'cancelamento')",
                "CREATE DOMAIN money2 AS numeric(14, 2) CHECK (VALUE > -1000000)",
                "CREATE DOMAIN price AS money2",
                "CREATE DOMAIN code AS varchar(20)",
                """
                CREATE TABLE typed (id int PRIMARY KEY, a int2, b int8, c float4, d float8, e bool, n numeric, ts timestamp, tz timestamptz,
                    dt date, t text, v varchar(10), ch char(3), nm name, by bytea, j jsonb, u uuid, m mood, p price, k code, iv interval, arr int[])
                """,
                """
                INSERT INTO typed SELECT g, (g % 300)::int2, g::int8 * 1000003, g / 7.0, g / 3.0, g % 2 = 0, round((g * 104729 % 99991) / 97.0, g % 5),
                    timestamp '2024-03-01' + g * interval '17 minutes', timestamptz '2024-03-01 00:00+00' - g * interval '1 hour',
                    date '2024-03-01' + g, 'texto ' || g, 'v' || g, 'c' || (g % 10), 'n' || g, decode(lpad(to_hex(g), 8, '0'), 'hex'),
                    jsonb_build_object('g', g), md5(g::text)::uuid, CASE WHEN g % 3 = 0 THEN 'cancelamento' ELSE 'venda' END::mood,
                    (g * 3.25)::price, ('PDV-' || g % 50)::code, g * interval '1 second', CASE WHEN g % 7 > 0 THEN ARRAY[g, g + 1] END
                FROM generate_series(1, 3000) g
                """,
                "INSERT INTO typed (id, t) VALUES (3001, ''), (3002, NULL)",
            ])
            let source = try PostgresSource(settings: try PostgresFixture.settings(f.sourceDB))
            let scalars = "SELECT id, a, b, c, d, e, n, ts, tz, dt, t, v, ch, nm, by, j, u, m, p, k, iv FROM typed ORDER BY id DESC"
            let arrays = "SELECT id, arr FROM typed ORDER BY id"
            let pages: [[[SourceValue]]]
            do {
                pages = [try await source.fetch(SQLStatement(sql: scalars)), try await source.fetch(SQLStatement(sql: scalars, columnCount: 21)),
                         try await source.fetch(SQLStatement(sql: scalars.replacingOccurrences(of: "ORDER BY", with: "WHERE id < 0 ORDER BY"), columnCount: 21)),
                         try await source.fetch(SQLStatement(sql: arrays)), try await source.fetch(SQLStatement(sql: arrays, columnCount: 2))]
                await source.close()
            } catch {
                await source.close()
                throw error
            }
            #expect(pages[0].count == 3002 && pages[0].first?.first == .integer(3002))
            #expect(pages[1] == pages[0])
            #expect(pages[2].isEmpty)
            // The domain over a domain over numeric is a decimal, not its binary bytes read as text; the domains were
            // looked up, so the page was read as arrays.
            #expect(pages[1].last?[18] == .decimal("3.25"))
            let domains = try await PostgresFixture.rows(f.sourceDB, "SELECT oid::text FROM pg_type WHERE typname IN ('price', 'code') ORDER BY typname")
            #expect(source.knownTypes.withLock { known in domains.map { known[UInt32($0[0]!)!] } } == [.varchar, .numeric])
            #expect(source.rowByRow.withLock { $0 } == [arrays])
            #expect(pages[4] == pages[3] && pages[3].count == 3002)
        }
    }

    /// A page's column array that is not a one-dimensional array of its rows is refused, never read short or past its end.
    @Test func malformedColumnArraysAreRefused() {
        func array(_ integers: [Int32], _ tail: [UInt8] = []) -> [UInt8] {
            integers.flatMap { withUnsafeBytes(of: $0.bigEndian, Array.init) } + tail
        }
        let int4: Int32 = 23
        let valid = array([1, 0, int4, 2, 1, 4, 7, -1])
        let cases: [(bytes: [UInt8], elements: [SourceValue]?)] = [
            (valid, [.integer(7), .null]),
            (array([0, 0, int4]), []),
            (Array(valid.dropLast()), nil),  // cut short
            (valid + [0], nil),  // bytes left over
            (array([2, 0, int4, 1, 1, 1, 1, 4, 7]), nil),  // two dimensions
            (array([1, 0, int4, -1, 1]), nil),  // a negative count
            (array([1, 0, int4, 1, 1, -2]), nil),  // a length below -1
            (array([1, 0, int4, Int32.max, 1, 4, 7]), nil),  // a count beyond the bytes
        ]
        for (bytes, expected) in cases {
            var elements: [SourceValue] = []
            let isWellFormed = bytes.withUnsafeBytes { PostgresArray.forEachElement($0, baseType: { PostgresDataType($0) }) { elements.append($0) } }
            #expect(isWellFormed == (expected != nil), "\(bytes)")
            if let expected { #expect(elements == expected) }
        }
    }

    /// The binary `COPY` of new records writes each amount as the server itself sends the same value
    /// (`numeric_send` of the amount's text, which a text `COPY` stored): 20,000 random amounts of 1–38 digits at
    /// scales 0–8, both signs, zeros, and values below one unit of their first digit group.
    @Test func amountsWriteAsPostgreSQLsOwnBinaryNumeric() async throws {
        var generator = SystemRandomNumberGenerator()
        var amounts = [Amount(minorUnits: 0, scale: 2), Amount(minorUnits: 0, scale: 0), Amount(minorUnits: 1, scale: 8),
                       Amount(minorUnits: -5, scale: 3), Amount(minorUnits: 10_000, scale: 4), Amount(minorUnits: 100_000_000, scale: 0),
                       Amount(minorUnits: Int128("99999999999999999999999999999999999999")!, scale: 5),
                       Amount(minorUnits: -Int128("10000000000000000000000000000000000000")!, scale: 1)]
        while amounts.count < 20_000 {
            let digits = String((0..<Int.random(in: 1...38, using: &generator)).map { _ in "0123456789".randomElement(using: &generator)! })
            let units = Int128(digits)! * (Bool.random(using: &generator) ? -1 : 1)
            amounts.append(Amount(minorUnits: units, scale: Int.random(in: 0...8, using: &generator)))
        }
        let list = amounts.map { "'\($0.description)'" }.joined(separator: ",")
        let source = try PostgresSource(settings: try PostgresFixture.settings("postgres"))
        let rows = try await source.fetch(SQLStatement(sql: "SELECT numeric_send(v::numeric) FROM unnest(ARRAY[\(list)]) WITH ORDINALITY AS t(v, i) ORDER BY i"))
        await source.close()
        #expect(rows.count == amounts.count)
        for (amount, row) in zip(amounts, rows) {
            var ours = ByteBuffer()
            ours.writePostgresFields(bound: PostgresFieldWriter.amountBound) { $0.amount(amount) }
            #expect(ours.readInteger(as: Int32.self) == Int32(ours.readableBytes))
            #expect(row.first == .bytes(Data(ours.readableBytesView)), "\(amount) (\(amount.minorUnits) at scale \(amount.scale))")
        }
    }
}
