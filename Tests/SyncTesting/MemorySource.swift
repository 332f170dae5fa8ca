import Synchronization
public import SyncCore

/// An ERP table in memory that honours the ``Source`` page contract: ordered pages in `(cursor, key)` order
/// after a bound, up to an inclusive position and the horizon; the sweep of NULL cursors and cursors beyond the
/// horizon in key order; a row estimate.
///
/// Rows are column name → value. Mappings must be plain columns (`{ sql: }` expressions need a database).
/// Reads can be made to fail (``failReads(_:transient:sqlState:when:)``), as a killed connection would.
public final class MemorySource: ReconcilableSource {
    private struct State {
        var rows: [[SourceValue]: [String: SourceValue]] = [:]
        var failures: [SyncFailure] = []
        var failing: @Sendable (PageRequest) -> Bool = { _ in true }
        var failingRows: Set<[SourceValue]> = []
    }

    /// The primary key columns rows are stored under.
    public let primaryKey: [String]
    private let state = Mutex(State())

    /// Creates an empty table keyed by `primaryKey`; its pages carry row checksums when asked unless
    /// `checksumsRows` is false (a source that only fingerprints ranges).
    public init(primaryKey: [String], checksumsRows: Bool = true) {
        self.primaryKey = primaryKey
        self.checksumsRows = checksumsRows
    }

    /// Inserts or replaces the row with the same key.
    public func upsert(_ row: [String: SourceValue]) {
        let key = primaryKey.map { row[$0] ?? .null }
        state.withLock { $0.rows[key] = row }
    }

    /// Removes the row with `key` (a hard delete at the source).
    public func delete(key: [SourceValue]) {
        _ = state.withLock { $0.rows.removeValue(forKey: key) }
    }

    /// All rows, in no particular order.
    public var rows: [[String: SourceValue]] { state.withLock { Array($0.rows.values) } }

    /// Makes the next `count` reads of pages `when` accepts throw a ``SyncFailure`` (`SOURCE_QUERY_FAILED`),
    /// transient or not, with `sqlState`, in place of the failures still pending (`failReads(0)` clears them).
    /// Later reads are not failed by this: a permanent one stands for a failure that does not repeat (a statement
    /// timeout under load, a data exception on a row fixed meanwhile).
    public func failReads(_ count: Int, transient: Bool = true, sqlState: String? = nil, when: @escaping @Sendable (PageRequest) -> Bool = { _ in true }) {
        let failure = SyncFailure(code: .sourceQueryFailed, message: "injected read failure", isTransient: transient, sqlState: sqlState)
        state.withLock { state in
            state.failures = Array(repeating: failure, count: count)
            state.failing = when
        }
    }

    /// The pages of the keyset reads with their mapped fields (forward pages, lookback re-reads), for ``failReads(_:transient:sqlState:when:)``.
    public static let orderedPages: @Sendable (PageRequest) -> Bool = { page in
        guard case .ordered = page.kind else { return false }
        return !page.positionsOnly
    }

    /// Makes every page that maps the row with `key` fail (permanently, SQLSTATE `22008`), as a `{ sql: }` mapping the database cannot
    /// compute for that row would (`to_date('20240230', …)`); position-only pages still read it.
    public func failMapping(ofKey key: [SourceValue]) {
        _ = state.withLock { $0.failingRows.insert(key) }
    }

    /// Undoes ``failMapping(ofKey:)``: the database computes the row again, the row itself unchanged.
    public func computeMapping(ofKey key: [SourceValue]) {
        _ = state.withLock { $0.failingRows.remove(key) }
    }

    public func read(_ page: PageRequest, of stream: StreamConfig) async throws -> [[SourceValue]] {
        let rows = try state.withLock { state -> [[String: SourceValue]] in
            if !state.failures.isEmpty && state.failing(page) {
                throw state.failures.removeFirst()
            }
            return Array(state.rows.values)
        }
        let selected = Self.select(page, from: rows, of: stream)
        if page.positionsOnly { return selected.prefix(page.limit).map { Self.position($0, stream) } }
        let failing = state.withLock { $0.failingRows }
        if let bad = selected.prefix(page.limit).first(where: { failing.contains(Self.key($0, stream)) }) {
            throw SyncFailure(code: .sourceQueryFailed, message: "cannot compute a mapped field of row \(Self.key(bad, stream))", isTransient: false,
                              sqlState: "22008")
        }
        let laidOut = selected.prefix(page.limit).map { Self.layout($0, stream) }
        guard checksumsRows, page.checksummed, case .ordered = page.kind else { return laidOut }
        return laidOut.map { $0 + [.integer(Self.checksum($0))] }
    }

    /// Whether pages carry the checksum ``fingerprint(cursorFrom:through:upTo:splitAt:_:of:)`` sums.
    public let checksumsRows: Bool

    /// A laid-out row's checksum: its hash (the process's hash seed: stable within one test run, which is all a
    /// fingerprint needs).
    private static func checksum(_ row: [SourceValue]) -> Int64 { Int64(row.hashValue) }

    /// The rows of `page`, in its order (before its limit).
    private static func select(_ page: PageRequest, from rows: [[String: SourceValue]], of stream: StreamConfig) -> [[String: SourceValue]] {
        let cursor = stream.cursor.column
        var selected: [[String: SourceValue]]
        switch page.kind {
        case .ordered(let from, let upTo):
            selected = rows.filter { row in
                let value = row[cursor] ?? .null
                guard !value.isNull else { return false }
                let position = Self.position(row, stream)
                let afterStart = switch from {
                case .start: true
                case .cursorAtLeast(let bound): Self.compare(value, bound) >= 0
                case .after(let checkpoint): Self.compare(position, [checkpoint.cursor] + checkpoint.key) > 0
                }
                let beforeEnd = upTo.map { Self.compare(position, [$0.cursor] + $0.key) <= 0 } ?? true
                let withinHorizon = page.horizon.map { Self.compare(value, $0) <= 0 } ?? true
                return afterStart && beforeEnd && withinHorizon
            }
            selected.sort { Self.compare(Self.position($0, stream), Self.position($1, stream)) < 0 }
        case .unorderedCursor(let afterKey):
            selected = rows.filter { row in
                let value = row[cursor] ?? .null
                guard value.isNull || page.horizon.map({ Self.compare(value, $0) > 0 }) == true else { return false }
                return afterKey.map { Self.compare(Self.key(row, stream), $0) > 0 } ?? true
            }
            selected.sort { Self.compare(Self.key($0, stream), Self.key($1, stream)) < 0 }
        case .keys(let keys):
            selected = rows.filter { keys.contains(Self.key($0, stream)) }
            selected.sort { Self.compare(Self.key($0, stream), Self.key($1, stream)) < 0 }
        }
        return selected
    }

    public func estimateRows(of stream: StreamConfig, from bound: StreamBound) async throws -> Int? {
        Self.select(PageRequest(.ordered(from: bound, upTo: nil), limit: .max), from: rows, of: stream).count
    }

    /// Counts the rows with a non-NULL cursor in `first...last`, at or before `position`, in the four parts around
    /// `lower` and `upper` and sums their checksums (``checksum(_:)``).
    public func fingerprint(cursorFrom first: SourceValue, through last: SourceValue?, upTo position: Checkpoint?, splitAt lower: SourceValue,
                            _ upper: SourceValue, of stream: StreamConfig) async throws -> [RangeFingerprint]? {
        let rows = state.withLock { Array($0.rows.values) }
        let page = Self.select(PageRequest(.ordered(from: .cursorAtLeast(first), upTo: position), limit: .max, horizon: last), from: rows, of: stream)
            .map { Self.layout($0, stream) }
        var parts = [RangeFingerprint](repeating: .empty, count: 4)
        for row in page {
            let toUpper = Self.compare(row[0], upper)
            let part = Self.compare(row[0], lower) < 0 ? 0 : toUpper < 0 ? 1 : toUpper == 0 ? 2 : 3
            parts[part] = parts[part] + RangeFingerprint(rows: 1, checksum: Int128(Self.checksum(row)), last: row[0])
        }
        return parts
    }

    public func testConnection() async throws -> String { "memory (\(state.withLock { $0.rows.count }) rows)" }

    public func close() async {}

    /// Groups the rows as ``StreamQuery/aggregate(pendingAfter:)`` does: by pdv, hour of `occurredAt` (naive
    /// values truncated as wall times), deleted value and pending flag; sums are exact (decimal text at scale 6).
    public func reconciliationGroups(of stream: StreamConfig, pendingAfter: Checkpoint?) async throws -> [SourceGroup] {
        func value(_ field: StreamConfig.Field, _ row: [String: SourceValue]) -> SourceValue {
            guard case .column(let column)? = stream.fields[field] else { return .null }
            return row[column] ?? .null
        }
        var groups: [[SourceValue]: SourceGroup] = [:]
        var sums: [[SourceValue]: Amount] = [:]
        for row in rows {
            let deleted: SourceValue = stream.deleted.map { mapping in
                guard case .column(let column) = mapping else { return .null }
                return row[column] ?? .null
            } ?? .integer(0)
            let position = Self.position(row, stream)
            let isPending = pendingAfter.map { Self.compare(position, [$0.cursor] + $0.key) > 0 && !position[0].isNull } ?? true
            let key = [value(.pdv, row), Self.hourStart(value(.occurredAt, row)), deleted, .bool(isPending)]
            let amount = (try? Amount(parsing: value(.amount, row).text ?? "", scale: 6)) ?? Amount(minorUnits: 0, scale: 6)
            sums[key] = (sums[key] ?? Amount(minorUnits: 0, scale: 6)) + amount
            let cursor = position[0]
            var group = groups[key] ?? SourceGroup(pdv: key[0], hour: key[1], deleted: deleted, isPending: isPending, count: 0, sum: .null,
                                                    firstCursor: cursor, lastCursor: cursor)
            group.count += 1
            if Self.compare(cursor, group.firstCursor) < 0 || group.firstCursor.isNull { group.firstCursor = cursor }
            if Self.compare(cursor, group.lastCursor) > 0 { group.lastCursor = cursor }
            groups[key] = group
        }
        return groups.map { key, group in
            var group = group
            group.sum = .decimal(sums[key]?.description ?? "0")
            return group
        }
    }

    public func read(cursorFrom first: SourceValue, through last: SourceValue, after position: Checkpoint?, pendingAfter: Checkpoint?,
                     limit: Int, of stream: StreamConfig) async throws -> [[SourceValue]] {
        let start: StreamBound = position.map { .after($0) } ?? .cursorAtLeast(first)
        let page = try await read(PageRequest(.ordered(from: start, upTo: nil), limit: .max), of: stream)
        return page.filter { Self.compare($0[0], first) >= 0 && Self.compare($0[0], last) <= 0 }.prefix(limit).map { row in
            let isPending = pendingAfter.map { Self.compare(Array(row[0...stream.primaryKey.count]), [$0.cursor] + $0.key) > 0 } ?? true
            return row + [.integer(isPending ? 1 : 0)]
        }
    }

    /// A date-time truncated to its hour, as the SQL dialects do.
    private static func hourStart(_ value: SourceValue) -> SourceValue {
        switch value {
        case .localDateTime(let v): .localDateTime(LocalDateTime(year: v.year, month: v.month, day: v.day, hour: v.hour))
        case .instant(let v): .instant(Instant(seconds: v.seconds - ((v.seconds % 3600) + 3600) % 3600))
        case .text(let text):
            (try? LocalDateTime(parsing: text)).map { hourStart(.localDateTime($0)) } ?? .null
        default: .null
        }
    }

    /// A row laid out as ``StreamLayout/columns(of:)``.
    public static func layout(_ row: [String: SourceValue], _ stream: StreamConfig) -> [SourceValue] {
        func value(_ mapping: StreamConfig.Mapping) -> SourceValue {
            guard case .column(let column) = mapping else { preconditionFailure("MemorySource maps plain columns only") }
            return row[column] ?? .null
        }
        var values = [row[stream.cursor.column] ?? .null] + stream.primaryKey.map { row[$0] ?? .null }
        for field in StreamConfig.Field.allCases {
            if let mapping = stream.fields[field] { values.append(value(mapping)) }
        }
        if let deleted = stream.deleted { values.append(value(deleted)) }
        return values
    }

    private static func key(_ row: [String: SourceValue], _ stream: StreamConfig) -> [SourceValue] {
        stream.primaryKey.map { row[$0] ?? .null }
    }

    private static func position(_ row: [String: SourceValue], _ stream: StreamConfig) -> [SourceValue] {
        [row[stream.cursor.column] ?? .null] + key(row, stream)
    }

    /// Lexicographic order of value lists, with ``compare(_:_:)-(SourceValue,SourceValue)`` per value.
    static func compare(_ lhs: [SourceValue], _ rhs: [SourceValue]) -> Int {
        for (left, right) in zip(lhs, rhs) {
            let order = compare(left, right)
            if order != 0 { return order }
        }
        return lhs.count - rhs.count
    }

    /// The order a database gives these values: numbers by value, timestamps by time, text by code points.
    static func compare(_ lhs: SourceValue, _ rhs: SourceValue) -> Int {
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.localDateTime(let a), .localDateTime(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.instant(let a), .instant(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        default:
            let a = lhs.text ?? "", b = rhs.text ?? ""
            return a < b ? -1 : (a == b ? 0 : 1)
        }
    }
}
