import ArgumentParser
import SyncCore

/// `erp-sync databases`: the source types, their default ports and whether this build can read them.
struct DatabasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "databases",
                                                    abstract: "List source database types, the driver each needs and whether this build reads them.")

    @Flag(help: "Print JSON (the seed's getSupportedDatabases shape).")
    var json = false

    /// The catalogue of this build.
    static var all: [SupportedDatabase] { SupportedDatabase.catalog(available: Connectors.availableSources) }

    func run() async throws {
        if json { return try printJSON(["databases": Self.all]) }
        var rows = [["type", "name", "driver", "port", "available in this build"]]
        for info in Self.all {
            rows.append([info.type.rawValue, info.name, info.driver, info.port == 0 ? "-" : "\(info.port)",
                         Connectors.availableSources.contains(info.type) ? "yes" : "not in this build"])
        }
        print(Output.table(rows))
        print("")
        for info in Self.all { print("\(info.type.rawValue): \(info.description)") }
    }
}
