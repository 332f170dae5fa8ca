import ArgumentParser
import SyncCore

/// The documented exit codes (sysexits.h numbers for usage, unavailable, temporary failure, config).
enum ExitCodes {
    static let failed = ExitCode(1)
    static let partial = ExitCode(2)
    /// `reconcile` found buckets where the audit database and the source differ.
    static let mismatch = ExitCode(3)
    static let unavailable = ExitCode(69)
    static let locked = ExitCode(75)
    static let config = ExitCode(78)

    /// Error codes meaning the source database could not be reached or logged into.
    static let unreachable: Set<SyncFailure.Code> = [.sourceUnavailable, .authFailed, .databaseNotFound]
    /// Error codes meaning the configuration names what the database or this build does not have.
    static let misconfigured: Set<SyncFailure.Code> = [.tableNotFound, .columnNotFound, .unsupportedSource, .sourceConfig, .destinationConfig]

    /// The exit code for failed connection checks: 78 when the configuration is at fault, else 69.
    static func code(forFailures codes: [SyncFailure.Code?]) -> ExitCode {
        codes.contains { $0.map(misconfigured.contains) ?? false } ? config : unavailable
    }

    /// The exit code for a set of run results: the worst of them.
    static func code(for results: [ErpSyncResult]) -> ExitCode {
        if results.contains(where: { $0.errors.contains { $0.code == .locked } }) { return locked }
        if results.contains(where: { $0.status == .failed && $0.errors.contains { misconfigured.contains($0.code) } }) { return config }
        if results.contains(where: { $0.status == .failed && $0.errors.contains { unreachable.contains($0.code) } }) { return unavailable }
        if results.contains(where: { $0.status == .failed }) { return failed }
        if results.contains(where: { $0.status == .partial }) { return partial }
        return .success
    }
}
