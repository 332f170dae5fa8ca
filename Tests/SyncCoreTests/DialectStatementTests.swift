import SyncCore
import Testing

/// Every statement a T-SQL or Oracle source runs, as exact text (the way Kafka Connect's dialect tests pin
/// theirs), plus the bans: no `LIMIT`, no `OFFSET`, `TOP` never with `OFFSET`, a row limit on every page.
/// scripts/check-dialects.sh parses the same statements with sqlglot.
@Suite struct DialectStatementTests {
    static func stream(_ names: (table: String, cursor: String, id: String, pdv: String, op: String, amount: String, type: String),
                       deleted: StreamConfig.Mapping? = nil, cursorType: String? = nil) -> StreamConfig {
        StreamConfig(from: .table(names.table), primaryKey: [names.id], cursor: .init(column: names.cursor, kind: .timestamp, sqlType: cursorType),
                     fields: [.externalId: .column(names.id), .pdv: .column(names.pdv), .operator: .column(names.op), .amount: .column(names.amount),
                              .occurredAt: .column(names.cursor), .type: .column(names.type)], deleted: deleted)
    }

    static func statements(_ type: DatabaseType, _ stream: StreamConfig, oracleVersion: Int? = nil) -> [String] {
        var source = SourceConfig(name: "erp", type: type, stream: stream)
        source.oracleVersion = oracleVersion
        return StreamQuery(stream: stream, dialect: source.sqlDialect).reviewStatements(limit: 500).map(\.statement.sql)
    }

    @Test func tsqlStatements() {
        let stream = Self.stream(("dbo.vendas", "updated_at", "id", "pdv", "operador", "valor", "tipo"), deleted: .sql("status = 'X'"))
        let select = "SELECT TOP (500) src.[updated_at], src.[id], src.[id], src.[pdv], src.[operador], src.[valor], src.[updated_at], src.[tipo], "
            + "CASE WHEN (status = 'X') THEN 1 ELSE 0 END FROM [dbo].[vendas] src WHERE "
        let horizon = " AND src.[updated_at] <= CAST(? AS DATETIME)"
        let order = " ORDER BY src.[updated_at], src.[id]"
        let after = "((src.[updated_at] > CAST(? AS DATETIME)) OR (src.[updated_at] = CAST(? AS DATETIME) AND src.[id] > ?))"
        let upTo = "((src.[updated_at] < CAST(? AS DATETIME)) OR (src.[updated_at] = CAST(? AS DATETIME) AND src.[id] < ?) OR "
            + "(src.[updated_at] = CAST(? AS DATETIME) AND src.[id] = ?))"
        let sweep = "(src.[updated_at] IS NULL OR src.[updated_at] > CAST(? AS DATETIME))"
        #expect(Self.statements(.sqlserver, stream) == [
            select + "src.[updated_at] IS NOT NULL" + horizon + order,
            select + "src.[updated_at] IS NOT NULL AND src.[updated_at] >= CAST(? AS DATETIME)" + horizon + order,
            select + "src.[updated_at] IS NOT NULL AND " + after + horizon + order,
            select + "src.[updated_at] IS NOT NULL AND src.[updated_at] >= CAST(? AS DATETIME) AND " + upTo + horizon + order,
            select + "src.[updated_at] IS NOT NULL AND " + after + " AND " + upTo + horizon + order,
            select + sweep + " ORDER BY src.[id]",
            select + sweep + " AND ((src.[id] > ?)) ORDER BY src.[id]",
            "SELECT TOP (500) src.[updated_at], src.[id] FROM [dbo].[vendas] src WHERE src.[updated_at] IS NOT NULL AND " + after + horizon + order,
            select + "src.[id] IN (?) ORDER BY src.[id]",
            "SELECT 1 FROM [dbo].[vendas] src WHERE src.[updated_at] IS NOT NULL",
            "SELECT 1 FROM [dbo].[vendas] src WHERE src.[updated_at] IS NOT NULL AND " + after,
        ])
    }

    /// A `DATETIME2(7)` cursor (`cursor.type`) is bound as its own type, keeping its 100 ns.
    @Test func tsqlCursorOfItsDeclaredType() {
        let stream = Self.stream(("vendas", "alterado_em", "id", "pdv", "op", "valor", "tipo"), cursorType: "DATETIME2(7)")
        #expect(Self.statements(.sqlserver, stream)[2].contains("((src.[alterado_em] > CAST(? AS DATETIME2(7))) OR (src.[alterado_em] = CAST(? AS DATETIME2(7)) AND src.[id] > ?))"))
    }

    @Test func oracle12cStatements() {
        let stream = Self.stream(("ERP.VENDAS", "UPDATED_AT", "ID", "PDV", "OPERADOR", "VALOR", "TIPO"), deleted: .sql("STATUS = 'X'"))
        let select = #"SELECT src."UPDATED_AT" AS "cursor", src."ID" AS "key_0", src."ID" AS "externalId", src."PDV" AS "pdv", src."OPERADOR" AS "operator", "#
            + #"src."VALOR" AS "amount", src."UPDATED_AT" AS "occurredAt", src."TIPO" AS "type", CASE WHEN (STATUS = 'X') THEN 1 ELSE 0 END AS "deleted" "#
            + #"FROM "ERP"."VENDAS" src WHERE "#
        let order = #" ORDER BY src."UPDATED_AT", src."ID" FETCH FIRST 500 ROWS ONLY"#
        let after = #"((src."UPDATED_AT" > CAST(? AS DATE)) OR (src."UPDATED_AT" = CAST(? AS DATE) AND src."ID" > ?))"#
        let upTo = #"((src."UPDATED_AT" < CAST(? AS DATE)) OR (src."UPDATED_AT" = CAST(? AS DATE) AND src."ID" < ?) OR (src."UPDATED_AT" = CAST(? AS DATE) AND src."ID" = ?))"#
        let horizon = #" AND src."UPDATED_AT" <= CAST(? AS DATE)"#
        let sweep = #"(src."UPDATED_AT" IS NULL OR src."UPDATED_AT" > CAST(? AS DATE))"#
        #expect(Self.statements(.oracle, stream) == [
            select + #"src."UPDATED_AT" IS NOT NULL"# + horizon + order,
            select + #"src."UPDATED_AT" IS NOT NULL AND src."UPDATED_AT" >= CAST(? AS DATE)"# + horizon + order,
            select + #"src."UPDATED_AT" IS NOT NULL AND "# + after + horizon + order,
            select + #"src."UPDATED_AT" IS NOT NULL AND src."UPDATED_AT" >= CAST(? AS DATE) AND "# + upTo + horizon + order,
            select + #"src."UPDATED_AT" IS NOT NULL AND "# + after + " AND " + upTo + horizon + order,
            select + sweep + #" ORDER BY src."ID" FETCH FIRST 500 ROWS ONLY"#,
            select + sweep + #" AND ((src."ID" > ?)) ORDER BY src."ID" FETCH FIRST 500 ROWS ONLY"#,
            #"SELECT src."UPDATED_AT", src."ID" FROM "ERP"."VENDAS" src WHERE src."UPDATED_AT" IS NOT NULL AND "# + after + horizon + order,
            select + #"src."ID" IN (?) ORDER BY src."ID" FETCH FIRST 500 ROWS ONLY"#,
            #"SELECT 1 FROM "ERP"."VENDAS" src WHERE src."UPDATED_AT" IS NOT NULL"#,
            #"SELECT 1 FROM "ERP"."VENDAS" src WHERE src."UPDATED_AT" IS NOT NULL AND "# + after,
        ])
    }

    /// Oracle 11g: `ROWNUM` outside the ordered subquery, so the first n rows in keyset order are kept (the
    /// seed filtered by ROWNUM before sorting).
    @Test func oracle11gRowNumAfterOrderBy() {
        let stream = Self.stream(("ERP.VENDAS", "UPDATED_AT", "ID", "PDV", "OPERADOR", "VALOR", "TIPO"), cursorType: "TIMESTAMP(6)")
        let statements = Self.statements(.oracle, stream, oracleVersion: 11)
        #expect(statements[2] == #"SELECT * FROM (SELECT src."UPDATED_AT" AS "cursor", src."ID" AS "key_0", src."ID" AS "externalId", src."PDV" AS "pdv", "#
                + #"src."OPERADOR" AS "operator", src."VALOR" AS "amount", src."UPDATED_AT" AS "occurredAt", src."TIPO" AS "type" FROM "ERP"."VENDAS" src "#
                + #"WHERE src."UPDATED_AT" IS NOT NULL AND ((src."UPDATED_AT" > CAST(? AS TIMESTAMP(6))) OR (src."UPDATED_AT" = CAST(? AS TIMESTAMP(6)) "#
                + #"AND src."ID" > ?)) AND src."UPDATED_AT" <= CAST(? AS TIMESTAMP(6)) ORDER BY src."UPDATED_AT", src."ID") WHERE ROWNUM <= 500"#)
        for statement in statements where !statement.hasPrefix("SELECT 1 ") {
            #expect(statement.hasPrefix("SELECT * FROM (SELECT ") && statement.hasSuffix(") WHERE ROWNUM <= 500"))
            #expect(!statement.contains("FETCH FIRST"))
        }
    }

    @Test(arguments: [(DatabaseType.sqlserver, nil), (.oracle, nil), (.oracle, 11)] as [(DatabaseType, Int?)])
    func bans(type: DatabaseType, oracleVersion: Int?) {
        let stream = Self.stream(("vendas", "updated_at", "id", "pdv", "op", "valor", "tipo"), deleted: .column("excluido"))
        for statement in Self.statements(type, stream, oracleVersion: oracleVersion) {
            #expect(!statement.contains("LIMIT") && !statement.contains("OFFSET"), "\(statement)")
            if let rowNum = statement.firstRange(of: "ROWNUM"), let order = statement.firstRange(of: "ORDER BY") {
                #expect(rowNum.lowerBound > order.lowerBound, "ROWNUM applied before ORDER BY: \(statement)")
            }
            if !statement.hasPrefix("SELECT 1 ") {
                #expect(statement.hasPrefix("SELECT TOP (500) ") || statement.hasSuffix("FETCH FIRST 500 ROWS ONLY") || statement.hasSuffix("ROWNUM <= 500"))
            }
        }
    }
}
