import Synchronization
public import SyncCore

/// An audit database in memory that honours the ``Destination`` contract the way the SQL destinations do
/// (same upsert, duplicate, quarantine, lock and full-pass rules), for fast engine tests without I/O.
///
/// Faults can be injected before any step (``Step``): a transient one fails that call (the transaction rolls
/// back, the engine retries); a crash fails it and every later call, as `kill -9` of the process would, until
/// ``restart()``. A crash leaves what a dead process leaves: its `RUNNING` audit row and its lock row, which the
/// next run takes over.
///
/// With `overlapsBatches`, transactions may be open at once, as on PostgreSQL at `READ COMMITTED`: each step sees
/// what committed before it plus its own transaction's writes, a commit applies only what its transaction changed,
/// and a key that two transactions insert fails the second to commit as a unique violation (``SyncFailure/Code/keyConflict``).
/// Without it, one transaction at a time, as a single-writer database.
public final class MemoryDestination: Destination {
    /// A call the destination can fail at.
    public enum Step: String, Sendable, CaseIterable {
        case acquireLock, loadState, beginRun, renewLock, storedRecords, dedupCandidates, writeSales, recordDuplicates,
             markSeen, quarantine, resolveQuarantine, saveState, updateRun, markVanished, commit, finishRun, releaseLock
    }

    /// What an injected fault does.
    public enum Fault: Sendable {
        /// The call fails with a transient ``SyncFailure``; nothing of the transaction is kept.
        case transient
        /// The process dies here: this call and every later one fail until ``restart()``.
        case crash
        /// The call fails with a permanent ``SyncFailure`` (a value the database refuses): not retried; later calls work.
        case permanent
    }

    /// A `tb_sales` row.
    public struct Sale: Sendable, Equatable {
        public var record: SaleTransaction
        public var duplicateOf: String?
        public var deletedAtSource: Instant?
        /// `soft` (the source's deleted flag) or `vanished` (gone from the source, found by a full pass).
        public var deletedReason: String?
        public var syncId: String
        public var firstSyncId: String
        public var lastSeenPass: String?
        public var updatedAt: Instant
        /// Set while the source row is quarantined after this record loaded (the record is stale).
        public var quarantinedSince: Instant?
        public var quarantineReason: String?
    }

    /// A `tb_sync_duplicates` row.
    public struct Duplicate: Sendable, Equatable {
        public var source: String
        public var externalId: String
        public var duplicateOf: String
        public var action: DeduplicationOptions.Action
        public var contentHash: String
    }

    /// A quarantined row (`tb_sync_errors`, kind `record`).
    public struct Quarantined: Sendable, Equatable {
        public var source: String
        public var row: RejectedRow
        public var syncId: String
        public var occurrences: Int
        /// `loaded` or `superseded` once resolved; `nil` while open.
        public var resolution: String?
        public var resolvedBySync: String?
    }

    /// A `tb_erp_sync_audit` row.
    public struct Run: Sendable, Equatable {
        public var syncId: String
        public var source: String
        public var syncType: SyncType
        public var status: SyncStatus
        public var counters: RunCounters
        public var errors: [SyncErrorInfo]
    }

    /// Everything stored.
    public struct Tables: Sendable {
        /// By `source|externalId`.
        public var sales: [String: Sale] = [:]
        /// By `source|externalId`.
        public var duplicates: [String: Duplicate] = [:]
        /// By `source|fingerprint`.
        public var quarantine: [String: Quarantined] = [:]
        public var states: [String: SyncState] = [:]
        /// By syncId, in the order runs began.
        public var runs: [String: Run] = [:]
        public var runOrder: [String] = []
        /// Source → (syncId, process generation).
        var locks: [String: (syncId: String, generation: Int)] = [:]
    }

    private struct Control {
        var generation = 0
        var isDown = false
        var openTransactions = 0
        var faults: @Sendable (Step) -> Fault? = { _ in nil }
    }

    private let tables = Mutex(Tables())
    private let control = Mutex(Control())
    let now: @Sendable () -> Instant

    /// Creates an empty audit database whose timestamps come from `now`.
    public init(now: @escaping @Sendable () -> Instant, overlapsBatches: Bool = false) {
        self.now = now
        self.overlapsBatches = overlapsBatches
    }

    public let overlapsBatches: Bool

    /// What is stored now.
    public var snapshot: Tables { tables.withLock { $0 } }

    /// Sets the fault injected before each step (`nil`: none).
    public func injectFaults(_ faults: @escaping @Sendable (Step) -> Fault?) {
        control.withLock { $0.faults = faults }
    }

    /// The process comes back after a crash: calls work again, and locks held before are held by a dead process.
    public func restart() {
        control.withLock {
            $0.isDown = false
            $0.openTransactions = 0
            $0.generation += 1
        }
    }

    /// Fails per the injected faults, or when the process is down.
    func check(_ step: Step) throws {
        try control.withLock { control in
            if control.isDown { throw SyncFailure(code: .destinationUnavailable, message: "the process was killed", isTransient: false) }
            switch control.faults(step) {
            case .transient?:
                throw SyncFailure(code: .destinationFailed, message: "injected transient failure at \(step)", isTransient: true)
            case .crash?:
                control.isDown = true
                throw SyncFailure(code: .destinationUnavailable, message: "injected crash at \(step)", isTransient: false)
            case .permanent?:
                throw SyncFailure(code: .destinationFailed, message: "injected permanent failure at \(step)", isTransient: false)
            case nil:
                break
            }
        }
    }

    public func migrate() async throws {}

    public var leaseSeconds: Int { 60 }

    public func acquireLock(source: String, syncId: String, slot: ScheduleSlot?) async throws -> LockRefusal? {
        try check(.acquireLock)
        let generation = control.withLock { $0.generation }
        return tables.withLock { tables in
            if let holder = tables.locks[source], holder.generation == generation {
                return .held(by: "run \(holder.syncId)")
            }
            tables.locks[source] = (syncId, generation)
            for id in tables.runOrder where tables.runs[id]?.source == source && tables.runs[id]?.status == .running && id != syncId {
                tables.runs[id]?.status = .failed
                tables.runs[id]?.errors.append(SyncErrorInfo(code: .abandoned, message: "the process ended before the run finished", retryable: true))
            }
            return nil
        }
    }

    public func releaseLock(source: String, syncId: String) async throws {
        try check(.releaseLock)
        tables.withLock { tables in
            if tables.locks[source]?.syncId == syncId { tables.locks[source] = nil }
        }
    }

    public func loadState(source: String) async throws -> SyncState {
        try check(.loadState)
        return tables.withLock { $0.states[source] ?? SyncState() }
    }

    public func beginRun(_ run: SyncRun) async throws {
        try check(.beginRun)
        tables.withLock { tables in
            tables.runs[run.syncId] = Run(syncId: run.syncId, source: run.source, syncType: run.request.syncType, status: .running,
                                          counters: RunCounters(), errors: [])
            tables.runOrder.append(run.syncId)
        }
    }

    /// Without ``overlapsBatches``, one transaction at a time, as a single-writer database: a second one meanwhile
    /// fails as busy (transient).
    public func transaction<T: Sendable>(_ context: String, commits: Bool,
                                         _ body: @escaping @Sendable (any DestinationTransaction) async throws -> T) async throws -> T {
        try control.withLock { control in
            if control.openTransactions > 0 && !overlapsBatches { throw SyncFailure(code: .destinationBusy, message: "\(context): busy", isTransient: true) }
            control.openTransactions += 1
        }
        defer { control.withLock { $0.openTransactions = max($0.openTransactions - 1, 0) } }
        let transaction = MemoryTransaction(destination: self, tables: tables.withLock { $0 })
        let value = try await body(transaction)
        guard commits else { return value }
        try check(.commit)
        let (base, working) = transaction.versions
        try tables.withLock { committed in
            guard overlapsBatches else {
                committed = working
                return
            }
            try Self.checkInserts(base: base, working: working, committed: committed)
            committed = working.changes(since: base, appliedTo: committed)
        }
        return value
    }

    /// Before a step of a transaction: what committed since its last step, with the transaction's own changes.
    /// - Throws: ``SyncFailure/Code/keyConflict`` when another transaction committed a key this one inserted.
    func committedSince(_ base: Tables, working: Tables) throws -> (base: Tables, working: Tables) {
        let committed = snapshot
        try Self.checkInserts(base: base, working: working, committed: committed)
        return (committed, working.changes(since: base, appliedTo: committed))
    }

    /// A key a transaction inserted (in `working`, not in `base`, what committed at its last step) that another
    /// transaction committed since fails it as PostgreSQL's unique violation does, at its next step or its commit.
    static func checkInserts(base: Tables, working: Tables, committed: Tables) throws {
        if let key = working.sales.keys.first(where: { base.sales[$0] == nil && committed.sales[$0] != nil }) {
            throw SyncFailure(code: .keyConflict, message: "duplicate key \(key) in tb_sales", isTransient: true)
        }
    }

    /// Always `true`, so a run never defers an index: the in-memory store has none (and the fault-injection
    /// histories stay as they were).
    public func hasOtherSources(than source: String) async throws -> Bool { true }

    public func deferDedupIndex(for source: String) async throws -> Bool { false }

    public func buildDedupIndex(registering pdvs: [String], for source: String) async throws {}

    public func sharesPdvs(source: String, among pdvs: [String]?) async throws -> Bool {
        tables.withLock { tables in
            let sales = tables.sales.values.map(\.record)
            let mine = pdvs.map(Set.init) ?? Set(sales.filter { $0.sourceId == source }.map(\.pdv))
            return sales.contains { $0.sourceId != source && mine.contains($0.pdv) }
        }
    }

    public func finishRun(_ result: ErpSyncResult) async throws {
        try check(.finishRun)
        tables.withLock { tables in
            tables.runs[result.syncId]?.status = result.status
            tables.runs[result.syncId]?.errors = result.errors
        }
    }

    public func openQuarantinedKeys(source: String, reason: String?, externalIds: [String]?) async throws -> [[SourceValue]] {
        tables.withLock { tables in
            var keys: [[SourceValue]] = []
            for entry in tables.quarantine.values where entry.source == source && entry.resolution == nil
                && (reason == nil || entry.row.reason.rawValue == reason) && (externalIds?.contains(entry.row.externalId ?? "") ?? true) {
                if let key = entry.row.key, !keys.contains(key) { keys.append(key) }
            }
            return keys
        }
    }

    public func hasSkippedDuplicates(source: String) async throws -> Bool {
        tables.withLock { tables in tables.duplicates.values.contains { $0.source == source && $0.action == .skip } }
    }

    public func close() async {}
}

extension MemoryDestination.Tables {
    /// `committed` with every entry this version changed, added or removed since `base`.
    func changes(since base: Self, appliedTo committed: Self) -> Self {
        func apply<Value>(_ mine: [String: Value], _ base: [String: Value], _ committed: [String: Value],
                          same: (Value, Value) -> Bool) -> [String: Value] {
            var result = committed
            for (key, value) in mine where base[key].map({ !same($0, value) }) ?? true { result[key] = value }
            for key in base.keys where mine[key] == nil { result[key] = nil }
            return result
        }
        var result = committed
        result.sales = apply(sales, base.sales, committed.sales, same: ==)
        result.duplicates = apply(duplicates, base.duplicates, committed.duplicates, same: ==)
        result.quarantine = apply(quarantine, base.quarantine, committed.quarantine, same: ==)
        result.states = apply(states, base.states, committed.states, same: ==)
        result.runs = apply(runs, base.runs, committed.runs, same: ==)
        result.locks = apply(locks, base.locks, committed.locks, same: { $0.syncId == $1.syncId && $0.generation == $1.generation })
        return result
    }
}

/// The steps of one transaction of a ``MemoryDestination``, applied to a working copy of the tables: it replaces
/// them when the transaction commits or, with ``MemoryDestination/overlapsBatches``, is rebased on what committed
/// before each step and applies only its changes.
final class MemoryTransaction: DestinationTransaction {
    private let destination: MemoryDestination
    /// The committed tables as of the last step, and the transaction's view (them with its own changes).
    private let state: Mutex<(base: MemoryDestination.Tables, working: MemoryDestination.Tables)>

    init(destination: MemoryDestination, tables: MemoryDestination.Tables) {
        self.destination = destination
        state = Mutex((tables, tables))
    }

    var versions: (base: MemoryDestination.Tables, working: MemoryDestination.Tables) { state.withLock { $0 } }

    private func step<T>(_ step: MemoryDestination.Step, _ body: (inout MemoryDestination.Tables) throws -> T) throws -> T {
        try destination.check(step)
        return try statement(body)
    }

    /// Runs a statement on the transaction's view of the tables (rebased first when transactions overlap).
    private func statement<T>(_ body: (inout MemoryDestination.Tables) throws -> T) throws -> T {
        try state.withLock { state in
            if destination.overlapsBatches { state = try destination.committedSince(state.base, working: state.working) }
            return try body(&state.working)
        }
    }

    func renewLock(source: String, syncId: String) async throws -> Bool {
        try step(.renewLock) { $0.locks[source]?.syncId == syncId }
    }

    func storedRecords(source: String, externalIds: [String]) async throws -> [String: ExistingRecord] {
        try step(.storedRecords) { tables in
            var existing: [String: ExistingRecord] = [:]
            for id in externalIds {
                if let sale = tables.sales["\(source)|\(id)"] {
                    existing[id] = ExistingRecord(contentHash: sale.record.contentHash, isMarkedVanished: sale.deletedReason == "vanished",
                                                  isQuarantined: sale.quarantinedSince != nil)
                }
                if let duplicate = tables.duplicates["\(source)|\(id)"], duplicate.action == .skip {
                    existing[id] = ExistingRecord(contentHash: duplicate.contentHash, isSkippedDuplicate: true)
                }
            }
            return existing
        }
    }

    /// Fails with the injected fault of ``Step/dedupCandidates``: the check is the first read of that step.
    func registerPdvs(_ pdvs: [String], source: String) async throws {}

    func pdvs(ofSourcesOtherThan source: String, among pdvs: [String]) async throws -> Set<String> {
        try step(.dedupCandidates) { tables in
            Set(tables.sales.values.filter { $0.record.sourceId != source }.map(\.record.pdv)).intersection(pdvs)
        }
    }

    func dedupCandidates(excludingSource source: String, matching probes: [DedupProbe]) async throws -> [DedupCandidate] {
        try step(.dedupCandidates) { tables in
            tables.sales.values.filter { sale in
                let record = sale.record
                return record.sourceId != source && sale.duplicateOf == nil && sale.deletedAtSource == nil && probes.contains {
                    $0.pdv == record.pdv && $0.operator == record.operator && $0.amount == record.amount.description
                        && $0.currency == record.currency && $0.type == record.type.rawValue && $0.occurredAt.contains(record.occurredAt)
                }
            }.map { sale in
                let key = "\(sale.record.sourceId)|\(sale.record.externalId)"
                let claims = tables.duplicates.values.filter { $0.duplicateOf == key }.map { "\($0.source)|\($0.externalId)" }
                return DedupCandidate(source: sale.record.sourceId, externalId: sale.record.externalId, pdv: sale.record.pdv,
                                      operator: sale.record.operator, amount: sale.record.amount.description, currency: sale.record.currency,
                                      type: sale.record.type.rawValue, occurredAt: sale.record.occurredAt, claimedBy: Set(claims))
            }
        }
    }

    func writeSales(_ writes: SalesWrites, syncId: String, passId: String?) async throws {
        let now = destination.now()
        try step(.writeSales) { tables in
            for (record, duplicateOf) in writes.new {
                let key = "\(record.sourceId)|\(record.externalId)"
                // A plain INSERT, as PostgreSQL's: a key planned as new but stored is a unique violation.
                guard tables.sales[key] == nil else {
                    throw SyncFailure(code: .keyConflict, message: "duplicate key \(key) in tb_sales", isTransient: true)
                }
                tables.sales[key] = MemoryDestination.Sale(
                    record: record, duplicateOf: duplicateOf, deletedAtSource: record.isDeletedAtSource ? now : nil,
                    deletedReason: record.isDeletedAtSource ? "soft" : nil, syncId: syncId, firstSyncId: syncId, lastSeenPass: passId, updatedAt: now, quarantinedSince: nil, quarantineReason: nil)
            }
            for record in writes.changed {
                let key = "\(record.sourceId)|\(record.externalId)"
                let stored = tables.sales[key]
                tables.sales[key] = MemoryDestination.Sale(
                    record: record, duplicateOf: stored?.duplicateOf,
                    deletedAtSource: record.isDeletedAtSource ? (stored?.deletedAtSource ?? now) : nil,
                    deletedReason: record.isDeletedAtSource ? "soft" : nil, syncId: syncId, firstSyncId: stored?.firstSyncId ?? syncId,
                    lastSeenPass: passId ?? stored?.lastSeenPass, updatedAt: now, quarantinedSince: stored?.quarantinedSince,
                    quarantineReason: stored?.quarantineReason)
            }
        }
    }

    func recordDuplicates(_ duplicates: [DuplicateWrite], syncId: String) async throws {
        try step(.recordDuplicates) { tables in
            for duplicate in duplicates {
                let key = "\(duplicate.record.sourceId)|\(duplicate.record.externalId)"
                let stored = tables.duplicates[key]
                tables.duplicates[key] = MemoryDestination.Duplicate(
                    source: duplicate.record.sourceId, externalId: duplicate.record.externalId,
                    duplicateOf: duplicate.duplicateOf.isEmpty ? (stored?.duplicateOf ?? "") : duplicate.duplicateOf,
                    action: stored?.action ?? duplicate.action, contentHash: duplicate.record.contentHash)
            }
        }
    }

    func markSeen(source: String, externalIds: [String], passId: String) async throws {
        try step(.markSeen) { tables in
            for id in externalIds where tables.sales["\(source)|\(id)"] != nil {
                tables.sales["\(source)|\(id)"]?.lastSeenPass = passId
            }
        }
    }

    func quarantine(_ rows: [RejectedRow], source: String, syncId: String, batch: Int) async throws {
        let now = destination.now()
        try step(.quarantine) { tables in
            for row in rows {
                let key = "\(source)|\(row.fingerprint)"
                if var stored = tables.quarantine[key] {
                    stored.syncId = syncId
                    stored.occurrences += 1
                    stored.resolution = nil
                    stored.resolvedBySync = nil
                    tables.quarantine[key] = stored
                } else {
                    tables.quarantine[key] = MemoryDestination.Quarantined(source: source, row: row, syncId: syncId, occurrences: 1)
                }
                guard let id = row.externalId else { continue }
                for (other, entry) in tables.quarantine where entry.source == source && entry.row.externalId == id
                    && entry.resolution == nil && other != key {
                    tables.quarantine[other]?.resolution = "superseded"
                    tables.quarantine[other]?.resolvedBySync = syncId
                }
                if var sale = tables.sales["\(source)|\(id)"] {
                    sale.quarantinedSince = sale.quarantinedSince ?? now
                    sale.quarantineReason = row.reason.rawValue
                    tables.sales["\(source)|\(id)"] = sale
                }
            }
        }
    }

    /// Not a fault-injection step (a read that decides whether ``resolveQuarantine(source:loaded:stale:syncId:)`` runs).
    func hasOpenQuarantine(source: String) async throws -> Bool {
        try statement { $0.quarantine.values.contains { $0.source == source && $0.resolution == nil } }
    }

    func resolveQuarantine(source: String, loaded: [String], stale: [String], syncId: String) async throws {
        try step(.resolveQuarantine) { tables in
            let loaded = Set(loaded)
            for (key, entry) in tables.quarantine where entry.source == source && entry.resolution == nil
                && loaded.contains(entry.row.externalId ?? "") {
                tables.quarantine[key]?.resolution = "loaded"
                tables.quarantine[key]?.resolvedBySync = syncId
            }
            for id in stale where tables.sales["\(source)|\(id)"] != nil {
                tables.sales["\(source)|\(id)"]?.quarantinedSince = nil
                tables.sales["\(source)|\(id)"]?.quarantineReason = nil
            }
        }
    }

    func saveState(_ state: SyncState, source: String, syncId: String) async throws {
        try step(.saveState) { $0.states[source] = state }
    }

    func updateRun(syncId: String, counters: RunCounters) async throws {
        try step(.updateRun) { $0.runs[syncId]?.counters = counters }
    }

    func markVanished(source: String, pass: SyncState.FullPass, syncId: String) async throws -> Int {
        let now = destination.now()
        return try step(.markVanished) { tables in
            var marked = 0
            for (key, sale) in tables.sales where sale.record.sourceId == source && sale.deletedAtSource == nil
                && sale.lastSeenPass != pass.passId && sale.updatedAt < pass.startedAt {
                tables.sales[key]?.deletedAtSource = now
                tables.sales[key]?.deletedReason = "vanished"
                tables.sales[key]?.syncId = syncId
                tables.sales[key]?.updatedAt = now
                marked += 1
            }
            return marked
        }
    }
}
