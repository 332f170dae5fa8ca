import Foundation
public import Logging
public import SyncCore
import Synchronization

/// The time source of the scheduler, injectable so tests advance time instead of sleeping.
public protocol SchedulerClock: Sendable {
    /// The current instant.
    var now: Instant { get }
    /// Returns at `deadline` (at once when it has passed).
    /// - Throws: `CancellationError` when the task is cancelled.
    func sleep(until deadline: Instant) async throws
}

/// The wall clock.
public struct SystemSchedulerClock: SchedulerClock {
    /// Creates the wall clock.
    public init() {}

    /// `Instant.now`.
    public var now: Instant { .now }

    /// `Task.sleep` until `deadline`.
    public func sleep(until deadline: Instant) async throws {
        let microseconds = deadline.epochMicroseconds - Instant.now.epochMicroseconds
        if microseconds > 0 { try await Task.sleep(for: .microseconds(microseconds)) }
    }
}

/// When scheduled runs are due (SPEC.md "Scheduler"): an incremental run of each source every
/// `schedule.interval`, and a full run of every source daily at the local wall time `schedule.fullSyncAt` in
/// `schedule.timezone`.
///
/// DST: a wall time that does not exist that day (a spring-forward gap) fires at the first instant after the
/// gap (the transition); a wall time that happens twice (fall-back overlap) fires once, at its earlier
/// occurrence (``ZoneConverter``'s rule).
public struct SchedulePlan: Sendable {
    let schedule: ScheduleConfig
    let converter: ZoneConverter

    /// Creates the plan of a `schedule` section.
    public init(_ schedule: ScheduleConfig) {
        self.schedule = schedule
        self.converter = ZoneConverter(zone: schedule.timezone)
    }

    /// The first daily full-sync instant strictly after `instant`, or `nil` when `fullSyncAt` is off.
    public func nextFullSync(after instant: Instant) -> Instant? {
        guard let time = schedule.fullSyncAt else { return nil }
        let today = instant.local(in: schedule.timezone)
        for dayOffset in 0...2 {
            let day = LocalDateTime(year: today.year, month: today.month, day: today.day).adding(seconds: Int64(dayOffset) * 86_400)
            let wall = LocalDateTime(year: day.year, month: day.month, day: day.day, hour: time.hour, minute: time.minute)
            let firing = firingInstant(of: wall)
            if firing > instant { return firing }
        }
        return nil  // unreachable: some day of three has a firing after `instant`
    }

    /// The first incremental slot strictly after `instant`: the next multiple of the interval since the Unix epoch
    /// (UTC). Slots are tied to the wall clock, not to when a server started, so every `serve` instance with this
    /// schedule has the same slots and a fleet runs each once (``ScheduleSlot``); a slot already past when the
    /// scheduler wakes late is skipped (a run that overran its interval is not followed by a burst of catch-up runs).
    public func nextIncremental(after instant: Instant) -> Instant {
        let interval = schedule.intervalSeconds
        let elapsed = instant.seconds >= 0 ? instant.seconds / interval : (instant.seconds - interval + 1) / interval
        return Instant(seconds: (elapsed + 1) * interval, microsecond: 0)
    }

    /// The instant a wall time fires at: its instant when it exists (the earlier one in an overlap), else the end
    /// of the gap it falls in.
    func firingInstant(of wall: LocalDateTime) -> Instant {
        var instant = converter.instant(wall)
        guard instant.local(in: schedule.timezone) != wall else { return instant }
        // In a gap the converter lands after the gap by its length; walk back to the transition (tzdata
        // transitions fall on whole minutes).
        while true {
            let earlier = Instant(seconds: instant.seconds - 60, microsecond: 0)
            guard earlier.local(in: schedule.timezone) >= wall else { return instant }
            instant = earlier
        }
    }
}

/// One run the scheduler starts.
public struct ScheduledRun: Sendable, Equatable {
    /// Source name.
    public var source: String
    /// `FULL` at `fullSyncAt`, else `INCREMENTAL`.
    public var syncType: SyncType
    /// When it was due.
    public var dueAt: Instant

    /// Creates a run due at `dueAt`.
    public init(source: String, syncType: SyncType, dueAt: Instant) {
        self.source = source
        self.syncType = syncType
        self.dueAt = dueAt
    }

    /// The slot this run claims (``ScheduleSlot``).
    public var slot: ScheduleSlot { ScheduleSlot(dueAt: dueAt, syncType: syncType) }
}

/// Starts scheduled runs when they are due. It only decides when; `launch` starts the run without waiting
/// for it (``SyncRunner/runSlot(_:until:retrySeconds:)`` claims the slot across the fleet, skips a source that is
/// still running and bounds concurrency).
public final class Scheduler: Sendable {
    let plan: SchedulePlan
    let sources: [String]
    let clock: any SchedulerClock
    let logger: Logger
    let launch: @Sendable (ScheduledRun) -> Void
    private let upcoming = Mutex<[ScheduledRun]>([])

    /// Creates a scheduler for `sources` (names).
    public init(schedule: ScheduleConfig, sources: [String], clock: any SchedulerClock, logger: Logger,
                launch: @escaping @Sendable (ScheduledRun) -> Void) {
        self.plan = SchedulePlan(schedule)
        self.sources = sources
        self.clock = clock
        self.logger = logger
        self.launch = launch
    }

    /// The next due run of each kind per source, soonest first (what `getStatus.nextScheduledSync` shows).
    public func nextRuns() -> [ScheduledRun] { upcoming.withLock { $0 } }

    /// The first run of each kind per source when the scheduler starts at `start`, soonest first (what
    /// `serve` prints at startup).
    public func plannedRuns(from start: Instant) -> [ScheduledRun] {
        runs(Dictionary(uniqueKeysWithValues: sources.map { ($0, plan.nextIncremental(after: start)) }), plan.nextFullSync(after: start))
    }

    /// Fires due runs until the task is cancelled.
    public func run() async {
        let start = clock.now
        var nextIncremental = Dictionary(uniqueKeysWithValues: sources.map { ($0, plan.nextIncremental(after: start)) })
        var nextFull = plan.nextFullSync(after: start)
        while !Task.isCancelled {
            publish(nextIncremental, nextFull)
            let due = ([nextFull].compactMap { $0 } + nextIncremental.values).min() ?? start
            do {
                try await clock.sleep(until: due)
            } catch {
                return
            }
            let now = clock.now
            var fullNow: Set<String> = []
            if let full = nextFull, full <= now {
                for source in sources {
                    logger.info("scheduled full sync due", metadata: ["source": "\(source)"])
                    launch(ScheduledRun(source: source, syncType: .full, dueAt: full))
                    fullNow.insert(source)
                }
                nextFull = plan.nextFullSync(after: now)
            }
            for source in sources {
                guard let next = nextIncremental[source], next <= now else { continue }
                if !fullNow.contains(source) {  // a full run at the same instant covers the increment
                    logger.info("scheduled incremental sync due", metadata: ["source": "\(source)"])
                    launch(ScheduledRun(source: source, syncType: .incremental, dueAt: next))
                }
                nextIncremental[source] = plan.nextIncremental(after: now)
            }
        }
    }

    private func publish(_ incremental: [String: Instant], _ full: Instant?) {
        let next = runs(incremental, full)
        upcoming.withLock { $0 = next }
    }

    private func runs(_ incremental: [String: Instant], _ full: Instant?) -> [ScheduledRun] {
        var runs = incremental.map { ScheduledRun(source: $0.key, syncType: .incremental, dueAt: $0.value) }
        if let full { runs += sources.map { ScheduledRun(source: $0, syncType: .full, dueAt: full) } }
        return runs.sorted { ($0.dueAt, $0.source, $0.syncType.rawValue) < ($1.dueAt, $1.source, $1.syncType.rawValue) }
    }
}
