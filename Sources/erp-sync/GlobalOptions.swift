import ArgumentParser
import Foundation
import Logging
import SyncCore
import SyncServer

/// Options every command takes: ``ConfigOptions`` and `--json`.
struct GlobalOptions: ParsableArguments {
    @OptionGroup var base: ConfigOptions

    @Flag(help: "Print machine-readable JSON on stdout instead of tables.")
    var json = false

    /// The configuration file.
    var config: String { base.config }

    /// ``ConfigOptions/loadConfig(jsonLogs:)``.
    func loadConfig(jsonLogs: Bool = false) throws -> SyncConfig { try base.loadConfig(jsonLogs: jsonLogs) }

    /// ``ConfigOptions/openDestination(_:)``.
    func openDestination(_ config: SyncConfig) async throws -> any AuditDatabase { try await base.openDestination(config) }
}

/// The configuration file and log level: the options of every command that reads the configuration
/// (`serve` takes these only; the others add `--json` through ``GlobalOptions``).
struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file.")
    var config = "./erp-sync.yaml"

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "warning"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// Reads the configuration, exiting with 78 and the key at fault when it is wrong or names a source type
    /// this build cannot read.
    /// - Parameter jsonLogs: log JSON lines (``JSONLogHandler``) instead of text.
    func loadConfig(jsonLogs: Bool = false) throws -> SyncConfig {
        bootstrapLogging(json: jsonLogs)
        let loaded: SyncConfig
        do {
            loaded = try SyncConfig.load(path: config)
        } catch let error as ConfigError {
            printError(error.description)
            throw ExitCodes.config
        }
        for (index, source) in loaded.sources.enumerated() where !Connectors.availableSources.contains(source.type) {
            printError("\(config): sources[\(index)] (\(source.name)): type '\(source.type.rawValue)' has no connector in this build "
                       + "(available: \(Connectors.availableSources.map(\.rawValue).sorted().joined(separator: ", ")); see `erp-sync databases`)")
            throw ExitCodes.config
        }
        return loaded
    }

    func bootstrapLogging(json: Bool = false) {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Opens the configured destination and migrates it; exits with 69 when it cannot be opened, 78 when its
    /// URL is wrong.
    func openDestination(_ config: SyncConfig) async throws -> any AuditDatabase {
        do {
            let destination = try await Connectors.destination(config.destination)
            try await destination.migrate()
            return destination
        } catch {
            printError("cannot open the destination: \(error)")
            throw ExitCodes.code(forFailures: [(error as? SyncFailure)?.code])
        }
    }
}

/// Writes `error: <message>` to stderr.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

/// Prints a value as pretty JSON with sorted keys on stdout.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
