import ArgumentParser
import SyncCore

/// The documented exit codes (sysexits.h numbers beside 1 and 2; README "Exit codes"). When several apply, the
/// worst wins, in the order of ``precedence``.
enum ExitCodes {
    static let failed = ExitCode(1)
    static let partial = ExitCode(2)
    /// EX_DATAERR: `sync --fail-on-reject` quarantined rows.
    static let dataError = ExitCode(65)
    /// `reconcile` found buckets where the audit database and the source differ.
    static let mismatch = ExitCode(3)
    static let unavailable = ExitCode(69)
    /// EX_CANTCREAT: a file or folder could not be created or written (`init`, `demo --dir`, a read-only
    /// audit database).
    static let cannotCreate = ExitCode(73)
    /// EX_IOERR: reading or writing a file failed for another reason.
    static let ioError = ExitCode(74)
    static let locked = ExitCode(75)
    /// EX_NOPERM: a database refused the configured credentials.
    static let noPermission = ExitCode(77)
    static let config = ExitCode(78)

    /// Error codes meaning the configuration names what the database or this build does not have.
    static let misconfigured: Set<SyncFailure.Code> = [.tableNotFound, .columnNotFound, .unsupportedSource, .sourceConfig, .destinationConfig,
                                                       .driverNotFound]
    /// Error codes meaning a database refused the credentials.
    static let refused: Set<SyncFailure.Code> = [.authFailed]
    /// Error codes meaning the audit database cannot be written.
    static let unwritable: Set<SyncFailure.Code> = [.destinationReadOnly]
    /// Error codes meaning a database could not be reached.
    static let unreachable: Set<SyncFailure.Code> = [.sourceUnavailable, .destinationUnavailable, .databaseNotFound]

    /// The exit codes that failure codes map to, worst first: what needs someone to edit the configuration, then
    /// credentials, then the file system, then a database that is down.
    static let precedence: [(codes: Set<SyncFailure.Code>, exit: ExitCode)] = [
        (misconfigured, config), (refused, noPermission), (unwritable, cannotCreate), (unreachable, unavailable),
    ]

    /// The exit code for failure codes: the worst of ``precedence`` that applies, else `otherwise` (69 for a
    /// connection check that failed: `test-connection`, opening the destination).
    static func code(forFailures codes: [SyncFailure.Code?], otherwise: ExitCode = unavailable) -> ExitCode {
        precedence.first { entry in codes.contains { $0.map(entry.codes.contains) ?? false } }?.exit ?? otherwise
    }

    /// The exit code for a set of run results, worst first (README "Exit codes"): a failed run by the kind of
    /// its failure (78, 77, 73, 69, else 1), then a partial run (2), then quarantined rows when `failOnReject`
    /// (65), then a run refused because another process syncs the source (75); 0 when none applies.
    static func code(for results: [ErpSyncResult], failOnReject: Bool = false) -> ExitCode {
        let isLocked = { (result: ErpSyncResult) in result.errors.contains { $0.code == .locked } }
        let failures = results.filter { $0.status == .failed && !isLocked($0) }
        if !failures.isEmpty { return code(forFailures: failures.flatMap { $0.errors.map(\.code) }, otherwise: failed) }
        if results.contains(where: { $0.status == .partial }) { return partial }
        if failOnReject && results.contains(where: { $0.recordsRejected > 0 }) { return dataError }
        if results.contains(where: isLocked) { return locked }
        return .success
    }
}
