/// The count and checksum of a stream's rows in a cursor range at one instant, read from the source
/// (``Source/fingerprint(cursorFrom:through:splitAt:_:of:)``), so a run can tell that a range holds exactly the
/// rows an earlier run read without reading them again.
public struct RangeFingerprint: Sendable, Equatable {
    /// How many rows with an orderable cursor lie in the range.
    public var rows: Int
    /// The sum of a 64-bit checksum of each row's selected values (cursor, key, every mapped field); any added,
    /// removed or changed row changes it, but for a 2⁻⁶⁴ chance.
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

    /// The four parts of a ``StreamQuery/fingerprint(cursorFrom:through:splitAt:_:)`` result: one row per part that
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

/// A cursor range that a run read in full, with the fingerprint it had when that run began: saved with the state
/// of an incremental run that read its stream to the end, so the next run re-reads only what changed in its
/// lookback window (SPEC.md "Late-arriving rows").
///
/// Why it is sound: the fingerprint of each part of the range was read before the run that saved it read any row of
/// that part, and that run then read every row the part held at that instant (it read up to the end of the stream,
/// and the rows in the range it did not read itself had been verified the same way). If the range's fingerprint is
/// the same when the next run begins, no row was committed, changed or removed in it since, so every row it holds has been read: a late
/// commit inside the range — the case the lookback exists for — changes the fingerprint and the window is re-read
/// as before. Anything unusual (no saved window, a different fingerprint, a source that cannot compute one, an
/// error) falls back to re-reading the whole window.
///
/// The fingerprint may be taken in two ranges that are sound each on its own (``WindowCheck``): the rows at the saved
/// window's last cursor value and beyond it before any page is read, and the rest of the saved window while the
/// forward read runs. The forward read pages only after the checkpoint, whose cursor is the saved window's last
/// value, so it never reads a row of that rest; the window is re-read, when its fingerprint changed, after that
/// fingerprint was read; and until then no forward batch moves the checkpoint, so a run that stops first leaves the
/// window to the next run.
public struct LookbackWindow: Sendable, Equatable, Codable {
    /// The range's first cursor value (inclusive): the lookback start of the run that read it.
    public var from: SourceValue
    /// The range's last cursor value (inclusive): the highest cursor up to the horizon when that run began.
    public var through: SourceValue
    /// ``RangeFingerprint/rows`` when that run began.
    public var rows: Int
    /// ``RangeFingerprint/checksum`` when that run began.
    public var checksum: String

    /// Creates a window.
    public init(from: SourceValue, through: SourceValue, rows: Int, checksum: String) {
        self.from = from
        self.through = through
        self.rows = rows
        self.checksum = checksum
    }

    /// The window a run saves from the four parts of a fingerprint split at its lookback start `from` and at the
    /// saved window's end (``Source/fingerprint(cursorFrom:through:splitAt:_:of:)``): the rows from `from` up to the
    /// horizon, parts 1 to 3; `nil` when they are none.
    public init?(from: SourceValue, parts: [RangeFingerprint]) {
        let fingerprint = parts[1] + parts[2] + parts[3]
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
    /// fingerprint of the next run's window covers this run's new rows too, one checksum per row at the source
    /// (3–10 µs each on MariaDB, measured); a run catching up on more re-reads the window next time instead.
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
/// fingerprint of its range before that cursor value, read by a task (on a connection of its own where the source
/// has several: ``Source/fingerprint(cursorFrom:through:splitAt:_:of:)`` from the window's start through its end,
/// split at the run's lookback start and its end). The rows at the end's cursor value, which the forward read may read
/// (those after the checkpoint's key), and beyond it were fingerprinted before any page.
struct WindowCheck: Sendable {
    /// The window the last run saved.
    var saved: LookbackWindow
    /// The whole lookback re-read, for when the window changed.
    var reread: RunPlan.Reread
    /// The run's lookback start, where the window it saves begins.
    var start: SourceValue
    /// The fingerprint read before any page, from the saved window's last cursor value up to the horizon: its parts
    /// 2 (rows at that value) and 3 (beyond it) are used.
    var end: [RangeFingerprint]
    /// The saved window's range now, as fingerprint parts: before the run's lookback start, from there up to the
    /// window's last cursor value (parts 0 and 1 are used); `nil` when it could not be read.
    var checked: Task<[RangeFingerprint]?, Never>

    /// The four parts the window is judged by and saved from (``LookbackWindow/matches(parts:)``,
    /// ``LookbackWindow/init(from:parts:)``): the first two read by the check, the last two before any page.
    func parts(checked: [RangeFingerprint]) -> [RangeFingerprint] {
        [checked[0], checked[1], end[2], end[3]]
    }
}
