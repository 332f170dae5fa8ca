import Foundation
@testable import SyncCore
import SyncTesting
import Testing

/// Where a run starts, without I/O (``RunPlan``).
@Suite struct RunPlanTests {
    static let newYork = TimeZone(identifier: "America/New_York")!
    static let lisbon = TimeZone(identifier: "Europe/Lisbon")!

    func source(_ zone: TimeZone, kind: StreamConfig.Cursor.Kind = .timestamp) -> SourceConfig {
        var stream = StreamConfig.seedDefault
        stream.cursor.kind = kind
        return SourceConfig(name: "erp", type: .sqlite, timezone: zone, stream: stream)
    }

    func plan(_ checkpoint: Checkpoint?, zone: TimeZone, now: Instant, kind: StreamConfig.Cursor.Kind = .timestamp,
              type: SyncType = .incremental, state: SyncState? = nil) -> RunPlan {
        var options = SyncOptions()
        options.lookback = kind == .integer ? .units(10) : .seconds(300)
        return RunPlan.make(syncType: type, state: state ?? SyncState(checkpoint: checkpoint), source: source(zone, kind: kind),
                            options: options, syncId: "run-1", now: now)
    }

    /// New York falls back on 2026-11-01 at 02:00 EDT to 01:00 EST. A sync at 01:55 EDT saved that wall time;
    /// rows written at 01:10 EST are 45 minutes behind it on the wall clock though committed later.
    @Test func theLookbackCoversTheRepeatedHourAfterAFallBack() {
        let checkpoint = Checkpoint(cursor: .localDateTime(LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 55)), key: [.integer(9)])
        let firstOneThirty = LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 30).instant(in: Self.newYork)
        let afterFallBack = Instant(seconds: firstOneThirty.seconds + 3600)  // 01:30 EST, the second time
        let start = plan(checkpoint, zone: Self.newYork, now: afterFallBack).reread?.from
        #expect(start == .cursorAtLeast(.localDateTime(LocalDateTime(year: 2026, month: 11, day: 1, hour: 0, minute: 50))))
        // Lisbon falls back on 2026-10-25 at 02:00 WEST to 01:00 WET, the same way.
        let lisbonCheckpoint = Checkpoint(cursor: .text("2026-10-25 01:58:00"), key: [.integer(1)])
        let lisbonNow = Instant(seconds: LocalDateTime(year: 2026, month: 10, day: 25, hour: 1, minute: 20).secondsAsUTC)
        #expect(plan(lisbonCheckpoint, zone: Self.lisbon, now: lisbonNow).reread?.from
            == .cursorAtLeast(.localDateTime(LocalDateTime(year: 2026, month: 10, day: 25, hour: 0, minute: 53))))
    }

    @Test func withoutAnOffsetChangeTheLookbackIsPlain() {
        let checkpoint = Checkpoint(cursor: .localDateTime(LocalDateTime(year: 2026, month: 7, day: 1, hour: 12)), key: [.integer(9)])
        let now = LocalDateTime(year: 2026, month: 7, day: 1, hour: 13).instant(in: Self.newYork)
        #expect(plan(checkpoint, zone: Self.newYork, now: now).reread
            == RunPlan.Reread(from: .cursorAtLeast(.localDateTime(LocalDateTime(year: 2026, month: 7, day: 1, hour: 11, minute: 55))), upTo: checkpoint))
        // Spring forward moves clocks ahead: nothing is written behind the checkpoint, no widening.
        let march = Checkpoint(cursor: .localDateTime(LocalDateTime(year: 2026, month: 3, day: 8, hour: 1, minute: 58)), key: [.integer(9)])
        let afterSpring = LocalDateTime(year: 2026, month: 3, day: 8, hour: 3, minute: 30).instant(in: Self.newYork)
        #expect(plan(march, zone: Self.newYork, now: afterSpring).reread?.from
            == .cursorAtLeast(.localDateTime(LocalDateTime(year: 2026, month: 3, day: 8, hour: 1, minute: 53))))
        // Integer cursors step back by units; an instant cursor by seconds.
        #expect(plan(Checkpoint(cursor: .integer(500), key: []), zone: Self.newYork, now: now, kind: .integer).reread?.from == .cursorAtLeast(.integer(490)))
        #expect(plan(Checkpoint(cursor: .instant(Instant(seconds: 1000)), key: []), zone: Self.newYork, now: now).reread?.from
            == .cursorAtLeast(.instant(Instant(seconds: 700))))
    }

    /// An integer cursor's lookback at the edges of 64 bits: below `Int64.min` it starts at the least value (it trapped
    /// on overflow, every run); a `BIGINT UNSIGNED` above `Int64.max` or a `NUMERIC` cursor, read as digits, steps
    /// back exactly (it had no lookback at all, so a late row behind the checkpoint was never read).
    @Test func integerLookbackCoversEveryWidthOfInteger() {
        func start(_ cursor: SourceValue) -> StreamBound? {
            plan(Checkpoint(cursor: cursor, key: [.integer(1)]), zone: Self.newYork, now: Instant(seconds: 0), kind: .integer).reread?.from
        }
        #expect(start(.integer(Int64.min + 3)) == .cursorAtLeast(.integer(.min)))
        #expect(start(.integer(Int64.max)) == .cursorAtLeast(.integer(Int64.max - 10)))
        #expect(start(.decimal("9223372036854777000")) == .cursorAtLeast(.decimal("9223372036854776990")))
        #expect(start(.decimal("9223372036854775810")) == .cursorAtLeast(.integer(Int64.max - 7)), "back within 64 bits")
        #expect(start(.decimal("18446744073709551615")) == .cursorAtLeast(.decimal("18446744073709551605")))
        #expect(start(.decimal("-9223372036854775810")) == .cursorAtLeast(.integer(.min)))
        #expect(start(.decimal("12.50")) == .cursorAtLeast(.decimal("2.5")))
        #expect(start(.text("700")) == .cursorAtLeast(.integer(690)))
        #expect(start(.double(1.5)) == .cursorAtLeast(.double(-8.5)))
        #expect(start(.text("not a number")) == .cursorAtLeast(.integer(.min)), "unknown: from the start, never no lookback")
    }

    @Test func fullRunsResumeTheirPassAndIncrementalRunsStartDaysBack() {
        let now = Instant(seconds: 1_780_000_000)
        let pass = SyncState.FullPass(passId: "old", position: Checkpoint(cursor: .integer(5), key: [.integer(5)]), startedAt: Instant(seconds: 1))
        let full = plan(nil, zone: Self.lisbon, now: now, type: .full, state: SyncState(fullPass: pass))
        #expect(full.forward == .after(pass.position!) && full.fullPass == pass && full.reread == nil)
        let fresh = plan(nil, zone: Self.lisbon, now: now, type: .full)
        #expect(fresh.forward == .start && fresh.fullPass?.passId == "run-1")
        // Lisbon is UTC+1 in May: the bounds are taken on the UTC wall clock, the earlier one (``RunPlan/horizon``).
        let first = plan(nil, zone: Self.lisbon, now: now)
        let utc = LocalDateTime(instant: now)
        #expect(now.local(in: Self.lisbon) > utc)
        #expect(first.forward == .cursorAtLeast(.localDateTime(utc.adding(seconds: -30 * 86_400))))
        #expect(first.horizon == .localDateTime(utc.adding(seconds: 86_400)))
        // New York is behind UTC: its own wall clock is the earlier one.
        let west = plan(nil, zone: Self.newYork, now: now)
        #expect(west.horizon == .localDateTime(now.local(in: Self.newYork).adding(seconds: 86_400)))
        #expect(west.forward == .cursorAtLeast(.localDateTime(now.local(in: Self.newYork).adding(seconds: -30 * 86_400))))
        #expect(plan(nil, zone: Self.lisbon, now: now, kind: .integer).horizon == nil)
    }

    /// A source's first load and an incremental run skip the probe of stored keys (their rows are expected to be new);
    /// a full pass over a source that saved a position, a reprocess, and any run with dedup `skip` (a skipped duplicate
    /// lives outside `tb_sales`, where an insert does not meet it) probe.
    @Test func firstLoadsAndIncrementalRunsAssumeNewKeys() {
        let now = Instant(seconds: 1_780_000_000)
        let checkpoint = Checkpoint(cursor: .localDateTime(LocalDateTime(year: 2026, month: 5, day: 1, hour: 9, minute: 0)), key: [.integer(1)])
        #expect(plan(nil, zone: Self.lisbon, now: now).assumesNewKeys)
        #expect(plan(nil, zone: Self.lisbon, now: now, type: .full).assumesNewKeys)
        #expect(plan(checkpoint, zone: Self.lisbon, now: now).assumesNewKeys)
        #expect(!plan(checkpoint, zone: Self.lisbon, now: now, type: .full).assumesNewKeys)
        #expect(!plan(nil, zone: Self.lisbon, now: now, type: .full,
                      state: SyncState(checkpoint: nil, fullPass: .init(passId: "p", position: checkpoint, startedAt: now))).assumesNewKeys)
        #expect(!plan(nil, zone: Self.lisbon, now: now, type: .reprocess).assumesNewKeys)
        var options = SyncOptions()
        options.deduplication.action = .skip
        for state in [SyncState(), SyncState(checkpoint: checkpoint, fullPass: nil)] {
            #expect(!RunPlan.make(syncType: .incremental, state: state, source: source(Self.lisbon), options: options, syncId: "r",
                                  now: now).assumesNewKeys)
        }
    }

    /// A verified window stands for the re-read only when it starts at or before it and ends at or before the
    /// checkpoint; what is left is nothing (it ends at the checkpoint's cursor) or the rows from its end on.
    @Test func aVerifiedWindowNarrowsTheReread() {
        func at(_ minute: Int) -> SourceValue { .localDateTime(LocalDateTime(year: 2026, month: 5, day: 1, hour: 9, minute: minute)) }
        let reread = RunPlan.Reread(from: .cursorAtLeast(at(10)), upTo: Checkpoint(cursor: at(15), key: [.integer(7)]))
        func window(_ from: SourceValue, _ through: SourceValue) -> LookbackWindow { LookbackWindow(from: from, through: through, rows: 1, checksum: "1") }
        #expect(window(at(5), at(15)).covers(reread) && window(at(5), at(15)).narrowing(reread) == nil)
        #expect(window(at(10), at(12)).narrowing(reread) == RunPlan.Reread(from: .cursorAtLeast(at(12)), upTo: reread.upTo))
        #expect(!window(at(5), at(8)).covers(reread), "ends before the re-read starts")
        #expect(!window(at(11), at(15)).covers(reread), "starts after the re-read")
        #expect(!window(at(5), at(16)).covers(reread), "ends after the checkpoint")
        #expect(!window(.text("2026-05-01 09:05"), at(15)).covers(reread), "text cursors are not compared in Swift")
        #expect(!window(.integer(5), .integer(15)).covers(reread), "another kind")
    }
}
