@testable import SyncCore
import Testing

/// Keyset SQL per dialect (SPEC.md "Reading a source correctly", "Seed flaws we fix": no OFFSET, Oracle
/// `FETCH FIRST`, SQL Server `TOP`, values only as parameters).
@Suite struct KeysetQueryTests {
    static let vendas = StreamConfig(
        from: .table("vendas"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
        fields: [.pdv: .column("pdv"), .operator: .column("operador"), .amount: .column("valor"),
                 .occurredAt: .column("data"), .type: .column("tipo")])

    static var composite: StreamConfig {
        var stream = vendas
        stream.primaryKey = ["loja", "nr"]
        return stream
    }

    /// The select list of ``vendas``, quoted with `open`/`close`.
    static func selectList(_ open: String, _ close: String) -> String {
        ["updated_at", "id", "pdv", "operador", "valor", "data", "tipo"].map { "src.\(open)\($0)\(close)" }.joined(separator: ", ")
    }

    /// The readable-cursor condition of a timestamp cursor per dialect: not NULL and none of the dialect's
    /// unorderable dates (zero dates, infinities, malformed text).
    static let sqliteOrderable = #"NOT (src."updated_at" IS NULL OR (typeof(src."updated_at") = 'text' AND (src."updated_at" < '0001' OR substr(src."updated_at", 6, 2) = '00' OR substr(src."updated_at", 9, 2) = '00')))"#
    static let postgresOrderable = #"NOT (src."updated_at" IS NULL OR src."updated_at" IN ('infinity', '-infinity'))"#
    static let sqliteUnorderable = String(sqliteOrderable.dropFirst("NOT ".count))
    static let postgresUnorderable = String(postgresOrderable.dropFirst("NOT ".count))
    static let mysqlOrderable = "NOT (src.`updated_at` <=> NULL OR MONTH(src.`updated_at`) = 0 OR DAYOFMONTH(src.`updated_at`) = 0)"

    let dq = Self.selectList("\"", "\"")
    let bt = Self.selectList("`", "`")
    let br = Self.selectList("[", "]")
    let position = Checkpoint(cursor: .text("2024-03-10 14:00:00"), key: [.integer(1001)])
    let upper = Checkpoint(cursor: .text("2024-03-10 15:00:00"), key: [.integer(2002)])

    func query(_ dialect: SQLDialect, _ stream: StreamConfig = Self.vendas) -> StreamQuery { StreamQuery(stream: stream, dialect: dialect) }

    @Test func columnsNameTheSelectList() {
        #expect(query(.sqlite).columns == ["cursor", "key.0", "pdv", "operator", "amount", "occurredAt", "type"])
        #expect(query(.sqlite, Self.composite).columns.prefix(3) == ["cursor", "key.0", "key.1"])
    }

    @Test func sqliteStartPage() {
        let statement = query(.sqlite).page(from: .start, limit: 1000)
        #expect(statement.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.sqliteOrderable) ORDER BY src."updated_at", src."id" LIMIT 1000"#)
        #expect(statement.binds.isEmpty)
    }

    @Test func sqliteRowValuePage() {
        let statement = query(.sqlite).page(from: .after(position), limit: 500)
        #expect(statement.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.sqliteOrderable) AND (src."updated_at", src."id") > (?, ?) ORDER BY src."updated_at", src."id" LIMIT 500"#)
        #expect(statement.binds == [.text("2024-03-10 14:00:00"), .integer(1001)])
    }

    @Test func postgresqlNumberedPlaceholdersWithInclusiveUpperBound() {
        let statement = query(.postgresql).page(from: .after(position), upTo: upper, limit: 1000)
        #expect(statement.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.postgresOrderable) AND (src."updated_at", src."id") > ($1, $2) AND (src."updated_at", src."id") <= ($3, $4) ORDER BY src."updated_at", src."id" LIMIT 1000"#)
        #expect(statement.binds == [.text("2024-03-10 14:00:00"), .integer(1001), .text("2024-03-10 15:00:00"), .integer(2002)])
    }

    @Test func lookbackPageStartsAtACursorValue() {
        let statement = query(.postgresql).page(from: .cursorAtLeast(.text("2024-03-10 13:55:00")), upTo: upper, limit: 100)
        #expect(statement.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.postgresOrderable) AND src."updated_at" >= $1 AND (src."updated_at", src."id") <= ($2, $3) ORDER BY src."updated_at", src."id" LIMIT 100"#)
        #expect(statement.binds == [.text("2024-03-10 13:55:00"), .text("2024-03-10 15:00:00"), .integer(2002)])
    }

    @Test func mysqlExpandedOrFormWithBackticks() {
        let statement = query(.mysql).page(from: .after(position), limit: 1000)
        #expect(statement.sql == "SELECT \(bt) FROM `vendas` src WHERE \(Self.mysqlOrderable) AND ((src.`updated_at` > ?) OR (src.`updated_at` = ? AND src.`id` > ?)) ORDER BY src.`updated_at`, src.`id` LIMIT 1000")
        #expect(statement.binds == [.text("2024-03-10 14:00:00"), .text("2024-03-10 14:00:00"), .integer(1001)])
    }

    /// The sweep takes every cursor value the keyset cannot order: MySQL's `IS NULL` is also true for zero dates
    /// in NOT NULL columns (so `<=> NULL`), and zero or partial-zero dates in nullable columns are neither NULL nor
    /// orderable; PostgreSQL's infinities; SQLite's malformed text. Integer cursors: NULL only.
    @Test func unorderableCursorSweepPerDialect() {
        #expect(query(.mysql).unorderedCursorPage(afterKey: [.integer(5)], limit: 10).sql.contains(
            "WHERE (src.`updated_at` <=> NULL OR MONTH(src.`updated_at`) = 0 OR DAYOFMONTH(src.`updated_at`) = 0) AND "))
        #expect(query(.postgresql).unorderedCursorPage(afterKey: nil, limit: 10).sql.contains(
            #"WHERE (src."updated_at" IS NULL OR src."updated_at" IN ('infinity', '-infinity')) ORDER BY"#))
        var numbered = Self.vendas
        numbered.cursor = .init(column: "seq", kind: .integer)
        #expect(query(.mysql, numbered).unorderedCursorPage(afterKey: nil, limit: 10).sql.contains("WHERE src.`seq` <=> NULL ORDER BY"))
        #expect(query(.postgresql, numbered).page(from: .start, limit: 10).sql.contains(#"WHERE src."seq" IS NOT NULL ORDER BY"#))
    }

    /// The lookback fingerprint: count, summed digest-derived checksum of every selected value and the highest cursor,
    /// in four parts around the split, of the orderable rows in the range; none in dialects without a row checksum.
    @Test func lookbackFingerprintStatements() throws {
        let (first, lower, upper, last): (SourceValue, SourceValue, SourceValue, SourceValue) = (.text("a"), .text("b"), .text("c"), .text("d"))
        let pg = try #require(query(.postgresql).fingerprint(cursorFrom: first, through: last, splitAt: lower, upper))
        #expect(pg.sql == #"SELECT CASE WHEN src."updated_at" < $1 THEN 0 WHEN src."updated_at" < $2 THEN 1 WHEN src."updated_at" = $3 THEN 2 ELSE 3 END, COUNT(*), "#
            + #"SUM(('x' || left(md5(ROW(\#(dq))::text), 16))::bit(64)::bigint), MAX(src."updated_at") FROM "vendas" src "#
            + #"WHERE \#(Self.postgresOrderable) AND src."updated_at" >= $4 AND src."updated_at" <= $5 GROUP BY 1"#)
        #expect(pg.binds == [lower, upper, upper, first, last])
        let my = try #require(query(.mysql).fingerprint(cursorFrom: first, through: nil, splitAt: lower, upper))
        let quoted = ["updated_at", "id", "pdv", "operador", "valor", "data", "tipo"].map { $0 == "valor" ? "QUOTE(src.`valor` * 1)" : "QUOTE(src.`\($0)`)" }
            .joined(separator: ", ")
        #expect(my.sql == "SELECT CASE WHEN src.`updated_at` < ? THEN 0 WHEN src.`updated_at` < ? THEN 1 WHEN src.`updated_at` = ? THEN 2 ELSE 3 END, COUNT(*), "
            + "SUM(CAST(CONV(LEFT(SHA1(CONCAT_WS('#', \(quoted))), 15), 16, 10) AS UNSIGNED)), MAX(src.`updated_at`) "
            + "FROM `vendas` src WHERE \(Self.mysqlOrderable) AND src.`updated_at` >= ? GROUP BY 1")
        #expect(my.binds == [lower, upper, upper, first])
        var keyed = Self.vendas
        keyed.fields[.externalId] = .column("id")
        #expect(query(.mysql, keyed).fingerprint(cursorFrom: first, through: nil, splitAt: lower, upper) == my,
                "the key selected again as the external id is checksummed once")
        // The check of a saved window stops at the checkpoint's position: rows after it are the forward pages' own.
        let pgCheck = try #require(query(.postgresql).fingerprint(cursorFrom: first, through: last, upTo: self.upper, splitAt: lower, upper))
        #expect(pgCheck.sql == pg.sql.replacingOccurrences(of: " GROUP BY 1", with: #" AND (src."updated_at", src."id") <= ($6, $7) GROUP BY 1"#))
        #expect(pgCheck.binds == pg.binds + [.text("2024-03-10 15:00:00"), .integer(2002)])
        let myCheck = try #require(query(.mysql).fingerprint(cursorFrom: first, through: nil, upTo: self.upper, splitAt: lower, upper))
        #expect(myCheck.sql == my.sql.replacingOccurrences(of: " GROUP BY 1", with: " AND ((src.`updated_at` < ?) OR (src.`updated_at` = ? AND "
                                                            + "src.`id` < ?) OR (src.`updated_at` = ? AND src.`id` = ?)) GROUP BY 1"))
        #expect(myCheck.binds == my.binds + [.text("2024-03-10 15:00:00"), .text("2024-03-10 15:00:00"), .integer(2002),
                                             .text("2024-03-10 15:00:00"), .integer(2002)])
        // A checksummed page selects the same checksum per row, after the row's values.
        #expect(query(.mysql).page(from: .start, limit: 10, checksummed: true).sql.hasPrefix(
            "SELECT \(bt), CAST(CONV(LEFT(SHA1(CONCAT_WS('#', \(quoted))), 15), 16, 10) AS UNSIGNED) FROM `vendas` src WHERE "))
        #expect(query(.postgresql).page(from: .start, limit: 10, checksummed: true).sql.hasPrefix(
            #"SELECT \#(dq), ('x' || left(md5(ROW(\#(dq))::text), 16))::bit(64)::bigint FROM "vendas" src WHERE "#))
        #expect(query(.sqlite).page(from: .start, limit: 10, checksummed: true) == query(.sqlite).page(from: .start, limit: 10),
                "no checksum in a dialect without one")
        #expect(query(.sqlite).fingerprint(cursorFrom: first, through: last, splitAt: lower, upper) == nil)
        #expect(query(.sqlserver).fingerprint(cursorFrom: first, through: last, splitAt: lower, upper) == nil)

        let parts = try #require(RangeFingerprint.parts([[.integer(3), .integer(3), .decimal("36893488147419103232"), first],
                                                         [.integer(0), .integer(1), .decimal("-5"), lower]]))
        #expect(parts == [RangeFingerprint(rows: 1, checksum: -5, last: lower), .empty, .empty,
                          RangeFingerprint(rows: 3, checksum: 36_893_488_147_419_103_232, last: first)])
        #expect((parts[0] + parts[1] + parts[2] + parts[3]).rows == 4 && (parts[0] + parts[1]).last == lower)
        #expect(RangeFingerprint.parts([[.integer(4), .integer(1), .decimal("1"), first]]) == nil, "a part that does not exist")
        #expect(RangeFingerprint.parts([[.integer(1), .integer(1), .text("x"), first]]) == nil, "a checksum that is not a number")
    }

    /// MySQL/MariaDB partial-zero dates sort among real dates, so with the years of the cursor's real dates the
    /// sweep is index ranges (each year's zero month, each zero day) behind the row test, not a scan of the table.
    @Test func mysqlSweepWithTheCursorsYearsIsIndexRanges() throws {
        let horizon = SourceValue.localDateTime(LocalDateTime(year: 2026, month: 12, day: 2))
        let extent = try #require(query(.mysql).cursorExtent(horizon: horizon))
        #expect(extent.sql == "SELECT MIN(src.`updated_at`), MAX(src.`updated_at`), YEAR(MIN(src.`updated_at`)), YEAR(MAX(src.`updated_at`)) FROM `vendas` src WHERE src.`updated_at` >= '0001-01-01' AND src.`updated_at` <= ?")
        #expect(extent.binds == [horizon])
        #expect(query(.postgresql).cursorExtent(horizon: horizon) == nil && query(.sqlite).cursorExtent(horizon: nil) == nil)
        var numbered = Self.vendas
        numbered.cursor = .init(column: "seq", kind: .integer)
        #expect(query(.mysql, numbered).cursorExtent(horizon: nil) == nil)

        let sweep = query(.mysql).unorderedCursorPage(afterKey: nil, limit: 10, horizon: horizon, years: 2024...2025).sql
        let c = "src.`updated_at`"
        #expect(sweep.contains("WHERE (((\(c) <=> NULL OR MONTH(\(c)) = 0 OR DAYOFMONTH(\(c)) = 0) AND (\(c) <=> NULL OR \(c) < '0001-01-01' OR (\(c) >= '2024-00-00' AND \(c) < '2024-01-01') OR (\(c) >= '2024-02-00' AND \(c) < '2024-02-01')"))
        #expect(sweep.contains("(\(c) >= '2025-12-00' AND \(c) < '2025-12-01'))) OR \(c) > ?) ORDER BY src.`id`"))
        #expect(sweep.components(separatedBy: " AND \(c) < '20").count - 1 == 24)
        // Other dialects have no such dates between real ones.
        #expect(query(.postgresql).unorderedCursorPage(afterKey: nil, limit: 10, years: 2024...2025) == query(.postgresql).unorderedCursorPage(afterKey: nil, limit: 10))

        let date = SourceValue.localDateTime(LocalDateTime(year: 2024, month: 3, day: 1))
        #expect(StreamQuery.cursorYears(extent: [date, .text("2026-00-10 00:00:00"), .integer(2024), .integer(2026)]) == 2024...2026)
        #expect(StreamQuery.cursorYears(extent: [.text("2019-05-00 00:00:00"), date, .integer(2019), .integer(2024)]) == 2019...2024)
        // A text column compares as text: no ranges.
        #expect(StreamQuery.cursorYears(extent: [.text("2024-03-01"), .text("2024-03-02"), .integer(2024), .integer(2024)]) == nil)
        // No rows, or more years than the ranges are worth.
        #expect(StreamQuery.cursorYears(extent: [.null, .null, .null, .null]) == nil)
        #expect(StreamQuery.cursorYears(extent: nil) == nil)
        #expect(StreamQuery.cursorYears(extent: [date, date, .integer(1800), .integer(2024)]) == nil)
    }

    /// A horizon bounds forward pages and widens the sweep, so a cursor from the future is quarantined, never read
    /// as a position.
    @Test func horizonBoundsPagesAndWidensTheSweep() {
        let horizon = SourceValue.localDateTime(LocalDateTime(year: 2024, month: 3, day: 12))
        let page = query(.postgresql).page(from: .after(position), limit: 100, horizon: horizon)
        #expect(page.sql.contains(#"AND (src."updated_at", src."id") > ($1, $2) AND src."updated_at" <= $3 ORDER BY"#))
        #expect(page.binds.last == horizon)
        let sweep = query(.sqlserver).unorderedCursorPage(afterKey: [.integer(5)], limit: 50, horizon: horizon)
        #expect(sweep.sql == "SELECT TOP (50) \(br) FROM [vendas] src WHERE (src.[updated_at] IS NULL OR src.[updated_at] > CAST(? AS DATETIME)) AND ((src.[id] > ?)) ORDER BY src.[id]")
        #expect(sweep.binds == [horizon, .integer(5)])
    }

    @Test func mysqlInclusiveUpperBound() {
        let statement = query(.mysql).page(from: .start, upTo: upper, limit: 10)
        #expect(statement.sql == "SELECT \(bt) FROM `vendas` src WHERE \(Self.mysqlOrderable) AND ((src.`updated_at` < ?) OR (src.`updated_at` = ? AND src.`id` < ?) OR (src.`updated_at` = ? AND src.`id` = ?)) ORDER BY src.`updated_at`, src.`id` LIMIT 10")
        #expect(statement.binds == [.text("2024-03-10 15:00:00"), .text("2024-03-10 15:00:00"), .integer(2002),
                                    .text("2024-03-10 15:00:00"), .integer(2002)])
    }

    @Test func mysqlCompositeKey() {
        let statement = query(.mysql, Self.composite).page(from: .after(Checkpoint(cursor: .integer(77), key: [.integer(3), .text("A-9")])), limit: 1000)
        #expect(statement.sql.contains("WHERE \(Self.mysqlOrderable) AND ((src.`updated_at` > ?) OR (src.`updated_at` = ? AND src.`loja` > ?) OR (src.`updated_at` = ? AND src.`loja` = ? AND src.`nr` > ?)) ORDER BY src.`updated_at`, src.`loja`, src.`nr` LIMIT 1000"))
        #expect(statement.binds == [.integer(77), .integer(77), .integer(3), .integer(77), .integer(3), .text("A-9")])
    }

    @Test func oracleFetchFirstWithColonPlaceholders() {
        let statement = query(.oracle).page(from: .after(position), upTo: upper, limit: 1000)
        // Every column aliased (ORA-00918 otherwise), timestamp cursor binds cast to the column's type (DATE).
        let aliased = #"src."updated_at" AS "cursor", src."id" AS "key_0", src."pdv" AS "pdv", src."operador" AS "operator", src."valor" AS "amount", src."data" AS "occurredAt", src."tipo" AS "type""#
        #expect(statement.sql == #"SELECT \#(aliased) FROM "vendas" src WHERE src."updated_at" IS NOT NULL AND ((src."updated_at" > CAST(:1 AS DATE)) OR (src."updated_at" = CAST(:2 AS DATE) AND src."id" > :3)) AND ((src."updated_at" < CAST(:4 AS DATE)) OR (src."updated_at" = CAST(:5 AS DATE) AND src."id" < :6) OR (src."updated_at" = CAST(:7 AS DATE) AND src."id" = :8)) ORDER BY src."updated_at", src."id" FETCH FIRST 1000 ROWS ONLY"#)
        #expect(statement.binds.count == 8)
        #expect(!statement.sql.contains("ROWNUM"))
    }

    @Test func sqlServerTopWithoutOffset() {
        let statement = query(.sqlserver).page(from: .after(position), limit: 250)
        #expect(statement.sql == "SELECT TOP (250) \(br) FROM [vendas] src WHERE src.[updated_at] IS NOT NULL AND ((src.[updated_at] > CAST(? AS DATETIME)) OR (src.[updated_at] = CAST(? AS DATETIME) AND src.[id] > ?)) ORDER BY src.[updated_at], src.[id]")
        #expect(statement.binds == [.text("2024-03-10 14:00:00"), .text("2024-03-10 14:00:00"), .integer(1001)])
    }

    @Test func unorderedCursorPage() {
        let first = query(.sqlite).unorderedCursorPage(afterKey: nil, limit: 200)
        #expect(first.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.sqliteUnorderable) ORDER BY src."id" LIMIT 200"#)
        #expect(first.binds.isEmpty)

        let next = query(.sqlite).unorderedCursorPage(afterKey: [.integer(5)], limit: 200)
        #expect(next.sql == #"SELECT \#(dq) FROM "vendas" src WHERE \#(Self.sqliteUnorderable) AND src."id" > ? ORDER BY src."id" LIMIT 200"#)
        #expect(next.binds == [.integer(5)])

        let composite = query(.postgresql, Self.composite).unorderedCursorPage(afterKey: [.integer(3), .text("A-9")], limit: 50)
        #expect(composite.sql.hasSuffix(#"WHERE \#(Self.postgresUnorderable) AND (src."loja", src."nr") > ($1, $2) ORDER BY src."loja", src."nr" LIMIT 50"#))
        #expect(composite.binds == [.integer(3), .text("A-9")])

        let sqlserver = query(.sqlserver).unorderedCursorPage(afterKey: [.integer(5)], limit: 50)
        #expect(sqlserver.sql == "SELECT TOP (50) \(br) FROM [vendas] src WHERE src.[updated_at] IS NULL AND ((src.[id] > ?)) ORDER BY src.[id]")
    }

    @Test func rowsForProgress() {
        let all = query(.sqlite).rows(from: .start)
        #expect(all.sql == #"SELECT 1 FROM "vendas" src WHERE \#(Self.sqliteOrderable)"#)
        let after = query(.oracle).rows(from: .after(position))
        #expect(after.sql == #"SELECT 1 FROM "vendas" src WHERE src."updated_at" IS NOT NULL AND ((src."updated_at" > CAST(:1 AS DATE)) OR (src."updated_at" = CAST(:2 AS DATE) AND src."id" > :3))"#)
        #expect(after.binds == [.text("2024-03-10 14:00:00"), .text("2024-03-10 14:00:00"), .integer(1001)])
        let since = query(.postgresql).rows(from: .cursorAtLeast(.integer(9)))
        #expect(since.sql == #"SELECT 1 FROM "vendas" src WHERE \#(Self.postgresOrderable) AND src."updated_at" >= $1"#)
        #expect(since.binds == [.integer(9)])
    }

    @Test func identifierQuotingDoublesEmbeddedQuotes() {
        #expect(SQLDialect.sqlite.quote(#"we"ird"#) == #""we""ird""#)
        #expect(SQLDialect.oracle.quote(#"a""b"#) == #""a""""b""#)
        #expect(SQLDialect.mysql.quote("we`ird") == "`we``ird`")
        #expect(SQLDialect.mysql.quote(#"we"ird"#) == #"`we"ird`"#)
        #expect(SQLDialect.sqlserver.quote("a]b") == "[a]]b]")
        #expect(SQLDialect.sqlserver.quote("a[b") == "[a[b]")
        #expect(SQLDialect.postgresql.quote("erp.vendas") == #""erp"."vendas""#)
        #expect(SQLDialect.sqlserver.quote("dbo.vendas") == "[dbo].[vendas]")

        var weird = Self.vendas
        weird.from = .table(#"we"ird"#)
        weird.fields[.amount] = .column(#"valor" FROM x; DROP TABLE vendas; --"#)
        let sqlite = query(.sqlite, weird).page(from: .start, limit: 1)
        #expect(sqlite.sql.contains(#"FROM "we""ird" src"#))
        #expect(sqlite.sql.contains(#"src."valor"" FROM x; DROP TABLE vendas; --""#))

        weird.from = .table("we`ird")
        #expect(query(.mysql, weird).page(from: .start, limit: 1).sql.contains("FROM `we``ird` src"))
    }

    @Test func valuesTravelOnlyAsBinds() {
        let hostile = Checkpoint(cursor: .text("2024-01-01' OR '1'='1"), key: [.text("x'); DROP TABLE vendas; --")])
        for dialect in [SQLDialect.sqlite, .postgresql, .mysql, .oracle, .sqlserver] {
            let statements = [
                query(dialect).page(from: .after(hostile), upTo: hostile, limit: 10),
                query(dialect).page(from: .cursorAtLeast(hostile.cursor), limit: 10),
                query(dialect).unorderedCursorPage(afterKey: hostile.key, limit: 10),
                query(dialect).rows(from: .after(hostile)),
            ]
            for statement in statements {
                #expect(!statement.sql.contains("DROP"), "\(dialect.name): \(statement.sql)")
                #expect(!statement.sql.contains("OR '1'"), "\(dialect.name): \(statement.sql)")
                #expect(!statement.sql.contains("2024-01-01"), "\(dialect.name): \(statement.sql)")
                #expect(statement.binds.contains(hostile.cursor) || statement.binds == hostile.key)
                #expect(placeholderCount(statement.sql, dialect) == statement.binds.count, "\(dialect.name): \(statement.sql)")
            }
        }
    }

    @Test(arguments: [SQLDialect.sqlite, .postgresql, .mysql, .oracle, .sqlserver])
    func noOffsetAnywhere(dialect: SQLDialect) {
        let q = query(dialect, Self.composite)
        let checkpoint = Checkpoint(cursor: .integer(1), key: [.integer(2), .integer(3)])
        let statements = [
            q.page(from: .start, limit: 1000), q.page(from: .after(checkpoint), limit: 1000),
            q.page(from: .cursorAtLeast(.integer(1)), upTo: checkpoint, limit: 1000),
            q.unorderedCursorPage(afterKey: nil, limit: 1000), q.unorderedCursorPage(afterKey: [.integer(2), .integer(3)], limit: 1000),
            q.rows(from: .after(checkpoint)),
        ]
        for statement in statements {
            let sql = statement.sql.uppercased()
            #expect(!sql.contains("OFFSET"), "\(sql)")
            #expect(!sql.contains("ROWNUM"))
            #expect(sql.contains(" LIMIT ") == (dialect.rowLimit == .limit && !sql.hasPrefix("SELECT 1 ")))
            #expect(sql.contains("TOP (") == (dialect == .sqlserver && !sql.hasPrefix("SELECT 1 ")))
            #expect(sql.contains("FETCH FIRST") == (dialect == .oracle && !sql.hasPrefix("SELECT 1 ")))
        }
    }

    @Test func queryStreamsAndExpressions() {
        var stream = Self.vendas
        stream.from = .query("SELECT v.*, c.operador FROM vendas v JOIN caixas c ON c.id = v.caixa")
        stream.fields[.occurredAt] = .sql("CAST(v.data || ' ' || v.hora AS TEXT)")
        stream.deleted = .sql("v.status = 'X'")
        let q = query(.sqlite, stream)
        #expect(q.columns.last == "deleted")
        #expect(q.columns.count == 8)
        let sql = q.page(from: .start, limit: 5).sql
        #expect(sql.contains("(CAST(v.data || ' ' || v.hora AS TEXT))"))
        #expect(sql.contains(", (v.status = 'X') FROM (SELECT v.*, c.operador FROM vendas v JOIN caixas c ON c.id = v.caixa) src WHERE"))
    }

    @Test func placeholderSpelling() {
        #expect(SQLDialect.postgresql.placeholder(3) == "$3")
        #expect(SQLDialect.oracle.placeholder(12) == ":12")
        #expect(SQLDialect.mysql.placeholder(3) == "?")
        #expect(SQLDialect.sqlserver.placeholder(3) == "?")
    }

    /// Distinct parameters referenced by the SQL text.
    func placeholderCount(_ sql: String, _ dialect: SQLDialect) -> Int {
        switch dialect.parameters {
        case .questionMark: return sql.filter { $0 == "?" }.count
        case .dollarNumbered, .colonNumbered:
            let marker: Character = dialect.parameters == .dollarNumbered ? "$" : ":"
            var highest = 0
            var index = sql.startIndex
            while let found = sql[index...].firstIndex(of: marker) {
                let digits = sql[sql.index(after: found)...].prefix { $0.isNumber }
                highest = max(highest, Int(digits) ?? 0)
                index = sql.index(after: found)
            }
            return highest
        }
    }
}
