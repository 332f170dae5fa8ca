import Logging

/// When `tb_sales`'s match-shaped dedup index (`tb_sales_dedup`: pdv, operator, amount, occurred_at) exists: only
/// while more than one source writes into the audit database, as pgloader builds its indexes after `COPY`.
///
/// The index serves only the dedup probes of records against *other* sources' records (and speeds up a
/// reconciliation's drill-down, which builds it when it is missing), and it costs the server about as much as the
/// rows themselves while a large load goes in (PostgreSQL, 1,000,000 `tb_sales` rows by `COPY`: 14 s with it, 7 s
/// without, 2–2.5 s to build it afterwards). So, when a run starts (``prepare(_:source:destination:logger:)``):
/// - no other source has records or a live lease (``Destination/hasOtherSources(than:)``): nothing can be a
///   duplicate yet. A first load (``RunPlan/isFirstLoad``) asks the destination to drop the index (it does so only
///   when that still holds, atomically with the drop: ``Destination/deferDedupIndex(for:)``); any other run leaves
///   it as it is. An audit database fed by one source never pays for the index;
/// - another source is there: the index is built first if it is missing (after a lone source's loads, or a first
///   load killed before its end), before this run writes a record another source could meet, so a probe that
///   needs it finds it. A lone source's run that is already under way when a second source arrives finds the
///   index built by that source's first run, which starts with this rule.
///
/// Correctness never depends on the index: without it the same probes read the same rows, only slower; the
/// primary key, which keeps every key stored once, is never dropped.
enum DedupIndex {
    /// Applies the rule above for a run of `source` with `plan`. A failure is logged and costs only speed: the run
    /// goes on.
    static func prepare(_ plan: RunPlan, source: String, destination: any Destination, logger: Logger) async {
        do {
            guard try await destination.hasOtherSources(than: source) else {
                if plan.isFirstLoad, try await destination.deferDedupIndex(for: source) {
                    logger.info("first load with no other source: loading without the dedup index")
                }
                return
            }
            try await destination.buildDedupIndex()
        } catch {
            logger.warning("could not prepare the dedup index; the run goes on", metadata: ["error": "\(error)"])
        }
    }
}
