/// A connection to one ERP database that runs bounded, parameterised reads.
///
/// Connectors implement only this: the keyset queries themselves are built by ``StreamQuery`` in the
/// core, so every driver pages the same way. Every `fetch` is bounded by a row limit, so memory stays
/// bounded by the batch size whatever the table size.
public protocol Source: Sendable {
    /// The SQL dialect of the server.
    var dialect: SQLDialect { get }

    /// Runs a read and returns its rows, each with one value per select-list column, in order.
    /// - Throws: a ``SyncFailure`` telling transient (retry) from permanent errors.
    func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]]

    /// How many rows `statement` (a ``StreamQuery/rows(from:)`` statement) would return, for progress and
    /// ETA. Sources may estimate instead of counting (PostgreSQL asks the planner), so large tables are not
    /// scanned; `nil` when unknown.
    func estimateRows(_ statement: SQLStatement) async throws -> Int?

    /// Checks that the server answers and returns a one-line description (server version).
    func testConnection() async throws -> String

    /// Closes the connection. Safe to call more than once.
    func close() async
}

extension Source {
    /// Counts exactly: `SELECT COUNT(*) FROM (<statement>) n`.
    public func estimateRows(_ statement: SQLStatement) async throws -> Int? {
        let counted = SQLStatement(sql: "SELECT COUNT(*) FROM (\(statement.sql)) n", binds: statement.binds)
        return try await fetch(counted).first?.first.flatMap { $0.text.flatMap(Int.init) }
    }
}

/// A position in a stream: the cursor value and the primary key values of the last row read.
///
/// Stored in `tb_sync_state` as JSON together with the rows it covers.
public struct Checkpoint: Sendable, Hashable, Codable {
    /// The cursor column's value.
    public var cursor: SourceValue
    /// The primary key columns' values, in `primaryKey` order.
    public var key: [SourceValue]

    /// Creates a position.
    public init(cursor: SourceValue, key: [SourceValue]) {
        self.cursor = cursor
        self.key = key
    }

    /// `cursor` text, plus the key when there is one: `2005-05-24 22:53:30 #1185`.
    public var summary: String {
        let keyText = key.map { $0.text ?? "NULL" }.joined(separator: ",")
        return "\(cursor.text ?? "NULL") #\(keyText)"
    }
}
