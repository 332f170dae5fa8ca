/// The count and checksum of a stream's rows in a cursor range, read from the source in one statement
/// (``Source/fingerprint(cursorFrom:through:upTo:splitAt:_:of:)``) or summed from the checksums a run's pages carried
/// (``PageRequest/checksummed``), so a run can tell that a range holds exactly the rows an earlier run read without
/// reading them again.
public struct RangeFingerprint: Sendable, Equatable {
    /// How many rows with an orderable cursor lie in the range.
    public var rows: Int
    /// The sum of a 60- or 64-bit checksum of each row's selected values (cursor, key, every mapped field); any added,
    /// removed or changed row changes it, but for a 2⁻⁶⁰ chance.
    public var checksum: Int128
    /// The highest cursor value in the range, `.null` when it holds no row.
    public var last: SourceValue

    /// Creates a fingerprint.
    public init(rows: Int, checksum: Int128, last: SourceValue) {
        self.rows = rows
        self.checksum = checksum
        self.last = last
    }

    /// The fingerprint of no row.
    public static let empty = RangeFingerprint(rows: 0, checksum: 0, last: .null)

    /// The fingerprint of two adjacent ranges, `rhs` after `lhs`.
    public static func + (lhs: RangeFingerprint, rhs: RangeFingerprint) -> RangeFingerprint {
        RangeFingerprint(rows: lhs.rows + rhs.rows, checksum: lhs.checksum &+ rhs.checksum, last: rhs.last.isNull ? lhs.last : rhs.last)
    }

    /// The four parts of a ``StreamQuery/fingerprint(cursorFrom:through:upTo:splitAt:_:)`` result: one row per part that
    /// holds rows, `part, COUNT(*), SUM(checksum), MAX(cursor)`, the part numbered 0 to 3; `nil` when a figure is
    /// not a number.
    public static func parts(_ rows: [[SourceValue]]) -> [RangeFingerprint]? {
        var parts = [RangeFingerprint](repeating: .empty, count: 4)
        for row in rows {
            guard row.count == 4, let part = row[0].text.flatMap({ Int($0) }), parts.indices.contains(part),
                  let count = row[1].text.flatMap({ Int($0) }), let checksum = Int128(row[2].text ?? "0") else { return nil }
            parts[part] = RangeFingerprint(rows: count, checksum: checksum, last: row[3])
        }
        return parts
    }
}

/// A cursor range that a run read in full, with the count and checksum of the rows as that run loaded them: saved
/// with the state of an incremental run that read its stream to the end, so the next run re-reads only what changed
/// in its lookback window (SPEC.md "Late-arriving rows").
///
/// Why it is sound: each part of the range was fingerprinted no later than the run that saved it read the part's
/// rows, and that run then read every row the part held (it read up to the end of the stream, and the rows in the
/// range it did not read itself had been verified the same way). Either the source fingerprinted the part before
/// any of its rows was read, or the part is the run's own pages, each row checksummed by the source in the very read
/// the run loaded it from (``PageRequest/checksummed``): its sum describes exactly the rows loaded. If the range's
/// fingerprint is the same when the next run begins, no row was committed, changed or removed in it since, so every
/// row it holds has been read: a late commit inside the range — the case the lookback exists for — changes the
/// fingerprint and the window is re-read as before. Anything unusual (no saved window, a different fingerprint, a
/// source that cannot compute one, an error) falls back to re-reading the whole window.
///
/// How a run knows the window it saves (``BatchLoop``), from its lookback start up to the horizon:
/// - after a window that ends at the checkpoint's cursor: that window's range up to the checkpoint, fingerprinted by
///   ``WindowCheck`` while the forward read runs (no forward page reads there), plus the checksums of the forward
///   pages;
/// - with no usable saved window: the checksums of the pages of the whole lookback re-read and of the forward read;
/// - otherwise, or from a source whose pages carry no checksum: a fingerprint in four parts read before any page.
public struct LookbackWindow: Sendable, Equatable, Codable {
    /// The range's first cursor value (inclusive): the lookback start of the run that read it.
    public var from: SourceValue
    /// The range's last cursor value (inclusive): the highest cursor that run counted, up to its horizon (the last
    /// row it loaded, when it summed its pages).
    public var through: SourceValue
    /// ``RangeFingerprint/rows`` of the range as that run loaded it.
    public var rows: Int
    /// ``RangeFingerprint/checksum`` of the range as that run loaded it.
    public var checksum: String

    /// Creates a window.
    public init(from: SourceValue, through: SourceValue, rows: Int, checksum: String) {
        self.from = from
        self.through = through
        self.rows = rows
        self.checksum = checksum
    }

    /// The window a run saves from the four parts of a fingerprint split at its lookback start `from` and at the
    /// saved window's end (``Source/fingerprint(cursorFrom:through:upTo:splitAt:_:of:)``): the rows from `from` up to the
    /// horizon, parts 1 to 3; `nil` when they are none.
    public init?(from: SourceValue, parts: [RangeFingerprint]) {
        self.init(from: from, fingerprint: parts[1] + parts[2] + parts[3])
    }

    /// The window of the rows `fingerprint` counts, from `from` up to its last cursor value; `nil` when it counts none.
    public init?(from: SourceValue, fingerprint: RangeFingerprint) {
        guard !fingerprint.last.isNull, fingerprint.rows > 0 else { return nil }
        self.init(from: from, through: fingerprint.last, rows: fingerprint.rows, checksum: String(fingerprint.checksum))
    }

    /// Whether the four parts of a fingerprint from this window's start, split at the run's lookback start and at this
    /// window's end, show this window's rows unchanged: parts 0 to 2 are its range now.
    public func matches(parts: [RangeFingerprint]) -> Bool {
        let fingerprint = parts[0] + parts[1] + parts[2]
        return fingerprint.rows == rows && String(fingerprint.checksum) == checksum
    }

    /// The most rows a run expects to read forward (``SyncRun/expected``) for it to fingerprint its window: the
    /// window covers this run's new rows too, one checksum per row at the source (0.75 µs each on MariaDB in a page,
    /// measured) and one more per row in the next run's check; a run catching up on more re-reads the window next
    /// time instead.
    public static let maxForwardRows = 100_000

    /// Whether this window can stand for the rows of `reread` once its fingerprint is verified: it starts at or
    /// before the re-read, ends within it, at or before the checkpoint (cursors of one kind only: integers, local
    /// date-times or instants).
    public func covers(_ reread: RunPlan.Reread) -> Bool {
        guard case .cursorAtLeast(let start) = reread.from, let startsBefore = Self.order(from, start),
              let endsWithin = Self.order(through, start), let endsBefore = Self.order(through, reread.upTo.cursor) else { return false }
        return startsBefore <= 0 && endsWithin >= 0 && endsBefore <= 0
    }

    /// What is left of `reread` once this window's rows are known to be read: `nil` when it ends at the
    /// checkpoint's cursor, else the rows from its end (inclusive, so rows sharing that cursor value are read
    /// again) up to the checkpoint. Call only when ``covers(_:)``.
    public func narrowing(_ reread: RunPlan.Reread) -> RunPlan.Reread? {
        Self.order(through, reread.upTo.cursor) == 0 ? nil : RunPlan.Reread(from: .cursorAtLeast(through), upTo: reread.upTo)
    }

    /// -1, 0 or 1 as `lhs` is before, equal to or after `rhs`, for two cursor values of the same orderable kind;
    /// `nil` otherwise (text cursors compare by the server's collation, which Swift does not know).
    static func order(_ lhs: SourceValue, _ rhs: SourceValue) -> Int? {
        func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a == b ? 0 : 1) }
        return switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): sign(a, b)
        case (.localDateTime(let a), .localDateTime(let b)): sign(a, b)
        case (.instant(let a), .instant(let b)): sign(a, b)
        default: nil
        }
    }
}

/// The check of a saved ``LookbackWindow`` that ends at the checkpoint's cursor, run alongside the forward read: the
/// fingerprint of the window's range up to the checkpoint's position
/// (``Source/fingerprint(cursorFrom:through:upTo:splitAt:_:of:)`` from the window's start, split at the run's
/// lookback start and the window's end), read by a task (on a connection of its own where the source has several)
/// begun with the forward read (begun after its first page instead, the delta took 14 % longer: the check then
/// finished last). The forward read pages only after the checkpoint, so it never reads a row of that range.
struct WindowCheck: Sendable {
    /// The window the last run saved.
    var saved: LookbackWindow
    /// The whole lookback re-read, for when the window changed.
    var reread: RunPlan.Reread
    /// The run's lookback start, where the window it saves begins.
    var start: SourceValue
    /// The saved window's range now, as fingerprint parts: before the run's lookback start, from there up to the
    /// window's last cursor value, at it (parts 0 to 2); `nil` when it could not be read.
    var checked: Task<[RangeFingerprint]?, Never>
}
