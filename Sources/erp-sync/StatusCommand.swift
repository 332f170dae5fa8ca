import ArgumentParser
import SyncCore

/// `erp-sync status`: per source, the last run, the checkpoint, the lock and what `tb_sales` holds.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each source's last run, checkpoint, lock and row totals."
    )

    @OptionGroup var global: GlobalOptions

    /// The status of one source.
    struct SourceStatus: Encodable {
        var source: String
        var databaseType: DatabaseType
        var running: String?
        var checkpoint: String?
        var fullPassInProgress: Bool
        var lastSync: ErpSyncResult?
        var totals: SourceTotals
    }

    func run() async throws {
        let config = try global.loadConfig()
        let destination = try await global.openDestination(config)
        var statuses: [SourceStatus] = []
        for source in config.sources {
            let state = try await destination.loadState(source: source.name)
            statuses.append(SourceStatus(
                source: source.name, databaseType: source.type, running: try await destination.lockHolder(source: source.name),
                checkpoint: state.checkpoint?.summary, fullPassInProgress: state.fullPass != nil,
                lastSync: try await destination.history(source: source.name, limit: 1).first?.result,
                totals: try await destination.totals(source: source.name)))
        }
        await destination.close()
        if global.json { return try printJSON(statuses) }
        var rows = [["source", "type", "last sync", "status", "inserted", "rejected", "rows", "checkpoint", "running"]]
        for status in statuses {
            rows.append([status.source, status.databaseType.rawValue, status.lastSync?.startTime ?? "never",
                         status.lastSync?.status.rawValue ?? "-", (status.lastSync?.recordsInserted ?? 0).formatted(),
                         (status.lastSync?.recordsRejected ?? 0).formatted(), status.totals.rows.formatted(),
                         (status.checkpoint ?? "-") + (status.fullPassInProgress ? " (full pass in progress)" : ""),
                         status.running ?? "no"])
        }
        print(Output.table(rows))
    }
}
