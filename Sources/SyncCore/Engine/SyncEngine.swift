import Foundation
public import Logging

/// What to run: one source, one sync type, with resolved options.
public struct SyncRequest: Sendable {
    public var source: SourceConfig
    public var syncType: SyncType
    public var options: SyncOptions
    /// `cli`, `api:<user>`, `scheduler` …
    public var triggeredBy: String
    public var isManual: Bool
    /// Read, map and validate only: nothing is written, no lock is taken, the checkpoint stays.
    public var isDryRun: Bool

    /// Creates a request.
    public init(source: SourceConfig, syncType: SyncType, options: SyncOptions, triggeredBy: String = "cli",
                isManual: Bool = true, isDryRun: Bool = false) {
        self.source = source
        self.syncType = syncType
        self.options = options
        self.triggeredBy = triggeredBy
        self.isManual = isManual
        self.isDryRun = isDryRun
    }
}

/// Live figures of a running sync, reported after each batch.
public struct SyncProgress: Sendable, Equatable {
    public var syncId: String
    public var source: String
    /// Rows fetched so far in this run.
    public var fetched: Int
    /// Rows the run expects to read (count query, capped by `maxRecords`), when known.
    public var expected: Int?
    public var inserted: Int
    public var updated: Int
    public var rejected: Int
    /// Batches committed so far.
    public var batches: Int
    /// Seconds since the run started.
    public var elapsed: Double
}

/// The sync engine: reads a source in keyset batches, maps and validates rows, and commits each batch with
/// its checkpoint in one destination transaction (SPEC.md "Reading a source correctly", "Loading the
/// destination correctly", "Failure handling").
///
/// A run never throws: it returns an ``ErpSyncResult`` whose status and errors tell what happened. A batch
/// that fails after its retries ends the run (`PARTIAL` or `FAILED`) with the checkpoint at the last
/// committed batch.
public struct SyncEngine: Sendable {
    /// Called after each committed batch with its 1-based number. Throwing stops the run right there, as a
    /// crash between two batches would (the run ends `PARTIAL`); shutdown handling and tests use it.
    public typealias AfterCommit = @Sendable (Int) async throws -> Void

    let destination: any Destination
    let logger: Logger
    let afterCommit: AfterCommit?

    /// Creates an engine writing to `destination`.
    public init(destination: any Destination, logger: Logger = Logger(label: "erp-sync"), afterCommit: AfterCommit? = nil) {
        self.destination = destination
        self.logger = logger
        self.afterCommit = afterCommit
    }

    /// Runs one sync of `request.source`.
    /// - Parameters:
    ///   - openSource: connects to the source; called once the run is recorded, so a source that cannot be
    ///     reached still leaves a `FAILED` audit row. The engine closes the source at the end.
    ///   - onProgress: receives live figures after every batch.
    public func run(_ request: SyncRequest, openSource: @Sendable () async throws -> any Source,
                    onProgress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async -> ErpSyncResult {
        var run = RunState(request: request, syncId: UUID().uuidString.lowercased())
        var logger = logger
        logger[metadataKey: "syncId"] = .string(run.syncId)
        logger[metadataKey: "source"] = .string(request.source.name)

        if !request.isDryRun {
            do {
                if let holder = try await destination.acquireLock(source: request.source.name, syncId: run.syncId) {
                    run.fail(code: "LOCKED", message: "source '\(request.source.name)' is already being synced (\(holder))", retryable: true)
                    return run.result()
                }
            } catch {
                run.fail(error, code: "DESTINATION_FAILED")
                return run.result()
            }
        }
        let result = await locked(&run, openSource: openSource, logger: logger, onProgress: onProgress)
        if !request.isDryRun {
            do {
                try await destination.finishRun(result)
            } catch {
                logger.error("could not write the final audit row", metadata: ["error": "\(error)"])
            }
            try? await destination.releaseLock(source: request.source.name, syncId: run.syncId)
        }
        return result
    }

    private func locked(_ run: inout RunState, openSource: @Sendable () async throws -> any Source, logger: Logger,
                        onProgress: @escaping @Sendable (SyncProgress) -> Void) async -> ErpSyncResult {
        let request = run.request
        let options = request.options
        let retry = RetryPolicy(maxRetries: options.maxRetries, baseDelayMs: options.retryDelayMs, maxDelayMs: options.maxRetryDelayMs)
        let state: SyncState
        do {
            state = request.isDryRun ? try await destination.loadState(source: request.source.name)
                : try await retry.run { try await destination.loadState(source: request.source.name) }
        } catch {
            run.fail(error, code: "DESTINATION_FAILED")
            return run.result()
        }

        // Plan the reads: an optional lookback re-read up to the checkpoint, then the forward read.
        var reread: (from: StreamQuery.Bound, upTo: Checkpoint)?
        let forward: StreamQuery.Bound
        var fullPass: SyncState.FullPass?
        switch request.syncType {
        case .full:
            let pass = state.fullPass ?? SyncState.FullPass(passId: run.syncId, position: nil, startedAt: run.start)
            fullPass = pass
            forward = pass.position.map { .after($0) } ?? .start
            run.cursorFrom = pass.position?.summary
        case .incremental:
            if let checkpoint = state.checkpoint {
                forward = .after(checkpoint)
                run.cursorFrom = checkpoint.summary
                if let start = lookbackStart(checkpoint.cursor, request.source.stream.cursor.kind, options.lookback) {
                    reread = (.cursorAtLeast(start), checkpoint)
                }
            } else if request.source.stream.cursor.kind == .timestamp && options.daysBack > 0 {
                let start = Instant.now.local(in: request.source.timezone).adding(seconds: -Int64(options.daysBack) * 86_400)
                forward = .cursorAtLeast(.localDateTime(start))
                run.cursorFrom = start.description
            } else {
                forward = .start
            }
        }
        if !request.isDryRun {
            let record = RunRecord(syncId: run.syncId, source: request.source.name, databaseType: request.source.type,
                                   syncType: request.syncType, startTime: run.start, cursorFrom: run.cursorFrom,
                                   triggeredBy: request.triggeredBy, isManual: request.isManual)
            do {
                try await retry.run { try await destination.beginRun(record) }
            } catch {
                run.fail(error, code: "DESTINATION_FAILED")
                return run.result()
            }
        }
        logger.info("sync started", metadata: ["type": "\(request.syncType.rawValue)", "from": "\(run.cursorFrom ?? "start")"])
        let source: any Source
        do {
            source = try await retry.run { try await openSource() }
        } catch {
            run.fail(error, code: "SOURCE_UNAVAILABLE")
            return run.result()
        }
        let result = await read(&run, source: source, state: state, reread: reread, forward: forward, fullPass: fullPass,
                                retry: retry, logger: logger, onProgress: onProgress)
        await source.close()
        return result
    }

    /// The reads of a run: NULL-cursor sweep, lookback re-read, forward read, end of a full pass.
    private func read(_ run: inout RunState, source: any Source, state: SyncState, reread: (from: StreamQuery.Bound, upTo: Checkpoint)?,
                      forward: StreamQuery.Bound, fullPass: SyncState.FullPass?, retry: RetryPolicy, logger: Logger,
                      onProgress: @escaping @Sendable (SyncProgress) -> Void) async -> ErpSyncResult {
        let request = run.request
        let options = request.options
        let fullPassId = fullPass?.passId
        let query = StreamQuery(stream: request.source.stream, dialect: source.dialect)
        let mapper = RecordMapper(source: request.source, query: query, validation: options.validation)

        let expected = try? await source.estimateRows(query.rows(from: forward))
        run.expected = expected.flatMap { $0 }.map { min($0, options.maxRecords) }

        let reader = PageReader(source: source, mapper: mapper, retry: retry, logger: logger)
        var batch = BatchLoop(run: run, engine: self, reader: reader, retry: retry, logger: logger, onProgress: onProgress)
        defer { run = batch.run }

        // Rows with a NULL cursor have no stream position: sweep them into quarantine, never stopping the cursor.
        let swept = await batch.drain(pageSize: options.batchSize, maxRows: options.maxRecords, fullPassId: fullPassId) { last in
            query.nullCursorPage(afterKey: last?.key, limit: options.batchSize)
        }
        guard swept else { return batch.run.result() }

        if let reread {
            let reread = await batch.drain(pageSize: options.batchSize, maxRows: .max, fullPassId: nil) { last in
                query.page(from: last.map { .after($0) } ?? reread.from, upTo: reread.upTo, limit: options.batchSize)
            }
            guard reread else { return batch.run.result() }
        }

        // Forward read, pipelined: page n+1 is read and mapped while page n commits.
        var budget = options.maxRecords
        var lastPosition: Checkpoint? = if case .after(let p) = forward { p } else { nil }
        var exhausted = false
        var limit = min(options.batchSize, budget)
        var pending: Task<Result<PreparedBatch, any Error>, Never>? = budget > 0
            ? Task { [reader, forward, limit] in await reader.read(query.page(from: forward, limit: limit)) } : nil
        while let current = pending {
            pending = nil
            let page: PreparedBatch
            switch await current.value {
            case .success(let value): page = value
            case .failure(let error):
                batch.run.fail(error, code: "SOURCE_FAILED", batch: batch.run.batches + 1)
                return batch.run.result()
            }
            guard let position = page.last else {
                exhausted = true
                break
            }
            budget -= page.rowCount
            let isFull = page.rowCount == limit
            if isFull && budget > 0 {
                let nextLimit = min(options.batchSize, budget)
                pending = Task { [reader] in await reader.read(query.page(from: .after(position), limit: nextLimit)) }
                limit = nextLimit
            }
            let newState: SyncState = switch request.syncType {
            case .full: SyncState(checkpoint: state.checkpoint, fullPass: .init(passId: fullPass!.passId, position: position, startedAt: fullPass!.startedAt))
            case .incremental: SyncState(checkpoint: position, fullPass: state.fullPass)
            }
            guard await batch.load(page, state: newState, fullPassId: fullPassId) else {
                pending?.cancel()
                return batch.run.result()
            }
            lastPosition = position
            if !isFull { exhausted = true }
        }
        batch.run.hasMore = !exhausted
        if request.syncType == .full && exhausted && !request.isDryRun {
            do {
                let checkpoint = lastPosition ?? state.checkpoint
                batch.run.deleted = try await retry.run {
                    try await destination.finishFullPass(source: request.source.name, pass: fullPass!, syncId: batch.run.syncId, checkpoint: checkpoint)
                }
            } catch {
                batch.run.fail(error, code: "DESTINATION_FAILED")
            }
        }
        logger.info("sync finished", metadata: ["fetched": "\(batch.run.fetched)", "inserted": "\(batch.run.outcome.inserted)",
                                                 "updated": "\(batch.run.outcome.updated)", "rejected": "\(batch.run.outcome.rejected)"])
        return batch.run.result()
    }

    /// The cursor value where the lookback re-read starts, or `nil` when there is no lookback.
    func lookbackStart(_ cursor: SourceValue, _ kind: StreamConfig.Cursor.Kind, _ lookback: Lookback) -> SourceValue? {
        switch (kind, lookback) {
        case (.integer, .units(let units)) where units > 0:
            guard case .integer(let value) = cursor else { return nil }
            return .integer(value - units)
        case (.timestamp, .seconds(let seconds)) where seconds > 0, (.timestamp, .units(let seconds)) where seconds > 0:
            switch cursor {
            case .instant(let instant): return .instant(Instant(seconds: instant.seconds - seconds, microsecond: instant.microsecond))
            case .localDateTime(let local): return .localDateTime(local.adding(seconds: -seconds))
            default:
                guard let text = cursor.text, let local = try? LocalDateTime(parsing: text) else { return nil }
                return .localDateTime(local.adding(seconds: -seconds))
            }
        default:
            return nil
        }
    }
}

/// The counters and outcome of a run in progress.
struct RunState {
    let request: SyncRequest
    let syncId: String
    let start = Instant.now
    let clock = ContinuousClock.now
    var cursorFrom: String?
    var cursorTo: String?
    var expected: Int?
    var fetched = 0
    var batches = 0
    var outcome = BatchOutcome()
    var deleted = 0
    var hasMore = false
    var errors: [SyncErrorInfo] = []
    var failed = false

    init(request: SyncRequest, syncId: String) {
        self.request = request
        self.syncId = syncId
    }

    mutating func fail(code: String, message: String, retryable: Bool, batch: Int? = nil) {
        failed = true
        errors.append(SyncErrorInfo(code: code, message: message, batch: batch, retryable: retryable))
    }

    mutating func fail(_ error: any Error, code: String, batch: Int? = nil) {
        if let failure = error as? SyncFailure {
            fail(code: failure.code, message: failure.message, retryable: failure.isTransient, batch: batch)
        } else if error is CancellationError {
            fail(code: "CANCELLED", message: "the run was stopped", retryable: true, batch: batch)
        } else {
            fail(code: code, message: "\(error)", retryable: false, batch: batch)
        }
    }

    func result() -> ErpSyncResult {
        let end = Instant.now
        let status: SyncStatus = failed ? (batches > 0 ? .partial : .failed) : .success
        let elapsed = ContinuousClock.now - clock
        return ErpSyncResult(
            syncId: syncId, source: request.source.name, databaseType: request.source.type, syncType: request.syncType,
            status: status, success: status == .success, startTime: start.isoMillis, endTime: end.isoMillis,
            duration: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            recordsFetched: fetched, recordsProcessed: fetched - outcome.rejected, recordsInserted: outcome.inserted,
            recordsUpdated: outcome.updated, recordsUnchanged: outcome.unchanged, recordsSkipped: outcome.skipped,
            recordsRejected: outcome.rejected, recordsDeleted: deleted, hasMore: failed ? true : hasMore,
            cursorFrom: cursorFrom, cursorTo: cursorTo ?? cursorFrom, errors: errors)
    }
}

/// A page read from the source and mapped: records, rejected rows and the page's last position.
struct PreparedBatch: Sendable {
    var rowCount: Int
    var records: [SaleTransaction]
    var rejected: [RejectedRow]
    /// Position of the page's last row (`nil` for an empty page).
    var last: Checkpoint?
}

/// Reads and maps pages; free of run state, so the next page can be read while the current one commits.
struct PageReader: Sendable {
    let source: any Source
    let mapper: RecordMapper
    let retry: RetryPolicy
    let logger: Logger

    /// Runs a read with retries and maps its rows.
    func read(_ statement: SQLStatement) async -> Result<PreparedBatch, any Error> {
        do {
            let rows = try await retry.run({ try await source.fetch(statement) }, onRetry: { [logger] attempt, delay, error in
                logger.warning("source read failed, retrying", metadata: ["attempt": "\(attempt)", "delayMs": "\(delay)", "error": "\(error)"])
            })
            return .success(prepare(rows))
        } catch {
            return .failure(error)
        }
    }

    func prepare(_ rows: [[SourceValue]]) -> PreparedBatch {
        let now = Instant.now
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

/// Fetch and load with retries, counting into the run.
struct BatchLoop {
    var run: RunState
    let engine: SyncEngine
    let reader: PageReader
    let retry: RetryPolicy
    let logger: Logger
    let onProgress: @Sendable (SyncProgress) -> Void

    init(run: RunState, engine: SyncEngine, reader: PageReader, retry: RetryPolicy, logger: Logger,
         onProgress: @escaping @Sendable (SyncProgress) -> Void) {
        self.run = run
        self.engine = engine
        self.reader = reader
        self.retry = retry
        self.logger = logger
        self.onProgress = onProgress
    }

    /// Reads a page and maps it (with retries); `nil` (and the run marked failed) when the read still fails.
    mutating func fetch(_ statement: SQLStatement) async -> PreparedBatch? {
        switch await reader.read(statement) {
        case .success(let batch): return batch
        case .failure(let error):
            run.fail(error, code: "SOURCE_FAILED", batch: run.batches + 1)
            return nil
        }
    }

    /// Reads and loads pages that do not move the checkpoint (the NULL-cursor sweep, the lookback re-read)
    /// until a short page or `maxRows` rows.
    /// - Parameter statement: the read after the previous page's last position (`nil` for the first page).
    /// - Returns: `false` (and the run marked failed) when a page could not be read or loaded.
    mutating func drain(pageSize: Int, maxRows: Int, fullPassId: String?, _ statement: (Checkpoint?) -> SQLStatement) async -> Bool {
        var last: Checkpoint?
        var rows = 0
        while rows < maxRows {
            guard let page = await fetch(statement(last)) else { return false }
            guard let position = page.last else { return true }
            rows += page.rowCount
            last = position
            guard await load(page, state: nil, fullPassId: fullPassId) else { return false }
            if page.rowCount < pageSize { return true }
        }
        return true
    }

    /// Commits a prepared batch; `false` (and the run marked failed) when it could not be loaded.
    mutating func load(_ prepared: PreparedBatch, state: SyncState?, fullPassId: String?) async -> Bool {
        let records = prepared.records
        let rejected = prepared.rejected
        let number = run.batches + 1
        var outcome = BatchOutcome()
        if run.request.isDryRun {
            outcome.rejected = rejected.count
        } else {
            let commit = BatchCommit(syncId: run.syncId, source: run.request.source.name, batchNumber: number, records: records,
                                     rejected: rejected, fetched: prepared.rowCount, state: state, fullPassId: fullPassId,
                                     deduplication: run.request.options.deduplication)
            do {
                outcome = try await retry.run({ try await engine.destination.commit(commit) }, onRetry: { [logger] attempt, delay, error in
                    logger.warning("batch commit failed, retrying", metadata: ["batch": "\(number)", "attempt": "\(attempt)", "delayMs": "\(delay)", "error": "\(error)"])
                })
            } catch {
                run.fail(error, code: "BATCH_FAILED", batch: number)
                logger.error("batch failed; the checkpoint stays at the last committed batch", metadata: ["batch": "\(number)", "error": "\(error)"])
                return false
            }
        }
        run.batches = number
        run.fetched += prepared.rowCount
        run.outcome.inserted += outcome.inserted
        run.outcome.updated += outcome.updated
        run.outcome.unchanged += outcome.unchanged
        run.outcome.skipped += outcome.skipped
        run.outcome.rejected += outcome.rejected
        // The committed position, set before `afterCommit` so a run stopped there reports the checkpoint it saved.
        if state != nil, let last = prepared.last { run.cursorTo = last.summary }
        onProgress(SyncProgress(syncId: run.syncId, source: run.request.source.name, fetched: run.fetched, expected: run.expected,
                                inserted: run.outcome.inserted, updated: run.outcome.updated, rejected: run.outcome.rejected,
                                batches: run.batches, elapsed: Double((ContinuousClock.now - run.clock).components.seconds)))
        if let afterCommit = engine.afterCommit {
            do {
                try await afterCommit(number)
            } catch {
                run.fail(error, code: "INTERRUPTED", batch: number)
                return false
            }
        }
        return true
    }
}

extension Instant {
    /// ISO 8601 with milliseconds, `2024-01-15T10:30:00.000Z` (JavaScript's `Date.toISOString()` form).
    public var isoMillis: String {
        let text = description
        return String(text.dropLast(4)) + "Z"
    }
}
