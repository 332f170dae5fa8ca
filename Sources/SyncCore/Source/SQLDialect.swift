/// How one database family spells identifiers, parameters and row limits.
///
/// The dialects follow each server's documented syntax: double-quoted identifiers (SQL standard,
/// PostgreSQL, SQLite, Oracle), backticks (MySQL/MariaDB), brackets (SQL Server); `$n` parameters for
/// PostgreSQL, `:n` for Oracle, `?` elsewhere; `LIMIT n` (PostgreSQL, MySQL, SQLite), `FETCH FIRST n ROWS
/// ONLY` (Oracle 12c+) and `TOP (n)` (SQL Server), never combined with `OFFSET`.
public struct SQLDialect: Sendable, Equatable {
    /// How identifiers are quoted.
    public enum Quoting: Sendable, Equatable {
        case doubleQuotes, backticks, brackets
    }
    /// How a statement is limited to n rows.
    public enum RowLimit: Sendable, Equatable {
        case limit, fetchFirst, top
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

    /// A short name for messages (`postgresql`).
    public var name: String
    public var quoting: Quoting
    public var rowLimit: RowLimit
    public var parameters: Parameters
    /// Whether `(a, b) > (?, ?)` row-value comparison is supported and index-friendly.
    public var supportsRowValues: Bool
    /// How NULL is tested (default ``NullTest/isNull``).
    public var nullTest: NullTest
    /// How a date-time is truncated to its hour (default ``HourTruncation/strftime``).
    public var hourTruncation: HourTruncation

    /// Creates a dialect.
    public init(name: String, quoting: Quoting, rowLimit: RowLimit, parameters: Parameters, supportsRowValues: Bool,
                nullTest: NullTest = .isNull, hourTruncation: HourTruncation = .strftime) {
        self.name = name
        self.quoting = quoting
        self.rowLimit = rowLimit
        self.parameters = parameters
        self.supportsRowValues = supportsRowValues
        self.nullTest = nullTest
        self.hourTruncation = hourTruncation
    }

    public static let sqlite = SQLDialect(name: "sqlite", quoting: .doubleQuotes, rowLimit: .limit, parameters: .questionMark, supportsRowValues: true)
    public static let postgresql = SQLDialect(name: "postgresql", quoting: .doubleQuotes, rowLimit: .limit, parameters: .dollarNumbered, supportsRowValues: true,
                                              hourTruncation: .dateTrunc)
    /// MySQL/MariaDB: row constructors are legal but not index-optimised by MariaDB (a full scan and a filesort
    /// in 10.11's EXPLAIN), so the expanded OR form is used; NULL is tested with `<=>`.
    public static let mysql = SQLDialect(name: "mysql", quoting: .backticks, rowLimit: .limit, parameters: .questionMark, supportsRowValues: false,
                                         nullTest: .nullSafeEquals, hourTruncation: .dateFormat)
    public static let sqlserver = SQLDialect(name: "sqlserver", quoting: .brackets, rowLimit: .top, parameters: .questionMark, supportsRowValues: false,
                                             hourTruncation: .dateAdd)
    public static let oracle = SQLDialect(name: "oracle", quoting: .doubleQuotes, rowLimit: .fetchFirst, parameters: .colonNumbered, supportsRowValues: false,
                                          hourTruncation: .trunc)

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

    /// The text of the n-th (1-based) parameter.
    public func placeholder(_ index: Int) -> String {
        switch parameters {
        case .questionMark: "?"
        case .dollarNumbered: "$\(index)"
        case .colonNumbered: ":\(index)"
        }
    }
}

/// SQL text and its bound values, kept apart: values from config, checkpoints or API requests only ever
/// travel as parameters.
public struct SQLStatement: Sendable, Equatable {
    public var sql: String
    public var binds: [SourceValue]

    /// Creates a statement.
    public init(sql: String, binds: [SourceValue] = []) {
        self.sql = sql
        self.binds = binds
    }
}
