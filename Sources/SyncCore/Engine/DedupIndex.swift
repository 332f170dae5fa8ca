import Logging

/// When `tb_sales`'s match-shaped dedup index (`tb_sales_dedup`: pdv, operator, amount, occurred_at) exists: from the
/// first time something needs it — a batch about to probe other sources' records, or a reconciliation's drill-down —
/// never for a source whose pdvs are its own.
///
/// The index serves the dedup probes of records against *other* sources' records (and speeds up a reconciliation's
/// drill-down, which builds it when it is missing: ``Reconciler``), and it costs the server about as much as the rows
/// themselves while a large load goes in (PostgreSQL, 1,000,000 `tb_sales` rows by `COPY`: 14 s with it, 7 s without,
/// 2–2.5 s to build it afterwards). A batch probes only at the pdvs another source has records at (`tb_sales_pdvs`,
/// ``DestinationTransaction/pdvs(ofSourcesOtherThan:among:)``), so a fleet of stores, each with its own pdvs, never
/// probes and never needs it. So, when a run starts (``prepare(_:source:isDryRun:destination:logger:)``):
/// - a first load (``RunPlan/isFirstLoad``) asks the destination to drop the index, which it does only while no pdv
///   has two sources (then no batch probes), atomically with the drop (``Destination/deferDedupIndex(for:)``);
/// - no other source has records or a live lease (``Destination/hasOtherSources(than:)``): nothing can be a duplicate
///   yet, and the run needs no index: a source that arrives while it runs and meets its pdvs registers them and builds
///   the index before its own first probe (``Destination/buildDedupIndex(registering:for:)``), so this run's batches
///   find those pdvs shared only once the index exists;
/// - another source is there and shares a pdv with this one's records (``Destination/sharesPdvs(source:among:)``, or
///   the question failed: the safe side): the index is built first if it is missing;
/// - another source is there and shares none yet: each batch's pdvs are checked before it (``isShared(_:source:destination:logger:)``)
///   until one has records at a pdv another source has: the run then waits for its batch in flight (so none of its own
///   transactions holds `tb_sales`, which the build's lock would wait for) and builds the index if it is missing,
///   before that batch — or, in a dry run, its probes — reads a record another source could meet.
///
/// Correctness never depends on the index: without it the same probes read the same rows, only slower; the
/// primary key, which keeps every key stored once, is never dropped.
enum DedupIndex {
    /// What a run does about the index before its batches (``prepare(_:source:isDryRun:destination:logger:)``).
    enum Readiness: Sendable {
        /// No batch of the run needs it (no other source at the start), or it is built.
        case settled
        /// Another source is there but shares no pdv yet: check each batch's pdvs before it (``isShared(_:source:destination:logger:)``).
        case checkBatches
    }

    /// Applies the rule above for a run of `source` with `plan` (a dry run never drops the index).
    /// - Returns: what the run's batches must do, and a warning for the run's errors when a needed index could not
    ///   be built (the run goes on: its probes read the same rows, slower; the next run tries again); `nil` otherwise.
    static func prepare(_ plan: RunPlan, source: String, isDryRun: Bool, destination: any Destination,
                        logger: Logger) async -> (readiness: Readiness, warning: SyncErrorInfo?) {
        do {
            if plan.isFirstLoad, !isDryRun, try await destination.deferDedupIndex(for: source) {
                logger.info("first load with no pdv shared by two sources: loading without the dedup index")
            }
            if try await !destination.hasOtherSources(than: source) { return (.settled, nil) }
            if try await !destination.sharesPdvs(source: source, among: nil) { return (.checkBatches, nil) }
        } catch {
            logger.warning("could not tell whether other sources write here; building the dedup index if it is missing",
                           metadata: ["error": "\(error)"])
        }
        return (.settled, await build(registering: [], for: source, destination: destination, logger: logger))
    }

    /// Whether another source has records at one of `pdvs` (`true` when the question failed: the safe side), for a
    /// run whose readiness is ``Readiness/checkBatches``: its batch with records at `pdvs` then waits for the batch in
    /// flight and ``build(registering:for:destination:logger:)``s the index first.
    static func isShared(_ pdvs: [String], source: String, destination: any Destination, logger: Logger) async -> Bool {
        do {
            return try await destination.sharesPdvs(source: source, among: pdvs)
        } catch {
            logger.warning("could not tell whether another source has records at this batch's pdvs; building the dedup index if it is missing",
                           metadata: ["error": "\(error)"])
            return true
        }
    }

    /// Registers `pdvs` for `source` and builds the index if it is missing (``Destination/buildDedupIndex(registering:for:)``).
    /// - Returns: a warning for the run's errors when it could not be built (the run goes on: its probes read the same
    ///   rows, slower; the next run tries again); `nil` otherwise.
    static func build(registering pdvs: [String], for source: String, destination: any Destination, logger: Logger) async -> SyncErrorInfo? {
        do {
            try await destination.buildDedupIndex(registering: pdvs, for: source)
            return nil
        } catch {
            logger.error("could not build the dedup index; this run probes without it", metadata: ["error": "\(error)"])
            return SyncErrorInfo(code: .destinationFailed, message: "the dedup index could not be built (\(error)); the run's dedup probes read "
                                    + "tb_sales without it, slower, and the next run builds it", severity: "warning", retryable: true)
        }
    }
}
