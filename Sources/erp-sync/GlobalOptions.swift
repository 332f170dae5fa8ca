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

    /// ``ConfigOptions/requireKnownSource(_:in:recorded:)``.
    func requireKnownSource(_ name: String?, in config: SyncConfig, recorded: Bool) throws {
        try base.requireKnownSource(name, in: config, recorded: recorded)
    }
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

    /// Exits 78 naming the configured sources when `name` is neither one of them nor `recorded` (a source since
    /// removed from the configuration still has its runs and errors in the audit database): a typo must not
    /// read as "nothing to show".
    func requireKnownSource(_ name: String?, in config: SyncConfig, recorded: Bool) throws {
        guard let name, !recorded, config.source(named: name) == nil else { return }
        printError("no source named '\(name)' in \(self.config) and nothing recorded for it (known: \(config.sources.map(\.name).joined(separator: ", ")))")
        throw ExitCodes.config
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
            let destination = try await Connectors.destination(config.destination, lease: config.lease)
            try await destination.migrate()
            return destination
        } catch {
            printError("cannot open the destination: \(error)")
            throw ExitCodes.code(forFailures: [(error as? SyncFailure)?.code])
        }
    }
}

/// Creates `folder` (and its parents) for `what`, exiting 73 (EX_CANTCREAT) with what and where when it cannot.
func createFolder(_ folder: String, for what: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
        // Foundation reports a file in the way (`demo --dir file/sub`) with no operating-system reason: name it.
        var ancestor = URL(fileURLWithPath: folder).standardizedFileURL
        var blocking: String?
        while ancestor.path != "/" && blocking == nil {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isFolder), !isFolder.boolValue { blocking = ancestor.path }
            ancestor.deleteLastPathComponent()
        }
        printError("cannot create the folder \(folder) for \(what): \(blocking.map { "\($0) is a file, not a folder" } ?? reason(error))")
        throw ExitCodes.cannotCreate
    }
}

/// Writes `text` to the file `path` (atomically), exiting with what and where when it cannot: 73 (EX_CANTCREAT)
/// when the file cannot be created there (no such folder, no permission, a read-only file system), 74
/// (EX_IOERR) for any other write error.
func writeFile(_ text: String, to path: String, what: String) throws {
    do {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        let folderExists = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue
        let cannotCreate = !folderExists || access(folder, W_OK) != 0
        printError("cannot write \(what) to \(path): \(folderExists ? reason(error) : "the folder \(folder) does not exist")")
        throw cannotCreate ? ExitCodes.cannotCreate : ExitCodes.ioError
    }
}

/// The operating system's reason inside a Foundation file error (`Permission denied`), else the error's text.
private func reason(_ error: any Error) -> String {
    if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    return (error as NSError).localizedDescription
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
