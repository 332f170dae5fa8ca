import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import SyncCore
import SyncServer
import Testing

/// A clock that moves only when the test says: `sleep(until:)` parks until ``advance(to:)`` passes the deadline.
final class ManualClock: SchedulerClock {
    private struct State {
        var now: Instant
        var sleepers: [(deadline: Instant, continuation: CheckedContinuation<Void, any Error>)] = []
        var sleepWaiters: [CheckedContinuation<Instant, Never>] = []
    }
    private let state: Mutex<State>

    init(_ start: Instant) {
        state = Mutex(State(now: start))
    }

    var now: Instant { state.withLock { $0.now } }

    func sleep(until deadline: Instant) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let waiters: [CheckedContinuation<Instant, Never>]? = state.withLock { state in
                if deadline <= state.now { return nil }
                state.sleepers.append((deadline, continuation))
                defer { state.sleepWaiters = [] }
                return state.sleepWaiters
            }
            guard let waiters else { return continuation.resume() }
            for waiter in waiters { waiter.resume(returning: deadline) }
        }
    }

    /// Waits until the scheduler sleeps, and returns the instant it sleeps until.
    func nextDeadline() async -> Instant {
        await withCheckedContinuation { continuation in
            let parked = state.withLock { state -> Instant? in
                if let first = state.sleepers.map(\.deadline).min() { return first }
                state.sleepWaiters.append(continuation)
                return nil
            }
            if let parked { continuation.resume(returning: parked) }
        }
    }

    /// Moves time to `instant` and wakes the sleepers whose deadline has come.
    func advance(to instant: Instant) {
        let due = state.withLock { state in
            state.now = instant
            let due = state.sleepers.filter { $0.deadline <= instant }
            state.sleepers.removeAll { $0.deadline <= instant }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}

/// The scheduler fires incremental and full runs at the right instants (a manual clock; nothing sleeps).
@Suite struct SchedulerTests {
    /// No `schedule` section schedules nothing; a section schedules with its defaults (issue 15).
    @Test func aConfigWithoutAScheduleSectionSchedulesNothing() async throws {
        let sources = "sources: [{ name: a, type: sqlite, path: x }]"
        #expect(try SyncConfig.load(yaml: sources).schedule.enabled == false)
        let scheduled = try SyncConfig.load(yaml: "schedule: { interval: 30m }\n" + sources).schedule
        #expect(scheduled.enabled && scheduled.intervalSeconds == 1800)
        try await ServerFixture.with(schedule: "{ interval: 30m, fullSyncAt: \"02:00\", timezone: UTC }") { f in
            let scheduler = try #require(f.server.scheduler)
            let start = Instant(seconds: 1_800_000_000)  // 2027-01-15T08:00:00Z
            let runs = scheduler.plannedRuns(from: start)
            #expect(runs.filter { $0.syncType == .incremental }.allSatisfy { $0.dueAt.seconds == start.seconds + 1800 })
            #expect(runs.first { $0.syncType == .full }?.dueAt.isoMillis == "2027-01-16T02:00:00.000Z")
        }
    }

    static func schedule(_ yaml: String) throws -> ScheduleConfig {
        try SyncConfig.load(yaml: "schedule: \(yaml)\nsources: [{ name: a, type: sqlite, path: x }]").schedule
    }

    static func instant(_ iso: String) -> Instant { Instant(iso8601: iso)! }

    /// Runs a scheduler from `start` through `wakeups` wake-ups, collecting what it launched.
    static func fire(_ schedule: ScheduleConfig, sources: [String], from start: Instant, wakeups: Int) async -> [ScheduledRun] {
        let clock = ManualClock(start)
        let fired = Mutex<[ScheduledRun]>([])
        let scheduler = Scheduler(schedule: schedule, sources: sources, clock: clock, logger: Logger(label: "test")) { run in
            fired.withLock { $0.append(run) }
        }
        let task = Task { await scheduler.run() }
        for _ in 0..<wakeups {
            clock.advance(to: await clock.nextDeadline())
        }
        _ = await clock.nextDeadline()  // the last wake-up's launches are done once it sleeps again
        task.cancel()
        return fired.withLock { $0 }
    }

    @Test func incrementalEveryIntervalPerSourceAndTheNightlyFullAtItsLocalTime() async throws {
        let schedule = try Self.schedule("{ interval: 60m, fullSyncAt: \"23:00\", timezone: America/Sao_Paulo }")
        // Started 2024-01-15 20:30 in São Paulo (UTC-3): increments on the hour (slots of the wall clock, not of the
        // start) at 21:00, 22:00, then the full at 23:00 local = 02:00Z covers that hour's increment.
        let runs = await Self.fire(schedule, sources: ["a", "b"], from: Self.instant("2024-01-15T23:30:00Z"), wakeups: 4)
        let described = runs.map { "\($0.dueAt.isoMillis) \($0.source) \($0.syncType.rawValue)" }
        #expect(described == [
            "2024-01-16T00:00:00.000Z a INCREMENTAL", "2024-01-16T00:00:00.000Z b INCREMENTAL",
            "2024-01-16T01:00:00.000Z a INCREMENTAL", "2024-01-16T01:00:00.000Z b INCREMENTAL",
            "2024-01-16T02:00:00.000Z a FULL", "2024-01-16T02:00:00.000Z b FULL",
            "2024-01-16T03:00:00.000Z a INCREMENTAL", "2024-01-16T03:00:00.000Z b INCREMENTAL",
        ])
    }

    @Test func aNonexistentLocalTimeFiresAtTheEndOfTheGapAndAnAmbiguousOneOnce() async throws {
        // America/New_York: 2026-03-08 02:00 EST → 03:00 EDT (02:30 never happens); 2026-11-01 02:00 EDT → 01:00 EST
        // (01:30 happens twice).
        let spring = SchedulePlan(try Self.schedule("{ fullSyncAt: \"02:30\", timezone: America/New_York }"))
        let gapDay = spring.nextFullSync(after: Self.instant("2026-03-07T12:00:00Z"))
        #expect(gapDay == Self.instant("2026-03-08T07:00:00Z"))  // 03:00 EDT, the first instant after the gap
        #expect(spring.nextFullSync(after: Self.instant("2026-03-08T07:00:00Z")) == Self.instant("2026-03-09T06:30:00Z"))  // 02:30 EDT

        let fall = SchedulePlan(try Self.schedule("{ fullSyncAt: \"01:30\", timezone: America/New_York }"))
        let first = fall.nextFullSync(after: Self.instant("2026-10-31T12:00:00Z"))
        #expect(first == Self.instant("2026-11-01T05:30:00Z"))  // 01:30 EDT, the earlier occurrence
        #expect(fall.nextFullSync(after: first!) == Self.instant("2026-11-02T06:30:00Z"))  // not 06:30Z on Nov 1 (01:30 EST)

        // The running scheduler across the spring-forward night: the hourly increments keep their UTC rhythm.
        let runs = await Self.fire(try Self.schedule("{ interval: 60m, fullSyncAt: \"02:30\", timezone: America/New_York }"),
                                   sources: ["a"], from: Self.instant("2026-03-08T05:15:00Z"), wakeups: 4)
        #expect(runs.map { "\($0.dueAt.isoMillis) \($0.syncType.rawValue)" } == [
            "2026-03-08T06:00:00.000Z INCREMENTAL", "2026-03-08T07:00:00.000Z FULL",
            "2026-03-08T08:00:00.000Z INCREMENTAL", "2026-03-08T09:00:00.000Z INCREMENTAL",
        ])
        // And across the fall-back night, 01:30 fires once.
        let fallRuns = await Self.fire(try Self.schedule("{ interval: 12h, fullSyncAt: \"01:30\", timezone: America/New_York }"),
                                       sources: ["a"], from: Self.instant("2026-11-01T04:00:00Z"), wakeups: 3)
        #expect(fallRuns.filter { $0.syncType == .full }.map(\.dueAt.isoMillis) == ["2026-11-01T05:30:00.000Z"])
    }

    /// Slots are multiples of the interval since the epoch, whenever a server starts (so every instance of a fleet
    /// has the same ones); a late wake-up skips the slots already past instead of bursting.
    @Test func slotsAreTiedToTheWallClockAndALateWakeUpSkipsMissedOnes() async throws {
        var config = ScheduleConfig()
        config.intervalSeconds = 600
        let plan = SchedulePlan(config)
        #expect(plan.nextIncremental(after: Self.instant("2024-01-15T10:00:00Z")) == Self.instant("2024-01-15T10:10:00Z"))
        #expect(plan.nextIncremental(after: Self.instant("2024-01-15T10:03:17.250Z")) == Self.instant("2024-01-15T10:10:00Z"))
        #expect(plan.nextIncremental(after: Self.instant("2024-01-15T10:35:00Z")) == Self.instant("2024-01-15T10:40:00Z"))
        config.intervalSeconds = 7
        #expect(SchedulePlan(config).nextIncremental(after: Instant(seconds: -10)) == Instant(seconds: -7))
        // Two servers started 3.2 s apart fire the same slots.
        let schedule = try Self.schedule("{ interval: 10s, fullSyncAt: \"off\" }")
        let first = await Self.fire(schedule, sources: ["a"], from: Self.instant("2024-01-15T10:00:01Z"), wakeups: 3)
        let second = await Self.fire(schedule, sources: ["a"], from: Self.instant("2024-01-15T10:00:04.200Z"), wakeups: 3)
        #expect(first.map(\.dueAt.isoMillis) == ["2024-01-15T10:00:10.000Z", "2024-01-15T10:00:20.000Z", "2024-01-15T10:00:30.000Z"])
        #expect(second == first)
    }

    /// A scheduled slot whose source is busy (its lock held elsewhere) is retried until the lock frees, then runs;
    /// the same slot offered again (another instance's scheduler) does not run twice; a slot whose source stays busy
    /// until its deadline is skipped.
    @Test func aSlotRetriesWhileItsSourceIsBusyAndRunsOnce() async throws {
        try await ServerFixture.with { f in
            let slot = ScheduledRun(source: "loja-centro", syncType: .incremental, dueAt: Instant(seconds: Instant.now.seconds / 10 * 10))
            #expect(try await f.destination.acquireLock(source: "loja-centro", syncId: "elsewhere", slot: nil) == nil)
            let release = Task {
                try await Task.sleep(for: .milliseconds(1500))
                try await f.destination.releaseLock(source: "loja-centro", syncId: "elsewhere")
            }
            let deadline = Instant(seconds: Instant.now.seconds + 30)
            let result = await f.server.runner.runSlot(slot, until: deadline, retrySeconds: 1)
            try await release.value
            #expect(result?.status == .success, "\(String(describing: result?.errors))")
            #expect(await f.server.runner.runSlot(slot, until: deadline, retrySeconds: 1) == nil)
            #expect(try await f.destination.history(source: "loja-centro", limit: 10).count == 1)

            #expect(try await f.destination.acquireLock(source: "loja-centro", syncId: "elsewhere", slot: nil) == nil)
            let next = ScheduledRun(source: "loja-centro", syncType: .incremental, dueAt: Instant(seconds: slot.dueAt.seconds + 10))
            #expect(await f.server.runner.runSlot(next, until: Instant(seconds: Instant.now.seconds + 2), retrySeconds: 1) == nil)
            #expect(try await f.destination.history(source: "loja-centro", limit: 10).count == 1)
            try await f.destination.releaseLock(source: "loja-centro", syncId: "elsewhere")
        }
    }

    @Test func scheduleConfigErrorsNameTheKey() {
        #expect(throws: ConfigError.self) { try Self.schedule("{ fullSyncAt: \"25:00\" }") }
        do {
            _ = try Self.schedule("{ interval: 4s }")
            Issue.record("accepted a 4 s interval")
        } catch let error as ConfigError {
            #expect(error.path == "schedule.interval")
        } catch {
            Issue.record("\(error)")
        }
        #expect(throws: ConfigError.self) { try Self.schedule("{ timezone: Mars/Olympus }") }
    }
}

/// The scheduler driving the server's runner: scheduled runs share the per-source exclusion and the
/// concurrency bound with `erp.syncNow`.
@Suite struct ScheduledRunTests {
    @Test func aScheduledRunStartsAtItsInstantAndASyncNowDuringItIsAConflict() async throws {
        let gate = Gate()
        let clock = ManualClock(Instant(iso8601: "2024-01-15T12:00:00Z")!)
        try await ServerFixture.with(schedule: "{ interval: 15m, fullSyncAt: off, maxConcurrentRuns: 1 }", clock: clock, makeSource: { config in
            GatedSource(base: try await ServerFixture.openSQLite(config), gate: gate)
        }) { f in
            let scheduler = try #require(f.server.scheduler)
            let loop = Task { await scheduler.run() }
            defer { loop.cancel() }
            let due = await clock.nextDeadline()
            #expect(due == Instant(iso8601: "2024-01-15T12:15:00Z"))
            try await f.server.app.test(.ahc(.http)) { client in
                let admin = ServerFixture.bearer(f.adminToken)
                let before = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: admin)
                let next = try object(try object(object(object(json(before.body))["result"])["data"])["nextScheduledSync"])
                #expect(next["time"] as? String == "2024-01-15T12:15:00.000Z")
                #expect(next["syncType"] as? String == "INCREMENTAL")
                #expect(gate.arrivalsNow == 0)

                clock.advance(to: due)
                // One slot: exactly one gated source is reading; the other waits for the slot without reading.
                #expect(try await eventually { await gate.arrivals == 1 })
                try await Task.sleep(for: .milliseconds(300))
                #expect(await gate.arrivals == 1)
                let running = await f.server.runner.activeRuns()
                #expect(Set(running.map(\.source)).isSuperset(of: ["loja-centro", "loja-sul"]))  // loja-norte may have failed already
                #expect(running.allSatisfy { $0.triggeredBy == "scheduler" })

                let manual = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                      body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(manual.status == .conflict)
                #expect(String(buffer: manual.body).contains("started by scheduler"))

                await gate.open()
                #expect(try await eventually { await f.server.runner.activeRuns().isEmpty })
                let history = try await f.destination.history(source: nil, limit: 10)
                #expect(history.count == 3)
                #expect(history.allSatisfy { !$0.isManual && $0.triggeredBy == "scheduler" })
                #expect(Set(history.map(\.result.status)) == [.success, .failed])  // loja-norte's ERP file is missing
            }
        }
    }
}
