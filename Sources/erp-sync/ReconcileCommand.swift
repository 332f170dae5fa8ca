import ArgumentParser
import SyncCore

/// `erp-sync reconcile`: compares a source with `tb_sales`, per pdv and local day.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare a source with the audit database, per pdv and local day.",
        discussion: """
            Counts and sums the amounts at the source (one aggregate query) and in tb_sales, per pdv and day in the \
            source's time zone: source = loaded + quarantined + not yet synced (rows past the checkpoint). Days that \
            differ are drilled down to rows: missing, extra and different external ids. The report is stored in \
            tb_reconciliation. Exit code 3 when a bucket differs.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source to reconcile (its name in the config).")
    var source: String

    @Option(help: "First local day to report, YYYY-MM-DD (default: all).")
    var from: String?

    @Option(help: "Last local day to report, YYYY-MM-DD (default: all).")
    var to: String?

    func validate() throws {
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, Reconciler.validDay(value) == nil { throw ValidationError("\(name) must be a date YYYY-MM-DD, got '\(value)'") }
        }
        if let from, let to, from > to { throw ValidationError("--from \(from) is after --to \(to)") }
    }

    func run() async throws {
        let config = try global.loadConfig()
        guard config.source(named: source) != nil else {
            printError("no source named '\(source)' in \(global.config) (known: \(config.sources.map(\.name).joined(separator: ", ")))")
            throw ExitCodes.config
        }
        let destination = try await global.openDestination(config)
        let report: ReconciliationReport
        do {
            report = try await Reconciler.reconcile(source: source, config: config, store: destination, from: from, to: to,
                                                    makeSource: Connectors.source)
        } catch let failure as SyncFailure {
            await destination.close()
            printError("reconcile \(source): \(failure.message)")
            throw ExitCodes.code(forFailures: [failure.code])
        }
        await destination.close()
        if global.json {
            try printJSON(report)
        } else {
            Output.printReconciliation(report)
        }
        if !report.isMatch { throw ExitCodes.mismatch }
    }
}
