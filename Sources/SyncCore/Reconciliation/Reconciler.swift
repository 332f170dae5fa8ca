import Foundation

/// Answers "does the audit database hold exactly what the ERP holds?" for one source, per pdv and local day.
///
/// 1. One aggregate query at the source (``ReconcilableSource/reconciliationGroups(of:pendingAfter:)``): counts
///    and exact sums grouped by pdv and hour, so the source needs no time-zone tables (MariaDB's `CONVERT_TZ`
///    returns NULL without them, "CONVERT_TZ" in the MariaDB manual); hours are folded into the source zone's
///    local days here.
/// 2. One grouped query on `tb_sales` by pdv and local day (``ReconciliationStore/auditDays(source:zone:)``) and the
///    open quarantine.
/// 3. Per bucket: `audit = source − not yet synced − quarantined`, for the count and the exact sum. Rows past
///    the checkpoint are "not yet synced", so a live ERP raises no alarm.
/// 4. A bucket that differs, or holds rows not yet synced, is drilled down to rows: its source rows are read by cursor range in keyset pages,
///    mapped like a sync maps them, and compared by external id, content hash and amount with the stored rows,
///    listing missing, extra and different external ids. The dedup index, which the stored rows are read through,
///    is built first if it is missing.
public struct Reconciler: Sendable {
    /// The source reconciled.
    public let source: SourceConfig
    private let mapper: RecordMapper
    private let pageSize: Int
    private let scale: Int
    private let days: LocalDays

    /// Creates a reconciler that maps rows with `validation` (as the sync does) and reads the drill-down in
    /// pages of `pageSize` rows (the source's `batchSize`).
    public init(source: SourceConfig, validation: ValidationOptions, pageSize: Int = 1000) {
        self.source = source
        mapper = RecordMapper(source: source, validation: validation)
        self.pageSize = max(1, pageSize)
        scale = CurrencyScale.scale(of: source.currency)
        days = LocalDays(zone: source.timezone)
    }

    private struct Key: Hashable {
        var pdv: String
        var day: String
    }

    private struct Work {
        var bucket: ReconciliationBucket
        var source = Amount(minorUnits: 0, scale: 0)
        var pending = Amount(minorUnits: 0, scale: 0)
        var quarantined = Amount(minorUnits: 0, scale: 0)
        var audit = Amount(minorUnits: 0, scale: 0)
        var groups: [SourceGroup] = []
    }

    /// Reconciles `reader` against `store` and saves the report in `tb_reconciliation`.
    /// - Parameters:
    ///   - from: first local day (`YYYY-MM-DD`, inclusive) to report, `nil` for all.
    ///   - to: last local day (inclusive), `nil` for all.
    ///   - now: the current instant (the future-timestamp rule of the mapping).
    /// - Throws: the source's or the store's ``SyncFailure``.
    public func reconcile(_ reader: any ReconcilableSource, against store: any Destination & ReconciliationStore,
                          from: String? = nil, to: String? = nil, now: Instant = .now) async throws -> ReconciliationReport {
        let started = ContinuousClock.now
        let checkpoint = try await store.loadState(source: source.name).checkpoint
        var work: [Key: Work] = [:]
        func slot(_ key: Key) -> Work {
            work[key] ?? Work(bucket: ReconciliationBucket(
                pdv: key.pdv, day: key.day, sourceRows: 0, sourceAmount: "", sourceDeleted: 0, notYetSynced: 0, notYetSyncedAmount: "",
                quarantined: 0, quarantinedAmount: "", auditRows: 0, auditAmount: "", auditDeleted: 0, vanished: 0, status: .match),
                source: zero, pending: zero, quarantined: zero, audit: zero)
        }

        for group in try await reader.reconciliationGroups(of: source.stream, pendingAfter: checkpoint) {
            let key = Key(pdv: group.pdv.text?.trimmingSpaces() ?? "", day: day(of: group.hour))
            var entry = work.removeValue(forKey: key) ?? slot(key)
            let sum = amount(group.sum)
            entry.bucket.sourceRows += group.count
            entry.source = entry.source + sum
            if group.deleted.isTruthy { entry.bucket.sourceDeleted += group.count }
            if group.isPending {
                entry.bucket.notYetSynced += group.count
                entry.pending = entry.pending + sum
            }
            entry.groups.append(group)
            work[key] = entry
        }
        for audit in try await store.auditDays(source: source.name, zone: source.timezone) {
            let key = Key(pdv: audit.pdv, day: audit.day)
            var entry = slot(key)
            entry.bucket.auditRows += audit.rows
            entry.audit = entry.audit + amount(.decimal(audit.amount))
            entry.bucket.auditDeleted += audit.deleted
            entry.bucket.vanished += audit.vanished
            work[key] = entry
        }
        var quarantinedIds = Set<String>()
        for entry in try await store.openQuarantine(source: source.name) {
            if let id = entry.externalId, !quarantinedIds.insert(id).inserted { continue }
            let raw = Self.raw(entry.rawJSON)
            var bucket = slot(key(raw: raw))
            bucket.bucket.quarantined += 1
            if let id = entry.externalId { bucket.bucket.quarantinedIds.append(id) }
            if let text = raw["amount"] ?? nil { bucket.quarantined = bucket.quarantined + amount(.text(text)) }
            work[key(raw: raw)] = bucket
        }

        var buckets: [ReconciliationBucket] = []
        var indexed = false
        for (key, var entry) in work {
            if let from, key.day < from { continue }
            if let to, key.day > to { continue }
            entry.bucket.sourceAmount = entry.source.description
            entry.bucket.notYetSyncedAmount = entry.pending.description
            entry.bucket.quarantinedAmount = entry.quarantined.description
            entry.bucket.auditAmount = entry.audit.description
            entry.bucket.quarantinedIds.sort()
            let expectedRows = entry.bucket.sourceRows - entry.bucket.notYetSynced - entry.bucket.quarantined
            let expectedAmount = entry.source.minorUnits - entry.pending.minorUnits - entry.quarantined.minorUnits
            let figuresDiffer = expectedRows != entry.bucket.auditRows || expectedAmount != entry.audit.minorUnits
            if figuresDiffer || entry.bucket.notYetSynced > 0 {
                if !indexed {
                    // The drill-down reads `tb_sales` by pdv and time, through the dedup index, which an audit
                    // database fed by one source lacks (``DedupIndex``). Without it the reads are only slower, so a
                    // failed build (reported by the next read if the database is unusable) does not stop the report.
                    indexed = true
                    try? await store.buildDedupIndex(registering: [], for: "")
                }
                try await drillDown(&entry, key: key, reader: reader, store: store, checkpoint: checkpoint, quarantined: quarantinedIds, now: now)
                let bucket = entry.bucket
                let unexplained = !bucket.missing.isEmpty || !bucket.extra.isEmpty || !bucket.different.isEmpty
                    || (figuresDiffer && bucket.notYetSyncedIds.isEmpty)
                entry.bucket.status = unexplained ? .mismatch : .pending
            }
            buckets.append(entry.bucket)
        }
        buckets.sort { ($0.day, $0.pdv) < ($1.day, $1.pdv) }
        let elapsed = ContinuousClock.now - started
        let report = ReconciliationReport(
            id: "rec-" + UUID().uuidString.lowercased(), source: source.name, startedAt: now.description,
            durationMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            checkpoint: checkpoint?.summary, from: from, to: to, buckets: buckets)
        try await store.saveReconciliation(report)
        return report
    }

    /// Reads the bucket's rows at the source (each group's cursor range, in keyset pages) and in `tb_sales`, and
    /// names the rows that explain the difference.
    private func drillDown(_ entry: inout Work, key: Key, reader: any ReconcilableSource, store: any ReconciliationStore,
                           checkpoint: Checkpoint?, quarantined: Set<String>, now: Instant) async throws {
        var records: [String: (record: SaleTransaction, isPending: Bool)] = [:]
        var rejected: [String: Bool] = [:]
        var ranges = Set<[SourceValue]>()
        for group in entry.groups where !group.firstCursor.isNull {
            guard ranges.insert([group.firstCursor, group.lastCursor]).inserted else { continue }
            var position: Checkpoint?
            while true {
                let page = try await reader.read(cursorFrom: group.firstCursor, through: group.lastCursor, after: position,
                                                 pendingAfter: checkpoint, limit: pageSize, of: source.stream)
                for row in page {
                    let values = Array(row.dropLast())
                    let isPending = row.last?.isTruthy ?? true
                    switch mapper.map(values, now: now) {
                    case .success(let record):
                        if Key(pdv: record.pdv, day: day(of: record.occurredAt)) == key { records[record.externalId] = (record, isPending) }
                    case .failure(let rejection):
                        if self.key(raw: rejection.raw) == key { rejected[rejection.externalId ?? "(no key)"] = isPending }
                    }
                }
                guard page.count == pageSize, let last = page.last else { break }
                position = mapper.position(of: Array(last.dropLast()))
            }
        }
        var stored: [String: StoredSale] = [:]
        if let range = dayRange(key.day) {
            for sale in try await store.storedSales(source: source.name, pdv: key.pdv, from: range.lowerBound, before: range.upperBound) {
                stored[sale.externalId] = sale
            }
        }

        var bucket = entry.bucket
        for (id, found) in records {
            if let sale = stored[id], !sale.isVanished {
                let same = sale.contentHash == found.record.contentHash && amount(.decimal(sale.amount)) == found.record.amount
                if same { continue }
                if found.isPending { bucket.notYetSyncedIds.append(id) } else { bucket.different.append(id) }
            } else if found.isPending {
                bucket.notYetSyncedIds.append(id)
            } else if !quarantined.contains(id) {
                bucket.missing.append(id)
            }
        }
        for (id, isPending) in rejected {
            if isPending { bucket.notYetSyncedIds.append(id) } else if !quarantined.contains(id) { bucket.missing.append(id) }
        }
        for (id, sale) in stored where !sale.isVanished && records[id] == nil && rejected[id] == nil {
            bucket.extra.append(id)
        }
        for path in [\ReconciliationBucket.missing, \.extra, \.different, \.notYetSyncedIds] { bucket[keyPath: path].sort() }
        entry.bucket = bucket
    }

    // MARK: folding

    private var zero: Amount { Amount(minorUnits: 0, scale: scale) }

    /// A sum as the source or the audit database printed it, at the currency's scale (half-even for FLOAT sums).
    private func amount(_ value: SourceValue) -> Amount {
        guard let text = value.text?.trimmingSpaces(), !text.isEmpty else { return zero }
        return (try? Amount(parsing: text, scale: scale, rounding: .halfEven)) ?? zero
    }

    /// The local day (`YYYY-MM-DD`) in the source's zone of a date-time value; empty when it is not one.
    private func day(of value: SourceValue) -> String {
        if case .text(let text) = value, let instant = Instant(iso8601: text) { return day(of: instant) }
        guard case .success(let instant) = mapper.instant(value) else { return "" }
        return day(of: instant)
    }

    private func day(of instant: Instant) -> String { days.day(of: instant) }

    /// The bucket of a row known by its raw values (a quarantined or rejected row): its `pdv` and `occurredAt`.
    private func key(raw: [String: String?]) -> Key {
        Key(pdv: (raw["pdv"] ?? nil)?.trimmingSpaces() ?? "", day: (raw["occurredAt"] ?? nil).map { day(of: .text($0)) } ?? "")
    }

    /// The instants from the start of local day `day` (`YYYY-MM-DD`) to the start of the next, in the source zone.
    private func dayRange(_ day: String) -> Range<Instant>? {
        guard let start = try? LocalDateTime(parsing: day + " 00:00:00") else { return nil }
        let zone = ZoneConverter(zone: source.timezone)
        return zone.instant(start)..<zone.instant(start.adding(seconds: 86_400))
    }

    private static func raw(_ json: String?) -> [String: String?] {
        guard let data = json?.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object.mapValues { $0 as? String }
    }
}

/// The audit database as the CLI and the server open it: the run path, the audit trail and reconciliation.
public typealias AuditDatabase = Destination & AuditLog & ReconciliationStore

extension Reconciler {
    /// Reconciles the configured source called `name`: opens it with `makeSource`, runs ``reconcile(_:against:from:to:now:)``
    /// and closes it.
    /// - Parameters:
    ///   - from: first local day `YYYY-MM-DD` (inclusive), `nil` for all.
    ///   - to: last local day (inclusive), `nil` for all.
    /// - Throws: ``SyncFailure`` `UNKNOWN_SOURCE` for an unknown name, `UNSUPPORTED_SOURCE` for a source that cannot
    ///   answer the aggregate read, or the source's or destination's failure.
    public static func reconcile(source name: String, config: SyncConfig, store: any Destination & ReconciliationStore,
                                 from: String? = nil, to: String? = nil,
                                 makeSource: SyncService.SourceFactory) async throws -> ReconciliationReport {
        guard let sourceConfig = config.source(named: name) else {
            throw SyncFailure(code: .unknownSource, message: "no source named '\(name)' in the configuration", isTransient: false)
        }
        let opened = try await makeSource(sourceConfig)
        guard let reader = opened as? any ReconcilableSource else {
            await opened.close()
            throw SyncFailure(code: .unsupportedSource, message: "source '\(name)' cannot answer reconciliation's aggregate read", isTransient: false)
        }
        do {
            let report = try await Reconciler(source: sourceConfig, validation: config.defaults.validation, pageSize: config.defaults.batchSize)
                .reconcile(reader, against: store, from: from, to: to)
            await opened.close()
            return report
        } catch {
            await opened.close()
            throw error
        }
    }

    /// Checks a `--from`/`--to` day: `YYYY-MM-DD` and a real date.
    /// - Returns: the day, or `nil` when it is not one.
    public static func validDay(_ text: String) -> String? {
        guard text.count == 10, let parsed = try? LocalDateTime(parsing: text + " 00:00:00") else { return nil }
        return String(parsed.description.prefix(10)) == text ? text : nil
    }
}
