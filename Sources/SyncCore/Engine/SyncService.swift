public import Logging

/// Per-run changes to the configured options (CLI flags, API input).
public struct SyncOverrides: Sendable, Equatable {
    /// `FULL` instead of `INCREMENTAL`.
    public var isFull = false
    /// Replaces `defaults.daysBack` (days, ≥ 0).
    public var daysBack: Int?
    /// Replaces `defaults.batchSize` (100 ... 10000).
    public var batchSize: Int?
    /// Replaces `defaults.maxRecords` (≥ 1).
    public var maxRecords: Int?
    /// Read and validate only; write nothing.
    public var isDryRun = false
    /// A `REPROCESS` run of these open quarantine entries instead of a sync (``SyncType/reprocess``).
    public var reprocess: ReprocessFilter?

    /// No overrides: an incremental run with the configured options.
    public init(isFull: Bool = false, daysBack: Int? = nil, batchSize: Int? = nil, maxRecords: Int? = nil, isDryRun: Bool = false,
                reprocess: ReprocessFilter? = nil) {
        self.reprocess = reprocess
        self.isFull = isFull
        self.daysBack = daysBack
        self.batchSize = batchSize
        self.maxRecords = maxRecords
        self.isDryRun = isDryRun
    }
}

/// The product's operations on configured sources, shared by the CLI and the server: sync a source by
/// name, test a source's connection and stream.
public struct SyncService: Sendable {
    /// Opens a connection to a configured source (the composition root supplies the connectors).
    public typealias SourceFactory = @Sendable (SourceConfig) async throws -> any Source

    public let config: SyncConfig
    public let destination: any Destination
    let makeSource: SourceFactory
    let logger: Logger

    /// Creates the service.
    public init(config: SyncConfig, destination: any Destination, logger: Logger = Logger(label: "erp-sync"), makeSource: @escaping SourceFactory) {
        self.config = config
        self.destination = destination
        self.makeSource = makeSource
        self.logger = logger
    }

    /// Syncs the source called `name`.
    /// - Parameters:
    ///   - slot: for a scheduled run, its slot (``ScheduleSlot``): the run starts only if no process ran it yet.
    ///   - afterCommit: see ``SyncEngine/AfterCommit``.
    ///   - onProgress: live figures after each batch.
    /// - Returns: the run's result; an unknown name gives a `FAILED` result with code `UNKNOWN_SOURCE`.
    public func sync(source name: String, overrides: SyncOverrides = SyncOverrides(), triggeredBy: String = "cli", isManual: Bool = true,
                     slot: ScheduleSlot? = nil, afterCommit: SyncEngine.AfterCommit? = nil,
                     onProgress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async -> ErpSyncResult {
        guard let source = config.source(named: name) else {
            let now = Instant.now.isoMillis
            return ErpSyncResult(syncId: "", source: name, databaseType: .sqlite, syncType: overrides.isFull ? .full : .incremental,
                                 status: .failed, success: false, startTime: now, endTime: now, duration: 0, recordsFetched: 0,
                                 recordsProcessed: 0, recordsInserted: 0, recordsUpdated: 0, recordsUnchanged: 0, recordsSkipped: 0,
                                 recordsRejected: 0, recordsDeleted: 0, hasMore: false, cursorFrom: nil, cursorTo: nil,
                                 errors: [SyncErrorInfo(code: .unknownSource, message: "no source named '\(name)' in the configuration", retryable: false)])
        }
        var options = config.defaults
        if let daysBack = overrides.daysBack { options.daysBack = daysBack }
        if let batchSize = overrides.batchSize { options.batchSize = batchSize }
        if let maxRecords = overrides.maxRecords { options.maxRecords = maxRecords }
        let syncType: SyncType = overrides.reprocess != nil ? .reprocess : overrides.isFull ? .full : .incremental
        var request = SyncRequest(source: source, syncType: syncType, options: options, triggeredBy: triggeredBy, isManual: isManual,
                                  isDryRun: overrides.isDryRun)
        if let filter = overrides.reprocess { request.reprocess = filter }
        request.slot = slot
        let engine = SyncEngine(destination: destination, logger: logger, afterCommit: afterCommit)
        return await engine.run(request, openSource: { try await makeSource(source) }, onProgress: onProgress)
    }

    /// Connects to a source and reads one row of its stream, so a missing table or column shows now rather
    /// than in the first sync. Needs no destination.
    /// - Returns: the server description.
    /// - Throws: ``SyncFailure`` (`SOURCE_UNAVAILABLE`, `SOURCE_QUERY_FAILED` …).
    public static func testConnection(_ config: SourceConfig, makeSource: SourceFactory) async throws -> String {
        let source = try await makeSource(config)
        do {
            let description = try await source.testConnection()
            _ = try await source.read(PageRequest(.ordered(from: .start, upTo: nil), limit: 1), of: config.stream)
            await source.close()
            return description
        } catch {
            await source.close()
            throw error
        }
    }
}
