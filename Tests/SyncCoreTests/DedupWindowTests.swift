@testable import SyncCore
import Testing

/// The batch plan: idempotent upsert classification and the cross-source sliding dedup window
/// (SPEC.md "Deduplication across ERPs", "Seed flaws we fix").
@Suite struct DedupWindowTests {
    /// 2024-03-10 at `time` (`HH:MM:SS`) UTC.
    func at(_ time: String) -> Instant { Instant(iso8601: "2024-03-10T\(time)Z")! }

    func sale(_ source: String, _ id: String, at time: String, pdv: String = "PDV01", operator op: String = "op-7",
              amount: String = "19.90", currency: String = "BRL", type: TransactionType = .sale) -> SaleTransaction {
        SaleTransaction(sourceId: source, externalId: id, pdv: pdv, operator: op,
                        amount: try! Amount(parsing: amount, scale: 2), currency: currency, occurredAt: at(time),
                        type: type, typeRaw: type.rawValue, reference: nil, sourceUpdatedAt: nil, isDeletedAtSource: false)
    }

    func candidate(_ record: SaleTransaction, claimedBy: Set<String> = []) -> DedupCandidate {
        DedupCandidate(source: record.sourceId, externalId: record.externalId, pdv: record.pdv, operator: record.operator,
                       amount: record.amount.description, currency: record.currency, type: record.type.rawValue, occurredAt: record.occurredAt,
                       claimedBy: claimedBy)
    }

    func plan(_ records: [SaleTransaction], candidates: [DedupCandidate], existing: [String: ExistingRecord] = [:],
              action: DeduplicationOptions.Action = .flag, enabled: Bool = true) -> BatchPlan {
        var options = DeduplicationOptions()
        options.action = action
        options.enabled = enabled
        return BatchPlan.plan(records: records, existing: existing, candidates: candidates, options: options)
    }

    @Test func aBatchWithNothingStoredAndNothingToMatchIsInsertedAsItIs() {
        let records = [sale("srcB", "B1", at: "12:00:00"), sale("srcB", "B2", at: "12:01:00"), sale("srcB", "B3", at: "12:02:00")]
        for plan in [plan(records, candidates: []),
                     plan(records, candidates: [candidate(sale("srcA", "A1", at: "12:00:00"))], enabled: false)] {
            #expect(plan.inserts.map(\.record) == records)
            #expect(plan.inserts.map(\.duplicateOf) == [nil, nil, nil])
            #expect(plan.outcome(rejected: 0).inserted == 3 && plan.duplicatesDetected == 0)
        }
    }

    @Test func fourFiftyNineApartIsADuplicate() {
        let original = sale("srcA", "A1", at: "12:00:00")
        let plan = plan([sale("srcB", "B1", at: "12:04:59")], candidates: [candidate(original)])
        #expect(plan.inserts.count == 1)
        #expect(plan.inserts.first?.duplicateOf == "srcA|A1")
        #expect(plan.inserts.first?.record.externalId == "B1")
        #expect(plan.duplicatesDetected == 1)
        #expect(plan.skippedDuplicates.isEmpty)
    }

    @Test func theWindowIsSymmetricAndInclusive() {
        let original = sale("srcA", "A1", at: "12:05:00")
        #expect(plan([sale("srcB", "B1", at: "12:00:01")], candidates: [candidate(original)]).inserts.first?.duplicateOf == "srcA|A1")
        #expect(plan([sale("srcB", "B1", at: "12:00:00")], candidates: [candidate(original)]).inserts.first?.duplicateOf == "srcA|A1")
        #expect(plan([sale("srcB", "B1", at: "12:10:00")], candidates: [candidate(original)]).inserts.first?.duplicateOf == "srcA|A1")
        #expect(plan([sale("srcB", "B1", at: "11:59:59")], candidates: [candidate(original)]).inserts.first?.duplicateOf == nil)
    }

    @Test func fiveOhOneApartIsNotADuplicate() {
        let original = sale("srcA", "A1", at: "12:00:00")
        let plan = plan([sale("srcB", "B1", at: "12:05:01")], candidates: [candidate(original)])
        #expect(plan.inserts.count == 1)
        #expect(plan.inserts.first?.duplicateOf == nil)
        #expect(plan.duplicatesDetected == 0)
    }

    @Test func neighboursAcrossAFiveMinuteClockBoundaryAreDuplicates() {
        // The seed's fixed buckets put 12:04:59 and 12:05:01 in different buckets; 2 s apart is a duplicate.
        let plan1 = plan([sale("srcB", "B1", at: "12:05:01")], candidates: [candidate(sale("srcA", "A1", at: "12:04:59"))])
        #expect(plan1.inserts.first?.duplicateOf == "srcA|A1")
        let plan2 = plan([sale("srcB", "B1", at: "12:04:59")], candidates: [candidate(sale("srcA", "A1", at: "12:05:01"))])
        #expect(plan2.inserts.first?.duplicateOf == "srcA|A1")
    }

    @Test func differentSaleDetailsAreNotDuplicates() {
        let original = candidate(sale("srcA", "A1", at: "12:00:00"))
        #expect(plan([sale("srcB", "B1", at: "12:00:00", pdv: "PDV02")], candidates: [original]).duplicatesDetected == 0)
        #expect(plan([sale("srcB", "B1", at: "12:00:00", operator: "op-8")], candidates: [original]).duplicatesDetected == 0)
        #expect(plan([sale("srcB", "B1", at: "12:00:00", amount: "19.91")], candidates: [original]).duplicatesDetected == 0)
        #expect(plan([sale("srcB", "B1", at: "12:00:00", currency: "USD")], candidates: [original]).duplicatesDetected == 0)
        // A cancellation is never the duplicate of a sale (nor a sale of a cancellation): with skip, one of the pair left
        // tb_sales, the pattern the audit exists to see.
        let cancel = sale("srcB", "B1", at: "12:01:00", type: .cancel)
        #expect(plan([cancel], candidates: [original], action: .skip).duplicatesDetected == 0)
        #expect(plan([sale("srcA", "A2", at: "12:00:00")], candidates: [candidate(cancel)], action: .skip).duplicatesDetected == 0)
        #expect(BatchCommit.dedupProbes(for: [cancel], windowMinutes: 5).map(\.type) == ["cancel"])
        // The same amount written with another number of digits is the same amount.
        #expect(plan([sale("srcB", "B1", at: "12:00:00", amount: "19.9")], candidates: [original]).duplicatesDetected == 1)
    }

    @Test func disabledDedupFlagsNothing() {
        let plan = plan([sale("srcB", "B1", at: "12:00:00")], candidates: [candidate(sale("srcA", "A1", at: "12:00:00"))], enabled: false)
        #expect(plan.inserts.first?.duplicateOf == nil)
        #expect(plan.duplicatesDetected == 0)
    }

    @Test func sameSourceDifferentExternalIdIsNeverMerged() {
        // Two real sales of one cashier, same amount, a second apart.
        let stored = candidate(sale("srcA", "A1", at: "12:00:00"))
        let plan = plan([sale("srcA", "A2", at: "12:00:01"), sale("srcA", "A3", at: "12:00:02")], candidates: [stored])
        #expect(plan.inserts.map(\.record.externalId) == ["A2", "A3"])
        #expect(plan.inserts.map(\.duplicateOf) == [nil, nil])
        #expect(plan.duplicatesDetected == 0)
    }

    @Test func skipActionHoldsTheDuplicateOut() {
        let plan = plan([sale("srcB", "B1", at: "12:04:59"), sale("srcB", "B2", at: "13:00:00")],
                        candidates: [candidate(sale("srcA", "A1", at: "12:00:00"))], action: .skip)
        #expect(plan.skippedDuplicates.count == 1)
        #expect(plan.skippedDuplicates.first?.record.externalId == "B1")
        #expect(plan.skippedDuplicates.first?.duplicateOf == "srcA|A1")
        #expect(plan.inserts.map(\.record.externalId) == ["B2"])
        #expect(plan.inserts.first?.duplicateOf == nil)
        #expect(plan.duplicatesDetected == 1)
    }

    @Test func anOriginalIsClaimedByOnlyOneRecord() {
        // Two sales at srcB (a real second sale of the same amount) but only one at srcA.
        let plan = plan([sale("srcB", "B1", at: "12:00:30"), sale("srcB", "B2", at: "12:01:00")],
                        candidates: [candidate(sale("srcA", "A1", at: "12:00:00"))])
        #expect(plan.inserts.map(\.duplicateOf) == ["srcA|A1", nil])
        #expect(plan.duplicatesDetected == 1)
    }

    @Test func eachRecordTakesTheNearestUnclaimedOriginal() {
        let plan = plan([sale("srcB", "B1", at: "12:00:30"), sale("srcB", "B2", at: "12:01:00")],
                        candidates: [candidate(sale("srcA", "A2", at: "12:01:30")), candidate(sale("srcA", "A1", at: "12:00:00"))])
        #expect(plan.inserts.map(\.duplicateOf) == ["srcA|A1", "srcA|A2"])
        #expect(plan.duplicatesDetected == 2)

        let nearest = self.plan([sale("srcB", "B1", at: "12:02:30")],
                                candidates: [candidate(sale("srcA", "A1", at: "12:00:00")), candidate(sale("srcA", "A2", at: "12:03:00"))])
        #expect(nearest.inserts.first?.duplicateOf == "srcA|A2")
    }

    @Test func claimsFromEarlierBatchesAreScopedPerSource() {
        let original = sale("srcA", "A1", at: "12:00:00")
        // Already claimed by another srcB record in an earlier batch: a second srcB sale is a real sale.
        let taken = plan([sale("srcB", "B2", at: "12:00:10")], candidates: [candidate(original, claimedBy: ["srcB|B1"])])
        #expect(taken.inserts.first?.duplicateOf == nil)
        // A claim by a third source does not stop srcB from recognising the same sale.
        let other = plan([sale("srcB", "B2", at: "12:00:10")], candidates: [candidate(original, claimedBy: ["srcC|C1"])])
        #expect(other.inserts.first?.duplicateOf == "srcA|A1")
        // A claim by this very record (a re-read after a lost state) stays valid.
        let own = plan([sale("srcB", "B2", at: "12:00:10")], candidates: [candidate(original, claimedBy: ["srcB|B2"])])
        #expect(own.inserts.first?.duplicateOf == "srcA|A1")
        // A source named like another's prefix is not confused with it.
        let prefix = plan([sale("srcB", "B2", at: "12:00:10")], candidates: [candidate(original, claimedBy: ["srcBB|X1"])])
        #expect(prefix.inserts.first?.duplicateOf == "srcA|A1")
    }

    @Test func existingRecordsAreUnchangedOrUpdatedByHash() {
        let same = sale("srcB", "B1", at: "12:00:00")
        let changed = sale("srcB", "B2", at: "12:00:00", amount: "25.00")
        let storedChanged = sale("srcB", "B2", at: "12:00:00", amount: "20.00")
        let vanished = sale("srcB", "B3", at: "12:00:00")
        let fresh = sale("srcB", "B4", at: "15:00:00")
        let existing = [
            "B1": ExistingRecord(contentHash: same.contentHash),
            "B2": ExistingRecord(contentHash: storedChanged.contentHash),
            "B3": ExistingRecord(contentHash: vanished.contentHash, isMarkedVanished: true),
        ]
        #expect(same.contentHash != storedChanged.contentHash)
        let plan = plan([same, changed, vanished, fresh], candidates: [candidate(sale("srcA", "A1", at: "12:00:00"))], existing: existing)
        #expect(plan.unchanged.map(\.externalId) == ["B1"])
        #expect(plan.updates.map(\.externalId) == ["B2", "B3"])
        #expect(plan.inserts.map(\.record.externalId) == ["B4"])
        // Known records are not re-checked for duplicates.
        #expect(plan.duplicatesDetected == 0)
    }

    @Test func reReadOfASkippedDuplicateStaysSkipped() {
        let record = sale("srcB", "B1", at: "12:00:00")
        let plan = plan([record], candidates: [], existing: ["B1": ExistingRecord(contentHash: record.contentHash, isSkippedDuplicate: true)],
                        action: .skip)
        #expect(plan.unchanged.map(\.externalId) == ["B1"])
        #expect(plan.inserts.isEmpty)
    }

    @Test func replanningTheSameBatchIsIdempotent() {
        let records = [sale("srcB", "B1", at: "12:04:59"), sale("srcB", "B2", at: "12:30:00")]
        let candidates = [candidate(sale("srcA", "A1", at: "12:00:00"))]
        #expect(plan(records, candidates: candidates) == plan(records, candidates: candidates))
        // After the first plan is stored, the second run sees every record as unchanged.
        let existing = Dictionary(uniqueKeysWithValues: records.map { ($0.externalId, ExistingRecord(contentHash: $0.contentHash)) })
        let second = plan(records, candidates: candidates, existing: existing)
        #expect(second.unchanged.count == 2)
        #expect(second.inserts.isEmpty && second.updates.isEmpty)
    }

    /// The probes sent to the destination: one per distinct match fields, covering every record's window (± 1 s for
    /// the stored precision), so an original the plan would take is always among the candidates.
    @Test func probesCoverEveryWindowOncePerMatchFields() {
        let records = [sale("srcB", "B1", at: "12:00:00"), sale("srcB", "B2", at: "13:00:00"),
                       sale("srcB", "B3", at: "12:30:00", amount: "5.00"), sale("srcB", "B4", at: "12:30:00", operator: "op-8")]
        let probes = BatchCommit.dedupProbes(for: records, windowMinutes: 5)
        #expect(probes.count == 3)
        let same = probes.first { $0.operator == "op-7" && $0.amount == "19.90" }
        #expect(same?.occurredAt == at("11:54:59")...at("13:05:01"))
        #expect(probes.first { $0.amount == "5.00" }?.occurredAt == at("12:24:59")...at("12:35:01"))
        #expect(probes.first { $0.operator == "op-8" }.map { ($0.pdv, $0.currency) } ?? ("", "") == ("PDV01", "BRL"))
        #expect(Set(BatchCommit.dedupProbes(for: records.reversed(), windowMinutes: 5)) == Set(probes))
    }
}
