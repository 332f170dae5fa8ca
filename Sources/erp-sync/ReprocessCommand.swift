import ArgumentParser
import SyncCore

/// `erp-sync reprocess`: re-reads open quarantined rows from the source by primary key.
struct ReprocessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reprocess",
        abstract: "Re-read the open quarantined rows of a source by primary key and load those that are now valid.",
        discussion: "For rows fixed at the source whose cursor no incremental run will reach again (a corrected date behind the "
            + "checkpoint). Rows still invalid stay quarantined with their current reason. Runs under the source's lock, "
            + "records its own audit row (syncType REPROCESS) and never moves the checkpoint."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source whose quarantine to re-read (its name in the config).")
    var source: String

    @Option(help: "Only entries with this reason code (e.g. ZERO_DATE, INVALID_AMOUNT).")
    var reason: String?

    @Option(name: .customLong("key"), help: "Only the entry of this external id (repeat for several).")
    var keys: [String] = []

    func run() async throws {
        let config = try global.loadConfig()
        guard config.source(named: source) != nil else {
            printError("no source named '\(source)' in \(global.config) (known: \(config.sources.map(\.name).joined(separator: ", ")))")
            throw ExitCodes.config
        }
        let destination = try await global.openDestination(config)
        let service = SyncService(config: config, destination: destination, makeSource: Connectors.source)
        let filter = ReprocessFilter(reason: reason, externalIds: keys.isEmpty ? nil : keys)
        let results = await SyncCommand.runAll([source], service: service, overrides: SyncOverrides(reprocess: filter))
        if global.json {
            try printJSON(results[0])
        } else {
            Output.printResult(results[0])
        }
        await destination.close()
        let code = ExitCodes.code(for: results)
        if code != .success { throw code }
    }
}
