public import Logging
import PostgresNIO
import Synchronization
public import SyncCore

/// An ERP on PostgreSQL. Reads a page as one array per column (``fetch(_:)``), any other statement row by row
/// (postgres-nio's row sequence), and keeps PostgreSQL's exact types: `numeric` as decimal text, `timestamp` as
/// naive local time (read in the source's zone), `timestamptz` as an instant.
public final class PostgresSource: SQLSource {
    public let dialect = SQLDialect.postgresql
    private let pool: PostgresPool
    /// User-defined types met in pages, by OID: their base types (``baseTypes(_:on:)``).
    let knownTypes = Mutex<[UInt32: PostgresDataType]>([:])
    /// Page statements (their SQL text) read row by row: their columns cannot be read as arrays (``fetch(_:)``).
    /// Forgotten all at once past 1,000, so a server running for months holds a bounded set.
    let rowByRow = Mutex<Set<String>>([])

    /// Prepares a connection pool to the source (connections open on first use).
    /// - Throws: ``SyncFailure`` for unusable TLS settings.
    public init(settings: PostgresSettings, logger: Logger = Logger(label: "erp-sync.postgres")) throws {
        do {
            pool = try PostgresPool(settings: settings, logger: logger)
        } catch {
            throw SyncFailure(code: .sourceConfig, message: "TLS settings for \(settings.host): \(error)", isTransient: false)
        }
    }

    /// Runs `statement`. A page read (``SQLStatement/columnCount`` set) is read as one row of one array per column,
    /// `SELECT array_agg(c1), …, array_agg(cN) FROM (statement) AS q(c1, …, cN)`, its rows in the statement's order (a
    /// subquery with `ORDER BY` or `LIMIT` is never merged into the query around it, `is_simple_subquery` in
    /// src/backend/optimizer/prep/prepjointree.c, so the aggregates read its rows as it sorts them): one message for
    /// a page instead of one per row, and no object per value (``PostgresArray``). `perf` put postgres-nio's
    /// per-row messages and cells at ~40 % of our CPU in a PostgreSQL → PostgreSQL first load; the arrays cost the
    /// server ~0.5 µs a row. An array names its element's declared type, a domain included (a row description names
    /// the domain's base type), so a type this decoder does not know is looked up once (``baseTypes(_:on:)``).
    ///
    /// A column of an array type cannot be read so: `array_agg` of arrays nests them in one more dimension, or
    /// refuses NULL, empty and unequal ones (SQLSTATE 22004, 2202E). Such a statement, and one whose arrays would
    /// pass 1 GB (54000), is read row by row, then and from then on (``rowByRow``).
    public func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]] {
        try await pool.withConnection("reading the source", code: .sourceQueryFailed) { [self] connection in
            if let count = statement.columnCount, count > 0, !rowByRow.withLock({ $0.contains(statement.sql) }) {
                do {
                    if let rows = try await columnArrays(statement, count: count, on: connection) { return rows }
                } catch let error as PSQLError where ["22004", "2202E", "54000"].contains(error.serverInfo?[.sqlState]) {}
                rowByRow.withLock { texts in
                    if texts.count >= 1_000 { texts.removeAll() }
                    texts.insert(statement.sql)
                }
            }
            return try await query(statement, on: connection).map { $0.map(SourceValue.init(postgres:)) }
        }
    }

    /// The rows of `statement` read as one array per column (``fetch(_:)``); `nil` when an array is not a
    /// one-dimensional array of the page's rows (an array-typed column nests its values in two dimensions).
    private func columnArrays(_ statement: SQLStatement, count: Int, on connection: PostgresConnection) async throws -> [[SourceValue]]? {
        let names = (1...count).map { "c\($0)" }
        let columnar = SQLStatement(sql: "SELECT \(names.map { "array_agg(\($0))" }.joined(separator: ", ")) FROM (\n\(statement.sql)\n) "
                                        + "AS q(\(names.joined(separator: ", ")))", binds: statement.binds)
        guard let row = try await query(columnar, on: connection).first, row.count == count else { return nil }
        let arrays = row.map(\.bytes)
        let types = try await baseTypes(arrays.compactMap { $0?.withUnsafeReadableBytes(PostgresArray.elementType) }, on: connection)
        var rows: [[SourceValue]] = []
        for (index, array) in arrays.enumerated() {
            var next = 0
            // array_agg of no row is NULL: no element.
            let isWellFormed = array?.withUnsafeReadableBytes { bytes in
                PostgresArray.forEachElement(bytes, baseType: { types[$0] ?? PostgresDataType($0) }) { value in
                    if index == 0 {
                        var row = [value]
                        row.reserveCapacity(count)
                        rows.append(row)
                    } else if next < rows.count {
                        rows[next].append(value)
                    }
                    next += 1
                }
            } ?? true
            guard isWellFormed, next == rows.count else { return nil }
        }
        return rows
    }

    /// Each of `types` (OIDs) that is a user-defined type (OID 10,000 and above: PostgreSQL's own base types are
    /// below it) mapped to its base type, through any chain of domains (a type that is no domain maps to itself);
    /// learnt from `pg_type` once per type.
    private func baseTypes(_ types: [UInt32], on connection: PostgresConnection) async throws -> [UInt32: PostgresDataType] {
        let unknown = knownTypes.withLock { known in Set(types.filter { $0 >= 10_000 && known[$0] == nil }) }
        if !unknown.isEmpty {
            var bindings = PostgresBindings()
            bindings.append(unknown.map { Int64($0) })
            var found: [UInt32: PostgresDataType] = [:]
            for try await (type, base) in try await connection.query(PostgresQuery(unsafeSQL: """
                WITH RECURSIVE chain (type, base, next) AS (
                    SELECT oid, oid, typbasetype FROM pg_type WHERE oid = ANY($1::int8[]::oid[])
                    UNION ALL SELECT chain.type, t.oid, t.typbasetype FROM chain JOIN pg_type t ON t.oid = chain.next)
                SELECT type::int8, base::int8 FROM chain WHERE next = 0
                """, binds: bindings), logger: pool.logger).decode((Int64, Int64).self) {
                found[UInt32(truncatingIfNeeded: type)] = PostgresDataType(UInt32(truncatingIfNeeded: base))
            }
            knownTypes.withLock { $0.merge(found) { $1 } }
        }
        return knownTypes.withLock { $0 }
    }

    private func query(_ statement: SQLStatement, on connection: PostgresConnection) async throws -> [PostgresRow] {
        var bindings = PostgresBindings(capacity: statement.binds.count)
        for value in statement.binds { try bindings.append(source: value) }
        var rows: [PostgresRow] = []
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: statement.sql, binds: bindings), logger: pool.logger) {
            rows.append(row)
        }
        return rows
    }

    /// The planner's row estimate (`EXPLAIN`, run as it is): no scan, however large the table.
    public func estimateRows(_ statement: SQLStatement) async throws -> Int? {
        let plan = try await pool.withConnection("reading the source", code: .sourceQueryFailed) { [self] connection in
            try await query(SQLStatement(sql: "EXPLAIN " + statement.sql, binds: statement.binds), on: connection).first?.first.map(SourceValue.init(postgres:))
        }
        guard let line = plan?.text, let range = line.range(of: "rows=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    public func testConnection() async throws -> String {
        let version = try await fetch(SQLStatement(sql: "SELECT version()")).first?.first?.text ?? "?"
        return "\(version.split(separator: ",").first ?? "PostgreSQL"), \(pool.settings.target)"
    }

    public func close() async {
        await pool.close()
    }
}
