/// Where a read of a stream starts, in `(cursor, primary key)` order.
public enum StreamBound: Sendable, Equatable {
    /// The beginning of the stream.
    case start
    /// Rows whose cursor is ≥ the value (the lookback re-read, the first `daysBack` run).
    case cursorAtLeast(SourceValue)
    /// Rows strictly after a position in `(cursor, key)` order.
    case after(Checkpoint)
}

/// One bounded read of a stream: what the engine asks a source for.
///
/// Rows come back laid out as ``StreamLayout/columns(of:)``: the cursor, the primary key columns, then each
/// mapped field and the deleted flag.
public struct PageRequest: Sendable, Equatable {
    /// Which rows.
    public enum Kind: Sendable, Equatable {
        /// Rows with an orderable cursor in `(cursor, key)` order from `from`, up to and including `upTo`
        /// when given (the lookback re-read stops at the checkpoint).
        case ordered(from: StreamBound, upTo: Checkpoint?)
        /// Rows whose cursor the keyset predicate cannot order (NULL, zero dates, infinities) or lies beyond the
        /// horizon, in primary key order after `afterKey`. The engine quarantines them without moving the cursor.
        case unorderedCursor(afterKey: [SourceValue]?)
        /// The rows with these primary keys, wherever their cursor is (`reprocess`), in key order.
        case keys([[SourceValue]])
    }

    public var kind: Kind
    /// At most this many rows, ≥ 1.
    public var limit: Int
    /// The highest cursor value an ordered page reads; rows beyond it belong to the unordered sweep (a cursor
    /// from the future must not move the checkpoint past rows still to come). `nil`: no bound.
    public var horizon: SourceValue?
    /// Only the positions: rows laid out as `cursor, key.0 … key.n` (no mapped field is computed), to find the row
    /// of a page whose `{ sql: }` mapping the database cannot compute.
    public var positionsOnly: Bool
    /// Each row also carries, as a last value, its checksum as a ``Source/fingerprint(cursorFrom:through:upTo:splitAt:_:of:)``
    /// sums it (an integer), computed by the source from the values it returns in that row; only from a source that
    /// ``Source/checksumsRows``, for an ordered page.
    public var checksummed: Bool

    /// Creates a request.
    public init(_ kind: Kind, limit: Int, horizon: SourceValue? = nil, positionsOnly: Bool = false, checksummed: Bool = false) {
        self.kind = kind
        self.limit = limit
        self.horizon = horizon
        self.positionsOnly = positionsOnly
        self.checksummed = checksummed
    }
}

/// A connection to one ERP database, read in bounded pages.
///
/// The engine asks for pages by position, never with SQL text, so an in-memory source can honour the same
/// contract in tests. SQL databases conform through ``SQLSource``, whose keyset statements are built by
/// ``StreamQuery`` in the core, so every driver pages the same way. Memory stays bounded by the page limit,
/// whatever the table size.
public protocol Source: Sendable {
    /// Reads one page of `stream`.
    /// - Returns: at most `page.limit` rows, each laid out as ``StreamLayout/columns(of:)``, in the page's order.
    /// - Throws: a ``SyncFailure`` telling transient (retry) from permanent errors.
    func read(_ page: PageRequest, of stream: StreamConfig) async throws -> [[SourceValue]]

    /// How many rows an ordered read of `stream` from `bound` would return, for progress and ETA; sources may
    /// estimate instead of counting (PostgreSQL and MariaDB ask the planner); `nil` when unknown.
    func estimateRows(of stream: StreamConfig, from bound: StreamBound) async throws -> Int?

    /// Counts and checksums, in one read, the rows of `stream` with an orderable cursor from `first` up to `last`
    /// (inclusive; no upper bound when `nil`) and, when `position` is given, at or before it in `(cursor, key)` order,
    /// in four parts: cursor below `lower`, from `lower` up to `upper` (excluded), equal to `upper`, beyond `upper`;
    /// for ``LookbackWindow``.
    /// - Returns: the four parts' fingerprints in that order, or `nil` when this source cannot compute them (the
    ///   engine then re-reads its lookback window in full).
    func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint?, splitAt lower: SourceValue,
                     _ upper: SourceValue, of stream: StreamConfig) async throws -> [RangeFingerprint]?

    /// Whether this source honours ``PageRequest/checksummed``: each row of an ordered page then carries the checksum
    /// its ``fingerprint(cursorFrom:through:upTo:splitAt:_:of:)`` would sum for it. No default: a source that wraps
    /// another passes its answer on, or the engine fingerprints the window before the first page.
    var checksumsRows: Bool { get }

    /// Checks that the server answers and returns a one-line description (server version).
    func testConnection() async throws -> String

    /// Closes the connection. Safe to call more than once.
    func close() async
}

/// A source that reconciliation can question: one aggregate read of a stream's figures and bounded reads of a
/// cursor range for the drill-down. ``SQLSource`` answers both from ``StreamQuery``, so every SQL connector
/// (ODBC included) gets them without code of its own.
public protocol ReconcilableSource: Source {
    /// The stream's rows grouped by pdv, hour of `occurredAt`, deleted value and whether they lie past
    /// `pendingAfter` (every row is pending without a checkpoint), each group with ``SourceGroup`` figures.
    func reconciliationGroups(of stream: StreamConfig, pendingAfter: Checkpoint?) async throws -> [SourceGroup]

    /// One page (at most `limit` rows, in `(cursor, key)` order, after `position`) of the rows whose cursor
    /// lies in `first...last`, laid out as ``StreamLayout/columns(of:)`` plus a last value that is `1` for rows
    /// past `pendingAfter` (all rows without a checkpoint) and `0` for the others.
    func read(cursorFrom first: SourceValue, through last: SourceValue, after position: Checkpoint?, pendingAfter: Checkpoint?,
              limit: Int, of stream: StreamConfig) async throws -> [[SourceValue]]
}

/// A source that runs SQL: connectors implement the three driver-level members and get ``Source`` and
/// ``ReconcilableSource`` from the shared implementations over ``StreamQuery`` and their ``SQLDialect``.
public protocol SQLSource: ReconcilableSource {
    /// The SQL dialect of the server.
    var dialect: SQLDialect { get }

    /// Runs a read and returns its rows, each with one value per select-list column, in order.
    /// - Throws: a ``SyncFailure`` telling transient (retry) from permanent errors.
    func fetch(_ statement: SQLStatement) async throws -> [[SourceValue]]

    /// How many rows `statement` (a ``StreamQuery/rows(from:)`` statement) would return; the default counts
    /// them exactly with `COUNT(*)`.
    func estimateRows(_ statement: SQLStatement) async throws -> Int?
}

extension SQLSource {
    /// Reads a page with the statement ``StreamQuery/statement(for:cursorYears:)`` builds in this source's
    /// dialect. A sweep page of a dialect with ``StreamQuery/cursorExtent(horizon:)`` first reads the cursor's
    /// extent, so the sweep is index ranges rather than a scan of the table (one more statement per sweep page).
    public func read(_ page: PageRequest, of stream: StreamConfig) async throws -> [[SourceValue]] {
        let query = StreamQuery(stream: stream, dialect: dialect)
        var years: ClosedRange<Int>?
        if case .unorderedCursor = page.kind, let extent = query.cursorExtent(horizon: page.horizon) {
            years = StreamQuery.cursorYears(extent: try await fetch(extent).first)
        }
        return try await fetch(query.statement(for: page, cursorYears: years))
    }

    /// Runs ``StreamQuery/fingerprint(cursorFrom:through:upTo:splitAt:_:)``; `nil` in a dialect without a row
    /// checksum (``SQLDialect/RowChecksum``).
    public func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint?, splitAt lower: SourceValue,
                            _ upper: SourceValue, of stream: StreamConfig) async throws -> [RangeFingerprint]? {
        guard let statement = StreamQuery(stream: stream, dialect: dialect).fingerprint(cursorFrom: first, through: last, upTo: position,
                                                                                         splitAt: lower, upper) else {
            return nil
        }
        return RangeFingerprint.parts(try await fetch(statement))
    }

    /// Whether the dialect has a row checksum (``SQLDialect/RowChecksum``): pages then carry it when asked.
    public var checksumsRows: Bool { dialect.rowChecksum != nil }

    /// Estimates ``StreamQuery/rows(from:)`` with ``estimateRows(_:)``.
    public func estimateRows(of stream: StreamConfig, from bound: StreamBound) async throws -> Int? {
        try await estimateRows(StreamQuery(stream: stream, dialect: dialect).rows(from: bound))
    }

    /// Runs ``StreamQuery/aggregate(pendingAfter:)``.
    public func reconciliationGroups(of stream: StreamConfig, pendingAfter: Checkpoint?) async throws -> [SourceGroup] {
        try await fetch(StreamQuery(stream: stream, dialect: dialect).aggregate(pendingAfter: pendingAfter)).map(SourceGroup.init(aggregateRow:))
    }

    /// Runs ``StreamQuery/cursorRange(_:through:after:pendingAfter:limit:)``.
    public func read(cursorFrom first: SourceValue, through last: SourceValue, after position: Checkpoint?, pendingAfter: Checkpoint?,
                     limit: Int, of stream: StreamConfig) async throws -> [[SourceValue]] {
        try await fetch(StreamQuery(stream: stream, dialect: dialect)
            .cursorRange(first, through: last, after: position, pendingAfter: pendingAfter, limit: limit))
    }

    /// Counts exactly: `SELECT COUNT(*) FROM (<statement>) n`.
    public func estimateRows(_ statement: SQLStatement) async throws -> Int? {
        let counted = SQLStatement(sql: "SELECT COUNT(*) FROM (\(statement.sql)) n", binds: statement.binds)
        return try await fetch(counted).first?.first.flatMap { $0.text.flatMap(Int.init) }
    }
}

/// The layout of the rows a source returns for a stream: one list of column names shared by
/// ``StreamQuery`` (its select list), ``RecordMapper`` and in-memory sources.
public enum StreamLayout {
    /// `cursor`, `key.0` … `key.n`, then each mapped ``StreamConfig/Field`` by its raw name in declaration
    /// order, then `deleted` when the stream has a deleted mapping.
    public static func columns(of stream: StreamConfig) -> [String] {
        var names = ["cursor"] + stream.primaryKey.indices.map { "key.\($0)" }
        for field in StreamConfig.Field.allCases where stream.fields[field] != nil { names.append(field.rawValue) }
        if stream.deleted != nil { names.append("deleted") }
        return names
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

    /// `cursor` text, plus the key when there is one: `2005-05-24 22:53:30 #1185`; a value text cannot hold (bytes that
    /// are not UTF-8, text holding U+0000, which `tb_erp_sync_audit.cursor_to` refuses) as ``SourceValue/jsonValue``'s `base64:…`.
    public var summary: String {
        let keyText = key.map { $0.jsonValue ?? "NULL" }.joined(separator: ",")
        return "\(cursor.jsonValue ?? "NULL") #\(keyText)"
    }
}
