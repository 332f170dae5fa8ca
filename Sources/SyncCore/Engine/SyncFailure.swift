/// An error from a source or destination, classified for the retry policy.
///
/// Connectors map driver errors to this: transient ones (connection reset, timeout, deadlock,
/// serialization failure, database busy) are retried with backoff; permanent ones (bad password,
/// missing table or column, SQL syntax) fail the run at once with their message.
public struct SyncFailure: Error, Sendable, CustomStringConvertible {
    /// Machine code, e.g. `SOURCE_QUERY_FAILED`, `AUTH_FAILED`, `DESTINATION_BUSY`.
    public var code: String
    /// What failed and where, without secrets.
    public var message: String
    /// Whether the same operation may succeed if retried.
    public var isTransient: Bool

    /// Creates a classified failure.
    public init(code: String, message: String, isTransient: Bool) {
        self.code = code
        self.message = message
        self.isTransient = isTransient
    }

    public var description: String { "\(code): \(message)" }

    /// A source type this build has no connector for.
    public static func unsupported(_ type: DatabaseType) -> SyncFailure {
        SyncFailure(code: "UNSUPPORTED_SOURCE", message: "source type '\(type.rawValue)' is not available in this build", isTransient: false)
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
