import Foundation
import PostgresConnector
public import SyncCore
import SyncTesting

/// The reconciliation scenario every SQL source runs on its own server: a copy of Sakila's payments (with the
/// store of the staff member, the pdv) synced into a PostgreSQL audit database must match; then one audit row
/// is deleted, one stored amount changed, a row is added at the source after the sync and an invalid one is
/// quarantined, and the report must name exactly those rows in their pdv and day.
public struct SakilaReconciliation: Sendable {
    /// Runs statements on the source database.
    public var execute: @Sendable ([String]) async throws -> Void
    /// The dialect's `'store-' || store_id`.
    public var pdv: String
    /// The `(pdv, day)` of a payment in the copy at the source: `store-N` and the local date of `payment_date`.
    public var bucket: @Sendable (_ paymentId: Int) async throws -> (pdv: String, day: String)
    /// The copy of the payments this scenario creates in the source database (`recon_payment_<suffix>`) and drops.
    public var table: String
    /// The source (in the source database, without a stream: ``run()`` sets it).
    public var source: SourceConfig
    public var makeSource: SyncService.SourceFactory
    /// The scratch PostgreSQL audit database.
    public var auditDB: String

    /// Creates the scenario for a source database holding Sakila (`payment`, `staff`).
    public init(execute: @escaping @Sendable ([String]) async throws -> Void, pdv: String,
                bucket: @escaping @Sendable (_ table: String, _ paymentId: Int) async throws -> (pdv: String, day: String),
                source: SourceConfig, makeSource: @escaping SyncService.SourceFactory, auditDB: String) {
        let table = "recon_payment_\(UUID().uuidString.prefix(8).lowercased())"
        self.execute = execute
        self.pdv = pdv
        self.bucket = { try await bucket(table, $0) }
        self.table = table
        self.source = source
        self.source.stream = Self.stream(table: table, pdv: pdv)
        self.makeSource = makeSource
        self.auditDB = auditDB
    }

    /// The payments copy as a stream; `pdv` is the dialect's `'store-' || store_id`.
    static func stream(table: String, pdv: String) -> StreamConfig {
        StreamConfig(
            from: .table(table), primaryKey: ["payment_id"], cursor: .init(column: "payment_date", kind: .timestamp),
            fields: [.externalId: .column("payment_id"), .pdv: .sql(pdv), .operator: .column("staff_id"), .amount: .column("amount"),
                     .occurredAt: .column("payment_date"), .type: .sql("'payment'"), .reference: .column("rental_id")],
            typeMap: ["payment": .sale])
    }

    /// What the scenario found, for the suites' expectations.
    public struct Outcome: Sendable {
        public var clean: ReconciliationReport
        public var tampered: ReconciliationReport
        /// Payment ids of the tampering: deleted audit row, changed audit amount, row added after the sync, quarantined row.
        public var deleted: Int, changed: Int, added: Int, quarantined: Int
        /// Their buckets at the source.
        public var buckets: [Int: (pdv: String, day: String)]

        /// What does not hold (empty when all does): the clean report matches `rows` payments, and the tampered one
        /// names exactly the tampered rows in their buckets. Suites `#expect(problems.isEmpty)` (this target does
        /// not link the test library).
        public func problems(rows: Int) -> [String] {
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

    /// Runs it: copies the payments, syncs, reconciles (clean), tampers, full sync, reconciles again, drops the copy.
    public func run() async throws -> Outcome {
        try await execute([
            "CREATE TABLE \(table) AS SELECT p.payment_id, s.store_id, p.staff_id, p.amount, p.payment_date, p.rental_id FROM payment p JOIN staff s ON s.staff_id = p.staff_id",
            "ALTER TABLE \(table) ADD PRIMARY KEY (payment_id)",
        ])
        do {
            let outcome = try await tamperAndReconcile()
            try await execute(["DROP TABLE \(table)"])
            return outcome
        } catch {
            try await execute(["DROP TABLE \(table)"])
            throw error
        }
    }

    private func tamperAndReconcile() async throws -> Outcome {
        let audit = try PostgresDestination(settings: try PostgresTestDatabase.settings(auditDB))
        try await audit.migrate()
        var options = IntegrationDefaults.options(batchSize: 1000, lookback: .seconds(0))
        options.daysBack = 0
        let config = SyncConfig(destination: .postgresql(url: "\(TestServers.postgresURL)/\(auditDB)"), defaults: options, sources: [source])
        let service = SyncService(config: config, destination: audit, makeSource: makeSource)
        func reconcile() async throws -> ReconciliationReport {
            try await Reconciler.reconcile(source: source.name, config: config, store: audit, makeSource: makeSource)
        }
        do {
            let first = await service.sync(source: source.name)
            guard first.status == .success else { throw SyncFailure(code: .destinationFailed, message: "sync: \(first.errors)", isTransient: false) }
            let clean = try await reconcile()

            let (deleted, changed, added, quarantined) = (1000, 2000, 99_001, 99_002)
            // Quarantined: a negative payment (the sale sign rule) dated inside the synced range; a full sync reads it.
            try await execute(["INSERT INTO \(table) (payment_id, store_id, staff_id, amount, payment_date, rental_id) VALUES (\(quarantined), 1, 1, -3.50, '2005-07-08 12:00:00', 1)"])
            _ = await service.sync(source: source.name, overrides: SyncOverrides(isFull: true))
            try await PostgresTestDatabase.execute(auditDB, [
                "DELETE FROM tb_sales WHERE source_id = '\(source.name)' AND external_id = '\(deleted)'",
                "UPDATE tb_sales SET amount = amount + 1 WHERE source_id = '\(source.name)' AND external_id = '\(changed)'",
            ])
            // Added after the sync, later than the checkpoint: not yet synced.
            try await execute(["INSERT INTO \(table) (payment_id, store_id, staff_id, amount, payment_date, rental_id) VALUES (\(added), 2, 2, 4.99, '2006-02-14 23:00:00', 2)"])
            let tampered = try await reconcile()
            var buckets: [Int: (pdv: String, day: String)] = [:]
            for id in [deleted, changed, added, quarantined] { buckets[id] = try await bucket(id) }
            await audit.close()
            return Outcome(clean: clean, tampered: tampered, deleted: deleted, changed: changed, added: added, quarantined: quarantined, buckets: buckets)
        } catch {
            await audit.close()
            throw error
        }
    }

}
