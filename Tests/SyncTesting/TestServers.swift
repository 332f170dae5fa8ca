import Foundation

/// Which real servers the integration suites may use, from the environment `scripts/test.sh` sets.
///
/// A suite that needs a server is enabled when its variable is set, and skipped (with one line naming the
/// variable) when it is not, so plain `swift test` runs the unit tests anywhere. Under `CI=true` it is always
/// enabled: a missing server must fail CI, never let it pass having run nothing.
public enum TestServers {
    static let environment = ProcessInfo.processInfo.environment

    /// Whether suites that need `variable` run (see ``TestServers``).
    public static func available(_ variable: String) -> Bool {
        environment[variable] != nil || environment["CI"] == "true"
    }

    /// `ERP_SYNC_PG_URL` (`postgres://user:password@host:port`, no database), default the server
    /// `scripts/postgres-server.sh` starts.
    public static let postgresURL = environment["ERP_SYNC_PG_URL"] ?? "postgres://erp_sync:erp_sync@127.0.0.1:5432"
}
