/// Builds the SQL that reads a stream: keyset pages in `(cursor, primary key)` order, the NULL-cursor
/// sweep, and the progress count.
///
/// Shape of a page (SPEC.md "Reading a source correctly"):
/// ```sql
/// SELECT src."updated_at", src."id", <mapped fields> FROM "sale_transactions" src
/// WHERE (src."updated_at", src."id") > (?, ?) ORDER BY src."updated_at", src."id" LIMIT 1000
/// ```
/// Never `OFFSET`: offsets skip and repeat rows while the ERP writes, and slow down with every page.
public struct StreamQuery: Sendable {
    /// The stream definition.
    public let stream: StreamConfig
    /// The source's dialect.
    public let dialect: SQLDialect
    /// Names of the select-list columns, in order: ``StreamLayout/columns(of:)``.
    public let columns: [String]
    let selectList: String

    /// Prepares the select list of `stream` for `dialect`.
    public init(stream: StreamConfig, dialect: SQLDialect) {
        self.stream = stream
        self.dialect = dialect
        var expressions = [Self.reference(stream.cursor.column, dialect)] + stream.primaryKey.map { Self.reference($0, dialect) }
        for field in StreamConfig.Field.allCases {
            guard let mapping = stream.fields[field] else { continue }
            expressions.append(Self.expression(mapping, dialect))
        }
        if let deleted = stream.deleted {
            expressions.append(Self.expression(deleted, dialect))
        }
        columns = StreamLayout.columns(of: stream)
        selectList = expressions.joined(separator: ", ")
    }

    static func reference(_ column: String, _ dialect: SQLDialect) -> String { "src." + dialect.quote(column) }

    static func expression(_ mapping: StreamConfig.Mapping, _ dialect: SQLDialect) -> String {
        switch mapping {
        case .column(let column): reference(column, dialect)
        case .sql(let sql): "(\(sql))"
        }
    }

    var fromClause: String {
        switch stream.from {
        case .table(let table): "FROM \(dialect.quote(table)) src"
        case .query(let query): "FROM (\(query)) src"
        }
    }

    var orderKey: [String] { ([stream.cursor.column] + stream.primaryKey).map { Self.reference($0, dialect) } }

    /// The statement that reads `page` (``page(from:upTo:limit:)`` or ``nullCursorPage(afterKey:limit:)``).
    public func statement(for page: PageRequest) -> SQLStatement {
        switch page.kind {
        case .ordered(let from, let upTo): self.page(from: from, upTo: upTo, limit: page.limit)
        case .unorderedCursor(let afterKey): nullCursorPage(afterKey: afterKey, limit: page.limit)
        }
    }

    /// One keyset page of at most `limit` rows.
    /// - Parameters:
    ///   - bound: where the page starts.
    ///   - upTo: an inclusive upper position (the lookback re-read stops at the checkpoint), or `nil`.
    ///   - limit: row limit, ≥ 1.
    public func page(from bound: StreamBound, upTo: Checkpoint? = nil, limit: Int) -> SQLStatement {
        var binds: [SourceValue] = []
        var conditions = ["\(Self.reference(stream.cursor.column, dialect)) IS NOT NULL"]
        switch bound {
        case .start: break
        case .cursorAtLeast(let value):
            binds.append(value)
            conditions.append("\(Self.reference(stream.cursor.column, dialect)) >= \(dialect.placeholder(binds.count))")
        case .after(let position):
            conditions.append(keyset(orderKey, values: [position.cursor] + position.key, strict: true, greater: true, binds: &binds))
        }
        if let upTo {
            conditions.append(keyset(orderKey, values: [upTo.cursor] + upTo.key, strict: false, greater: false, binds: &binds))
        }
        return limited("SELECT \(selectList) \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(orderKey.joined(separator: ", "))",
                       limit: limit, binds: binds)
    }

    /// Rows whose cursor is NULL (they can never be reached by a keyset page), in primary key order after
    /// `afterKey`, at most `limit`.
    public func nullCursorPage(afterKey: [SourceValue]?, limit: Int) -> SQLStatement {
        var binds: [SourceValue] = []
        let keyColumns = stream.primaryKey.map { Self.reference($0, dialect) }
        var conditions = [dialect.isNull(Self.reference(stream.cursor.column, dialect))]
        if let afterKey {
            conditions.append(keyset(keyColumns, values: afterKey, strict: true, greater: true, binds: &binds))
        }
        return limited("SELECT \(selectList) \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(keyColumns.joined(separator: ", "))",
                       limit: limit, binds: binds)
    }

    /// `SELECT 1` for each row from `bound` on (no order, no limit): what ``SQLSource/estimateRows(_:)`` counts
    /// or estimates for progress and ETA.
    public func rows(from bound: StreamBound) -> SQLStatement {
        var binds: [SourceValue] = []
        var condition = "\(Self.reference(stream.cursor.column, dialect)) IS NOT NULL"
        switch bound {
        case .start: break
        case .cursorAtLeast(let value):
            binds.append(value)
            condition += " AND \(Self.reference(stream.cursor.column, dialect)) >= \(dialect.placeholder(1))"
        case .after(let position):
            condition += " AND " + keyset(orderKey, values: [position.cursor] + position.key, strict: true, greater: true, binds: &binds)
        }
        return SQLStatement(sql: "SELECT 1 \(fromClause) WHERE \(condition)", binds: binds)
    }

    /// `(a, b) > (?, ?)`, or for dialects without row values the equivalent
    /// `(a > ?) OR (a = ? AND b > ?)`; `strict: false` adds equality (`>=` / `<=`).
    func keyset(_ columns: [String], values: [SourceValue], strict: Bool, greater: Bool, binds: inout [SourceValue]) -> String {
        let op = greater ? ">" : "<"
        if dialect.supportsRowValues {
            var placeholders: [String] = []
            for value in values {
                binds.append(value)
                placeholders.append(dialect.placeholder(binds.count))
            }
            let lhs = columns.count == 1 ? columns[0] : "(\(columns.joined(separator: ", ")))"
            let rhs = placeholders.count == 1 ? placeholders[0] : "(\(placeholders.joined(separator: ", ")))"
            return "\(lhs) \(op)\(strict ? "" : "=") \(rhs)"
        }
        var disjuncts: [String] = []
        for depth in columns.indices {
            var terms: [String] = []
            for index in 0..<depth {
                binds.append(values[index])
                terms.append("\(columns[index]) = \(dialect.placeholder(binds.count))")
            }
            binds.append(values[depth])
            terms.append("\(columns[depth]) \(op) \(dialect.placeholder(binds.count))")
            disjuncts.append("(" + terms.joined(separator: " AND ") + ")")
        }
        if !strict {
            var terms: [String] = []
            for index in columns.indices {
                binds.append(values[index])
                terms.append("\(columns[index]) = \(dialect.placeholder(binds.count))")
            }
            disjuncts.append("(" + terms.joined(separator: " AND ") + ")")
        }
        return "(" + disjuncts.joined(separator: " OR ") + ")"
    }

    func limited(_ sql: String, limit: Int, binds: [SourceValue]) -> SQLStatement {
        switch dialect.rowLimit {
        case .limit: SQLStatement(sql: sql + " LIMIT \(limit)", binds: binds)
        case .fetchFirst: SQLStatement(sql: sql + " FETCH FIRST \(limit) ROWS ONLY", binds: binds)
        case .top: SQLStatement(sql: "SELECT TOP (\(limit)) " + sql.dropFirst("SELECT ".count), binds: binds)
        }
    }
}
