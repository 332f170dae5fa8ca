/// What the destination already holds for a record key.
public struct ExistingRecord: Sendable, Equatable {
    public var contentHash: String
    /// `true` when the row was marked deleted because it vanished from the source.
    public var isMarkedVanished: Bool
    /// `true` when the record was a skipped duplicate (held outside `tb_sales`).
    public var isSkippedDuplicate: Bool
    /// `true` when the record is marked stale: its source row was quarantined after it loaded.
    public var isQuarantined: Bool

    /// Creates a description of a stored record.
    public init(contentHash: String, isMarkedVanished: Bool = false, isSkippedDuplicate: Bool = false, isQuarantined: Bool = false) {
        self.isQuarantined = isQuarantined
        self.contentHash = contentHash
        self.isMarkedVanished = isMarkedVanished
        self.isSkippedDuplicate = isSkippedDuplicate
    }
}

/// A stored record of another source that a new record may duplicate.
public struct DedupCandidate: Sendable, Equatable {
    public var source: String
    public var externalId: String
    public var pdv: String
    public var `operator`: String
    /// Canonical amount text (`"19.90"`), compared together with the currency.
    public var amount: String
    public var currency: String
    /// The canonical type (`sale`, `cancel`, …): a cancellation is never the duplicate of a sale.
    public var type: String
    public var occurredAt: Instant
    /// Keys (`source|externalId`) of records that already claimed this one as their original.
    public var claimedBy: Set<String>

    /// Creates a candidate.
    public init(source: String, externalId: String, pdv: String, operator: String, amount: String, currency: String, type: String,
                occurredAt: Instant, claimedBy: Set<String> = []) {
        self.source = source
        self.externalId = externalId
        self.pdv = pdv
        self.operator = `operator`
        self.amount = amount
        self.currency = currency
        self.type = type
        self.occurredAt = occurredAt
        self.claimedBy = claimedBy
    }

    /// `source|externalId`, the value stored in `duplicate_of`.
    public var key: String { "\(source)|\(externalId)" }
}

/// What a stored record of another source must match to be the original of new records: the dedup rule's
/// fields (pdv, operator, amount, currency, type) and the instants it may have (``BatchCommit/dedupProbes(for:windowMinutes:)``).
/// The type is part of the rule: a sale and its cancellation at one till, by one operator, for one amount, minutes
/// apart, are the pattern the audit exists to see, never one transaction seen twice (with `skip`, one of them left
/// `tb_sales`). Only a live record (not marked deleted at its source) is an original.
public struct DedupProbe: Sendable, Hashable {
    public var pdv: String
    public var `operator`: String
    /// Canonical amount text (`"19.90"`); a destination may compare it numerically (a superset: the plan compares
    /// the canonical texts).
    public var amount: String
    public var currency: String
    /// The canonical type (``TransactionType/rawValue``).
    public var type: String
    /// Every instant within the window of one of the probing records (inclusive).
    public var occurredAt: ClosedRange<Instant>

    /// The match fields, as one key.
    struct Fields: Hashable {
        var pdv: String
        var `operator`: String
        var amount: String
        var currency: String
        var type: String
    }

    /// Creates a probe.
    public init(pdv: String, operator: String, amount: String, currency: String, type: String, occurredAt: ClosedRange<Instant>) {
        self.pdv = pdv
        self.operator = `operator`
        self.amount = amount
        self.currency = currency
        self.type = type
        self.occurredAt = occurredAt
    }
}

/// The write plan of one batch: the pure core of the idempotent upsert and the cross-source dedup.
public struct BatchPlan: Sendable, Equatable {
    /// Records to insert, each with the original it duplicates (flag action) if any.
    public var inserts: NewRecords
    /// Records whose content changed (or that reappeared after being marked vanished).
    public var updates: [SaleTransaction]
    /// Records identical to what is stored.
    public var unchanged: [SaleTransaction]
    /// Duplicates held out of `tb_sales` (skip action), with their original; also re-reads of such records.
    public var skippedDuplicates: [(record: SaleTransaction, duplicateOf: String)]
    /// Number of duplicates detected in this batch (flagged + skipped).
    public var duplicatesDetected: Int

    public static func == (lhs: BatchPlan, rhs: BatchPlan) -> Bool {
        lhs.inserts.map(\.record) == rhs.inserts.map(\.record) && lhs.inserts.map(\.duplicateOf) == rhs.inserts.map(\.duplicateOf)
            && lhs.updates == rhs.updates && lhs.unchanged == rhs.unchanged
            && lhs.skippedDuplicates.map(\.record) == rhs.skippedDuplicates.map(\.record)
            && lhs.duplicatesDetected == rhs.duplicatesDetected
    }

    /// Classifies a batch.
    ///
    /// - New records are matched against `candidates` with a *sliding* window: a candidate of another
    ///   source with the same pdv, operator, amount, currency and type and |Δ occurredAt| ≤ `windowMinutes` is
    ///   the original (the nearest in time wins; each original is claimed by at most one record per
    ///   source, so two real sales of one source are never both folded onto one). Records of the same
    ///   source are never duplicates of each other.
    /// - Known records are unchanged when the content hash matches, else updated.
    /// - Parameters:
    ///   - records: the batch's valid records (one source).
    ///   - existing: stored state by external id.
    ///   - candidates: stored records of other sources near the batch in time.
    ///   - options: the dedup settings.
    public static func plan(records: [SaleTransaction], existing: [String: ExistingRecord], candidates: [DedupCandidate],
                            options: DeduplicationOptions) -> BatchPlan {
        var plan = BatchPlan(inserts: NewRecords(), updates: [], unchanged: [], skippedDuplicates: [], duplicatesDetected: 0)
        if existing.isEmpty {
            // Nothing stored and nothing to match (a first load's batch): every record is a plain insert, the batch's
            // own array.
            guard options.enabled && !candidates.isEmpty else {
                plan.inserts = NewRecords(records)
                return plan
            }
            plan.inserts.reserveCapacity(records.count)
        }
        var claimed: Set<String> = []
        let windowMicros = Int64(options.windowMinutes) * 60_000_000
        var byGroup: [String: [DedupCandidate]] = [:]
        for candidate in candidates {
            byGroup[groupKey(candidate.pdv, candidate.operator, candidate.amount, candidate.currency, candidate.type), default: []].append(candidate)
        }
        for record in records {
            // The emptiness test first: a lookup hashes the key even in an empty dictionary.
            if !existing.isEmpty, let stored = existing[record.externalId] {
                if stored.isSkippedDuplicate {
                    if stored.contentHash == record.contentHash { plan.unchanged.append(record) } else { plan.updates.append(record) }
                } else if stored.contentHash == record.contentHash && !stored.isMarkedVanished {
                    plan.unchanged.append(record)
                } else {
                    plan.updates.append(record)
                }
                continue
            }
            var original: DedupCandidate?
            if options.enabled && !byGroup.isEmpty {
                let selfKey = "\(record.sourceId)|\(record.externalId)"
                let group = byGroup[groupKey(record.pdv, record.operator, record.amount.description, record.currency, record.type.rawValue)] ?? []
                var bestDistance = Int64.max
                for candidate in group where candidate.source != record.sourceId && !claimed.contains(candidate.key) {
                    let othersClaim = candidate.claimedBy.contains { $0 != selfKey && $0.hasPrefix(record.sourceId + "|") }
                    guard !othersClaim else { continue }
                    let distance = abs(candidate.occurredAt.epochMicroseconds - record.occurredAt.epochMicroseconds)
                    // Nearest first; on a tie the earlier original, then the smaller key, so the choice never
                    // depends on the order the destination returned the candidates in.
                    let better = distance < bestDistance || (distance == bestDistance && original.map {
                        (candidate.occurredAt, candidate.key) < ($0.occurredAt, $0.key)
                    } ?? true)
                    if distance <= windowMicros && better {
                        bestDistance = distance
                        original = candidate
                    }
                }
            }
            if let original {
                claimed.insert(original.key)
                plan.duplicatesDetected += 1
                if options.action == .skip {
                    plan.skippedDuplicates.append((record, original.key))
                    continue
                }
            }
            plan.inserts.append(record, duplicateOf: original?.key)
        }
        return plan
    }

    private static func groupKey(_ pdv: String, _ op: String, _ amount: String, _ currency: String, _ type: String) -> String {
        "\(pdv)\u{1F}\(op)\u{1F}\(amount)\u{1F}\(currency)\u{1F}\(type)"
    }
}

extension BatchPlan {
    /// Records to write into `tb_sales`, split by whether the destination holds them yet: `new` are the
    /// inserts (with the original of each flagged duplicate), `changed` the updates (updates of skipped
    /// duplicates stay out: they live in `tb_sync_duplicates`). Together they are all the batch writes there.
    public func salesWrites(existing: [String: ExistingRecord]) -> SalesWrites {
        SalesWrites(new: inserts, changed: updates.filter { existing[$0.externalId]?.isSkippedDuplicate != true })
    }

    /// Entries for `tb_sync_duplicates`: flagged inserts, skipped duplicates, and changed re-reads of skipped
    /// duplicates (with an empty original, meaning "keep the stored one").
    public func duplicateWrites(existing: [String: ExistingRecord]) -> [DuplicateWrite] {
        inserts.compactMap { pair in pair.duplicateOf.map { DuplicateWrite(record: pair.record, duplicateOf: $0, action: .flag) } }
            + skippedDuplicates.map { DuplicateWrite(record: $0.record, duplicateOf: $0.duplicateOf, action: .skip) }
            + updates.filter { existing[$0.externalId]?.isSkippedDuplicate == true }.map { DuplicateWrite(record: $0, duplicateOf: "", action: .skip) }
    }

    /// The batch's counters.
    public func outcome(rejected: Int) -> BatchOutcome {
        var outcome = BatchOutcome()
        outcome.inserted = inserts.count
        outcome.updated = updates.count
        outcome.unchanged = unchanged.count
        outcome.skipped = duplicatesDetected
        outcome.rejected = rejected
        return outcome
    }
}
