import ArgumentParser
import SyncCore

/// `erp-sync history`: the latest runs from `tb_erp_sync_audit`.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "List the latest sync runs, newest first.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "Only runs of this source.")
    var source: String?

    @Option(name: .shortAndLong, help: "How many runs, 1...1000.")
    var limit = 20

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        let config = try global.loadConfig()
        let destination = try await global.openDestination(config)
        let entries = try await destination.history(source: source, limit: limit)
        await destination.close()
        try global.requireKnownSource(source, in: config, recorded: !entries.isEmpty)
        if global.json { return try printJSON(entries) }
        var rows = [["started", "source", "type", "status", "ms", "fetched", "inserted", "updated", "unchanged", "skipped", "rejected",
                     "deleted", "by"]]
        for entry in entries {
            let r = entry.result
            rows.append([r.startTime, r.source, r.syncType.rawValue, r.status.rawValue, r.duration.formatted(), r.recordsFetched.formatted(),
                         r.recordsInserted.formatted(), r.recordsUpdated.formatted(), r.recordsUnchanged.formatted(),
                         r.recordsSkipped.formatted(), r.recordsRejected.formatted(), r.recordsDeleted.formatted(), entry.triggeredBy])
        }
        print(Output.table(rows))
    }
}
