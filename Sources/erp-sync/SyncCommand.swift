import ArgumentParser
import SyncCore

/// `erp-sync sync`: runs a sync of one source or all of them.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync one source (--source) or all (--all) into the destination.",
        discussion: "Incremental by default: from the saved checkpoint, re-reading the lookback window. --full re-reads the whole stream and marks rows that vanished at the source as deleted."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source to sync (its name in the config).")
    var source: String?

    @Flag(help: "Sync every configured source, one after the other.")
    var all = false

    @Flag(help: "Full sync: re-read the whole stream and detect rows deleted at the source.")
    var full = false

    @Option(help: "Days back for a first incremental run without checkpoint (0 = whole history).")
    var daysBack: Int?

    @Option(help: "Rows per batch, 100...10000 (default from config: 1000).")
    var batchSize: Int?

    @Option(help: "Most rows to read in this run; the run then ends with hasMore = true.")
    var maxRecords: Int?

    @Flag(help: "Read, map and validate without writing anything.")
    var dryRun = false

    @Flag(help: "Exit 65 (EX_DATAERR) when a run quarantined rows, for cron and CI (the rows still go to tb_sync_errors).")
    var failOnReject = false

    func validate() throws {
        guard (source != nil) != all else { throw ValidationError("give either --source NAME or --all") }
        if let batchSize, !(100...10_000).contains(batchSize) { throw ValidationError("--batch-size must be between 100 and 10000") }
        if let maxRecords, maxRecords < 1 { throw ValidationError("--max-records must be at least 1") }
        if let daysBack, daysBack < 0 { throw ValidationError("--days-back must be 0 or more") }
    }

    func run() async throws {
        let config = try global.loadConfig()
        let names = all ? config.sources.map(\.name) : [source!]
        for name in names where config.source(named: name) == nil {
            printError("no source named '\(name)' in \(global.config) (known: \(config.sources.map(\.name).joined(separator: ", ")))")
            throw ExitCodes.config
        }
        let destination = try await global.openDestination(config)
        let service = SyncService(config: config, destination: destination, makeSource: Connectors.source)
        let overrides = SyncOverrides(isFull: full, daysBack: daysBack, batchSize: batchSize, maxRecords: maxRecords, isDryRun: dryRun)
        let results = await Self.runAll(names, service: service, overrides: overrides, json: global.json)
        if global.json {
            try printJSON(all ? AnyEncodableResults.many(results) : AnyEncodableResults.one(results[0]))
        } else {
            for result in results { await Output.printResult(result, audit: dryRun ? nil : destination) }
            if dryRun { print("dry run: rows were read and validated; nothing was written") }
        }
        await destination.close()
        let code = ExitCodes.code(for: results, failOnReject: failOnReject)
        if code != .success { throw code }
    }

    /// Runs the named sources one after the other with a progress display on a terminal.
    static func runAll(_ names: [String], service: SyncService, overrides: SyncOverrides, json: Bool) async -> [ErpSyncResult] {
        var results: [ErpSyncResult] = []
        for name in names {
            let progress = ProgressDisplay(source: name)
            results.append(await service.sync(source: name, overrides: overrides, onProgress: { progress.update($0) }))
            progress.finish()
        }
        return results
    }
}

/// One result for `--source`, an array for `--all`.
enum AnyEncodableResults: Encodable {
    case one(ErpSyncResult)
    case many([ErpSyncResult])

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .one(let result): try result.encode(to: encoder)
        case .many(let results): try results.encode(to: encoder)
        }
    }
}
