import ArgumentParser
#if ODBC
import ODBCConnector
#endif
import SyncCore

/// `erp-sync sql --source NAME`: prints every statement a source will run, without connecting.
struct SQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Print every statement a source will run (pages, lookback and its fingerprint, NULL sweep, estimate, deleted expression) in its dialect, without connecting.",
        discussion: "For a DBA to review before granting access. Parameters are shown as the dialect's markers (?, $1); their values only "
            + "ever travel as bound parameters. ODBC sources also show the session set-up and the connection string without the password."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "The source whose statements to print.")
    var source: String

    @Option(help: "Rows per page, 100...10000 (default from config: 1000).")
    var batchSize: Int?

    func validate() throws {
        if let batchSize, !(100...10_000).contains(batchSize) { throw ValidationError("--batch-size must be between 100 and 10000") }
    }

    func run() async throws {
        let config = try global.loadConfig()
        guard let source = config.source(named: source) else {
            printError("no source named '\(self.source)' in \(global.config) (sources: \(config.sources.map(\.name).joined(separator: ", ")))")
            throw ExitCodes.config
        }
        print(Self.listing(source, batchSize: batchSize ?? config.defaults.batchSize))
    }

    /// The listing: a header naming the source and dialect, then each statement under a `--` comment.
    static func listing(_ source: SourceConfig, batchSize: Int) -> String {
        let query = StreamQuery(stream: source.stream, dialect: source.sqlDialect)
        var lines = ["-- source \(source.name): type \(source.type.rawValue), dialect \(query.dialect.name), \(batchSize) rows per page"]
        #if ODBC
        if [.sqlserver, .oracle, .odbc].contains(source.type) {
            let settings = ODBCSettings(source: source)
            lines.append("-- ODBC connection string: \(settings.redactedConnectionString)")
            for statement in settings.sessionSetup { lines += ["", "-- session set-up, once per connection", statement + ";"] }
        }
        #endif
        if let deleted = source.stream.deleted {
            lines.append("-- deleted at the source when true (selected as the last column): \(StreamQuery.deletedExpression(deleted, query.dialect))")
        }
        for reviewed in query.reviewStatements(limit: batchSize) {
            let binds = reviewed.statement.binds.count
            lines += ["", "-- \(reviewed.purpose)\(binds > 0 ? ", \(binds) parameter\(binds == 1 ? "" : "s")" : "")", reviewed.statement.sql + ";"]
        }
        return lines.joined(separator: "\n")
    }
}
