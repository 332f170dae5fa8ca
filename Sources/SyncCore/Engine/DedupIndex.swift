import Logging

/// When `tb_sales`'s match-shaped dedup index (`tb_sales_dedup`: pdv, operator, amount, occurred_at) is kept up
/// to date row by row, and when it is built once after a bulk load, as pgloader builds its indexes after `COPY`.
///
/// The index serves only the dedup probes of records against *other* sources' records, and costs the server
/// about as much as the rows themselves while a large load goes in (PostgreSQL, 1,000,000 `tb_sales` rows by
/// `COPY`: 14 s with it, 7 s without, 2 s to build it afterwards). So:
/// - a first load (``RunPlan/isFirstLoad``) asks the destination to drop it, which it does only when no other
///   source has records or a live lease (``Destination/deferDedupIndex(for:)``), and builds it again when the run
///   ends, before the run's result is reported (success, failure or interruption alike);
/// - every other run builds it first if it is missing (a first load killed before its end, another source
///   arriving during one), so a probe that needs it finds it.
///
/// Correctness never depends on the index: without it the same probes read the same rows, only slower; the
/// primary key, which keeps every key stored once, is never dropped.
enum DedupIndex {
    /// Prepares the index for a run; returns whether the run deferred it (and must call ``restore(_:logger:)``).
    /// A failure is logged and costs only speed: the run goes on.
    static func prepare(_ plan: RunPlan, source: String, destination: any Destination, logger: Logger) async -> Bool {
        if plan.isFirstLoad {
            do {
                if try await destination.deferDedupIndex(for: source) {
                    logger.info("first load: the dedup index is built after it")
                    return true
                }
            } catch {
                logger.warning("could not defer the dedup index; it is kept", metadata: ["error": "\(error)"])
            }
        }
        do {
            try await destination.buildDedupIndex()
        } catch {
            logger.warning("could not build the missing dedup index; the run goes on without it", metadata: ["error": "\(error)"])
        }
        return false
    }

    /// Builds the index a run deferred.
    /// - Returns: a warning for the run's errors when it could not (the next run builds it first).
    static func restore(_ destination: any Destination, logger: Logger) async -> SyncErrorInfo? {
        do {
            try await destination.buildDedupIndex()
            return nil
        } catch {
            logger.error("could not build the dedup index after the first load; the next run builds it", metadata: ["error": "\(error)"])
            return SyncErrorInfo(code: .destinationFailed, message: "the dedup index could not be built after the first load (\(error)); "
                                    + "the next run builds it first", severity: "warning", retryable: true)
        }
    }
}
