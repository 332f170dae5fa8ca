/// An error from a source or destination, classified for the retry policy.
///
/// Connectors map driver errors to this: transient ones (connection reset, timeout, deadlock,
/// serialization failure, database busy) are retried with backoff; permanent ones (bad password,
/// missing table or column, SQL syntax) fail the run at once with their message.
public struct SyncFailure: Error, Sendable, CustomStringConvertible {
    /// Machine code, e.g. ``Code/sourceQueryFailed``, ``Code/authFailed``.
    public var code: Code
    /// What failed and where, without secrets.
    public var message: String
    /// Whether the same operation may succeed if retried.
    public var isTransient: Bool
    /// The SQLSTATE the database reported (ISO/IEC 9075 §24.1; PostgreSQL and ODBC give it, MariaDB through
    /// `mysql_stmt_sqlstate` and `mysql_sqlstate`), `nil` when it gave none (SQLite).
    public var sqlState: String?

    /// Creates a classified failure.
    public init(code: Code, message: String, isTransient: Bool, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.isTransient = isTransient
        self.sqlState = sqlState
    }

    /// Whether the database could not compute a value of a row it read: a permanent `SOURCE_QUERY_FAILED` with
    /// SQLSTATE class `22`, "data exception" (ISO/IEC 9075: a date out of range, a division by zero, a cast that
    /// fails). Only this failure makes the engine look for the row to quarantine; any other one (a lost
    /// connection, a statement timeout, a resource limit) fails the read, whatever page size it would pass at.
    public var isDataException: Bool {
        code == .sourceQueryFailed && !isTransient && sqlState?.hasPrefix("22") == true
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// A source type this build has no connector for.
    public static func unsupported(_ type: DatabaseType) -> SyncFailure {
        SyncFailure(code: .unsupportedSource, message: "source type '\(type.rawValue)' is not available in this build", isTransient: false)
    }
}

extension SyncFailure {
    /// A failure code: what went wrong, in words a script can match (`AUTH_FAILED`). Encoded as its raw text in
    /// JSON (`ErpSyncResult.errors[].code`), the audit trail and metrics labels. Codes grow by new static
    /// members; exit codes, API errors and metrics switch on these, never on text.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String

        /// A code with this text (codes read back from the audit trail).
        public init(rawValue: String) { self.rawValue = rawValue }

        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(String.self)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        public var description: String { rawValue }

        // Sources
        /// The source cannot be reached (refused, unreachable, timed out connecting).
        public static let sourceUnavailable = Code(rawValue: "SOURCE_UNAVAILABLE")
        /// A source statement failed.
        public static let sourceQueryFailed = Code(rawValue: "SOURCE_QUERY_FAILED")
        /// A page could not be read after its retries (the run stopped there).
        public static let sourceFailed = Code(rawValue: "SOURCE_FAILED")
        /// The source's settings cannot work (TLS files, options).
        public static let sourceConfig = Code(rawValue: "SOURCE_CONFIG")
        /// The server refused the credentials.
        public static let authFailed = Code(rawValue: "AUTH_FAILED")
        public static let databaseNotFound = Code(rawValue: "DATABASE_NOT_FOUND")
        public static let tableNotFound = Code(rawValue: "TABLE_NOT_FOUND")
        public static let columnNotFound = Code(rawValue: "COLUMN_NOT_FOUND")
        /// `ssl: require` but the server did not negotiate TLS.
        public static let tlsRequired = Code(rawValue: "TLS_REQUIRED")
        /// The TLS handshake or certificate check failed.
        public static let tlsFailed = Code(rawValue: "TLS_FAILED")
        /// The ODBC driver a source names is not installed (unixODBC's `IM002`).
        public static let driverNotFound = Code(rawValue: "DRIVER_NOT_FOUND")
        /// This build has no connector for the source's type.
        public static let unsupportedSource = Code(rawValue: "UNSUPPORTED_SOURCE")
        /// No source of that name in the configuration.
        public static let unknownSource = Code(rawValue: "UNKNOWN_SOURCE")
        // Destination
        public static let destinationUnavailable = Code(rawValue: "DESTINATION_UNAVAILABLE")
        public static let destinationFailed = Code(rawValue: "DESTINATION_FAILED")
        public static let destinationConfig = Code(rawValue: "DESTINATION_CONFIG")
        /// The audit database (or its folder) cannot be written.
        public static let destinationReadOnly = Code(rawValue: "DESTINATION_READ_ONLY")
        /// Another writer holds the destination (SQLite busy); transient.
        public static let destinationBusy = Code(rawValue: "DESTINATION_BUSY")
        // Runs
        /// Another run holds the source's lock: the run did not start (not a run failure).
        public static let locked = Code(rawValue: "LOCKED")
        /// The run lost its lease (it expired, or another run took the source over); the batch was not committed
        /// (fencing: the check runs in the batch's own transaction) and the run stopped.
        public static let lockLost = Code(rawValue: "LOCK_LOST")
        /// A scheduled run's slot was already run by another process sharing the destination (another `serve`
        /// instance): the run did not start (not a run failure).
        public static let slotTaken = Code(rawValue: "SLOT_TAKEN")
        /// A batch planned a record as new whose key the destination already holds (a first load met a stored key, or
        /// a writer ignoring the run lock stored it meanwhile): the batch's transaction is rolled back and the batch is
        /// planned again with a probe of the stored keys (transient; a unique violation, PostgreSQL SQLSTATE 23505,
        /// SQLite `SQLITE_CONSTRAINT_PRIMARYKEY`).
        public static let keyConflict = Code(rawValue: "KEY_CONFLICT")
        /// The run was stopped (shutdown, cancellation).
        public static let cancelled = Code(rawValue: "CANCELLED")
        /// The run was stopped between two batches.
        public static let interrupted = Code(rawValue: "INTERRUPTED")
        /// A batch could not be committed after its retries.
        public static let batchFailed = Code(rawValue: "BATCH_FAILED")
        /// Rows with a cursor beyond now + `validation.maxFuture` were quarantined; the checkpoint stays before
        /// them (a warning: the run goes on).
        public static let futureCursor = Code(rawValue: "FUTURE_CURSOR")
        /// A full pass read no row of its stream from start to end (an empty table or view, a query matching nothing):
        /// it marks nothing deleted, where it would have marked every stored record of the source (a warning).
        public static let emptyPass = Code(rawValue: "EMPTY_PASS")
        /// The process ended before the run finished (found by the next run of its source).
        public static let abandoned = Code(rawValue: "ABANDONED")
    }
}

/// Exponential backoff with jitter: the n-th retry (n ≥ 1) waits a random time in
/// `[d/2, d]` where `d = min(retryDelayMs * 2^(n-1), maxRetryDelayMs)` ("equal jitter", AWS Architecture
/// Blog, "Exponential Backoff And Jitter", 2015). The seed's linear 1 s, 2 s, 3 s is fixed here.
public struct RetryPolicy: Sendable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// Base delay in ms.
    public var baseDelayMs: Int
    /// Cap of one delay in ms.
    public var maxDelayMs: Int

    /// Creates a policy.
    public init(maxRetries: Int, baseDelayMs: Int, maxDelayMs: Int) {
        self.maxRetries = maxRetries
        self.baseDelayMs = baseDelayMs
        self.maxDelayMs = maxDelayMs
    }

    /// The un-jittered delay before retry `attempt` (1-based), in ms.
    public func ceilingMs(attempt: Int) -> Int {
        let exponent = min(max(attempt - 1, 0), 30)
        let (product, overflow) = baseDelayMs.multipliedReportingOverflow(by: 1 << exponent)
        return overflow ? maxDelayMs : min(product, maxDelayMs)
    }

    /// The jittered delay before retry `attempt`, in ms, drawn from `[ceiling/2, ceiling]`.
    public func delayMs(attempt: Int, using generator: inout some RandomNumberGenerator) -> Int {
        let ceiling = ceilingMs(attempt: attempt)
        return ceiling / 2 + Int.random(in: 0...(ceiling - ceiling / 2), using: &generator)
    }

    /// Runs `operation`, retrying transient ``SyncFailure``s up to ``maxRetries`` times.
    /// - Parameter onRetry: called before each wait with the attempt number, the delay (ms) and the error.
    /// - Throws: the last error, or the first permanent one; `CancellationError` when cancelled while waiting.
    public func run<T>(_ operation: () async throws -> T, onRetry: (Int, Int, any Error) -> Void = { _, _, _ in }) async throws -> T {
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch let error as SyncFailure where error.isTransient && attempt < maxRetries {
                attempt += 1
                let delay = delayMs(attempt: attempt, using: &generator)
                onRetry(attempt, delay, error)
                try await Task.sleep(for: .milliseconds(delay))
            }
        }
    }
}
