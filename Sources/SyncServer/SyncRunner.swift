import Foundation
public import Logging
public import SyncCore
import Synchronization

/// Runs syncs for the API and the scheduler: never two runs of one source at once, at most
/// `schedule.maxConcurrentRuns` runs at a time, and a graceful stop that lets each running sync finish its
/// current batch (SPEC.md "Scheduler … graceful shutdown that finishes the batch").
///
/// Runs execute on their own tasks, so a client that disconnects from `erp.syncNow` does not cancel the run.
public actor SyncRunner {
    /// Why a run was not started.
    public enum Refusal: Error, Sendable, Equatable {
        /// The source is already syncing in this server (`triggeredBy` of that run).
        case alreadyRunning(source: String, triggeredBy: String)
        /// The server is shutting down.
        case shuttingDown
    }

    /// A run in progress.
    public struct ActiveRun: Sendable, Equatable {
        /// Source name.
        public var source: String
        public var syncType: SyncType
        /// `api:<token name>` or `scheduler`.
        public var triggeredBy: String
        /// When the run was accepted (it may still wait for a concurrency slot).
        public var startedAt: Instant
    }

    /// What to run: a configured source by name, or an ad-hoc source (allowed by `api.allowAdHocSources`).
    public struct Request: Sendable {
        /// The configured source's name, or the ad-hoc source's.
        public var source: String
        /// An ad-hoc source (from the API, when allowed), added to the configuration for this run only.
        public var adHocSource: SourceConfig?
        /// Full or incremental, batch size … (the API's `fullSync`, `batchSize` …).
        public var overrides: SyncOverrides
        /// `api:<token name>` or `scheduler`.
        public var triggeredBy: String
        public var isManual: Bool
        /// A scheduled run's slot, claimed with the lease (``ScheduleSlot``).
        public var slot: ScheduleSlot?

        /// Creates a request.
        public init(source: String, adHocSource: SourceConfig? = nil, overrides: SyncOverrides = SyncOverrides(), triggeredBy: String, isManual: Bool,
                    slot: ScheduleSlot? = nil) {
            self.source = source
            self.adHocSource = adHocSource
            self.overrides = overrides
            self.triggeredBy = triggeredBy
            self.isManual = isManual
            self.slot = slot
        }
    }

    private let service: SyncService
    private let makeSource: SyncService.SourceFactory
    private let logger: Logger
    /// Called with every finished run (metrics, webhooks); must not block.
    private let onFinished: @Sendable (ErpSyncResult) -> Void
    /// Live events for `/events`.
    public nonisolated let events: RunEventBroadcaster
    private let progressBySource = Mutex<[String: SyncProgress]>([:])

    private var active: [String: ActiveRun] = [:]
    private var inFlight: [UUID: Task<ErpSyncResult?, Never>] = [:]
    private var freeSlots: Int
    private var slotWaiters: [CheckedContinuation<Void, Never>] = []
    private var isStopping = false

    /// Creates a runner over the shared ``SyncService`` operations.
    /// - Parameters:
    ///   - maxConcurrentRuns: runs allowed at the same time (≥ 1); further runs wait for a slot.
    ///   - onFinished: receives each result once the run has ended (not for runs refused with `LOCKED` by another
    ///     process's lock: they did not run).
    public init(config: SyncConfig, destination: any Destination, makeSource: @escaping SyncService.SourceFactory,
                maxConcurrentRuns: Int, events: RunEventBroadcaster, logger: Logger,
                onFinished: @escaping @Sendable (ErpSyncResult) -> Void) {
        self.service = SyncService(config: config, destination: destination, logger: logger, makeSource: makeSource)
        self.makeSource = makeSource
        self.freeSlots = max(1, maxConcurrentRuns)
        self.events = events
        self.logger = logger
        self.onFinished = onFinished
    }

    /// Runs a sync and waits for its result.
    /// - Throws: ``Refusal`` when the source is already running here or the server is stopping. A source locked
    ///   by another process is not a refusal: the result carries the engine's `LOCKED` error.
    public func run(_ request: Request) async throws(Refusal) -> ErpSyncResult {
        guard !isStopping else { throw .shuttingDown }
        if let current = active[request.source] {
            throw .alreadyRunning(source: request.source, triggeredBy: current.triggeredBy)
        }
        active[request.source] = ActiveRun(source: request.source, syncType: request.overrides.isFull ? .full : .incremental,
                                           triggeredBy: request.triggeredBy, startedAt: .now)
        events.publish(.started(source: request.source, syncType: request.overrides.isFull ? .full : .incremental, triggeredBy: request.triggeredBy))
        let id = UUID()
        let task = Task { await self.execute(request) }
        inFlight[id] = task
        let result = await task.value
        inFlight[id] = nil
        guard let result else { throw .shuttingDown }
        return result
    }

    /// Runs a scheduled slot, at most once across every instance sharing the destination: while the source is busy
    /// (its lease held by a run of another instance, an expired lease not yet passed, a run of this server) the
    /// attempt is repeated every `retrySeconds` seconds until `deadline` (the next slot), so a source whose instance died or
    /// was paused is taken over within the slot once its lease expires. Ends at once when the slot was run
    /// elsewhere (`SLOT_TAKEN`) or the server stops.
    /// - Returns: the run's result, or `nil` when this instance did not run the slot.
    @discardableResult
    public func runSlot(_ scheduled: ScheduledRun, until deadline: Instant, retrySeconds: Int) async -> ErpSyncResult? {
        let request = Request(source: scheduled.source, overrides: SyncOverrides(isFull: scheduled.syncType == .full), triggeredBy: "scheduler",
                              isManual: false, slot: scheduled.slot)
        while true {
            let busy: String
            do {
                let result = try await run(request)
                guard let locked = result.errors.first(where: { $0.code == .locked }) else {
                    return result.errors.contains { $0.code == .slotTaken } ? nil : result
                }
                busy = locked.message
            } catch .shuttingDown {
                return nil
            } catch {
                busy = "\(error)"
            }
            guard Instant.now.seconds + Int64(retrySeconds) < deadline.seconds else {
                logger.notice("scheduled sync skipped: the source stayed busy for the whole slot", metadata: [
                    "source": "\(scheduled.source)", "slot": "\(scheduled.dueAt.isoMillis)", "reason": "\(busy)"])
                return nil
            }
            do {
                try await Task.sleep(for: .seconds(retrySeconds))
            } catch {
                return nil
            }
        }
    }

    /// The runs in progress, by source.
    public func activeRuns() -> [ActiveRun] { active.values.sorted { $0.source < $1.source } }

    /// The latest progress of a running source.
    public nonisolated func progress(source: String) -> SyncProgress? { progressBySource.withLock { $0[source] } }

    /// Stops accepting runs, asks running ones to stop after their current batch (they end `PARTIAL` with a
    /// `CANCELLED` error, their checkpoint committed), waits for them, and ends the `/events` streams.
    public func stop() async {
        if !inFlight.isEmpty {
            logger.notice("stopping: running syncs end after their current batch", metadata: ["running": "\(active.keys.sorted())"])
        }
        isStopping = true
        let waiters = slotWaiters
        slotWaiters = []
        for waiter in waiters { waiter.resume() }
        for task in inFlight.values { _ = await task.value }
        events.finish()
    }

    private func execute(_ request: Request) async -> ErpSyncResult? {
        await acquireSlot()
        defer {
            active[request.source] = nil
            progressBySource.withLock { _ = $0.removeValue(forKey: request.source) }
            releaseSlot()
        }
        guard !isStopping else { return nil }
        var service = self.service
        if let adHoc = request.adHocSource {
            var config = service.config
            config.sources.append(adHoc)
            service = SyncService(config: config, destination: service.destination, logger: logger, makeSource: makeSource)
        }
        let events = self.events
        let result = await service.sync(
            source: request.source, overrides: request.overrides, triggeredBy: request.triggeredBy, isManual: request.isManual, slot: request.slot,
            afterCommit: { _ in
                if await self.isStopping { throw CancellationError() }
            },
            onProgress: { progress in
                self.progressBySource.withLock { $0[progress.source] = progress }
                events.publish(.progress(progress))
            })
        events.publish(.finished(result))
        if let refusal = result.errors.first(where: { $0.code == .locked || $0.code == .slotTaken }) {
            // Not a run: another process (another `serve` sharing the destination, a CLI sync) holds the source or
            // already ran the slot. No audit row was written; metrics and webhooks would report a failure that did
            // not happen.
            logger.log(level: refusal.code == .locked ? .notice : .debug, "sync not started: the source is locked, or its slot ran, elsewhere",
                       metadata: ["source": .string(result.source), "reason": .string(refusal.message)])
            return result
        }
        logger.info("sync ended", metadata: [
            "syncId": .string(result.syncId), "source": .string(result.source), "status": .string(result.status.rawValue),
            "type": .string(result.syncType.rawValue), "fetched": "\(result.recordsFetched)", "durationMs": "\(result.duration)",
            "errors": .string(result.errors.map(\.code.rawValue).joined(separator: ",")), "triggeredBy": .string(request.triggeredBy),
        ])
        onFinished(result)
        return result
    }

    private func acquireSlot() async {
        if freeSlots > 0 {
            freeSlots -= 1
            return
        }
        await withCheckedContinuation { slotWaiters.append($0) }
    }

    private func releaseSlot() {
        if slotWaiters.isEmpty {
            freeSlots += 1
        } else {
            slotWaiters.removeFirst().resume()
        }
    }
}
