import Foundation
import Logging
import SyncCore

/// The `erp.*` procedures: the seed's five (seed "tRPC Router Integration"), with sources referred to by name,
/// and those the dashboard and operators need beyond them.
///
/// - `erp.testConnection` (mutation, admin): `{source}` → `{success, message}`.
/// - `erp.syncNow` (mutation, admin): `{source, fullSync?, daysBack?, batchSize?, maxRecords?}` →
///   `{success, message, data}`; `data` is the run's ``ErpSyncResult`` plus the seed's `timestamp` and `errorCount`.
///   `CONFLICT` when the source is already syncing (here or in another process).
/// - `erp.reprocess` (mutation, admin): `{source, reason?, keys?}` → as `syncNow`: a `REPROCESS` run that re-reads the
///   open quarantined rows (of that reason, of those external ids) by primary key; the checkpoint never moves.
/// - `erp.getStatus` (query, viewer) → `{instanceId, running, runningSyncs, lastSync, nextScheduledSync, supportedDatabases, sources}`:
///   `runningSyncs` are this instance's, `sources[].lockHolder` names the run and instance holding each source.
/// - `erp.getSyncHistory` (query, viewer): `{limit?: 1...1000 (default 20), source?}` → `{syncs}`.
/// - `erp.getSupportedDatabases` (query, viewer) → `{databases}`.
/// - `erp.getErrors` (query, viewer): `{source?, syncId?, reasonCode?, kind?, limit?: 1...500 (50), cursor?, includeResolved?}`
///   → `{errors, nextCursor}`: open quarantined rows (all with `includeResolved`) and run errors, newest first;
///   `nextCursor` (or `null`) pages on.
/// - `erp.getRun` (query, viewer): `{syncId}` → `{run, errors}`: one run's audit row and the entries it met last.
/// - `erp.reconcile` (mutation, admin): `{source, from?, to?}` (local days `YYYY-MM-DD`) → the
///   ``ReconciliationReport``, also stored in `tb_reconciliation`; a report with mismatches sends the
///   `reconciliationMismatch` webhook event.
/// - `erp.getReconciliation` (query, viewer): `{source?, id?}` → `{reconciliation}`: a stored report (by id, else
///   the latest of the source or of all), `null` when there is none.
/// - `erp.whoami` (query, viewer) → `{name, role}`: the caller's token (the dashboard shows admin actions to admins).
/// - `erp.subscriptionTicket` (mutation, viewer) → `{ticket, expiresAt}`: what `erp.onSyncProgress` is opened
///   with (``TokenAuthenticator``).
/// - `erp.onSyncProgress` (subscription, viewer): `{source?, lastEventId?}` → `started`, `progress` and
///   `finished` events of every run (of one source), each with an id to resume from.
///
/// The seed's ad-hoc connection configs (`type`, `host`, `password` … in the body) are refused with
/// `FORBIDDEN` unless `api.allowAdHocSources` is on, and then only for hosts in `api.allowedHosts`.
struct ErpProcedures: Sendable {
    let config: SyncConfig
    let auditLog: any AuditDatabase
    let runner: SyncRunner
    let notifier: WebhookNotifier
    let scheduler: Scheduler?
    let makeSource: SyncService.SourceFactory
    let availableSources: Set<DatabaseType>
    let authenticator: TokenAuthenticator

    func register(in router: inout TRPCRouter) {
        router.add("erp.testConnection", .mutation, role: .admin) { input, _ in try await testConnection(input) }
        router.add("erp.syncNow", .mutation, role: .admin) { input, caller in try await syncNow(input, caller: caller) }
        router.add("erp.reprocess", .mutation, role: .admin) { input, caller in try await reprocess(input, caller: caller) }
        router.add("erp.getStatus", .query, role: .viewer) { _, _ in try await status() }
        router.add("erp.getSyncHistory", .query, role: .viewer) { input, _ in try await history(input) }
        router.add("erp.getSupportedDatabases", .query, role: .viewer) { _, _ in
            ["databases": SupportedDatabase.catalog(available: availableSources)]
        }
        router.add("erp.getErrors", .query, role: .viewer) { input, _ in try await errors(input) }
        router.add("erp.getRun", .query, role: .viewer) { input, _ in try await run(input) }
        router.add("erp.whoami", .query, role: .viewer) { _, caller in ["name": caller.name, "role": caller.role.rawValue] }
        router.add("erp.reconcile", .mutation, role: .admin) { input, _ in try await reconcile(input) }
        router.add("erp.getReconciliation", .query, role: .viewer) { input, _ in try await reconciliation(input) }
        router.add("erp.subscriptionTicket", .mutation, role: .viewer) { _, caller in
            let (ticket, expiresAt) = authenticator.issueTicket(for: caller)
            return ["ticket": ticket, "expiresAt": expiresAt.isoMillis]
        }
        router.addSubscription("erp.onSyncProgress", role: .viewer) { input, _ in try onSyncProgress(input) }
    }

    /// The source an input names, or the ad-hoc source it describes when allowed.
    func resolveSource(_ input: SourceInput) throws -> (config: SourceConfig, isAdHoc: Bool) {
        if input.source != nil && input.hasConnectionFields {
            throw TRPCError(.badRequest, "input: give either source (a configured name) or an ad-hoc connection (type, host, …), not both")
        }
        if input.hasConnectionFields {
            guard config.api.allowAdHocSources else {
                throw TRPCError(.forbidden, "ad-hoc connection configs are disabled on this server (api.allowAdHocSources); send {\"source\": \"<name>\"} with a configured source: \(sourceNames)")
            }
            guard let host = input.host?.lowercased(), !host.isEmpty else {
                throw TRPCError(.badRequest, "input.host: is required for an ad-hoc source")
            }
            guard config.api.allowedHosts.contains(host) else {
                throw TRPCError(.forbidden, "input.host: '\(host)' is not in api.allowedHosts")
            }
            guard let typeName = input.type, let type = DatabaseType(rawValue: typeName), type != .sqlite else {
                let allowed = DatabaseType.allCases.filter { $0 != .sqlite }.map(\.rawValue).joined(separator: ", ")
                throw TRPCError(.badRequest, "input.type: expected one of \(allowed)")
            }
            guard let database = input.database, !database.isEmpty else { throw TRPCError(.badRequest, "input.database: is required") }
            try TRPCInput.check(input.port, "port", in: 1...65_535)
            let name = "adhoc-\(host)-\(database)".map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" }
            let source = SourceConfig(name: String(String(name).prefix(64)), type: type, host: host, port: input.port, database: database,
                                      username: input.username, password: input.password.map(Secret.init), ssl: input.ssl?.mode ?? .prefer)
            return (source, true)
        }
        guard let name = input.source else {
            throw TRPCError(.badRequest, "input.source: is required (one of: \(sourceNames))")
        }
        guard let source = config.source(named: name) else {
            throw TRPCError(.notFound, "input.source: no source named '\(name)' (known: \(sourceNames))")
        }
        return (source, false)
    }

    var sourceNames: String { config.sources.map(\.name).joined(separator: ", ") }

    // MARK: Procedures

    struct ConnectionOutcome: Encodable {
        var success: Bool
        var message: String
    }

    func testConnection(_ input: Data?) async throws -> ConnectionOutcome {
        let (source, _) = try resolveSource(try TRPCInput.decode(SourceInput.self, from: input, default: .empty))
        do {
            return ConnectionOutcome(success: true, message: try await SyncService.testConnection(source, makeSource: makeSource))
        } catch {
            return ConnectionOutcome(success: false, message: "\(error)")
        }
    }

    /// The seed's `syncNow` output.
    struct SyncNowOutput: Encodable {
        var success: Bool
        var message: String
        var data: Merged<ErpSyncResult, SeedRunFields>
    }

    /// The seed's run fields that ``ErpSyncResult`` does not have.
    struct SeedRunFields: Encodable {
        /// The run's start, ISO 8601.
        var timestamp: String
        var errorCount: Int
    }

    func syncNow(_ input: Data?, caller: Caller) async throws -> SyncNowOutput {
        let parsed = try TRPCInput.decode(SourceInput.self, from: input, default: .empty)
        try TRPCInput.check(parsed.batchSize, "batchSize", in: 100...10_000)
        try TRPCInput.check(parsed.daysBack, "daysBack", in: SyncOptions.daysBackRange)
        try TRPCInput.check(parsed.maxRecords, "maxRecords", in: 1...Int.max)
        let (source, isAdHoc) = try resolveSource(parsed)
        let overrides = SyncOverrides(isFull: parsed.fullSync ?? false, daysBack: parsed.daysBack, batchSize: parsed.batchSize,
                                      maxRecords: parsed.maxRecords)
        return try await runReported(SyncRunner.Request(source: source.name, adHocSource: isAdHoc ? source : nil, overrides: overrides,
                                                        triggeredBy: "api:\(caller.name)", isManual: true))
    }

    /// `erp.reprocess` input.
    struct ReprocessInput: StrictInput {
        enum CodingKeys: String, CodingKey, CaseIterable { case source, reason, keys }
        static let keys = CodingKeys.allCases.map(\.rawValue)
        var source: String
        var reason: String?
        var keys: [String]?
    }

    func reprocess(_ input: Data?, caller: Caller) async throws -> SyncNowOutput {
        guard input != nil else { throw TRPCError(.badRequest, "input.source: is required (one of: \(sourceNames))") }
        let parsed = try TRPCInput.decode(ReprocessInput.self, from: input, default: ReprocessInput(source: ""))
        try checkSource(parsed.source)
        let filter = ReprocessFilter(reason: parsed.reason, externalIds: parsed.keys)
        return try await runReported(SyncRunner.Request(source: parsed.source, adHocSource: nil, overrides: SyncOverrides(reprocess: filter),
                                                        triggeredBy: "api:\(caller.name)", isManual: true))
    }

    /// Runs `request` and answers as `syncNow` does; `CONFLICT` when the source is busy here or in another process.
    private func runReported(_ request: SyncRunner.Request) async throws -> SyncNowOutput {
        let result: ErpSyncResult
        do {
            result = try await runner.run(request)
        } catch .alreadyRunning(let name, let triggeredBy) {
            throw TRPCError(.conflict, "source '\(name)' is already syncing (started by \(triggeredBy)); try again when it ends")
        } catch .shuttingDown {
            throw TRPCError(.conflict, "the server is shutting down; no new syncs are started")
        }
        if let locked = result.errors.first(where: { $0.code == .locked }) {
            throw TRPCError(.conflict, locked.message)
        }
        let message = "\(result.syncType.rawValue) sync of \(result.source) \(result.status.rawValue): \(result.recordsFetched) fetched, "
            + "\(result.recordsInserted) inserted, \(result.recordsUpdated) updated, \(result.recordsRejected) rejected"
            + (result.errors.isEmpty ? "" : "; " + result.errors.map { "\($0.code): \($0.message)" }.joined(separator: "; "))
        return SyncNowOutput(success: result.success, message: message,
                             data: Merged(result, SeedRunFields(timestamp: result.startTime, errorCount: result.errors.count)))
    }

    struct StatusOutput: Encodable {
        /// The seed's last-run summary.
        struct LastSync: Encodable {
            var timestamp: String
            var isManual: Bool
            var recordsInserted: Int
            var recordsSkipped: Int
            var duration: Int
            var syncId: String
            var source: String
            var status: SyncStatus
        }
        struct NextSync: Encodable {
            /// ISO 8601.
            var time: String
            var description: String
            var source: String
            var syncType: SyncType
        }
        struct RunningSync: Encodable {
            var source: String
            var syncType: SyncType
            var triggeredBy: String
            var startedAt: String
            var progress: RunEvent.ProgressJSON?
        }
        struct SourceStatus: Encodable {
            var source: String
            var databaseType: DatabaseType
            var running: Bool
            var lastSync: ErpSyncResult?
            var nextScheduledSyncs: [NextSync]
            /// The holder of the source's run lock (lease) on any instance sharing the destination: its `syncId`,
            /// instance id, pid and host (and on PostgreSQL its token and expiry); absent when free.
            var lockHolder: String?
            /// Quarantined rows not loaded since.
            var openQuarantine: Int
            /// Now − the cursor time of the latest checkpoint, in seconds; absent for integer cursors.
            var cursorLagSeconds: Int64?
        }
        /// This server (`serve.instanceId`): `runningSyncs` are its runs; `sources[].lockHolder` shows any instance's.
        var instanceId: String
        var running: Bool
        var runningSyncs: [RunningSync]
        /// `null` before the first finished run (the seed's `| null`).
        var lastSync: LastSync?
        /// `null` when the scheduler is off.
        var nextScheduledSync: NextSync?
        var supportedDatabases: [DatabaseType]
        var sources: [SourceStatus]

        enum CodingKeys: String, CodingKey {
            case instanceId, running, runningSyncs, lastSync, nextScheduledSync, supportedDatabases, sources
        }

        /// Writes `lastSync` and `nextScheduledSync` as `null` when absent, as the seed's type declares them.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(instanceId, forKey: .instanceId)
            try container.encode(running, forKey: .running)
            try container.encode(runningSyncs, forKey: .runningSyncs)
            try container.encode(lastSync, forKey: .lastSync)
            try container.encode(nextScheduledSync, forKey: .nextScheduledSync)
            try container.encode(supportedDatabases, forKey: .supportedDatabases)
            try container.encode(sources, forKey: .sources)
        }
    }

    func status() async throws -> StatusOutput {
        let active = await runner.activeRuns()
        let running = active.map { run in
            StatusOutput.RunningSync(source: run.source, syncType: run.syncType, triggeredBy: run.triggeredBy, startedAt: run.startedAt.isoMillis,
                                     progress: runner.progress(source: run.source).map(RunEvent.ProgressJSON.init))
        }
        let next = (scheduler?.nextRuns() ?? []).map { run in
            StatusOutput.NextSync(time: run.dueAt.isoMillis, description: "\(run.syncType == .full ? "full" : "incremental") sync of \(run.source)",
                                  source: run.source, syncType: run.syncType)
        }
        let recent = try await auditLog.history(source: nil, limit: 50)
        let last = recent.first { $0.result.status != .running }
        var sources: [StatusOutput.SourceStatus] = []
        for source in config.sources {
            let recentRuns = try await auditLog.history(source: source.name, limit: 5)
            let lastRun = recentRuns.first { $0.result.status != .running }
            let cursor = recentRuns.first { $0.result.cursorTo != nil }?.result.cursorTo
            let lag = ServerMetrics.cursorTime(cursor, zone: ZoneConverter(zone: source.timezone)).map { Instant.now.seconds - $0.seconds }
            sources.append(.init(source: source.name, databaseType: source.type, running: active.contains { $0.source == source.name },
                                 lastSync: lastRun?.result, nextScheduledSyncs: next.filter { $0.source == source.name },
                                 lockHolder: try await auditLog.lockHolder(source: source.name),
                                 openQuarantine: try await auditLog.openQuarantine(source: source.name).count, cursorLagSeconds: lag))
        }
        return StatusOutput(
            instanceId: config.lease.instanceId, running: !active.isEmpty, runningSyncs: running,
            lastSync: last.map { entry in
                .init(timestamp: entry.result.startTime, isManual: entry.isManual, recordsInserted: entry.result.recordsInserted,
                      recordsSkipped: entry.result.recordsSkipped, duration: entry.result.duration, syncId: entry.result.syncId,
                      source: entry.result.source, status: entry.result.status)
            },
            nextScheduledSync: next.first, supportedDatabases: availableSources.sorted { $0.rawValue < $1.rawValue }, sources: sources)
    }

    /// One history row: the run's ``ErpSyncResult`` plus the seed's `timestamp`, `triggeredBy`, `isManual`.
    struct HistoryFields: Encodable {
        var timestamp: String
        var triggeredBy: String
        var isManual: Bool
    }

    func history(_ input: Data?) async throws -> [String: [Merged<ErpSyncResult, HistoryFields>]] {
        let parsed = try TRPCInput.decode(HistoryInput.self, from: input, default: HistoryInput())
        try TRPCInput.check(parsed.limit, "limit", in: 1...1000)
        try checkSource(parsed.source)
        let entries = try await auditLog.history(source: parsed.source, limit: parsed.limit ?? 20)
        return ["syncs": entries.map { entry in
            Merged(entry.result, HistoryFields(timestamp: entry.result.startTime, triggeredBy: entry.triggeredBy, isManual: entry.isManual))
        }]
    }
}

extension ErpProcedures {
    /// A page of `erp.getErrors`.
    struct ErrorsOutput: Encodable {
        var errors: [QuarantineEntry]
        /// The `cursor` of the next page; `null` on the last page.
        var nextCursor: Int64?

        enum CodingKeys: String, CodingKey {
            case errors, nextCursor
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(errors, forKey: .errors)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    func errors(_ input: Data?) async throws -> ErrorsOutput {
        let parsed = try TRPCInput.decode(ErrorsInput.self, from: input, default: ErrorsInput())
        try TRPCInput.check(parsed.limit, "limit", in: 1...500)
        try TRPCInput.check(parsed.cursor, "cursor", in: 1...Int.max)
        try checkSource(parsed.source)
        if let kind = parsed.kind, !["record", "run"].contains(kind) {
            throw TRPCError(.badRequest, "input.kind: expected record or run, got '\(kind)'")
        }
        let limit = parsed.limit ?? 50
        // One more than asked tells whether a next page exists.
        let entries = try await auditLog.quarantine(QuarantineFilter(
            source: parsed.source, syncId: parsed.syncId, reasonCode: parsed.reasonCode, kind: parsed.kind,
            beforeId: parsed.cursor.map(Int64.init), limit: limit + 1, includeResolved: parsed.includeResolved ?? false))
        let page = Array(entries.prefix(limit))
        return ErrorsOutput(errors: page, nextCursor: entries.count > limit ? page.last?.id : nil)
    }

    /// `erp.getRun`'s output.
    struct RunOutput: Encodable {
        var run: Merged<ErpSyncResult, HistoryFields>
        var errors: [QuarantineEntry]
    }

    /// The most entries `erp.getRun` lists; `erp.getErrors` with `syncId` pages through all.
    static let runErrorLimit = 500

    func run(_ input: Data?) async throws -> RunOutput {
        guard input != nil else { throw TRPCError(.badRequest, "input.syncId: is required") }
        let parsed = try TRPCInput.decode(RunInput.self, from: input, default: RunInput(syncId: ""))
        guard let entry = try await auditLog.run(syncId: parsed.syncId) else {
            throw TRPCError(.notFound, "input.syncId: no run '\(parsed.syncId)' in the audit log")
        }
        let errors = try await auditLog.quarantine(QuarantineFilter(syncId: parsed.syncId, limit: Self.runErrorLimit))
        return RunOutput(run: Merged(entry.result, HistoryFields(timestamp: entry.result.startTime, triggeredBy: entry.triggeredBy,
                                                                  isManual: entry.isManual)),
                         errors: errors)
    }

    /// The run events after the input's `lastEventId` (kept ones first, ``RunEventBroadcaster``), then live ones,
    /// of one source or all.
    func onSyncProgress(_ input: Data?) throws -> TRPCRouter.TrackedStream {
        let parsed = try TRPCInput.decode(ProgressInput.self, from: input, default: ProgressInput())
        try checkSource(parsed.source)
        let events = runner.events
        let deliveries = events.subscribe(after: parsed.lastEventId.map(events.sequence(resumingAfter:)))
        let (stream, continuation) = TRPCRouter.TrackedStream.makeStream()
        let forward = Task {
            for await delivery in deliveries {
                guard let sequence = delivery.sequence, parsed.source == nil || delivery.event.source == parsed.source else { continue }
                continuation.yield((events.eventID(sequence), delivery.event.subscriptionJSON()))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in forward.cancel() }
        return stream
    }
}

extension ErpProcedures {
    func reconcile(_ input: Data?) async throws -> ReconciliationReport {
        guard input != nil else { throw TRPCError(.badRequest, "input.source: is required (one of: \(sourceNames))") }
        let parsed = try TRPCInput.decode(ReconcileInput.self, from: input, default: ReconcileInput(source: ""))
        try checkSource(parsed.source)
        for (name, value) in [("from", parsed.from), ("to", parsed.to)] {
            if let value, Reconciler.validDay(value) == nil { throw TRPCError(.badRequest, "input.\(name): expected a date YYYY-MM-DD, got '\(value)'") }
        }
        if let from = parsed.from, let to = parsed.to, from > to { throw TRPCError(.badRequest, "input.to: '\(to)' is before input.from '\(from)'") }
        do {
            let report = try await Reconciler.reconcile(source: parsed.source, config: config, store: auditLog, from: parsed.from, to: parsed.to,
                                                        makeSource: makeSource)
            notifier.notify(report)
            return report
        } catch let failure as SyncFailure {
            // The source or the audit database failed, not this server: the caller is told which and why.
            throw TRPCError(.serviceUnavailable, "reconcile \(parsed.source): \(failure.code.rawValue): \(failure.message)")
        }
    }

    /// `erp.getReconciliation`'s output: `reconciliation` is `null` when none is stored.
    struct ReconciliationOutput: Encodable {
        var reconciliation: ReconciliationReport?

        enum CodingKeys: String, CodingKey {
            case reconciliation
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(reconciliation, forKey: .reconciliation)
        }
    }

    func reconciliation(_ input: Data?) async throws -> ReconciliationOutput {
        let parsed = try TRPCInput.decode(ReconciliationInput.self, from: input, default: ReconciliationInput())
        try checkSource(parsed.source)
        return ReconciliationOutput(reconciliation: try await auditLog.reconciliation(source: parsed.source, id: parsed.id))
    }
}

/// Two values encoded into one JSON object (the keys of both; `second` wins on a clash).
struct Merged<First: Encodable, Second: Encodable>: Encodable {
    var first: First
    var second: Second

    init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    func encode(to encoder: any Encoder) throws {
        try first.encode(to: encoder)
        try second.encode(to: encoder)
    }
}
