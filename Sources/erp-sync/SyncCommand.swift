import ArgumentParser
import SyncCore

/// `erp-sync sync`: runs a sync of one source or all of them.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync one source (--source) or all (--all) into the destination.",
        discussion: "Incremental by default: from the saved checkpoint, re-reading the lookback window when its rows changed. --full re-reads the whole stream and marks rows that vanished at the source as deleted."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source to sync (its name in the config).")
    var source: String?

    @Flag(help: "Sync every configured source (--parallel of them at a time).")
    var all = false

    @Option(help: "With --all: how many sources run at once, 1...64 (default 2: one source's reads and mapping overlap another's writes).")
    var parallel: Int?

    @Flag(help: "Full sync: re-read the whole stream and detect rows deleted at the source.")
    var full = false

    @Option(help: "Days back for a first incremental run without checkpoint, 0...36500 (0 = whole history).")
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
        if let daysBack, !SyncOptions.daysBackRange.contains(daysBack) { throw ValidationError("--days-back must be between 0 and 36500") }
        if let parallel, !(1...64).contains(parallel) { throw ValidationError("--parallel must be between 1 and 64") }
        if parallel != nil && !all { throw ValidationError("--parallel goes with --all (one source runs alone)") }
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
        let results = await Self.runAll(names, service: service, overrides: overrides, parallel: parallel ?? 2)
        if global.json {
            try printJSON(all ? AnyEncodableResults.many(results) : AnyEncodableResults.one(results[0]))
        } else {
            for result in results { Output.printResult(result) }
            if dryRun { print("dry run: rows were read and validated; nothing was written") }
        }
        await destination.close()
        let code = ExitCodes.code(for: results, failOnReject: failOnReject)
        if code != .success { throw code }
    }

    /// Runs the named sources, `parallel` at a time, each with a progress display on a terminal.
    /// - Returns: the results in the order of `names`.
    static func runAll(_ names: [String], service: SyncService, overrides: SyncOverrides, parallel: Int = 1) async -> [ErpSyncResult] {
        await withTaskGroup(of: (Int, ErpSyncResult).self) { group in
            var results = [ErpSyncResult?](repeating: nil, count: names.count)
            var next = 0
            func start() {
                let index = next, name = names[index]
                next += 1
                group.addTask {
                    let progress = ProgressDisplay(source: name)
                    let result = await service.sync(source: name, overrides: overrides, onProgress: { progress.update($0) })
                    progress.finish()
                    return (index, result)
                }
            }
            while next < min(parallel, names.count) { start() }
            for await (index, result) in group {
                results[index] = result
                if next < names.count { start() }
            }
            return results.compactMap { $0 }
        }
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
