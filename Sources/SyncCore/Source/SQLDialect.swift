/// How one database family spells identifiers, parameters and row limits.
///
/// The dialects follow each server's documented syntax: double-quoted identifiers (SQL standard,
/// PostgreSQL, SQLite, Oracle), backticks (MySQL/MariaDB), brackets (SQL Server); `$n` parameters for
/// PostgreSQL, `:n` for Oracle, `?` elsewhere and over ODBC; `LIMIT n` (PostgreSQL, MySQL, SQLite), `FETCH
/// FIRST n ROWS ONLY` (Oracle 12c+, SQL:2008), a `ROWNUM` subquery (Oracle 11g) and `TOP (n)` (SQL Server),
/// never combined with `OFFSET`.
public struct SQLDialect: Sendable, Equatable {
    /// How identifiers are quoted.
    public enum Quoting: Sendable, Equatable {
        case doubleQuotes, backticks, brackets
    }
    /// How a statement is limited to n rows.
    public enum RowLimit: Sendable, Equatable {
        case limit, fetchFirst, top
        /// Oracle before 12c: `SELECT * FROM (<ordered select>) WHERE ROWNUM <= n`. ROWNUM is assigned as rows
        /// leave the inner query, so it is applied after its `ORDER BY` (Oracle Database 11g SQL Language
        /// Reference, "ROWNUM Pseudocolumn": a `ROWNUM` condition in the same query block as `ORDER BY`
        /// filters before sorting and returns the wrong rows).
        case rowNum
    }
    /// How parameters are written.
    public enum Parameters: Sendable, Equatable {
        case questionMark, dollarNumbered, colonNumbered
    }
    /// How "is SQL NULL" is tested.
    public enum NullTest: Sendable, Equatable {
        /// `x IS NULL`.
        case isNull
        /// `x <=> NULL` (MySQL/MariaDB): there `x IS NULL` is also true for a zero date in a NOT NULL
        /// DATE/DATETIME column (an ODBC compatibility rule in the MySQL and MariaDB manuals, "IS NULL"), which
        /// would read such a row both as a NULL cursor and as a keyset row; `<=>` is true for real NULLs only.
        case nullSafeEquals
    }

    /// Timestamp values a dialect stores but the keyset predicate cannot order among real dates.
    public enum UnorderableDates: Sendable, Equatable {
        /// None besides NULL (SQL Server, Oracle: their date types hold real dates only).
        case none
        /// MySQL/MariaDB zero and partial-zero dates (`0000-00-00`, `2026-00-10`, `2026-03-00`, allowed under a
        /// permissive `sql_mode`): `MONTH()` or `DAYOFMONTH()` is 0. They sort before or between real dates, so a
        /// row holding one behind the checkpoint would never be read again (MySQL manual, "The DATE, DATETIME,
        /// and TIMESTAMP Types").
        case mysqlZeroDates
        /// PostgreSQL `infinity` / `-infinity` (manual, "Date/Time Types", special values): after or before every
        /// real date, so `-infinity` is always behind the checkpoint and `infinity` would move it past every row.
        case postgresInfinity
        /// SQLite text timestamps that are empty, zero or with a zero month or day (text order puts them before or
        /// between real dates).
        case sqliteText
    }

    /// How a date-time is truncated to its hour, per each server's manual.
    public enum HourTruncation: Sendable, Equatable {
        /// `date_trunc('hour', x)` (PostgreSQL).
        case dateTrunc
        /// `DATE_FORMAT(x, '%Y-%m-%d %H:00:00')`, text (MySQL/MariaDB).
        case dateFormat
        /// `strftime('%Y-%m-%d %H:00:00', x)`, text (SQLite).
        case strftime
        /// `DATEADD(hour, DATEDIFF(hour, 0, x), 0)` (SQL Server).
        case dateAdd
        /// `TRUNC(x, 'HH24')` (Oracle).
        case trunc
    }

    /// How a row's values are checksummed for a ``RangeFingerprint``: an integer from a digest of them, one that every
    /// driver reads as a signed 64-bit integer (a page carries it per row, ``PageRequest/checksummed``), summed exactly
    /// by the server (`SUM` of `BIGINT` is `NUMERIC` in PostgreSQL, `DECIMAL` in MySQL/MariaDB).
    public enum RowChecksum: Sendable, Equatable {
        /// PostgreSQL: the first 16 hex digits of `md5(ROW(…)::text)` as a `bigint` (a row's text form tells NULL
        /// from an empty string: manual, "Composite Types", "Constructing Composite Values").
        case md5OfRow
        /// MySQL/MariaDB: the first 15 hex digits of `SHA1(CONCAT_WS('#', QUOTE(…), …))` as an unsigned integer (60
        /// bits: MariaDB Connector/ODBC reads every integer as a signed 64-bit one, so 16 digits came back negative for
        /// half the rows). `QUOTE` makes the text one value per field that no other values spell: each value quoted
        /// with its quotes and backslashes escaped, NULL as the bare word `NULL` (MariaDB "QUOTE"). The values themselves
        /// joined with `#`, as Percona's pt-table-checksum does, let `P1#x`,`op` and `P1`,`x#op` checksum alike: an
        /// update moving a `#` between two fields went unseen by the lookback check. `SHA1`, not `MD5`: MariaDB 10.11
        /// computes it in a quarter of the time (0.1 against 0.55 µs a row, measured), the fingerprint's largest cost
        /// after the rows. A `FLOAT`'s text has 6 significant digits (MariaDB "Numeric Data Type Overview"): the amount is
        /// checksummed as `amount * 1`, a `DOUBLE` with all of them (``rowChecksum(_:numeric:)``).
        case sha1OfConcat
    }

    /// A short name for messages (`postgresql`).
    public var name: String
    public var quoting: Quoting
    public var rowLimit: RowLimit
    public var parameters: Parameters
    /// Whether `(a, b) > (?, ?)` row-value comparison is supported and index-friendly.
    public var supportsRowValues: Bool
    /// How NULL is tested (default ``NullTest/isNull``).
    public var nullTest: NullTest
    /// Timestamp values the keyset cannot order (default ``UnorderableDates/none``).
    public var unorderableDates: UnorderableDates
    /// How a date-time is truncated to its hour (default ``HourTruncation/strftime``).
    public var hourTruncation: HourTruncation
    /// Whether every select-list expression gets a unique alias (`… AS "cursor"`): Oracle refuses a
    /// `FETCH FIRST` or `ROWNUM` subquery whose select list repeats a column name (ORA-00918), which a stream
    /// whose cursor is also its `occurredAt` does. Default `false`.
    public var aliasesColumns: Bool
    /// The SQL type a timestamp cursor's parameters are cast to in the text (`CAST(? AS DATETIME)`), so a
    /// checkpoint compares exactly like the column it came from; a stream's `cursor.type` overrides it; `nil`
    /// binds without a cast. SQL Server: `DATETIME` (since SQL Server 2016 a `DATETIME` column compared with a
    /// `DATETIME2` parameter is converted at full precision, .003 becoming .0033333, so a checkpoint read as
    /// .003 would never equal its own row again: "Breaking changes to Database Engine features in SQL Server
    /// 2016"). Oracle: `DATE` (a `TIMESTAMP` bind against a `DATE` column converts the column, so its index is
    /// not used).
    public var timestampBindType: String?
    /// Whether a condition can be selected as a value. SQL Server and Oracle (before 23ai) have no boolean
    /// type in a select list, so a `deleted: { sql: <condition> }` is selected as
    /// `CASE WHEN (<condition>) THEN 1 ELSE 0 END` there. Default `true`.
    public var selectsConditions: Bool
    /// How a row is checksummed for a lookback fingerprint; `nil` (the default): the dialect has none the project
    /// has checked on a real server, and the lookback window is re-read in full.
    public var rowChecksum: RowChecksum?

    /// Creates a dialect.
    public init(name: String, quoting: Quoting, rowLimit: RowLimit, parameters: Parameters, supportsRowValues: Bool,
                nullTest: NullTest = .isNull, aliasesColumns: Bool = false, timestampBindType: String? = nil, selectsConditions: Bool = true,
                unorderableDates: UnorderableDates = .none, hourTruncation: HourTruncation = .strftime, rowChecksum: RowChecksum? = nil) {
        self.name = name
        self.quoting = quoting
        self.rowLimit = rowLimit
        self.parameters = parameters
        self.supportsRowValues = supportsRowValues
        self.nullTest = nullTest
        self.unorderableDates = unorderableDates
        self.hourTruncation = hourTruncation
        self.aliasesColumns = aliasesColumns
        self.timestampBindType = timestampBindType
        self.selectsConditions = selectsConditions
        self.rowChecksum = rowChecksum
    }

    public static let sqlite = SQLDialect(name: "sqlite", quoting: .doubleQuotes, rowLimit: .limit, parameters: .questionMark, supportsRowValues: true,
                                          unorderableDates: .sqliteText, hourTruncation: .strftime)
    public static let postgresql = SQLDialect(name: "postgresql", quoting: .doubleQuotes, rowLimit: .limit, parameters: .dollarNumbered,
                                              supportsRowValues: true, unorderableDates: .postgresInfinity, hourTruncation: .dateTrunc,
                                              rowChecksum: .md5OfRow)
    /// MySQL/MariaDB: row constructors are legal but not index-optimised by MariaDB (a full scan and a filesort
    /// in 10.11's EXPLAIN), so the expanded OR form is used; NULL is tested with `<=>`.
    public static let mysql = SQLDialect(name: "mysql", quoting: .backticks, rowLimit: .limit, parameters: .questionMark, supportsRowValues: false,
                                         nullTest: .nullSafeEquals, unorderableDates: .mysqlZeroDates, hourTruncation: .dateFormat,
                                         rowChecksum: .sha1OfConcat)
    /// T-SQL (SQL Server 2012+): `[ident]`, `SELECT TOP (n)` (never with `OFFSET`), timestamp cursors bound as
    /// `CAST(? AS DATETIME)` unless the stream names the column's type.
    public static let sqlserver = SQLDialect(name: "sqlserver", quoting: .brackets, rowLimit: .top, parameters: .questionMark, supportsRowValues: false,
                                             timestampBindType: "DATETIME", selectsConditions: false, hourTruncation: .dateAdd)
    /// Oracle 12c+: `FETCH FIRST n ROWS ONLY` after `ORDER BY`, unique column aliases, timestamp cursors bound as
    /// `CAST(:n AS DATE)` unless the stream names the column's type.
    public static let oracle = SQLDialect(name: "oracle", quoting: .doubleQuotes, rowLimit: .fetchFirst, parameters: .colonNumbered, supportsRowValues: false,
                                          aliasesColumns: true, timestampBindType: "DATE", selectsConditions: false, hourTruncation: .trunc)
    /// Oracle 11g: as ``oracle`` with the `ROWNUM` subquery instead of `FETCH FIRST`.
    public static let oracle11 = SQLDialect(name: "oracle11", quoting: .doubleQuotes, rowLimit: .rowNum, parameters: .colonNumbered,
                                            supportsRowValues: false, aliasesColumns: true, timestampBindType: "DATE", selectsConditions: false, hourTruncation: .trunc)
    /// SQL:2008 for any other ODBC database: double quotes, `FETCH FIRST n ROWS ONLY`, `?` markers, the OR
    /// form of the keyset.
    public static let ansi = SQLDialect(name: "ansi", quoting: .doubleQuotes, rowLimit: .fetchFirst, parameters: .questionMark, supportsRowValues: false)

    /// The dialects a configuration can name (`dialect:` of an `odbc` source): sqlserver, oracle,
    /// postgresql, mysql, sqlite, ansi.
    public static let named: [String: SQLDialect] = [
        "sqlserver": .sqlserver, "oracle": .oracle, "postgresql": .postgresql, "mysql": .mysql, "sqlite": .sqlite, "ansi": .ansi,
    ]

    /// This dialect with `?` parameter markers, as every ODBC driver takes them (ODBC "Parameter Markers").
    public var withQuestionMarks: SQLDialect {
        var dialect = self
        dialect.parameters = .questionMark
        return dialect
    }

    /// Quotes one identifier, doubling the quote character inside it; `schema.table` is quoted part by part.
    public func quote(_ name: String) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { part in
            let (open, close): (Character, Character) = switch quoting {
            case .doubleQuotes: ("\"", "\"")
            case .backticks: ("`", "`")
            case .brackets: ("[", "]")
            }
            var quoted = String(open)
            for character in part {
                quoted.append(character)
                if character == close { quoted.append(character) }
            }
            quoted.append(close)
            return quoted
        }.joined(separator: ".")
    }

    /// `expression IS NULL` in this dialect's spelling (see ``NullTest``).
    public func isNull(_ expression: String) -> String {
        switch nullTest {
        case .isNull: "\(expression) IS NULL"
        case .nullSafeEquals: "\(expression) <=> NULL"
        }
    }

    /// True for a cursor value the keyset predicate cannot order: NULL, and for timestamp cursors the dialect's
    /// ``UnorderableDates``. Such rows are swept into quarantine instead of being paged.
    ///
    /// `years` bounds where MySQL/MariaDB partial-zero dates can lie (the years of the column's real dates, read
    /// by ``StreamQuery/cursorExtent(horizon:)``): the test is then also written as index ranges, one for the zero
    /// month and one for each zero day of each year (`2024-00-10` sorts in `['2024-00-00', '2024-01-01')`,
    /// `2024-03-00` in `['2024-03-00', '2024-03-01')`, per the server's date order), plus everything before year
    /// 1, so an index on the cursor answers the sweep instead of a scan of the table. `MONTH()` / `DAYOFMONTH()`
    /// is tested first, so without such an index each row costs one test, not one per range. Other dialects
    /// ignore `years`.
    public func isUnorderable(_ expression: String, kind: StreamConfig.Cursor.Kind, years: ClosedRange<Int>? = nil) -> String {
        let null = isNull(expression)
        guard kind == .timestamp else { return null }
        return switch unorderableDates {
        case .none: null
        case .mysqlZeroDates:
            Self.mysqlZeroDateTest(expression, null: null, years: years)
        case .postgresInfinity: "(\(null) OR \(expression) IN ('infinity', '-infinity'))"
        case .sqliteText:
            "(\(null) OR (typeof(\(expression)) = 'text' AND (\(expression) < '0001' OR substr(\(expression), 6, 2) = '00' OR substr(\(expression), 9, 2) = '00')))"
        }
    }

    /// `MONTH() = 0 OR DAYOFMONTH() = 0` (or NULL), and with `years` the same test AND-ed with its index ranges.
    private static func mysqlZeroDateTest(_ expression: String, null: String, years: ClosedRange<Int>?) -> String {
        let rowTest = "(\(null) OR MONTH(\(expression)) = 0 OR DAYOFMONTH(\(expression)) = 0)"
        guard let years else { return rowTest }
        return "(\(rowTest) AND (\(null) OR \(expression) < '0001-01-01' OR \(zeroMonthAndDayRanges(of: expression, years: years))))"
    }

    /// The half-open ranges holding the zero-month and zero-day dates of `years` (years are integers, written
    /// into the text: no value from a row or a request reaches it).
    private static func zeroMonthAndDayRanges(of expression: String, years: ClosedRange<Int>) -> String {
        func date(_ year: Int, _ month: Int, _ day: Int) -> String { "'\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))'" }
        var ranges: [String] = []
        for year in years {
            ranges.append("(\(expression) >= \(date(year, 0, 0)) AND \(expression) < \(date(year, 1, 1)))")
            for month in 2...12 {
                ranges.append("(\(expression) >= \(date(year, month, 0)) AND \(expression) < \(date(year, month, 1)))")
            }
        }
        return ranges.joined(separator: " OR ")
    }

    /// `expression` (a date-time) truncated to the start of its hour, in the server's spelling
    /// (``HourTruncation``). None of them needs the server's time-zone tables: reconciliation groups by hour at
    /// the source and folds hours into local days in Swift (``Reconciler``).
    public func hourStart(_ expression: String) -> String {
        switch hourTruncation {
        case .dateTrunc: "date_trunc('hour', \(expression))"
        case .dateFormat: "DATE_FORMAT(\(expression), '%Y-%m-%d %H:00:00')"
        case .strftime: "strftime('%Y-%m-%d %H:00:00', \(expression))"
        case .dateAdd: "DATEADD(hour, DATEDIFF(hour, 0, \(expression)), 0)"
        case .trunc: "TRUNC(\(expression), 'HH24')"
        }
    }

    /// A 60- or 64-bit checksum of one row's `expressions` (``RowChecksum``), or `nil` in a dialect without one. Those
    /// of `numeric` (the amount) are numbers: MySQL/MariaDB checksums them as `expression * 1`, whose text is exact for
    /// every numeric type (a `FLOAT` becomes a `DOUBLE`, all its digits; a `DECIMAL` stays itself).
    public func rowChecksum(_ expressions: [String], numeric: Set<String> = []) -> String? {
        switch rowChecksum {
        case .md5OfRow?:
            return "('x' || left(md5(ROW(\(expressions.joined(separator: ", ")))::text), 16))::bit(64)::bigint"
        case .sha1OfConcat?:
            let quoted = expressions.map { numeric.contains($0) ? "QUOTE(\($0) * 1)" : "QUOTE(\($0))" }
            return "CAST(CONV(LEFT(SHA1(CONCAT_WS('#', \(quoted.joined(separator: ", ")))), 15), 16, 10) AS UNSIGNED)"
        case nil:
            return nil
        }
    }

    /// The text of the n-th (1-based) parameter.
    public func placeholder(_ index: Int) -> String {
        switch parameters {
        case .questionMark: "?"
        case .dollarNumbered: "$\(index)"
        case .colonNumbered: ":\(index)"
        }
    }

    /// The n-th parameter cast to `type` (`CAST(? AS DATETIME)`), or plain when `type` is `nil`.
    public func placeholder(_ index: Int, as type: String?) -> String {
        type.map { "CAST(\(placeholder(index)) AS \($0))" } ?? placeholder(index)
    }
}

/// SQL text and its bound values, kept apart: values from config, checkpoints or API requests only ever
/// travel as parameters.
public struct SQLStatement: Sendable, Equatable {
    public var sql: String
    public var binds: [SourceValue]
    /// How many columns each row has, for a page read (``StreamQuery`` built its select list, so the count is exact):
    /// a source may then read the rows in a form of its own (PostgreSQL: one array per column); `nil` for any other
    /// statement.
    public var columnCount: Int?

    /// Creates a statement.
    public init(sql: String, binds: [SourceValue] = [], columnCount: Int? = nil) {
        self.sql = sql
        self.binds = binds
        self.columnCount = columnCount
    }
}
