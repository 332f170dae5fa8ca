import Foundation

/// Where a run reads, decided from the saved state before any I/O: a pure function of its inputs, so resume,
/// lookback and full-pass rules are tested without a database.
///
/// Every run first sweeps the rows whose cursor cannot be ordered (quarantined, never moving the cursor); then
/// an incremental run with a checkpoint re-reads the lookback window up to the checkpoint (late commits, SPEC.md
/// "Late-arriving rows"); then it reads forward. A full run whose pass reaches the end re-reads the incremental
/// checkpoint's lookback window before the checkpoint moves to the pass's end.
public struct RunPlan: Sendable, Equatable {
    /// The lookback re-read: rows from `from` up to and including `upTo` (the checkpoint).
    public struct Reread: Sendable, Equatable {
        public var from: StreamBound
        public var upTo: Checkpoint
    }

    /// The lookback re-read, or `nil` (no checkpoint, no lookback, full run).
    public var reread: Reread?
    /// A full run's lookback re-read of the incremental checkpoint, done when its pass reaches the end of the stream
    /// and before the checkpoint moves to the pass's end: the pass may have resumed past rows committed late behind
    /// that checkpoint, which the next incremental run, starting from the pass's end, would no longer re-read. `nil`
    /// without a checkpoint or lookback.
    public var rereadAtPassEnd: Reread?
    /// Where the forward read starts.
    public var forward: StreamBound
    /// The full pass this run continues or starts (`FULL` runs only).
    public var fullPass: SyncState.FullPass?
    /// The position the run starts from, as reported (`cursorFrom`).
    public var cursorFrom: String?
    /// The saved state when the run started.
    public var saved: SyncState
    /// The highest cursor value read in order, for timestamp cursors (`nil` for integer cursors): now +
    /// `validation.maxFutureSeconds` on the earlier of two wall clocks, the source's zone and UTC
    /// (``earliestWallClock(_:zone:)``). Rows beyond it are swept (loaded when the mapper accepts them, quarantined
    /// when their cursor is further in the future than `maxFutureSeconds`), so a cursor from the future
    /// (`9999-12-31`, PostgreSQL `infinity`, a wrong clock) never moves the checkpoint.
    public var horizon: SourceValue?
    /// The run starts a source that saved nothing yet (no checkpoint, no full pass; not a reprocess): its whole
    /// history may follow, so it loads without the dedup index when no other source is there (``DedupIndex``).
    public var isFirstLoad = false
    /// The forward read expects new rows — a source's first load, or an incremental run (the rows past its checkpoint:
    /// at a point of sale, mostly new sales) — with cross-source dedup off or flagging: its batches skip the probe of
    /// stored keys until one meets a stored key (``BatchCommit/assumesNewKeys``), then probe for the rest of the run.
    /// A row updated at the source costs at most one batch of such a run a second attempt, cut short at that row's
    /// unique violation. Never with dedup `skip`, nor for a source that has skipped duplicates from an earlier setting
    /// (the engine asks the destination: ``Destination/hasSkippedDuplicates(source:)``): a skipped duplicate is stored
    /// outside `tb_sales`, where an insert does not meet it. Nor in a full pass of a source that saved a position,
    /// whose rows are mostly stored.
    public var assumesNewKeys = false

    /// Plans a run.
    /// - Parameters:
    ///   - syncType: `FULL` continues an unfinished pass or starts one at the beginning; `INCREMENTAL` continues
    ///     from the checkpoint, or without one from now − `daysBack` days (timestamp cursors) or the start.
    ///   - state: the saved checkpoints.
    ///   - source: the source (cursor kind, time zone).
    ///   - options: `lookback`, `daysBack`.
    ///   - syncId: the run's id (a new pass is named after it).
    ///   - now: the current instant.
    public static func make(syncType: SyncType, state: SyncState, source: SourceConfig, options: SyncOptions,
                            syncId: String, now: Instant) -> RunPlan {
        var plan = RunPlan(reread: nil, forward: .start, fullPass: nil, cursorFrom: nil, saved: state, horizon: nil)
        if source.stream.cursor.kind == .timestamp {
            plan.horizon = .localDateTime(earliestWallClock(now, zone: source.timezone).adding(seconds: options.validation.maxFutureSeconds))
        }
        switch syncType {
        case .full:
            let pass = state.fullPass ?? SyncState.FullPass(passId: syncId, position: nil, startedAt: now)
            plan.fullPass = pass
            plan.forward = pass.position.map { .after($0) } ?? .start
            plan.cursorFrom = pass.position?.summary
            plan.rereadAtPassEnd = state.checkpoint.flatMap { lookbackReread($0, source: source, options: options, now: now) }
        case .reprocess:
            plan.cursorFrom = state.checkpoint?.summary  // reported as is: a reprocess never moves it
        case .incremental:
            if let checkpoint = state.checkpoint {
                plan.forward = .after(checkpoint)
                plan.cursorFrom = checkpoint.summary
                plan.reread = lookbackReread(checkpoint, source: source, options: options, now: now)
            } else if source.stream.cursor.kind == .timestamp && options.daysBack > 0 {
                let start = earliestWallClock(now, zone: source.timezone).adding(seconds: -Int64(options.daysBack) * 86_400)
                plan.forward = .cursorAtLeast(.localDateTime(start))
                plan.cursorFrom = start.description
            }
        }
        plan.isFirstLoad = syncType != .reprocess && state.checkpoint == nil && state.fullPass == nil
        plan.assumesNewKeys = (plan.isFirstLoad || syncType == .incremental)
            && (!options.deduplication.enabled || options.deduplication.action == .flag)
        return plan
    }

    /// The earlier of `now`'s wall time in `zone` and in UTC: the bound a run computes for a timestamp cursor (its
    /// horizon, its `daysBack` start) before it knows the column's type. The bound travels as a naive date-time,
    /// which the source compares as the column's own zone: a naive column (`DATETIME`, `timestamp`) holds wall
    /// times of `zone`, but an instant column (MySQL/MariaDB `TIMESTAMP` and PostgreSQL `timestamptz` in the
    /// sessions' UTC, SQL Server `datetimeoffset`) compares it as UTC. Taken on the later clock, a horizon was late
    /// by the zone's offset east of UTC for an instant column (an hour in Berlin): a row that far beyond the
    /// mapper's future limit was read in order, refused as `FUTURE_CURSOR`, and moved the checkpoint past the rows
    /// still to come. On the earlier clock the bound is never late for either column; for the other it is early by
    /// the offset, and the rows in between are swept rather than read in order.
    static func earliestWallClock(_ now: Instant, zone: TimeZone) -> LocalDateTime {
        let local = now.local(in: zone)
        let utc = LocalDateTime(instant: now)
        return min(local, utc)
    }

    /// The state to save with a forward batch whose last row is at `position`: the pass's position for a full
    /// run, the checkpoint for an incremental one.
    public func state(after position: Checkpoint) -> SyncState {
        if let pass = fullPass {
            return SyncState(checkpoint: saved.checkpoint, fullPass: .init(passId: pass.passId, position: position, startedAt: pass.startedAt))
        }
        return SyncState(checkpoint: position, fullPass: saved.fullPass)
    }

    /// The state to save when an incremental run's reads end at `lastPosition` (the saved checkpoint when `nil`), with
    /// the lookback window it read.
    public func state(endingAt lastPosition: Checkpoint?, lookback: LookbackWindow?) -> SyncState {
        SyncState(checkpoint: lastPosition ?? saved.checkpoint, fullPass: saved.fullPass, lookback: lookback)
    }

    /// The state to save when a full pass reached the end of the stream: the incremental checkpoint moves to
    /// the pass's last position (`lastPosition`, or the saved checkpoint when the pass read nothing) and the
    /// pass is closed.
    public func stateAfterFullPass(lastPosition: Checkpoint?) -> SyncState {
        SyncState(checkpoint: lastPosition ?? saved.checkpoint, fullPass: nil)
    }

    /// The lookback re-read behind `checkpoint`: from ``lookbackStart(_:_:_:zone:now:)`` up to the checkpoint; `nil`
    /// when there is no lookback.
    static func lookbackReread(_ checkpoint: Checkpoint, source: SourceConfig, options: SyncOptions, now: Instant) -> Reread? {
        lookbackStart(checkpoint.cursor, source.stream.cursor.kind, options.lookback, zone: source.timezone, now: now)
            .map { Reread(from: .cursorAtLeast($0), upTo: checkpoint) }
    }

    /// The cursor value where the lookback re-read starts, or `nil` when there is no lookback.
    ///
    /// A naive local-time cursor is widened by the hour(s) the zone's clocks went back between the checkpoint and
    /// `now`: after a daylight-saving fall-back, rows written in the repeated hour carry wall times up to that much
    /// *behind* the checkpoint although they were committed after it (e.g. a sync at 01:55 EDT, then rows at
    /// 01:10 EST). Instants (`timestamptz`) need no widening.
    static func lookbackStart(_ cursor: SourceValue, _ kind: StreamConfig.Cursor.Kind, _ lookback: Lookback, zone: TimeZone,
                              now: Instant) -> SourceValue? {
        func widened(_ local: LocalDateTime, by seconds: Int64) -> SourceValue {
            let atCheckpoint = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(local.instant(in: zone).seconds))))
            let atNow = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(now.seconds))))
            return .localDateTime(local.adding(seconds: -(seconds + max(0, atCheckpoint - atNow))))
        }
        switch (kind, lookback) {
        case (.integer, .units(let units)) where units > 0:
            return integerLookbackStart(cursor, units: units)
        case (.timestamp, .seconds(let seconds)) where seconds > 0, (.timestamp, .units(let seconds)) where seconds > 0:
            switch cursor {
            case .instant(let instant): return .instant(Instant(seconds: instant.seconds - seconds, microsecond: instant.microsecond))
            case .localDateTime(let local): return widened(local, by: seconds)
            default:
                guard let text = cursor.text, let local = try? LocalDateTime(parsing: text) else { return nil }
                return widened(local, by: seconds)
            }
        default:
            return nil
        }
    }

    /// `units` below an integer cursor value, in the value's own form: a 64-bit `.integer`; the digits of a wider one
    /// (MySQL `BIGINT UNSIGNED` above 2^63 − 1, a `NUMERIC`/`DECIMAL` column, read as `.decimal`, or integer text), exact
    /// as 128-bit integers and, with a fraction, as `Decimal`; a `.double`. A start below the 64-bit range is that range's
    /// least value (every row from the stream's start). A value none of these can compute re-reads from the stream's
    /// start: never no lookback at all, which loses the rows committed late behind the checkpoint.
    static func integerLookbackStart(_ cursor: SourceValue, units: Int64) -> SourceValue {
        switch cursor {
        case .integer(let value):
            let (start, overflow) = value.subtractingReportingOverflow(units)
            return .integer(overflow ? .min : start)
        case .double(let value): return .double(value - Double(units))
        default:
            guard let text = cursor.text?.trimmingSpaces() else { return .integer(.min) }
            if let value = Int128(text) {
                let start = value - Int128(units)
                return Int64(exactly: start).map(SourceValue.integer) ?? (start < Int128(Int64.min) ? .integer(.min) : .decimal(String(start)))
            }
            if let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), value.isFinite,
               text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == "-" || $0 == "+") }) {
                return .decimal((value - Decimal(units)).description)
            }
            return .integer(.min)
        }
    }
}
