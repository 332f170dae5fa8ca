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

    /// Creates a dialect.
    public init(name: String, quoting: Quoting, rowLimit: RowLimit, parameters: Parameters, supportsRowValues: Bool,
                nullTest: NullTest = .isNull, unorderableDates: UnorderableDates = .none) {
        self.name = name
        self.quoting = quoting
        self.rowLimit = rowLimit
        self.parameters = parameters
        self.supportsRowValues = supportsRowValues
        self.nullTest = nullTest
        self.unorderableDates = unorderableDates
    }

    public static let sqlite = SQLDialect(name: "sqlite", quoting: .doubleQuotes, rowLimit: .limit, parameters: .questionMark, supportsRowValues: true,
                                          unorderableDates: .sqliteText)
    public static let postgresql = SQLDialect(name: "postgresql", quoting: .doubleQuotes, rowLimit: .limit, parameters: .dollarNumbered,
                                              supportsRowValues: true, unorderableDates: .postgresInfinity)
    /// MySQL/MariaDB: row constructors are legal but not index-optimised by MariaDB (a full scan and a filesort
    /// in 10.11's EXPLAIN), so the expanded OR form is used; NULL is tested with `<=>`.
    public static let mysql = SQLDialect(name: "mysql", quoting: .backticks, rowLimit: .limit, parameters: .questionMark, supportsRowValues: false,
                                         nullTest: .nullSafeEquals, unorderableDates: .mysqlZeroDates)
    public static let sqlserver = SQLDialect(name: "sqlserver", quoting: .brackets, rowLimit: .top, parameters: .questionMark, supportsRowValues: false)
    public static let oracle = SQLDialect(name: "oracle", quoting: .doubleQuotes, rowLimit: .fetchFirst, parameters: .colonNumbered, supportsRowValues: false)

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
    public func isUnorderable(_ expression: String, kind: StreamConfig.Cursor.Kind) -> String {
        let null = isNull(expression)
        guard kind == .timestamp else { return null }
        return switch unorderableDates {
        case .none: null
        case .mysqlZeroDates: "(\(null) OR MONTH(\(expression)) = 0 OR DAYOFMONTH(\(expression)) = 0)"
        case .postgresInfinity: "(\(null) OR \(expression) IN ('infinity', '-infinity'))"
        case .sqliteText:
            "(\(null) OR (typeof(\(expression)) = 'text' AND (\(expression) < '0001' OR substr(\(expression), 6, 2) = '00' OR substr(\(expression), 9, 2) = '00')))"
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
