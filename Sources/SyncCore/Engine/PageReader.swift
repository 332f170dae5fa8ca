import Logging

/// A page read from the source and mapped: records, rejected rows and the page's last position.
struct PreparedBatch: Sendable {
    var rowCount: Int
    var records: [SaleTransaction]
    var rejected: [RejectedRow]
    /// Position of the page's last row (`nil` for an empty page): where the next page of the read starts.
    var last: Checkpoint?
    /// Position of the page's last row whose cursor the mapper accepted: what the page's batch saves as the checkpoint
    /// (`nil`: none, the saved one stays). A row refused for its cursor (`FUTURE_CURSOR`, an impossible date in a
    /// text cursor) is read past but never becomes the checkpoint: had it, the rows written later with cursors before
    /// it (a real `2026-12-04 17:00` behind a text `2026-12-04 25:00:00`, every row of the next day behind a cursor a
    /// day ahead) would never be read. The next run reads such a row again and quarantines it again.
    var checkpoint: Checkpoint?
    /// The page stopped at a row the database could not compute (``PageReader/readIsolating(_:)``): more rows may
    /// follow although it holds fewer than the limit.
    var isCut = false
    /// The count and checksum of the page's rows, as the source computed them in the read
    /// (``PageRequest/checksummed``); `nil` when the read was not checksummed or a checksum is not an integer.
    var checksum: RangeFingerprint?

    /// Whether more rows may follow this page of a read limited to `limit` rows: it is full, or it was cut at a
    /// row the database could not compute.
    func mayContinue(limit: Int) -> Bool { rowCount == limit || isCut }
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
            return .success(prepare(rows, checksummed: page.checksummed))
        } catch {
            return .failure(error)
        }
    }

    /// Reads an ordered page like ``read(_:)``; when the database cannot compute a row of it
    /// (``SyncFailure/isDataException``, e.g. a `{ sql: }` mapping failing on one row), that row is found by bisecting the page
    /// on positions read without the mapped fields, and the page returned holds the rows before it plus that row
    /// quarantined as `SOURCE_ERROR` with the database's message, ending at it. So one bad row never stops the
    /// cursor; the rows after it are read by the next page.
    ///
    /// A row is quarantined only on a data exception that repeats, and only when the rows before it were read as the
    /// bisection saw them: the read through the row found must fail that way again, the read of the rows before it
    /// must end at the position before it, and no row may lie between the two. Otherwise (the row was fixed at the
    /// source meanwhile, rows were committed or moved between the reads, the failure was misreported) what was read
    /// is the page, cut, and nothing is quarantined; when nothing was, the read fails and the checkpoint stays.
    func readIsolating(_ page: PageRequest) async -> Result<PreparedBatch, any Error> {
        let result = await read(page)
        guard case .failure(let error) = result, (error as? SyncFailure)?.isDataException == true,
              case .ordered(let from, _) = page.kind else { return result }
        func readPositions(after bound: StreamBound, upTo last: Checkpoint?, limit: Int) async -> [Checkpoint]? {
            var request = PageRequest(.ordered(from: bound, upTo: last), limit: limit, horizon: page.horizon)
            request.positionsOnly = true
            return try? await retry.run({ try await source.read(request, of: stream) }).map { Checkpoint(cursor: $0[0], key: Array($0.dropFirst())) }
        }
        guard let positions = await readPositions(after: from, upTo: nil, limit: page.limit), !positions.isEmpty else { return result }
        func prefix(through index: Int) async -> Result<PreparedBatch, any Error> {
            await read(PageRequest(.ordered(from: from, upTo: positions[index]), limit: index + 1, horizon: page.horizon))
        }
        func cut(_ rows: PreparedBatch) -> Result<PreparedBatch, any Error> {
            guard rows.last != nil else { return result }
            var rows = rows
            rows.isCut = true
            return .success(rows)
        }
        // The first row whose prefix fails: the whole page fails, so it exists.
        var low = 0, high = positions.count - 1
        while low < high {
            let middle = (low + high) / 2
            if case .failure = await prefix(through: middle) { high = middle } else { low = middle + 1 }
        }
        let failure: SyncFailure
        switch await prefix(through: low) {
        case .success(let rows): return cut(rows)
        case .failure(let error):
            guard let repeated = error as? SyncFailure, repeated.isDataException else { return .failure(error) }
            failure = repeated
        }
        var prepared = PreparedBatch(rowCount: 0, records: [], rejected: [], last: nil)
        if low > 0 {
            switch await prefix(through: low - 1) {
            case .failure(let error): return .failure(error)
            case .success(let good) where good.last != positions[low - 1]: return cut(good)
            case .success(let good): prepared = good
            }
        }
        let next = await readPositions(after: low > 0 ? .after(positions[low - 1]) : from, upTo: positions[low], limit: 2)
        guard next == [positions[low]] else { return cut(prepared) }
        logger.warning("a row the source cannot compute is quarantined", metadata: ["position": "\(positions[low].summary)", "error": "\(failure.message)"])
        prepared.rejected.append(mapper.uncomputable(at: positions[low], message: failure.message))
        prepared.rowCount += 1
        prepared.last = positions[low]
        prepared.checkpoint = positions[low]  // its mapped fields failed, not its cursor
        prepared.isCut = prepared.rowCount < page.limit
        return .success(prepared)
    }

    /// Maps the rows of a page; the rows of a checksummed read end with their checksum, which the mapper does not
    /// read (it reads the laid-out columns) and the batch sums. The page's checkpoint is its last row whose cursor
    /// the mapper accepted (``PreparedBatch/checkpoint``); when rows refused for their cursor end the page, its
    /// checksum, which covers them, is dropped (the window is then re-read rather than saved from it).
    func prepare(_ rows: [[SourceValue]], checksummed: Bool = false) -> PreparedBatch {
        let now = now()
        var sum: Int128? = checksummed ? 0 : nil
        for row in rows where sum != nil {
            guard let value = row.last?.text.flatMap({ Int128($0) }) else {
                sum = nil
                break
            }
            sum? &+= value
        }
        let checksum = sum.map { RangeFingerprint(rows: rows.count, checksum: $0, last: rows.last?[0] ?? .null) }
        var records: [SaleTransaction] = []
        var rejected: [RejectedRow] = []
        records.reserveCapacity(rows.count)
        // The content hash of each external id loaded from this page.
        var seen: [String: String] = [:]
        seen.reserveCapacity(rows.count)
        var lastAccepted: Int?  // the last row whose cursor the mapper accepted
        for (index, row) in rows.enumerated() {
            let mapped = mapper.map(row, now: now)
            if case .failure(let rejection) = mapped, rejection.refusesCursor {} else { lastAccepted = index }
            switch mapped {
            case .success(let record):
                // A row read twice within one page (a query stream without a unique key) loads once; another row with
                // the same id and other values is kept in quarantine, never merged into the first.
                if let first = seen[record.externalId] {
                    if first != record.contentHash { rejected.append(mapper.duplicateKey(row, externalId: record.externalId)) }
                } else {
                    seen[record.externalId] = record.contentHash
                    records.append(record)
                }
            case .failure(let rejection): rejected.append(rejection)
            }
        }
        let last = rows.last.map(mapper.position(of:))
        let endsAccepted = rows.isEmpty || lastAccepted == rows.count - 1
        return PreparedBatch(rowCount: rows.count, records: records, rejected: rejected, last: last,
                             checkpoint: endsAccepted ? last : lastAccepted.map { mapper.position(of: rows[$0]) },
                             checksum: endsAccepted ? checksum : nil)
    }
}
