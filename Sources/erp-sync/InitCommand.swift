import ArgumentParser
import Foundation

/// `erp-sync init`: writes the commented sample configuration.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Write a commented sample configuration file.")

    @Option(name: .shortAndLong, help: "Where to write it.")
    var config = "./erp-sync.yaml"

    @Flag(help: "Overwrite an existing file.")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: config) && !force {
            printError("\(config) exists; use --force to overwrite it")
            throw ExitCodes.cannotCreate
        }
        try writeFile(SampleConfig.text, to: config, what: "the sample configuration")
        print("wrote \(config); edit the source, then: \(Output.invocation) test-connection && \(Output.invocation) sync --all")
    }
}
