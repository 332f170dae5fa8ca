/// The reads of reconciliation, built from the same mapping, `FROM` and deleted expression as the keyset pages,
/// so every SQL connector answers them without code of its own.
extension StreamQuery {
    /// Column names of an ``aggregate(pendingAfter:)`` row, in order.
    public static let aggregateColumns = ["r_pdv", "r_hour", "r_deleted", "r_pending", "r_count", "r_sum", "r_first", "r_last"]

    /// One aggregate query over the whole stream: per pdv, hour of `occurredAt` (``SQLDialect/hourStart(_:)``,
    /// no time-zone tables needed), deleted value and whether the row lies past `pendingAfter` in
    /// `(cursor, key)` order: the row count, the exact `SUM` of the amount expression and the first and last
    /// cursor values.
    ///
    /// ```sql
    /// SELECT r.r_pdv, r.r_hour, r.r_deleted, r.r_pending, COUNT(*), SUM(r.r_amount), MIN(r.r_cursor), MAX(r.r_cursor)
    /// FROM (SELECT <pdv> AS r_pdv, date_trunc('hour', <occurredAt>) AS r_hour, <deleted> AS r_deleted,
    ///       CASE WHEN (cursor, id) > ($1, $2) THEN 1 ELSE 0 END AS r_pending, <amount> AS r_amount, src."cursor" AS r_cursor
    ///       FROM "sales" src) r
    /// GROUP BY r.r_pdv, r.r_hour, r.r_deleted, r.r_pending
    /// ```
    /// A stream without a deleted mapping selects `0` as `r_deleted`; without a checkpoint every row is
    /// pending (`1`). The derived table keeps each bind once and works without `GROUP BY` ordinals (SQL Server,
    /// Oracle). Rows come back with ``aggregateColumns``.
    public func aggregate(pendingAfter checkpoint: Checkpoint?) -> SQLStatement {
        var binds: [SourceValue] = []
        let pending: String
        if let checkpoint {
            let after = keyset(orderKey, values: [checkpoint.cursor] + checkpoint.key, strict: true, greater: true, binds: &binds)
            pending = "CASE WHEN \(after) THEN 1 ELSE 0 END"
        } else {
            pending = "1"
        }
        func field(_ field: StreamConfig.Field) -> String {
            stream.fields[field].map { Self.expression($0, dialect) } ?? "NULL"
        }
        let deleted = stream.deleted.map { Self.expression($0, dialect) } ?? "0"
        let inner = [
            "\(field(.pdv)) AS r_pdv", "\(dialect.hourStart(field(.occurredAt))) AS r_hour", "\(deleted) AS r_deleted",
            "\(pending) AS r_pending", "\(field(.amount)) AS r_amount", "\(Self.reference(stream.cursor.column, dialect)) AS r_cursor",
        ].joined(separator: ", ")
        let sql = """
            SELECT r.r_pdv, r.r_hour, r.r_deleted, r.r_pending, COUNT(*) AS r_count, SUM(r.r_amount) AS r_sum, \
            MIN(r.r_cursor) AS r_first, MAX(r.r_cursor) AS r_last \
            FROM (SELECT \(inner) \(fromClause)) r GROUP BY r.r_pdv, r.r_hour, r.r_deleted, r.r_pending
            """
        return SQLStatement(sql: sql, binds: binds)
    }

    /// One keyset page of the rows whose cursor lies in `first...last`, after `position` when given, at most
    /// `limit`, laid out as ``StreamLayout/columns(of:)`` plus a last column `r_pending` (`1` past
    /// `pendingAfter` in `(cursor, key)` order or without a checkpoint, else `0`): what a reconciliation
    /// drill-down reads of a bucket. The bounds are a group's `r_first`/`r_last` as the source returned them, so
    /// they bind like checkpoints.
    public func cursorRange(_ first: SourceValue, through last: SourceValue, after position: Checkpoint?, pendingAfter checkpoint: Checkpoint?,
                            limit: Int) -> SQLStatement {
        var binds: [SourceValue] = []
        var pending = "1"
        if let checkpoint {
            pending = "CASE WHEN \(keyset(orderKey, values: [checkpoint.cursor] + checkpoint.key, strict: true, greater: true, binds: &binds)) THEN 1 ELSE 0 END"
        }
        let cursor = Self.reference(stream.cursor.column, dialect)
        binds.append(first)
        var conditions = ["\(cursor) >= \(dialect.placeholder(binds.count))"]
        binds.append(last)
        conditions.append("\(cursor) <= \(dialect.placeholder(binds.count))")
        if let position {
            conditions.append(keyset(orderKey, values: [position.cursor] + position.key, strict: true, greater: true, binds: &binds))
        }
        return limited("""
            SELECT \(selectList), \(pending) AS r_pending \(fromClause) WHERE \(conditions.joined(separator: " AND ")) \
            ORDER BY \(orderKey.joined(separator: ", "))
            """, limit: limit, binds: binds, columnCount: expressions.count + 1)
    }
}
