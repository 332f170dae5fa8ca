import Logging

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
    /// Rows quarantined as `SOURCE_ERROR` in this run: the source could not compute them, so their range is not
    /// saved as read (``LookbackWindow``): the next run re-reads its window and tries them again.
    var sourceErrors = 0
    /// Forward batches skip the probe of stored keys (``RunPlan/assumesNewKeys``) until one meets a stored key.
    var assumesNewKeys = false
    /// The check of the saved lookback window running alongside the forward read: until it is settled, forward
    /// batches load without moving the checkpoint (a run that fails before then leaves it where it found it, so the
    /// window is re-read if it changed).
    var pendingCheck: WindowCheck?
    /// Rows the forward batches loaded while ``pendingCheck`` ran.
    var heldRows = 0
    /// The count and checksum of the rows of this run's checksummed pages (``PageRequest/checksummed``: the lookback
    /// re-read's without a saved window, the forward read's), the window it saves; `nil` when it does not sum them or
    /// a page came back without checksums.
    var pageSums: RangeFingerprint?
    /// Whether batches check their pdvs for the dedup index before they commit (``DedupIndex``).
    var dedupIndex = DedupIndex.Readiness.settled

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
        let lookback = await lookback(plan)
        pageSums = lookback.sumsPages ? .empty : nil
        if let reread = lookback.reread {
            guard await self.reread(reread, horizon: plan.horizon, checksummed: pageSums != nil) else { return }
        }
        assumesNewKeys = plan.assumesNewKeys
        pendingCheck = lookback.check
        guard let end = await forward(plan) else {
            await abandonCheck()
            return
        }
        guard await settleCheck(plan, lastPosition: end.lastPosition, exhausted: end.exhausted) else { return }
        run.hasMore = !end.exhausted
        let window = lookback.window ?? lookback.summedFrom.flatMap(summedWindow(from:))
        if let window = savable(window, exhausted: end.exhausted), !run.request.isDryRun {
            _ = await save(plan.state(endingAt: end.lastPosition, lookback: window), plan: plan, releasing: nil)
        }
        if let pass = plan.fullPass, end.exhausted, !run.request.isDryRun {
            if let reread = plan.rereadAtPassEnd {
                guard await self.reread(reread, horizon: plan.horizon, fullPassId: pass.passId) else { return }
            }
            // No position from the pass's first run to its end: it read no row its cursor places.
            let readNothing = end.lastPosition == nil
            if readNothing {
                run.errors.append(SyncErrorInfo(
                    code: .emptyPass, message: "the full sync read no row of the stream: nothing was marked deleted (an empty table or view, "
                        + "or a query that matched nothing, would have marked every record of this source deleted)", severity: "warning",
                    retryable: false))
            }
            do {
                run.counters = try await retry.run { [run] in
                    try await Self.finish(pass, state: plan.stateAfterFullPass(lastPosition: end.lastPosition), readNothing: readNothing, run: run,
                                          destination: engine.destination)
                }
            } catch {
                run.fail(error, code: .destinationFailed)
            }
        }
        if !run.failed && !run.request.isDryRun && !run.hasNoOpenQuarantine { await retrySourceErrors() }
    }

    /// Reads again, one primary key per page, the rows still quarantined as `SOURCE_ERROR` (rows the source could not
    /// compute, in this run or an earlier one), wherever their cursor lies — the lookback re-reads only its window, and
    /// a row fixed in what its mapping reads (a lookup table, a function) keeps its cursor — and loads those the source
    /// computes now; their batches do not move the checkpoint. A row it still cannot compute stays quarantined; any
    /// other failure to read ends the retry, which the next run makes again. The entry was filed under the external id
    /// of its key (the mapping could not be computed): a row loaded under another one (an `externalId` mapping of its
    /// own) resolves that entry too, or every run would read it again.
    private mutating func retrySourceErrors() async {
        let keys: [[SourceValue]]
        do {
            keys = try await retry.run { [run, engine] in
                try await engine.destination.openQuarantinedKeys(source: run.source, reason: RejectedRow.Reason.sourceError.rawValue,
                                                                 externalIds: nil)
            }
        } catch {
            logger.notice("the rows quarantined as SOURCE_ERROR could not be listed; the next run retries them", metadata: ["error": "\(error)"])
            return
        }
        for key in keys {
            switch await reader.read(PageRequest(.keys([key]), limit: 1)) {
            case .success(let prepared):
                guard prepared.rowCount > 0 else { continue }  // gone from the source: a full pass marks it deleted
                guard await load(prepared, state: nil, fullPassId: nil) else { return }
                if let filedUnder = RecordMapper.externalId(ofKey: key), let loaded = prepared.records.first, loaded.externalId != filedUnder,
                   !(await resolve(filedUnder)) { return }
            case .failure(let error):
                let stillFailing = (error as? SyncFailure)?.isDataException == true
                logger.notice("a row quarantined as SOURCE_ERROR is still not read", metadata: ["key": "\(key)", "error": "\(error)"])
                if !stillFailing { return }
            }
        }
    }

    /// What a run does about its lookback window before and while it reads forward (``lookback(_:)``).
    struct LookbackRead {
        /// The rows to re-read before the forward read.
        var reread: RunPlan.Reread?
        /// The window to save, fingerprinted before any page.
        var window: LookbackWindow?
        /// The check of the saved window that runs alongside the forward read.
        var check: WindowCheck?
        /// Where the window to save begins when it is the sum of this run's checksummed pages (``pageSums``), those of
        /// `reread` and of the forward read (with `check`, ``settleCheck(_:lastPosition:exhausted:)`` adds the forward
        /// pages to the check's range instead).
        var summedFrom: SourceValue?

        /// Whether the run's re-read and forward pages are checksummed and summed.
        var sumsPages: Bool { summedFrom != nil || check != nil }
    }

    /// The lookback re-read this run needs before its forward read, and how it knows the window it saves when it
    /// reads its stream to the end (``LookbackWindow``):
    ///
    /// - A saved window that ends at the checkpoint's cursor (the common case, a run after a run that read to the
    ///   end), from a source that checksums its pages: no re-read; a task fingerprints the saved window's range up to
    ///   the checkpoint while the forward read runs (``WindowCheck``: no forward page reads there), and the window
    ///   saved is that range from this run's lookback start plus the forward pages' checksums.
    /// - No saved window that covers the lookback, from such a source: the whole window is re-read, and the window
    ///   saved is the re-read's and the forward read's page checksums (no fingerprint statement at all).
    /// - Otherwise (a saved window ending before the checkpoint's cursor, a dry run, a source without page
    ///   checksums), before any page is read, one statement fingerprints the rows from the saved window's start (or
    ///   this run's lookback start) up to the horizon in four parts — before this run's lookback start, from there to
    ///   the saved window's end, at its end, beyond it: the first three are the saved window now (unchanged, its rows
    ///   are not re-read), the last three the window this run saves for the next one.
    ///
    /// A source without fingerprints, a run expecting more than ``LookbackWindow/maxForwardRows`` new rows, or a
    /// failed fingerprint read before the first page: the whole window, as planned, before the forward read; a failed
    /// check alongside it: the whole window once the forward read ends (``settleCheck(_:lastPosition:exhausted:)``).
    private func lookback(_ plan: RunPlan) async -> LookbackRead {
        guard let reread = plan.reread, case .cursorAtLeast(let start) = reread.from,
              (run.expected ?? .max) <= LookbackWindow.maxForwardRows else { return LookbackRead(reread: plan.reread) }
        let saved = plan.saved.lookback.flatMap { $0.covers(reread) ? $0 : nil }
        let source = reader.source, stream = reader.stream, retry = retry
        let sums = source.checksumsRows && !run.request.isDryRun
        guard let saved else {
            if sums { return LookbackRead(reread: reread, summedFrom: start) }
            return await fingerprinted(reread, start: start, saved: nil, horizon: plan.horizon)
        }
        guard sums, saved.narrowing(reread) == nil else { return await fingerprinted(reread, start: start, saved: saved, horizon: plan.horizon) }
        let checkpoint = reread.upTo
        let checked = Task {
            try? await retry.run {
                try await source.fingerprint(cursorFrom: saved.from, through: saved.through, upTo: checkpoint, splitAt: start, saved.through, of: stream)
            }
        }
        return LookbackRead(check: WindowCheck(saved: saved, reread: reread, start: start, checked: checked))
    }

    /// The third case of ``lookback(_:)``: the fingerprint in four parts before any page, the re-read it leaves and
    /// the window it gives.
    private func fingerprinted(_ reread: RunPlan.Reread, start: SourceValue, saved: LookbackWindow?, horizon: SourceValue?) async -> LookbackRead {
        let source = reader.source, stream = reader.stream
        do {
            guard let parts = try await retry.run({
                try await source.fingerprint(cursorFrom: saved?.from ?? start, through: horizon, upTo: nil, splitAt: start, saved?.through ?? start,
                                             of: stream)
            }) else { return LookbackRead(reread: reread) }
            let narrowed = if let saved, saved.matches(parts: parts) { saved.narrowing(reread) } else { Optional(reread) }
            let window = LookbackWindow(from: start, parts: parts)
            logger.debug("lookback window", metadata: ["reread": "\(narrowed.map { "\($0.from)" } ?? "none")", "rows": "\(window?.rows ?? 0)"])
            return LookbackRead(reread: narrowed, window: window)
        } catch {
            logger.notice("the lookback window's fingerprint could not be read; re-reading the whole window", metadata: ["error": "\(error)"])
            return LookbackRead(reread: reread)
        }
    }

    /// The window of this run's checksummed pages (``pageSums``) from `start`; `nil` when they were not all checksummed.
    private func summedWindow(from start: SourceValue) -> LookbackWindow? {
        pageSums.flatMap { LookbackWindow(from: start, fingerprint: $0) }
    }

    /// Adds a checksummed page to ``pageSums``; one without checksums ends the sum (no window is saved).
    private mutating func sum(_ page: PreparedBatch) {
        pageSums = pageSums.flatMap { sums in page.checksum.map { sums + $0 } }
    }

    /// Re-reads the lookback window `reread` (its batches do not move the checkpoint), its rows seen by the full pass
    /// `fullPassId` when given, its pages `checksummed` into ``pageSums`` when asked.
    /// - Returns: `false` (and the run marked failed) when a page could not be read or loaded.
    private mutating func reread(_ reread: RunPlan.Reread, horizon: SourceValue?, fullPassId: String? = nil, checksummed: Bool = false) async -> Bool {
        let pageSize = options.batchSize
        return await drain(maxRows: .max, fullPassId: fullPassId) { last in
            PageRequest(.ordered(from: last.map { .after($0) } ?? reread.from, upTo: reread.upTo), limit: pageSize, horizon: horizon,
                        checksummed: checksummed)
        }
    }

    /// Ends the check of the saved window (``pendingCheck``), if one runs: waits for its fingerprint, re-reads the
    /// window when it changed (or could not be read), then saves the checkpoint the forward batches held back —
    /// `lastPosition`, with the window this run read when it read the stream to its end (`exhausted`) and the
    /// source computed every row of it.
    /// - Returns: `false` (and the run marked failed) when the re-read or the save failed; the saved checkpoint then
    ///   stays where the run found it, so the next run reads the held batches' rows again (they load unchanged).
    private mutating func settleCheck(_ plan: RunPlan, lastPosition: Checkpoint?, exhausted: Bool) async -> Bool {
        guard let check = pendingCheck else { return true }
        pendingCheck = nil
        let parts = await check.checked.value
        let unchanged = parts.map(check.saved.matches(parts:)) ?? false
        logger.debug("lookback window", metadata: ["reread": "\(unchanged ? "none" : "\(check.reread.from)")", "heldRows": "\(heldRows)"])
        if !unchanged {
            guard await reread(check.reread, horizon: plan.horizon) else { return false }
        }
        // The check's range from this run's lookback start, read before any re-read, and the forward pages.
        let window = parts.flatMap { parts in pageSums.flatMap { LookbackWindow(from: check.start, fingerprint: parts[1] + parts[2] + $0) } }
        return await save(plan.state(endingAt: lastPosition, lookback: savable(window, exhausted: exhausted)), plan: plan,
                          releasing: heldRows > 0 ? lastPosition : nil)
    }

    /// `window` when it may be saved: the run read its stream to the end (`exhausted`) and the source computed every
    /// row it read (none quarantined as `SOURCE_ERROR`, which the next run must read again).
    private func savable(_ window: LookbackWindow?, exhausted: Bool) -> LookbackWindow? {
        exhausted && sourceErrors == 0 ? window : nil
    }

    /// Cancels the check of the saved window, if one runs, and waits for it (the run failed: the held checkpoint
    /// stays where the run found it).
    private mutating func abandonCheck() async {
        guard let check = pendingCheck else { return }
        pendingCheck = nil
        check.checked.cancel()
        _ = await check.checked.value
    }

    /// Saves `state` in one fenced transaction, unless the saved state holds it already.
    /// - Parameter releasing: the position of the last forward batch that held the checkpoint back
    ///   (``settleCheck(_:lastPosition:exhausted:)``), reported as the run's `cursorTo`; a failure then fails the run.
    ///   `nil`: only the window changes, and a failure is only logged: the saved state stays sound (batches clear the
    ///   window they move past; an older window still describes rows that were read), the next run merely re-reads
    ///   more.
    /// - Returns: `false` when a save of a held checkpoint failed (the run is marked failed).
    private mutating func save(_ state: SyncState, plan: RunPlan, releasing position: Checkpoint?) async -> Bool {
        guard state != plan.saved else { return true }
        let source = run.source, syncId = run.syncId, destination = engine.destination
        var counters = run.counters
        if let position { counters.cursorTo = position.summary }
        do {
            try await retry.run { [counters] in
                try await destination.transaction("saving the checkpoint of \(source)") { store in
                    try await BatchCommit.fence(store, source: source, syncId: syncId)
                    try await store.saveProgress(state, source: source, syncId: syncId, counters: counters)
                }
            }
            run.counters = counters
        } catch {
            guard position != nil else {
                logger.warning("the lookback window could not be saved; the next run re-reads its whole window", metadata: ["error": "\(error)"])
                return true
            }
            run.fail(error, code: .destinationFailed)
            return false
        }
        return true
    }

    /// Closes the open quarantine entries of `externalId` as loaded, in one fenced transaction.
    /// - Returns: `false` (logged; the next run's retry tries again) when it could not.
    private func resolve(_ externalId: String) async -> Bool {
        let source = run.source, syncId = run.syncId, destination = engine.destination
        do {
            try await retry.run {
                try await destination.transaction("resolving a quarantine entry of \(source)") { store in
                    try await BatchCommit.fence(store, source: source, syncId: syncId)
                    try await store.resolveQuarantine(source: source, loaded: [externalId], stale: [], syncId: syncId)
                }
            }
            return true
        } catch {
            logger.notice("a quarantine entry could not be resolved; the next run tries again", metadata: ["externalId": "\(externalId)", "error": "\(error)"])
            return false
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
            guard let prepared = received(await reader.read(PageRequest(.keys(chunk), limit: chunk.count))),
                  await load(prepared, state: nil, fullPassId: nil) else { return }
        }
    }

    /// The forward read, pipelined: page n+1 is read and mapped while page n commits, and on a destination that
    /// overlaps batches (``Destination/overlapsBatches``) page n+1's transaction begins while page n's commits
    /// (``BatchCommit/commit(to:run:after:)``: its writes run, and it commits only after page n did). The page read
    /// ahead and the batch in flight are awaited before this returns, so the source is never closed under them. While
    /// the saved window's check runs (``pendingCheck``), batches load one at a time and do not move the checkpoint;
    /// past ``LookbackWindow/maxForwardRows`` such rows the check is settled at once.
    /// - Returns: whether the stream was read to its end and the last committed position; `nil` when a page failed.
    private mutating func forward(_ plan: RunPlan) async -> (exhausted: Bool, lastPosition: Checkpoint?)? {
        var budget = options.maxRecords
        var lastPosition: Checkpoint? = if case .after(let p) = plan.forward { p } else { nil }
        var limit = min(options.batchSize, budget)
        let reader = reader
        let overlaps = engine.destination.overlapsBatches && !run.request.isDryRun
        let checksummed = pageSums != nil
        var pending: Task<Result<PreparedBatch, any Error>, Never>? = budget > 0
            ? Task { [limit] in
                await reader.readIsolating(PageRequest(.ordered(from: plan.forward, upTo: nil), limit: limit, horizon: plan.horizon, checksummed: checksummed))
            } : nil
        var inFlight: InFlight?
        while let current = pending {
            pending = nil
            let read = await current.value
            // The batch in flight is counted first: it committed (or failed) before this page.
            guard case .success(let page) = read, let position = page.last else {
                guard await finish(&inFlight, lastPosition: &lastPosition), received(read) != nil else { return nil }
                return (true, lastPosition)
            }
            if checksummed { sum(page) }
            budget -= page.rowCount
            let isFull = page.mayContinue(limit: limit)
            if isFull && budget > 0 {
                let nextLimit = min(options.batchSize, budget)
                pending = Task {
                    await reader.readIsolating(PageRequest(.ordered(from: .after(position), upTo: nil), limit: nextLimit, horizon: plan.horizon,
                                                           checksummed: checksummed))
                }
                limit = nextLimit
            }
            guard await prepareDedupIndex(before: page, inFlight: &inFlight, lastPosition: &lastPosition) else {
                await Self.abandon(pending)
                return nil
            }
            let state = pendingCheck == nil ? page.checkpoint.map(plan.state(after:)) : nil
            let batch = start(page, state: state, fullPassId: plan.fullPass?.passId, assumingNewKeys: assumesNewKeys, after: inFlight)
            if let previous = inFlight {
                inFlight = nil
                guard await count(previous) else {
                    await Self.abandon(batch)
                    await Self.abandon(pending)
                    return nil
                }
                lastPosition = previous.prepared.checkpoint ?? lastPosition
            }
            inFlight = batch
            if overlaps && pendingCheck == nil && isFull && budget > 0 { continue }
            guard await finish(&inFlight, lastPosition: &lastPosition) else {
                await Self.abandon(pending)
                return nil
            }
            if pendingCheck != nil {
                heldRows += page.rowCount
                // More new rows than the run expected: settle the check now rather than hold the checkpoint longer.
                if heldRows >= LookbackWindow.maxForwardRows, !(await settleCheck(plan, lastPosition: position, exhausted: false)) {
                    await Self.abandon(pending)
                    return nil
                }
            }
            if !isFull { return (true, lastPosition) }
        }
        guard await finish(&inFlight, lastPosition: &lastPosition) else { return nil }
        return (false, lastPosition)
    }

    /// Reads and loads pages that do not move the checkpoint (the unorderable-cursor sweep, the lookback
    /// re-read) until a short page or `maxRows` rows, pipelined like ``forward(_:)``: page n+1 is read and mapped
    /// while page n loads (a page's read depends only on the previous page's last position).
    /// - Parameter page: the read after the previous page's last position (`nil` for the first page).
    /// - Returns: `false` (and the run marked failed) when a page could not be read or loaded.
    private mutating func drain(maxRows: Int, fullPassId: String?, _ page: (Checkpoint?) -> PageRequest) async -> Bool {
        guard maxRows > 0 else { return true }
        let reader = reader
        var request = page(nil)
        var pending: Task<Result<PreparedBatch, any Error>, Never>? = Task { [request] in await reader.readIsolating(request) }
        var rows = 0
        while let current = pending {
            pending = nil
            guard let prepared = received(await current.value) else { return false }
            if request.checksummed { sum(prepared) }
            guard let position = prepared.last else { return true }
            rows += prepared.rowCount
            if prepared.mayContinue(limit: request.limit) && rows < maxRows {
                request = page(position)
                pending = Task { [request] in await reader.readIsolating(request) }
            }
            guard await load(prepared, state: nil, fullPassId: fullPassId) else {
                await Self.abandon(pending)
                return false
            }
        }
        return true
    }

    /// Fails the batch after `batch` (nothing waits on it) and waits for `batch`, whose transaction rolls back when
    /// the batch before it was not counted.
    private static func abandon(_ batch: InFlight) async {
        batch.resolveSuccessor.finish()
        _ = await batch.commit.value
    }

    /// Cancels a page read ahead and waits for it, so the source is never closed under it.
    private static func abandon(_ pending: Task<Result<PreparedBatch, any Error>, Never>?) async {
        guard let pending else { return }
        pending.cancel()
        _ = await pending.value
    }

    /// The page a read returned, or `nil` with the run marked failed (`SOURCE_FAILED`, at the next batch) when the
    /// read still failed after its retries.
    private mutating func received(_ result: Result<PreparedBatch, any Error>) -> PreparedBatch? {
        switch result {
        case .success(let page): return page
        case .failure(let error):
            run.fail(error, code: .sourceFailed, batch: run.batches + 1)
            return nil
        }
    }

    /// Adds a warning to the run's errors when rows with a cursor beyond the horizon were quarantined.
    private mutating func reportFutureCursors() {
        guard futureCursors > 0 else { return }
        run.errors.append(SyncErrorInfo(
            code: .futureCursor, message: "\(futureCursors) row(s) have a cursor more than \(options.validation.maxFutureSeconds) s in the future: "
                + "quarantined (FUTURE_CURSOR), the checkpoint stays before them; fix the cursor at the source", severity: "warning",
            retryable: false))
    }

    /// A batch whose commit was started (``start(_:state:fullPassId:assumingNewKeys:after:)``) and is not yet counted.
    private struct InFlight {
        let number: Int
        let prepared: PreparedBatch
        let commit: Task<Result<BatchCommit.Committed, any Error>, Never>
        /// Resolved with the run once this batch is counted, failed otherwise: the batch after it waits on it.
        let successor: PreviousBatch
        let resolveSuccessor: AsyncStream<SyncRun>.Continuation
    }

    /// Starts committing a prepared batch, with retries, as the batch after `previous` when one is in flight (its
    /// transaction then begins now and commits after `previous` was counted), else after the run's last batch.
    private func start(_ prepared: PreparedBatch, state: SyncState?, fullPassId: String?, assumingNewKeys: Bool = false,
                       after previous: InFlight? = nil) -> InFlight {
        let number = (previous?.number ?? run.batches) + 1
        var batch = BatchCommit(batchNumber: number, records: prepared.records, rejected: prepared.rejected, fetched: prepared.rowCount,
                                state: state, position: prepared.checkpoint, fullPassId: fullPassId)
        batch.assumesNewKeys = assumingNewKeys
        let dryRun = run.request.isDryRun
        let after = previous?.successor
        let commit = Task { [run, engine, retry, logger] () -> Result<BatchCommit.Committed, any Error> in
            do {
                return .success(try await retry.run({
                    // A dry run computes what the batch would do in a transaction that is rolled back.
                    try await dryRun ? batch.simulate(in: engine.destination, run: run) : batch.commit(to: engine.destination, run: run, after: after)
                }, onRetry: { attempt, delay, error in
                    logger.warning("batch commit failed, retrying",
                                   metadata: ["batch": "\(number)", "attempt": "\(attempt)", "delayMs": "\(delay)", "error": "\(error)"])
                }))
            } catch {
                return .failure(error)
            }
        }
        let (successor, resolve) = PreviousBatch.pending(number: number)
        return InFlight(number: number, prepared: prepared, commit: commit, successor: successor, resolveSuccessor: resolve)
    }

    /// Waits for the batch in flight, if any, and counts it into the run (`lastPosition` moves to its last row);
    /// `inFlight` is `nil` after. `false` (and the run marked failed) when it could not be loaded.
    private mutating func finish(_ inFlight: inout InFlight?, lastPosition: inout Checkpoint?) async -> Bool {
        guard let batch = inFlight else { return true }
        inFlight = nil
        guard await count(batch) else { return false }
        lastPosition = batch.prepared.checkpoint ?? lastPosition
        return true
    }

    /// Commits a prepared batch; `false` (and the run marked failed) when it could not be loaded.
    private mutating func load(_ prepared: PreparedBatch, state: SyncState?, fullPassId: String?) async -> Bool {
        var none: InFlight?
        var position: Checkpoint?
        guard await prepareDedupIndex(before: prepared, inFlight: &none, lastPosition: &position) else { return false }
        return await count(start(prepared, state: state, fullPassId: fullPassId))
    }

    /// Before `page` commits in a run that checks its batches (``DedupIndex/Readiness/checkBatches``): when another
    /// source has records at one of its pdvs, counts the batch in flight (`lastPosition` moves to its last row), then
    /// registers its pdvs (none in a dry run) and builds the dedup index if it is missing, and stops checking. `false`
    /// (and the run marked failed) when the batch in flight could not be loaded.
    private mutating func prepareDedupIndex(before page: PreparedBatch, inFlight: inout InFlight?, lastPosition: inout Checkpoint?) async -> Bool {
        guard case .checkBatches = dedupIndex, options.deduplication.enabled, !page.records.isEmpty else { return true }
        let pdvs = page.records.distinctPdvs
        guard await DedupIndex.isShared(pdvs, source: run.source, destination: engine.destination, logger: logger) else { return true }
        guard await finish(&inFlight, lastPosition: &lastPosition) else { return false }
        // A dry run writes no record, so it registers no pdv.
        let registering = run.request.isDryRun ? [] : pdvs
        if let warning = await DedupIndex.build(registering: registering, for: run.source, destination: engine.destination, logger: logger) {
            run.errors.append(warning)
        }
        dedupIndex = .settled
        return true
    }

    /// Waits for a started batch and counts it into the run, then resolves the batch after it (which fails when
    /// this returns `false`: the batch was not loaded, or the run stopped after it, and the run is marked failed).
    private mutating func count(_ batch: InFlight) async -> Bool {
        defer { batch.resolveSuccessor.finish() }
        let number = batch.number
        switch await batch.commit.value {
        case .success(let committed):
            run.counters = committed.counters
            run.hasNoOpenQuarantine = committed.hasNoOpenQuarantine
            run.registeredPdvs.formUnion(committed.registeredPdvs)
            if committed.metStoredKey { assumesNewKeys = false }
        case .failure(let error):
            run.fail(error, code: .batchFailed, batch: number)
            logger.error("batch failed; the checkpoint stays at the last committed batch", metadata: ["batch": "\(number)", "error": "\(error)"])
            return false
        }
        run.batches = number
        futureCursors += batch.prepared.rejected.count { $0.reason == .futureCursor }
        sourceErrors += batch.prepared.rejected.count { $0.reason == .sourceError }
        onProgress(run.progress)
        if let afterCommit = engine.afterCommit {
            do {
                try await afterCommit(number)
            } catch {
                run.fail(error, code: .interrupted, batch: number)
                return false
            }
        }
        batch.resolveSuccessor.yield(run)
        return true
    }

    /// Ends a full pass that read the whole stream, in one transaction: rows it did not see are marked deleted
    /// (``DestinationTransaction/markVanished(source:pass:syncId:)``), the incremental checkpoint moves to the
    /// pass's end (`state`) and the pass is closed, with the run's `deleted` counter. A pass that read no row at all
    /// (`readNothing`: its stream was empty from start to end) marks nothing: an empty table or view, or a query that
    /// matched nothing, would otherwise mark every stored record of the source deleted (the run reports
    /// ``SyncFailure/Code/emptyPass``).
    /// - Returns: the run's counters as written.
    static func finish(_ pass: SyncState.FullPass, state: SyncState, readNothing: Bool, run: SyncRun,
                       destination: any Destination) async throws -> RunCounters {
        let source = run.source
        let syncId = run.syncId
        let before = run.counters
        return try await destination.transaction("finishing the full sync of \(source)") { store in
            try await BatchCommit.fence(store, source: source, syncId: syncId)
            var counters = before
            if !readNothing { counters.deleted += try await store.markVanished(source: source, pass: pass, syncId: syncId) }
            try await store.saveProgress(state, source: source, syncId: syncId, counters: counters)
            return counters
        }
    }
}
