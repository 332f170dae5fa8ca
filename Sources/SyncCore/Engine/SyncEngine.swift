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
                if let holder = try await destination.acquireLock(source: run.source, syncId: run.syncId) {
                    run.fail(code: .locked, message: "source '\(run.source)' is already being synced (\(holder))", retryable: true)
                    return run.result(endTime: now())
                }
            } catch {
                run.fail(error, code: .destinationFailed)
                return run.result(endTime: now())
            }
        }
        await locked(&run, openSource: openSource, logger: logger, onProgress: onProgress)
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
        let plan = RunPlan.make(syncType: request.syncType, state: state, source: request.source, options: options,
                                syncId: run.syncId, now: run.startTime)
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
        var loop = BatchLoop(run: run, engine: self, reader: reader, retry: retry, logger: logger, onProgress: onProgress)
        await loop.read(plan)
        run = loop.run
        await source.close()
        logger.info("sync finished", metadata: ["fetched": "\(run.counters.fetched)", "inserted": "\(run.counters.inserted)",
                                                 "updated": "\(run.counters.updated)", "rejected": "\(run.counters.rejected)"])
    }
}

/// A page read from the source and mapped: records, rejected rows and the page's last position.
struct PreparedBatch: Sendable {
    var rowCount: Int
    var records: [SaleTransaction]
    var rejected: [RejectedRow]
    /// Position of the page's last row (`nil` for an empty page).
    var last: Checkpoint?
    /// The page stopped at a row the database could not compute (``PageReader/readIsolating(_:)``): more rows may
    /// follow although it holds fewer than the limit.
    var isCut = false
}

/// Reads and maps pages; free of run state, so the next page can be read while the current one commits.
struct PageReader: Sendable {
    let source: any Source
    let stream: StreamConfig
    let mapper: RecordMapper
    let retry: RetryPolicy
    let logger: Logger
    let now: @Sendable () -> Instant

    /// Reads a page with retries and maps its rows.
    func read(_ page: PageRequest) async -> Result<PreparedBatch, any Error> {
        do {
            let rows = try await retry.run({ try await source.read(page, of: stream) }, onRetry: { [logger] attempt, delay, error in
                logger.warning("source read failed, retrying", metadata: ["attempt": "\(attempt)", "delayMs": "\(delay)", "error": "\(error)"])
            })
            return .success(prepare(rows))
        } catch {
            return .failure(error)
        }
    }

    /// Reads an ordered page like ``read(_:)``; when the database cannot compute a row of it (a permanent
    /// `SOURCE_QUERY_FAILED`, e.g. a `{ sql: }` mapping failing on one row), that row is found by bisecting the page
    /// on positions read without the mapped fields, and the page returned holds the rows before it plus that row
    /// quarantined as `SOURCE_ERROR` with the database's message, ending at it. So one bad row never stops the
    /// cursor; the rows after it are read by the next page.
    func readIsolating(_ page: PageRequest) async -> Result<PreparedBatch, any Error> {
        let result = await read(page)
        guard case .failure(let error) = result, let failure = error as? SyncFailure, !failure.isTransient,
              failure.code == .sourceQueryFailed, case .ordered(let from, _) = page.kind else { return result }
        var positionsPage = page
        positionsPage.positionsOnly = true
        guard let rows = try? await retry.run({ try await source.read(positionsPage, of: stream) }), !rows.isEmpty else { return result }
        let positions = rows.map { Checkpoint(cursor: $0[0], key: Array($0.dropFirst())) }
        func prefix(through index: Int) async -> Result<PreparedBatch, any Error> {
            await read(PageRequest(.ordered(from: from, upTo: positions[index]), limit: index + 1, horizon: page.horizon))
        }
        // The first row whose prefix fails: the whole page fails, so it exists.
        var low = 0, high = positions.count - 1
        while low < high {
            let middle = (low + high) / 2
            if case .failure = await prefix(through: middle) { high = middle } else { low = middle + 1 }
        }
        var prepared = PreparedBatch(rowCount: 0, records: [], rejected: [], last: nil)
        if low > 0 {
            guard case .success(let good) = await prefix(through: low - 1) else { return result }
            prepared = good
        }
        logger.warning("a row the source cannot compute is quarantined", metadata: ["position": "\(positions[low].summary)", "error": "\(failure.message)"])
        prepared.rejected.append(mapper.uncomputable(at: positions[low], message: failure.message))
        prepared.rowCount += 1
        prepared.last = positions[low]
        prepared.isCut = prepared.rowCount < page.limit
        return .success(prepared)
    }

    func prepare(_ rows: [[SourceValue]]) -> PreparedBatch {
        let now = now()
        var records: [SaleTransaction] = []
        var rejected: [RejectedRow] = []
        records.reserveCapacity(rows.count)
        var seen: Set<String> = []
        seen.reserveCapacity(rows.count)
        for row in rows {
            switch mapper.map(row, now: now) {
            case .success(let record):
                // A row read twice within one batch (a query stream without a unique key) loads once.
                if seen.insert(record.externalId).inserted { records.append(record) }
            case .failure(let rejection): rejected.append(rejection)
            }
        }
        return PreparedBatch(rowCount: rows.count, records: records, rejected: rejected, last: rows.last.map(mapper.position(of:)))
    }
}

/// The reads of one run, each page committed as a ``BatchCommit`` with retries, counting into the run.
struct BatchLoop {
    var run: SyncRun
    let engine: SyncEngine
    let reader: PageReader
    let retry: RetryPolicy
    let logger: Logger
    let onProgress: @Sendable (SyncProgress) -> Void
    /// Rows quarantined as `FUTURE_CURSOR` in this run.
    var futureCursors = 0

    private var options: SyncOptions { run.request.options }

    /// Runs the reads of `plan`: the sweep of unorderable cursors, the lookback re-read, the forward read, and
    /// the end of a full pass. Stops at the first batch that fails (the run is marked failed).
    mutating func read(_ plan: RunPlan) async {
        if run.request.syncType == .reprocess { return await reprocess() }
        let expected = try? await reader.source.estimateRows(of: reader.stream, from: plan.forward)
        run.expected = expected.flatMap { $0 }.map { min($0, options.maxRecords) }
        let passId = plan.fullPass?.passId
        let pageSize = options.batchSize

        // Rows with a cursor the keyset cannot order have no stream position: sweep them into quarantine.
        defer { reportFutureCursors() }
        guard await drain(maxRows: options.maxRecords, fullPassId: passId, { last in
            PageRequest(.unorderedCursor(afterKey: last?.key), limit: pageSize, horizon: plan.horizon)
        }) else { return }
        if let reread = plan.reread {
            guard await drain(maxRows: .max, fullPassId: nil, { last in
                PageRequest(.ordered(from: last.map { .after($0) } ?? reread.from, upTo: reread.upTo), limit: pageSize, horizon: plan.horizon)
            }) else { return }
        }
        guard let end = await forward(plan) else { return }
        run.hasMore = !end.exhausted
        if let pass = plan.fullPass, end.exhausted, !run.request.isDryRun {
            do {
                run.counters = try await retry.run { [run] in
                    try await Self.finish(pass, state: plan.stateAfterFullPass(lastPosition: end.lastPosition), run: run,
                                          destination: engine.destination)
                }
            } catch {
                run.fail(error, code: .destinationFailed)
            }
        }
    }

    /// A `REPROCESS` run: the open quarantined keys of the source (per the request's filter) are read again by
    /// primary key, in batches, and loaded like re-reads: rows now valid load and resolve their entries, rows still
    /// invalid stay quarantined with their current reason. The checkpoint never moves.
    private mutating func reprocess() async {
        let keys: [[SourceValue]]
        do {
            let filter = run.request.reprocess
            keys = try await retry.run { [run, engine] in
                try await engine.destination.openQuarantinedKeys(source: run.source, reason: filter.reason, externalIds: filter.externalIds)
            }
        } catch {
            run.fail(error, code: .destinationFailed)
            return
        }
        run.expected = keys.count
        var start = 0
        while start < keys.count {
            let chunk = Array(keys[start..<min(start + options.batchSize, keys.count)])
            start += chunk.count
            let prepared: PreparedBatch
            switch await reader.read(PageRequest(.keys(chunk), limit: chunk.count)) {
            case .success(let value): prepared = value
            case .failure(let error):
                run.fail(error, code: .sourceFailed, batch: run.batches + 1)
                return
            }
            guard await load(prepared, state: nil, fullPassId: nil) else { return }
        }
    }

    /// The forward read, pipelined: page n+1 is read and mapped while page n commits. The page read ahead is
    /// awaited before this returns, so the source is never closed under it.
    /// - Returns: whether the stream was read to its end and the last committed position; `nil` when a page failed.
    private mutating func forward(_ plan: RunPlan) async -> (exhausted: Bool, lastPosition: Checkpoint?)? {
        var budget = options.maxRecords
        var lastPosition: Checkpoint? = if case .after(let p) = plan.forward { p } else { nil }
        var limit = min(options.batchSize, budget)
        let reader = reader
        var pending: Task<Result<PreparedBatch, any Error>, Never>? = budget > 0
            ? Task { [limit] in await reader.readIsolating(PageRequest(.ordered(from: plan.forward, upTo: nil), limit: limit, horizon: plan.horizon)) } : nil
        while let current = pending {
            pending = nil
            let page: PreparedBatch
            switch await current.value {
            case .success(let value): page = value
            case .failure(let error):
                run.fail(error, code: .sourceFailed, batch: run.batches + 1)
                return nil
            }
            guard let position = page.last else { return (true, lastPosition) }
            budget -= page.rowCount
            let isFull = page.rowCount == limit || page.isCut
            if isFull && budget > 0 {
                let nextLimit = min(options.batchSize, budget)
                pending = Task { await reader.readIsolating(PageRequest(.ordered(from: .after(position), upTo: nil), limit: nextLimit, horizon: plan.horizon)) }
                limit = nextLimit
            }
            guard await load(page, state: plan.state(after: position), fullPassId: plan.fullPass?.passId) else {
                if let pending {
                    pending.cancel()
                    _ = await pending.value
                }
                return nil
            }
            lastPosition = position
            if !isFull { return (true, lastPosition) }
        }
        return (false, lastPosition)
    }

    /// Reads and loads pages that do not move the checkpoint (the unorderable-cursor sweep, the lookback
    /// re-read) until a short page or `maxRows` rows.
    /// - Parameter page: the read after the previous page's last position (`nil` for the first page).
    /// - Returns: `false` (and the run marked failed) when a page could not be read or loaded.
    private mutating func drain(maxRows: Int, fullPassId: String?, _ page: (Checkpoint?) -> PageRequest) async -> Bool {
        var last: Checkpoint?
        var rows = 0
        while rows < maxRows {
            let request = page(last)
            let prepared: PreparedBatch
            switch await reader.readIsolating(request) {
            case .success(let value): prepared = value
            case .failure(let error):
                run.fail(error, code: .sourceFailed, batch: run.batches + 1)
                return false
            }
            guard let position = prepared.last else { return true }
            rows += prepared.rowCount
            last = position
            guard await load(prepared, state: nil, fullPassId: fullPassId) else { return false }
            if prepared.rowCount < request.limit && !prepared.isCut { return true }
        }
        return true
    }

    /// Adds a warning to the run's errors when rows with a cursor beyond the horizon were quarantined.
    private mutating func reportFutureCursors() {
        guard futureCursors > 0 else { return }
        run.errors.append(SyncErrorInfo(
            code: .futureCursor, message: "\(futureCursors) row(s) have a cursor more than \(options.validation.maxFutureSeconds) s in the future: "
                + "quarantined (FUTURE_CURSOR), the checkpoint stays before them; fix the cursor at the source", severity: "warning",
            retryable: false))
    }

    /// Commits a prepared batch; `false` (and the run marked failed) when it could not be loaded.
    private mutating func load(_ prepared: PreparedBatch, state: SyncState?, fullPassId: String?) async -> Bool {
        let number = run.batches + 1
        let batch = BatchCommit(batchNumber: number, records: prepared.records, rejected: prepared.rejected, fetched: prepared.rowCount,
                                state: state, position: prepared.last, fullPassId: fullPassId)
        do {
            let dryRun = run.request.isDryRun
            let committed = try await retry.run({ [run, engine] in
                // A dry run computes what the batch would do in a transaction that is rolled back.
                try await dryRun ? batch.simulate(in: engine.destination, run: run) : batch.commit(to: engine.destination, run: run)
            }, onRetry: { [logger] attempt, delay, error in
                logger.warning("batch commit failed, retrying",
                               metadata: ["batch": "\(number)", "attempt": "\(attempt)", "delayMs": "\(delay)", "error": "\(error)"])
            })
            run.counters = committed.counters
        } catch {
            run.fail(error, code: .batchFailed, batch: number)
            logger.error("batch failed; the checkpoint stays at the last committed batch", metadata: ["batch": "\(number)", "error": "\(error)"])
            return false
        }
        run.batches = number
        futureCursors += prepared.rejected.count { $0.reason == .futureCursor }
        onProgress(run.progress)
        if let afterCommit = engine.afterCommit {
            do {
                try await afterCommit(number)
            } catch {
                run.fail(error, code: .interrupted, batch: number)
                return false
            }
        }
        return true
    }

    /// Ends a full pass that read the whole stream, in one transaction: rows it did not see are marked deleted
    /// (``DestinationTransaction/markVanished(source:pass:syncId:)``), the incremental checkpoint moves to the
    /// pass's end and the pass is closed, with the run's `deleted` counter.
    /// - Returns: the run's counters as written.
    static func finish(_ pass: SyncState.FullPass, state: SyncState, run: SyncRun, destination: any Destination) async throws -> RunCounters {
        let source = run.source
        let syncId = run.syncId
        let before = run.counters
        return try await destination.transaction("finishing the full sync of \(source)") { store in
            try await BatchCommit.fence(store, source: source, syncId: syncId)
            var counters = before
            counters.deleted += try await store.markVanished(source: source, pass: pass, syncId: syncId)
            try await store.saveState(state, source: source, syncId: syncId)
            try await store.updateRun(syncId: syncId, counters: counters)
            return counters
        }
    }
}

extension Instant {
    /// ISO 8601 with milliseconds, `2024-01-15T10:30:00.000Z` (JavaScript's `Date.toISOString()` form).
    public var isoMillis: String {
        let text = description
        return String(text.dropLast(4)) + "Z"
    }
}
