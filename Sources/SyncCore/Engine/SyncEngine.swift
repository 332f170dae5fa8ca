import Foundation
public import Logging

/// The sync engine: reads a source in keyset pages, maps and validates rows, and commits each batch with its
/// checkpoint in one destination transaction (SPEC.md "Reading a source correctly", "Loading the destination
/// correctly", "Failure handling").
///
/// A run never throws: it returns an ``ErpSyncResult`` whose status and errors tell what happened. A batch that
/// fails after its retries ends the run (`PARTIAL` or `FAILED`) with the checkpoint at the last committed batch.
public struct SyncEngine: Sendable {
    /// Called after each committed batch with its 1-based number. Throwing stops the run right there, as a
    /// crash between two batches would (the run ends `PARTIAL`); shutdown handling and tests use it.
    public typealias AfterCommit = @Sendable (Int) async throws -> Void

    let destination: any Destination
    let logger: Logger
    let afterCommit: AfterCommit?
    let now: @Sendable () -> Instant

    /// Creates an engine writing to `destination`.
    /// - Parameter now: the wall clock (run start, `daysBack`, the future-timestamp rule); tests pass their own.
    public init(destination: any Destination, logger: Logger = Logger(label: "erp-sync"), afterCommit: AfterCommit? = nil,
                now: @escaping @Sendable () -> Instant = { Instant.now }) {
        self.destination = destination
        self.logger = logger
        self.afterCommit = afterCommit
        self.now = now
    }

    /// Runs one sync of `request.source`.
    /// - Parameters:
    ///   - openSource: connects to the source; called once the run is recorded, so a source that cannot be
    ///     reached still leaves a `FAILED` audit row. The engine closes the source at the end.
    ///   - onProgress: receives live figures after every batch.
    public func run(_ request: SyncRequest, openSource: @Sendable () async throws -> any Source,
                    onProgress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async -> ErpSyncResult {
        var run = SyncRun(request: request, syncId: UUID().uuidString.lowercased(), startTime: now())
        var logger = logger
        logger[metadataKey: "syncId"] = .string(run.syncId)
        logger[metadataKey: "source"] = .string(request.source.name)

        if !request.isDryRun {
            do {
                switch try await destination.acquireLock(source: run.source, syncId: run.syncId, slot: request.slot) {
                case nil:
                    break
                case .held(let holder):
                    run.fail(code: .locked, message: "source '\(run.source)' is already being synced (\(holder))", retryable: true)
                    return run.result(endTime: now())
                case .slotTaken(let claimer):
                    run.fail(code: .slotTaken, message: "the scheduled slot \(request.slot?.dueAt.isoMillis ?? "?") of '\(run.source)' already ran (\(claimer))",
                             retryable: false)
                    return run.result(endTime: now())
                }
            } catch {
                run.fail(error, code: .destinationFailed)
                return run.result(endTime: now())
            }
        }
        let heartbeat = request.isDryRun ? nil : Task { [self, source = run.source, syncId = run.syncId] in
            await renewLease(source: source, syncId: syncId, logger: logger)
        }
        await locked(&run, openSource: openSource, logger: logger, onProgress: onProgress)
        heartbeat?.cancel()
        await heartbeat?.value
        let result = run.result(endTime: now())
        if !request.isDryRun {
            do {
                try await destination.finishRun(result)
            } catch {
                logger.error("could not write the final audit row", metadata: ["error": "\(error)"])
            }
            try? await destination.releaseLock(source: run.source, syncId: run.syncId)
        }
        return result
    }

    /// The heartbeat of a run's lease: every third of ``Destination/leaseSeconds`` a transaction of its own runs the
    /// fencing check (``BatchCommit/fence(_:source:syncId:)``), which extends the lease while the run is alive, also
    /// while a slow source page is read. Ends when cancelled or when the lease is lost (the next batch's own check
    /// then stops the run with `LOCK_LOST`); a failed renewal is retried at the next beat.
    private func renewLease(source: String, syncId: String, logger: Logger) async {
        let interval = Duration.milliseconds(max(1, destination.leaseSeconds) * 1000 / 3)
        while true {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                try await destination.transaction("renewing the lease of \(source)") { store in
                    try await BatchCommit.fence(store, source: source, syncId: syncId)
                }
            } catch let failure as SyncFailure where failure.code == .lockLost {
                logger.error("the lease of the source was lost: no further batch of this run will commit", metadata: ["error": "\(failure)"])
                return
            } catch {
                logger.warning("could not renew the lease of the source; retrying at the next beat", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The run once its lock is held: plan, audit row, source, reads.
    private func locked(_ run: inout SyncRun, openSource: @Sendable () async throws -> any Source, logger: Logger,
                        onProgress: @escaping @Sendable (SyncProgress) -> Void) async {
        let request = run.request
        let options = request.options
        let retry = RetryPolicy(maxRetries: options.maxRetries, baseDelayMs: options.retryDelayMs, maxDelayMs: options.maxRetryDelayMs)
        let state: SyncState
        do {
            state = request.isDryRun ? try await destination.loadState(source: run.source)
                : try await retry.run { try await destination.loadState(source: run.source) }
        } catch {
            run.fail(error, code: .destinationFailed)
            return
        }
        var plan = RunPlan.make(syncType: request.syncType, state: state, source: request.source, options: options,
                                syncId: run.syncId, now: run.startTime)
        // Records once skipped as duplicates live outside `tb_sales`, where a plain insert does not meet them; an
        // unanswered question probes too.
        if plan.assumesNewKeys, (try? await retry.run({ try await destination.hasSkippedDuplicates(source: run.source) })) != false {
            plan.assumesNewKeys = false
        }
        run.cursorFrom = plan.cursorFrom
        if !request.isDryRun {
            do {
                try await retry.run { [run] in try await destination.beginRun(run) }
            } catch {
                run.fail(error, code: .destinationFailed)
                return
            }
        }
        logger.info("sync started", metadata: ["type": "\(request.syncType.rawValue)", "from": "\(run.cursorFrom ?? "start")"])
        let source: any Source
        do {
            source = try await retry.run { try await openSource() }
        } catch {
            run.fail(error, code: .sourceUnavailable)
            return
        }
        let reader = PageReader(source: source, stream: request.source.stream,
                                mapper: RecordMapper(source: request.source, validation: options.validation),
                                retry: retry, logger: logger, now: now)
        let (readiness, warning) = await DedupIndex.prepare(plan, source: run.source, isDryRun: request.isDryRun, destination: destination, logger: logger)
        if let warning { run.errors.append(warning) }
        var loop = BatchLoop(run: run, engine: self, reader: reader, retry: retry, logger: logger, onProgress: onProgress)
        loop.dedupIndex = readiness
        await loop.read(plan)
        run = loop.run
        await source.close()
        logger.info("sync finished", metadata: ["fetched": "\(run.counters.fetched)", "inserted": "\(run.counters.inserted)",
                                                 "updated": "\(run.counters.updated)", "rejected": "\(run.counters.rejected)"])
    }
}

extension Instant {
    /// ISO 8601 with milliseconds, `2024-01-15T10:30:00.000Z` (JavaScript's `Date.toISOString()` form).
    public var isoMillis: String {
        let text = description
        return String(text.dropLast(4)) + "Z"
    }
}
