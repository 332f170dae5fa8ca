import ArgumentParser
import Foundation
import SyncCore

/// `erp-sync errors`: quarantined rows and run errors from `tb_sync_errors`.
struct ErrorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "errors",
        abstract: "List open quarantined rows (with their reason and raw values) and run errors, newest first."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "Only errors of this source.")
    var source: String?

    @Option(name: .shortAndLong, help: "How many entries, 1...10000.")
    var limit = 50

    @Flag(help: "Also list entries already resolved (a valid version loaded later, or superseded by a newer rejection).")
    var includeResolved = false

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
    }

    func run() async throws {
        let config = try global.loadConfig()
        let destination = try await global.openDestination(config)
        let entries = try await destination.quarantine(QuarantineFilter(source: source, limit: limit, includeResolved: includeResolved))
        await destination.close()
        try global.requireKnownSource(source, in: config, recorded: !entries.isEmpty)
        if global.json { return try printJSON(entries.map(EntryJSON.init)) }
        if entries.isEmpty { return print(includeResolved ? "no quarantined rows or run errors" : "no open quarantined rows or run errors") }
        var rows = [["last seen", "source", "kind", "reason", "externalId", "seen", "status", "message", "raw"]]
        for entry in entries {
            let status = entry.resolvedAt.map { "\(entry.resolution ?? "resolved") \($0)" } ?? "open"
            rows.append([entry.lastSeenAt, entry.source, entry.kind, entry.reasonCode, entry.externalId ?? "-", "\(entry.occurrences)x",
                         status, entry.message, entry.rawJSON ?? ""])
        }
        print(Output.table(rows))
    }
}

/// A ``QuarantineEntry`` as `errors --json` prints it: `rawJSON` is the row's values as a JSON object (column
/// name to exact text or null, as ``RejectedRow/rawJSON`` writes them), not a string holding JSON; absent for
/// run errors.
struct EntryJSON: Encodable {
    let entry: QuarantineEntry

    private enum CodingKeys: String, CodingKey { case rawJSON }

    func encode(to encoder: any Encoder) throws {
        try entry.encode(to: encoder)
        guard let text = entry.rawJSON, let raw = try? JSONDecoder().decode([String: String?].self, from: Data(text.utf8)) else { return }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(raw, forKey: .rawJSON)
    }
}
