import ArgumentParser
import SyncCore

/// `erp-sync test-connection`: connects to sources and reads one row of each stream.
struct TestConnectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-connection",
        abstract: "Connect to the destination and to a source (or all), reading one row of each stream, to catch a bad password or a missing table/column now."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source to test; all sources when omitted.")
    var source: String?

    /// One database's answer (`source` is `destination` for the audit database).
    struct Outcome: Encodable {
        var source: String
        var success: Bool
        var message: String
    }

    func run() async throws {
        let config = try global.loadConfig()
        let names = source.map { [$0] } ?? config.sources.map(\.name)
        var outcomes: [Outcome] = []
        var failureCodes: [SyncFailure.Code?] = []
        do {
            let destination = try await Connectors.destination(config.destination, lease: config.lease)
            do {
                try await destination.migrate()
                await destination.close()
            } catch {
                await destination.close()
                throw error
            }
            outcomes.append(Outcome(source: "destination", success: true, message: "\(config.destination.typeName) audit database reachable, schema up to date"))
        } catch {
            outcomes.append(Outcome(source: "destination", success: false, message: "\(error)"))
            failureCodes.append((error as? SyncFailure)?.code)
        }
        for name in names {
            guard let sourceConfig = config.source(named: name) else {
                printError("no source named '\(name)' in \(global.config) (known: \(config.sources.map(\.name).joined(separator: ", ")))")
                throw ExitCodes.config
            }
            do {
                outcomes.append(Outcome(source: name, success: true, message: try await SyncService.testConnection(sourceConfig, makeSource: Connectors.source)))
            } catch {
                outcomes.append(Outcome(source: name, success: false, message: "\(error)"))
                failureCodes.append((error as? SyncFailure)?.code)
            }
        }
        if global.json {
            try printJSON(outcomes)
        } else {
            for outcome in outcomes { print("\(outcome.success ? "ok    " : "FAILED") \(outcome.source): \(outcome.message)") }
        }
        if !failureCodes.isEmpty { throw ExitCodes.code(forFailures: failureCodes) }
    }
}
