extension StreamQuery {
    /// One statement a sync may run, with what it is for.
    public struct ReviewedStatement: Sendable, Equatable {
        /// What the statement does (`forward page`, `NULL-cursor sweep, next pages`).
        public var purpose: String
        /// The statement; its parameters are placeholders only.
        public var statement: SQLStatement
    }

    /// Every statement shape a sync of this stream runs, in this dialect, for `erp-sync sql` (a DBA reviews
    /// them before granting access): the first page, the `daysBack` start, the forward keyset page; the lookback
    /// re-read (its first and next pages, bounded by the checkpoint); where the dialect checksums rows, the check of a
    /// saved window, the forward and re-read pages with each row's checksum, and the window's fingerprint in four
    /// parts; the sweep of cursors the keyset cannot order or beyond the horizon (first and next pages); the
    /// positions-only page that isolates a row a mapping cannot compute; the `reprocess` read by primary key; and the
    /// row-estimate statements. Parameters stand for checkpoint values; timestamp cursors read up to the horizon
    /// (now + `maxFuture`).
    /// - Parameter limit: the batch size.
    public func reviewStatements(limit: Int) -> [ReviewedStatement] {
        let cursor: SourceValue = stream.cursor.kind == .timestamp ? .localDateTime(LocalDateTime(year: 2000, month: 1, day: 1)) : .integer(0)
        let position = Checkpoint(cursor: cursor, key: stream.primaryKey.map { _ in .integer(0) })
        let horizon: SourceValue? = stream.cursor.kind == .timestamp ? cursor : nil
        var sweepRanges: [ReviewedStatement] = []
        if let extent = cursorExtent(horizon: horizon) {
            sweepRanges = [
                ReviewedStatement(purpose: "extent of the cursor's dates, read before each sweep page", statement: extent),
                ReviewedStatement(purpose: "sweep, first page, when the extent holds dates (index ranges of each year's zero month and days; here 2000)",
                                  statement: unorderedCursorPage(afterKey: nil, limit: limit, horizon: horizon, years: 2000...2000)),
            ]
        }
        var fingerprint: [ReviewedStatement] = []
        if let check = self.fingerprint(cursorFrom: cursor, through: cursor, upTo: position, splitAt: cursor, cursor),
           let parts = self.fingerprint(cursorFrom: cursor, through: horizon, splitAt: cursor, cursor) {
            fingerprint = [
                ReviewedStatement(purpose: "lookback check: count and checksum of the saved window's rows up to the checkpoint, read alongside the forward read",
                                  statement: check),
                ReviewedStatement(purpose: "next page after a checkpoint with each row's checksum (a run that saves its lookback window sums them)",
                                  statement: page(from: .after(position), limit: limit, horizon: horizon, checksummed: true)),
                ReviewedStatement(purpose: "lookback re-read, first page, with each row's checksum (a run without a saved window)",
                                  statement: page(from: .cursorAtLeast(cursor), upTo: position, limit: limit, horizon: horizon, checksummed: true)),
                ReviewedStatement(purpose: "lookback fingerprint in four parts, read before the first page when the saved window ends before the checkpoint",
                                  statement: parts),
            ]
        }
        return [
            ReviewedStatement(purpose: "first page of a full sync (and of an incremental run with daysBack 0)",
                              statement: page(from: .start, limit: limit, horizon: horizon)),
            ReviewedStatement(purpose: "first page of a first incremental run (cursor >= now - daysBack)",
                              statement: page(from: .cursorAtLeast(cursor), limit: limit, horizon: horizon)),
            ReviewedStatement(purpose: "next page after a checkpoint (cursor, key)", statement: page(from: .after(position), limit: limit, horizon: horizon)),
            ReviewedStatement(purpose: "lookback re-read, first page (cursor >= checkpoint - lookback, up to the checkpoint)",
                              statement: page(from: .cursorAtLeast(cursor), upTo: position, limit: limit, horizon: horizon)),
            ReviewedStatement(purpose: "lookback re-read, next pages", statement: page(from: .after(position), upTo: position, limit: limit, horizon: horizon)),
        ] + fingerprint + [
            ReviewedStatement(purpose: "sweep of NULL (and unorderable or future) cursors, first page",
                              statement: unorderedCursorPage(afterKey: nil, limit: limit, horizon: horizon)),
            ReviewedStatement(purpose: "sweep of NULL (and unorderable or future) cursors, next pages",
                              statement: unorderedCursorPage(afterKey: position.key, limit: limit, horizon: horizon)),
        ] + sweepRanges + [
            ReviewedStatement(purpose: "positions only, to isolate a row whose mapping the database cannot compute",
                              statement: page(from: .after(position), limit: limit, horizon: horizon, positionsOnly: true)),
            ReviewedStatement(purpose: "reprocess: open quarantined rows by primary key", statement: keysPage([position.key], limit: limit)),
            ReviewedStatement(purpose: "row estimate of a full sync (counted, or EXPLAINed by PostgreSQL and MySQL sources)", statement: rows(from: .start)),
            ReviewedStatement(purpose: "row estimate after a checkpoint", statement: rows(from: .after(position))),
        ]
    }
}
