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
    /// The select list's expressions, in order.
    let expressions: [String]
    /// The type timestamp cursor values are cast to in the SQL text (`cursor.type`, else the dialect's
    /// ``SQLDialect/timestampBindType``); `nil` for integer cursors and dialects that bind typed.
    let cursorCast: String?

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
            expressions.append(Self.deletedExpression(deleted, dialect))
        }
        let names = StreamLayout.columns(of: stream)
        self.expressions = expressions
        columns = names
        selectList = dialect.aliasesColumns
            ? zip(expressions, names).map { "\($0) AS \(dialect.quote($1.replacingOccurrences(of: ".", with: "_")))" }.joined(separator: ", ")
            : expressions.joined(separator: ", ")
        cursorCast = stream.cursor.kind == .timestamp ? stream.cursor.sqlType ?? dialect.timestampBindType : nil
    }

    static func reference(_ column: String, _ dialect: SQLDialect) -> String { "src." + dialect.quote(column) }

    /// The `deleted` mapping as a selectable value: its expression, or in dialects that cannot select a
    /// condition (``SQLDialect/selectsConditions``) an SQL condition as `CASE WHEN (…) THEN 1 ELSE 0 END`.
    public static func deletedExpression(_ mapping: StreamConfig.Mapping, _ dialect: SQLDialect) -> String {
        guard case .sql = mapping, !dialect.selectsConditions else { return expression(mapping, dialect) }
        return "CASE WHEN \(expression(mapping, dialect)) THEN 1 ELSE 0 END"
    }

    /// A mapping's SQL: `src.<quoted column>`, or the configured expression in parentheses.
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

    /// The statement that reads `page` (``page(from:upTo:limit:horizon:positionsOnly:checksummed:)``,
    /// ``unorderedCursorPage(afterKey:limit:horizon:years:)`` with `cursorYears` from ``cursorExtent(horizon:)``, or
    /// ``keysPage(_:limit:)``).
    public func statement(for page: PageRequest, cursorYears: ClosedRange<Int>? = nil) -> SQLStatement {
        switch page.kind {
        case .ordered(let from, let upTo):
            self.page(from: from, upTo: upTo, limit: page.limit, horizon: page.horizon, positionsOnly: page.positionsOnly,
                      checksummed: page.checksummed)
        case .unorderedCursor(let afterKey): unorderedCursorPage(afterKey: afterKey, limit: page.limit, horizon: page.horizon, years: cursorYears)
        case .keys(let keys): keysPage(keys, limit: page.limit)
        }
    }

    /// One keyset page of at most `limit` rows.
    /// - Parameters:
    ///   - bound: where the page starts.
    ///   - upTo: an inclusive upper position (the lookback re-read stops at the checkpoint), or `nil`.
    ///   - limit: row limit, ≥ 1.
    ///   - horizon: the highest cursor value read (rows beyond it are swept instead), or `nil`.
    ///   - positionsOnly: select only the cursor and key columns.
    ///   - checksummed: select each row's checksum after its values (``rowChecksum``), as ``PageRequest/checksummed``
    ///     asks; ignored in a dialect without one.
    public func page(from bound: StreamBound, upTo: Checkpoint? = nil, limit: Int, horizon: SourceValue? = nil,
                     positionsOnly: Bool = false, checksummed: Bool = false) -> SQLStatement {
        var binds: [SourceValue] = []
        var conditions = [orderable]
        switch bound {
        case .start: break
        case .cursorAtLeast(let value):
            binds.append(value)
            conditions.append("\(Self.reference(stream.cursor.column, dialect)) >= \(dialect.placeholder(binds.count, as: cursorCast))")
        case .after(let position):
            conditions.append(keyset(orderKey, values: [position.cursor] + position.key, strict: true, greater: true, castFirst: cursorCast, binds: &binds))
        }
        if let upTo {
            conditions.append(keyset(orderKey, values: [upTo.cursor] + upTo.key, strict: false, greater: false, castFirst: cursorCast, binds: &binds))
        }
        if let horizon {
            binds.append(horizon)
            conditions.append("\(Self.reference(stream.cursor.column, dialect)) <= \(dialect.placeholder(binds.count, as: cursorCast))")
        }
        var select = positionsOnly ? orderKey.joined(separator: ", ") : selectList
        var columnCount = positionsOnly ? orderKey.count : expressions.count
        if checksummed, !positionsOnly, let rowChecksum {
            select += ", " + rowChecksum
            columnCount += 1
        }
        return limited("SELECT \(select) \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(orderKey.joined(separator: ", "))",
                       limit: limit, binds: binds, columnCount: columnCount)
    }

    /// Rows a keyset page never reaches, in primary key order after `afterKey`, at most `limit`: a cursor the
    /// keyset cannot order (``SQLDialect/isUnorderable(_:kind:years:)``: NULL, zero dates, infinities), or one
    /// beyond `horizon`. `years`: where the cursor's real dates lie (``cursorYears(extent:)``), so MySQL/MariaDB
    /// partial-zero dates are found by index ranges; `nil` tests every row.
    public func unorderedCursorPage(afterKey: [SourceValue]?, limit: Int, horizon: SourceValue? = nil, years: ClosedRange<Int>? = nil) -> SQLStatement {
        var binds: [SourceValue] = []
        let keyColumns = stream.primaryKey.map { Self.reference($0, dialect) }
        let cursor = Self.reference(stream.cursor.column, dialect)
        var unreachable = dialect.isUnorderable(cursor, kind: stream.cursor.kind, years: years)
        if let horizon {
            binds.append(horizon)
            unreachable = "(\(unreachable) OR \(cursor) > \(dialect.placeholder(binds.count, as: cursorCast)))"
        }
        var conditions = [unreachable]
        if let afterKey {
            conditions.append(keyset(keyColumns, values: afterKey, strict: true, greater: true, castFirst: nil, binds: &binds))
        }
        return limited("SELECT \(selectList) \(fromClause) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(keyColumns.joined(separator: ", "))",
                       limit: limit, binds: binds, columnCount: expressions.count)
    }

    /// Where a timestamp cursor's real dates lie, for dialects whose unorderable dates sort between real ones
    /// (``SQLDialect/UnorderableDates/mysqlZeroDates``): `SELECT MIN(c), MAX(c), YEAR(MIN(c)), YEAR(MAX(c))` over
    /// the rows from year 1 up to `horizon` (two index steps when the cursor is indexed; a date beyond the horizon
    /// is swept as a future cursor, so it does not widen the years). `nil` for other dialects and cursor kinds.
    public func cursorExtent(horizon: SourceValue?) -> SQLStatement? {
        guard stream.cursor.kind == .timestamp, dialect.unorderableDates == .mysqlZeroDates else { return nil }
        let cursor = Self.reference(stream.cursor.column, dialect)
        var sql = "SELECT MIN(\(cursor)), MAX(\(cursor)), YEAR(MIN(\(cursor))), YEAR(MAX(\(cursor))) \(fromClause) WHERE \(cursor) >= '0001-01-01'"
        var binds: [SourceValue] = []
        if let horizon {
            binds.append(horizon)
            sql += " AND \(cursor) <= \(dialect.placeholder(1, as: cursorCast))"
        }
        return SQLStatement(sql: sql, binds: binds)
    }

    /// One row's checksum over every selected value, each distinct expression once (a key column that is also the
    /// external id is checksummed once; ``SQLDialect/rowChecksum(_:)``); `nil` in a dialect without one.
    var rowChecksum: String? {
        var seen = Set<String>()
        let amount = stream.fields[.amount].map { Self.expression($0, dialect) }
        return dialect.rowChecksum(expressions.filter { seen.insert($0).inserted }, numeric: amount.map { [$0] } ?? [])
    }

    /// The rows with an orderable cursor from `first` up to `last` (inclusive; no upper bound when `nil`) and, when
    /// `position` is given, at or before it in `(cursor, key)` order, counted and checksummed at the source in four
    /// parts: cursor below `lower` (part 0), from `lower` up to `upper` (1, `upper` excluded), equal to `upper` (2)
    /// and beyond it (3): `SELECT CASE … END, COUNT(*), SUM(<row checksum>), MAX(cursor) … GROUP BY 1`, one index
    /// range, no row leaves the server (``RangeFingerprint/parts(_:)``, ``rowChecksum``); `nil` in a dialect without a
    /// checksum.
    public func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint? = nil,
                            splitAt lower: SourceValue, _ upper: SourceValue) -> SQLStatement? {
        guard let checksum = rowChecksum else { return nil }
        let cursor = Self.reference(stream.cursor.column, dialect)
        var binds: [SourceValue] = []
        func bound(_ value: SourceValue) -> String {
            binds.append(value)
            return dialect.placeholder(binds.count, as: cursorCast)
        }
        let part = "CASE WHEN \(cursor) < \(bound(lower)) THEN 0 WHEN \(cursor) < \(bound(upper)) THEN 1 WHEN \(cursor) = \(bound(upper)) THEN 2 ELSE 3 END"
        var sql = "SELECT \(part), COUNT(*), SUM(\(checksum)), MAX(\(cursor)) \(fromClause) WHERE \(orderable) AND \(cursor) >= \(bound(first))"
        if let last { sql += " AND \(cursor) <= \(bound(last))" }
        if let position {
            sql += " AND " + keyset(orderKey, values: [position.cursor] + position.key, strict: false, greater: false, castFirst: cursorCast, binds: &binds)
        }
        return SQLStatement(sql: sql + " GROUP BY 1", binds: binds)
    }

    /// The most years the sweep writes as index ranges (12 per year); a wider extent is tested row by row.
    public static let maxSweepYears = 200

    /// The years of a ``cursorExtent(horizon:)`` row, or `nil` (test every row) when the extent is empty, wider
    /// than ``maxSweepYears``, or not of a date column: the ranges hold only where the server compares the cursor
    /// as a date, which a `MIN` or `MAX` read back as a date proves (a text column compares as text, where
    /// `2024/00/10` lies outside `['2024-00-00', '2024-01-01')`).
    public static func cursorYears(extent row: [SourceValue]?) -> ClosedRange<Int>? {
        guard let row, row.count == 4 else { return nil }
        let isDate: (SourceValue) -> Bool = {
            switch $0 {
            case .localDateTime, .instant: true
            default: false
            }
        }
        guard isDate(row[0]) || isDate(row[1]), let first = row[2].text.flatMap({ Int($0) }), let last = row[3].text.flatMap({ Int($0) }),
              1 <= first, first <= last, last - first < maxSweepYears else { return nil }
        return first...last
    }

    /// The rows with the primary keys `keys` (each in `primaryKey` order), in key order, at most `limit`:
    /// `key IN (?, …)` for a one-column key, `((a = ? AND b = ?) OR …)` for a composite one.
    public func keysPage(_ keys: [[SourceValue]], limit: Int) -> SQLStatement {
        var binds: [SourceValue] = []
        let keyColumns = stream.primaryKey.map { Self.reference($0, dialect) }
        let condition: String
        if keyColumns.count == 1 {
            let placeholders = keys.map { key -> String in
                binds.append(key[0])
                return dialect.placeholder(binds.count)
            }
            condition = "\(keyColumns[0]) IN (\(placeholders.joined(separator: ", ")))"
        } else {
            condition = "(" + keys.map { key in
                "(" + zip(keyColumns, key).map { column, value in
                    binds.append(value)
                    return "\(column) = \(dialect.placeholder(binds.count))"
                }.joined(separator: " AND ") + ")"
            }.joined(separator: " OR ") + ")"
        }
        return limited("SELECT \(selectList) \(fromClause) WHERE \(condition) ORDER BY \(keyColumns.joined(separator: ", "))", limit: limit, binds: binds, columnCount: expressions.count)
    }

    /// `SELECT 1` for each row from `bound` on (no order, no limit): what ``SQLSource/estimateRows(_:)`` counts
    /// or estimates for progress and ETA.
    public func rows(from bound: StreamBound) -> SQLStatement {
        var binds: [SourceValue] = []
        var condition = orderable
        switch bound {
        case .start: break
        case .cursorAtLeast(let value):
            binds.append(value)
            condition += " AND \(Self.reference(stream.cursor.column, dialect)) >= \(dialect.placeholder(1, as: cursorCast))"
        case .after(let position):
            condition += " AND " + keyset(orderKey, values: [position.cursor] + position.key, strict: true, greater: true, castFirst: cursorCast, binds: &binds)
        }
        return SQLStatement(sql: "SELECT 1 \(fromClause) WHERE \(condition)", binds: binds)
    }

    /// The condition of rows a keyset page may read: `cursor IS NOT NULL`, or the negation of
    /// ``SQLDialect/isUnorderable(_:kind:)`` where the dialect has more unorderable values.
    private var orderable: String {
        let cursor = Self.reference(stream.cursor.column, dialect)
        let unorderable = dialect.isUnorderable(cursor, kind: stream.cursor.kind)
        return unorderable == dialect.isNull(cursor) ? "\(cursor) IS NOT NULL" : "NOT \(unorderable)"
    }

    /// `(a, b) > (?, ?)`, or for dialects without row values the equivalent
    /// `(a > ?) OR (a = ? AND b > ?)`; `strict: false` adds equality (`>=` / `<=`). `castFirst` is the type
    /// the first column's parameters are cast to (the cursor's, see ``SQLDialect/timestampBindType``).
    func keyset(_ columns: [String], values: [SourceValue], strict: Bool, greater: Bool, castFirst: String? = nil,
                        binds: inout [SourceValue]) -> String {
        let op = greater ? ">" : "<"
        func placeholder(_ column: Int) -> String { dialect.placeholder(binds.count, as: column == 0 ? castFirst : nil) }
        if dialect.supportsRowValues {
            var placeholders: [String] = []
            for (index, value) in values.enumerated() {
                binds.append(value)
                placeholders.append(placeholder(index))
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
                terms.append("\(columns[index]) = \(placeholder(index))")
            }
            binds.append(values[depth])
            terms.append("\(columns[depth]) \(op) \(placeholder(depth))")
            disjuncts.append("(" + terms.joined(separator: " AND ") + ")")
        }
        if !strict {
            var terms: [String] = []
            for index in columns.indices {
                binds.append(values[index])
                terms.append("\(columns[index]) = \(placeholder(index))")
            }
            disjuncts.append("(" + terms.joined(separator: " AND ") + ")")
        }
        return "(" + disjuncts.joined(separator: " OR ") + ")"
    }

    func limited(_ sql: String, limit: Int, binds: [SourceValue], columnCount: Int? = nil) -> SQLStatement {
        switch dialect.rowLimit {
        case .limit: SQLStatement(sql: sql + " LIMIT \(limit)", binds: binds, columnCount: columnCount)
        case .fetchFirst: SQLStatement(sql: sql + " FETCH FIRST \(limit) ROWS ONLY", binds: binds, columnCount: columnCount)
        case .top: SQLStatement(sql: "SELECT TOP (\(limit)) " + sql.dropFirst("SELECT ".count), binds: binds, columnCount: columnCount)
        case .rowNum: SQLStatement(sql: "SELECT * FROM (\(sql)) WHERE ROWNUM <= \(limit)", binds: binds, columnCount: columnCount)
        }
    }
}
