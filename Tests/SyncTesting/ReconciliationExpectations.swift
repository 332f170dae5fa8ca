public import SyncCore

/// The expectations of the Sakila reconciliation scenario, shared by the PostgreSQL and MariaDB suites. Returns
/// what does not hold, so suites `#expect(problems.isEmpty)` (this target does not link the test library).
public enum ReconciliationExpectations {
    /// What is wrong with a clean report of `rows` payments and a tampered one that must name exactly the tampered
    /// rows: `deleted`, `changed`, `added`, `quarantined` are payment ids, `buckets` their `(pdv, day)` at the source.
    public static func problems(clean: ReconciliationReport, tampered: ReconciliationReport, rows: Int, deleted: Int, changed: Int, added: Int,
                                quarantined: Int, buckets: [Int: (pdv: String, day: String)]) -> [String] {
        var problems: [String] = []
        func require(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { problems.append(message()) }
        }
        func bucket(_ id: Int) -> ReconciliationBucket? {
            tampered.buckets.first { $0.pdv == buckets[id]?.pdv && $0.day == buckets[id]?.day }
        }
        require(clean.isMatch, "clean report has mismatches: \(clean.mismatches)")
        require(clean.sourceRows == rows && clean.auditRows == rows, "clean report counts \(clean.sourceRows)/\(clean.auditRows), expected \(rows)")
        require(Set(clean.buckets.map(\.pdv)) == ["store-1", "store-2"], "pdvs \(Set(clean.buckets.map(\.pdv)))")
        let expectedMismatches = Set([deleted, changed].compactMap { buckets[$0].map { "\($0.pdv) \($0.day)" } })
        require(Set(tampered.mismatches.map { "\($0.pdv) \($0.day)" }) == expectedMismatches,
                "mismatched buckets \(tampered.mismatches.map { "\($0.pdv) \($0.day)" }), expected \(expectedMismatches)")
        require(tampered.buckets.flatMap(\.missing) == ["\(deleted)"], "missing \(tampered.buckets.flatMap(\.missing))")
        require(tampered.buckets.flatMap(\.different) == ["\(changed)"], "different \(tampered.buckets.flatMap(\.different))")
        require(tampered.buckets.flatMap(\.extra).isEmpty, "extra \(tampered.buckets.flatMap(\.extra))")
        require(bucket(deleted)?.missing == ["\(deleted)"], "bucket of \(deleted): \(String(describing: bucket(deleted)))")
        require(bucket(changed)?.different == ["\(changed)"], "bucket of \(changed): \(String(describing: bucket(changed)))")
        require(tampered.buckets.flatMap(\.notYetSyncedIds) == ["\(added)"], "not yet synced \(tampered.buckets.flatMap(\.notYetSyncedIds))")
        require(bucket(added)?.notYetSyncedIds == ["\(added)"] && bucket(added)?.status == .pending,
                "bucket of \(added): \(String(describing: bucket(added)))")
        require(tampered.buckets.flatMap(\.quarantinedIds) == ["\(quarantined)"], "quarantined \(tampered.buckets.flatMap(\.quarantinedIds))")
        require(bucket(quarantined)?.quarantined == 1 && bucket(quarantined)?.status == .match,
                "bucket of \(quarantined): \(String(describing: bucket(quarantined)))")
        return problems
    }
}
