import ArgumentParser
import Foundation
import Logging
import SyncCore

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file.")
    var config = "./erp-sync.yaml"

    @Flag(help: "Print machine-readable JSON on stdout instead of tables.")
    var json = false

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "warning"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// Reads the configuration, exiting with 78 and the key at fault when it is wrong.
    func loadConfig() throws -> SyncConfig {
        bootstrapLogging()
        do {
            return try SyncConfig.load(path: config)
        } catch let error as ConfigError {
            printError(error.description)
            throw ExitCodes.config
        }
    }

    func bootstrapLogging() {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Opens the configured destination and migrates it; exits with 69 when it cannot be opened.
    func openDestination(_ config: SyncConfig) async throws -> any Destination & AuditLog {
        do {
            let destination = try await Connectors.destination(config.destination)
            try await destination.migrate()
            return destination
        } catch {
            printError("cannot open the destination: \(error)")
            throw ExitCodes.unavailable
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
