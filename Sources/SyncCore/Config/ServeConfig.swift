public import Foundation

/// The `api` section: the `erp-sync serve` HTTP API (README "serve").
public struct APIConfig: Sendable, Equatable {
    /// Listen address (default `127.0.0.1`).
    public var host: String = "127.0.0.1"
    /// Listen port (default 8080; `0` picks a free port, printed at start).
    public var port: Int = 8080
    /// Bearer tokens, stored as hashes only.
    public var tokens: [APIToken] = []
    /// Whether `erp.testConnection` / `erp.syncNow` accept the seed's ad-hoc connection config (host, password …)
    /// in the request body. Default `false`: an API that connects wherever a caller says is an SSRF hole
    /// (SPEC.md "Interfaces").
    public var allowAdHocSources = false
    /// With ``allowAdHocSources``: the only hosts an ad-hoc config may name (exact, case-insensitive).
    public var allowedHosts: [String] = []
    /// Largest accepted request body, in bytes (default 65536).
    public var maxBodyBytes = 65_536
    /// Browser origins (`https://audit.example.com`) allowed to call the API cross-origin (CORS); default none,
    /// for a dashboard served from another origin than the API.
    public var corsOrigins: [String] = []
    /// How procedure inputs and outputs travel (the tRPC client's `transformer`); default ``APITransformer/none``.
    public var transformer = APITransformer.none
    /// Most procedures one batched request may call (default 100); a larger batch is refused with `BAD_REQUEST`.
    /// `maxBodyBytes` (POST) and the URL length (GET) bound a batch's inputs as well.
    public var maxBatchSize = 100

    /// The defaults: localhost:8080, no tokens, no ad-hoc sources.
    public init() {}
}

/// The tRPC data transformer the dashboard's client is configured with (`initTRPC.create({ transformer })` on a
/// tRPC server, `transformer:` on its links).
public enum APITransformer: String, Sendable, CaseIterable {
    /// Plain JSON: inputs and outputs as they are (tRPC's `defaultTransformer`).
    case none
    /// superjson: inputs arrive as `{json, meta?}`, outputs leave as `{json, meta}` with instants as superjson `Date`s.
    case superjson
}

/// One API bearer token: a name for logs and audit rows, a role, and the token's hash.
public struct APIToken: Sendable, Equatable {
    /// What a token may call.
    public enum Role: String, Sendable, CaseIterable, Comparable {
        /// Queries (`getStatus`, `getSyncHistory`, `getSupportedDatabases`).
        case viewer
        /// Queries and mutations (`testConnection`, `syncNow`).
        case admin

        /// `viewer < admin`.
        public static func < (lhs: Role, rhs: Role) -> Bool { lhs == .viewer && rhs == .admin }
    }
    /// Shown in logs and as `triggeredBy: api:<name>`.
    public var name: String
    public var role: Role
    /// SHA-256 of the token, 32 bytes (configured as `sha256:<64 hex digits>`).
    public var sha256: [UInt8]

    /// Creates a token entry.
    public init(name: String, role: Role, sha256: [UInt8]) {
        self.name = name
        self.role = role
        self.sha256 = sha256
    }
}

/// The `schedule` section: the scheduler inside `erp-sync serve`.
public struct ScheduleConfig: Sendable, Equatable {
    /// `false` turns the scheduler off (the API still works). Default `true` when the config has a `schedule`
    /// section; a config without one schedules nothing.
    public var enabled = true
    /// Seconds between two incremental runs of a source (default 3600, from `interval: 60m`; at least 5). The slots
    /// are the multiples of the interval since the Unix epoch, the same on every instance of a fleet.
    public var intervalSeconds: Int64 = 3600
    /// Local wall time of the daily full sync (default 23:00), `nil` for none (`fullSyncAt: off`).
    public var fullSyncAt: (hour: Int, minute: Int)? = (23, 0)
    /// The zone of ``fullSyncAt`` (IANA name; default UTC).
    public var timezone = TimeZone(identifier: "UTC")!
    /// How many sources may sync at the same time (default 2).
    public var maxConcurrentRuns = 2
    /// Reconcile a source after each successful scheduled full sync (`reconcileAfterFullSync`, default `false`).
    public var reconcileAfterFullSync = false

    /// The defaults: hourly incremental, full at 23:00 UTC, two sources at a time.
    public init() {}

    public static func == (lhs: ScheduleConfig, rhs: ScheduleConfig) -> Bool {
        lhs.enabled == rhs.enabled && lhs.intervalSeconds == rhs.intervalSeconds && lhs.fullSyncAt?.hour == rhs.fullSyncAt?.hour
            && lhs.fullSyncAt?.minute == rhs.fullSyncAt?.minute && lhs.timezone == rhs.timezone && lhs.maxConcurrentRuns == rhs.maxConcurrentRuns
            && lhs.reconcileAfterFullSync == rhs.reconcileAfterFullSync
    }
}

/// The `notifications` section.
public struct NotificationsConfig: Sendable, Equatable {
    /// Webhooks called after runs.
    public var webhooks: [WebhookConfig] = []
    /// A run that rejects (quarantines) at least this many rows sends the `rejectThreshold` event; `nil` for never.
    public var rejectThreshold: Int?
    /// Local wall time (in `schedule.timezone`) of the `dailySummary` event, default 23:55; `nil` (`off`) for none.
    public var dailySummaryAt: (hour: Int, minute: Int)? = (23, 55)

    /// No notifications.
    public init() {}

    public static func == (lhs: NotificationsConfig, rhs: NotificationsConfig) -> Bool {
        lhs.webhooks == rhs.webhooks && lhs.rejectThreshold == rhs.rejectThreshold
            && lhs.dailySummaryAt?.hour == rhs.dailySummaryAt?.hour && lhs.dailySummaryAt?.minute == rhs.dailySummaryAt?.minute
    }
}

/// A webhook: an HTTP POST of a JSON run summary, signed with HMAC-SHA256.
public struct WebhookConfig: Sendable, Equatable {
    /// Events a webhook can subscribe to.
    public enum Event: String, Sendable, CaseIterable {
        /// A run ended `FAILED` or `PARTIAL`.
        case syncFailed
        /// A run ended `SUCCESS` (how the detection engine is triggered).
        case syncSucceeded
        /// A reconciliation found buckets that differ (`reconciliation` in the body).
        case reconciliationMismatch
        /// Once a day at `notifications.dailySummaryAt`: per source the day's runs, rows, rejects, open quarantine
        /// and cursor lag (`summary` in the body).
        case dailySummary
        /// A run rejected at least `notifications.rejectThreshold` rows (`result` in the body).
        case rejectThreshold
    }
    /// `http://` or `https://` URL.
    public var url: String
    /// Default: `syncSucceeded` and `syncFailed` (the run events, whose body carries `result`); the others are
    /// subscribed to by name.
    public var events: Set<Event> = [.syncSucceeded, .syncFailed]
    /// The HMAC key (from `secret` or the variable named by `secretEnv`); never printed.
    public var secret: Secret
    /// Seconds before one delivery attempt is abandoned (default 10).
    public var timeoutSeconds = 10
    /// Delivery attempts before a notification is dropped (default 3; waits 1 s, 2 s, 4 s … between).
    public var maxAttempts = 3

    /// Creates a webhook subscribed to the run events.
    public init(url: String, secret: Secret) {
        self.url = url
        self.secret = secret
    }
}
