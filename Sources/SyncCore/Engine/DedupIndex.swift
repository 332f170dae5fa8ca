import Logging

/// When `tb_sales`'s match-shaped dedup index (`tb_sales_dedup`: pdv, operator, amount, occurred_at) exists: from the
/// first time something needs it — a second source's records to probe, or a reconciliation's drill-down — never for a
/// lone source's loads.
///
/// The index serves the dedup probes of records against *other* sources' records (and speeds up a reconciliation's
/// drill-down, which builds it when it is missing: ``Reconciler``), and it costs the server about as much as the rows
/// themselves while a large load goes in (PostgreSQL, 1,000,000 `tb_sales` rows by `COPY`: 14 s with it, 7 s without,
/// 2–2.5 s to build it afterwards). So, when a run starts (``prepare(_:source:isDryRun:destination:logger:)``):
/// - no other source has records or a live lease (``Destination/hasOtherSources(than:)``): nothing can be a duplicate
///   yet. A first load (``RunPlan/isFirstLoad``) asks the destination to drop the index (it does so only when that
///   still holds, atomically with the drop: ``Destination/deferDedupIndex(for:)``); any other run leaves it as it is;
/// - another source is there (or the question failed: the safe side): the index is built first if it is missing (after
///   a lone source's loads, or a first load killed before its end), before this run writes — or, in a dry run, probes —
///   a record another source could meet. A lone source's run already under way when a second source arrives finds the
///   index built by that source's first run, which starts with this rule.
///
/// Correctness never depends on the index: without it the same probes read the same rows, only slower; the
/// primary key, which keeps every key stored once, is never dropped.
enum DedupIndex {
    /// Applies the rule above for a run of `source` with `plan` (a dry run never drops the index).
    /// - Returns: a warning for the run's errors when a needed index could not be built (the run goes on: its probes
    ///   read the same rows, slower; the next run tries again); `nil` otherwise.
    static func prepare(_ plan: RunPlan, source: String, isDryRun: Bool, destination: any Destination, logger: Logger) async -> SyncErrorInfo? {
        do {
            if try await !destination.hasOtherSources(than: source) {
                if plan.isFirstLoad, !isDryRun, try await destination.deferDedupIndex(for: source) {
                    logger.info("first load with no other source: loading without the dedup index")
                }
                return nil
            }
        } catch {
            logger.warning("could not tell whether other sources write here; building the dedup index if it is missing",
                           metadata: ["error": "\(error)"])
        }
        do {
            try await destination.buildDedupIndex()
            return nil
        } catch {
            logger.error("could not build the dedup index; this run probes without it", metadata: ["error": "\(error)"])
            return SyncErrorInfo(code: .destinationFailed, message: "the dedup index could not be built (\(error)); the run's dedup probes read "
                                    + "tb_sales without it, slower, and the next run builds it", severity: "warning", retryable: true)
        }
    }
}
