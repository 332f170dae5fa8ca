@testable import SyncCore
import SyncTesting
import Testing

/// Exponential backoff with jitter, retrying transient errors only (SPEC.md "Failure handling").
@Suite struct BackoffTests {
    @Test func ceilingsDoubleFromTheBaseDelay() {
        let policy = RetryPolicy(maxRetries: 10, baseDelayMs: 1000, maxDelayMs: 30_000)
        #expect((1...7).map { policy.ceilingMs(attempt: $0) } == [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000])
    }

    @Test func ceilingsAreCappedAtTheMaximum() {
        let policy = RetryPolicy(maxRetries: 10, baseDelayMs: 1000, maxDelayMs: 5000)
        #expect((1...5).map { policy.ceilingMs(attempt: $0) } == [1000, 2000, 4000, 5000, 5000])
        // Far attempts and huge bases neither overflow nor exceed the cap.
        #expect(policy.ceilingMs(attempt: 10_000) == 5000)
        #expect(RetryPolicy(maxRetries: 1, baseDelayMs: Int.max / 4, maxDelayMs: 60_000).ceilingMs(attempt: 40) == 60_000)
        // Attempt 0 or below counts as the first retry.
        #expect(policy.ceilingMs(attempt: 0) == 1000)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6])
    func jitteredDelayStaysWithinHalfToFullCeiling(attempt: Int) {
        let policy = RetryPolicy(maxRetries: 10, baseDelayMs: 1000, maxDelayMs: 30_000)
        let ceiling = policy.ceilingMs(attempt: attempt)
        var generator = SplitMix64(seed: 0xC0FFEE + UInt64(attempt))
        let delays = (0..<5000).map { _ in policy.delayMs(attempt: attempt, using: &generator) }
        #expect(delays.allSatisfy { $0 >= ceiling / 2 && $0 <= ceiling })
        // It is really jittered: the draws spread over the range, reaching both halves.
        let minimum = delays.min()!, maximum = delays.max()!
        #expect(minimum < ceiling / 2 + ceiling / 20)
        #expect(maximum > ceiling - ceiling / 20)
        #expect(Set(delays).count > 100)
    }

    @Test func oddCeilingsAndTinyDelays() {
        var generator = SplitMix64(seed: 7)
        let odd = RetryPolicy(maxRetries: 3, baseDelayMs: 1001, maxDelayMs: 1001)
        let oddDelays = (0..<2000).map { _ in odd.delayMs(attempt: 1, using: &generator) }
        #expect(oddDelays.allSatisfy { (500...1001).contains($0) })
        #expect(oddDelays.contains(1001))
        let one = RetryPolicy(maxRetries: 3, baseDelayMs: 1, maxDelayMs: 100)
        #expect(Set((0..<200).map { _ in one.delayMs(attempt: 1, using: &generator) }) == [0, 1])
        let zero = RetryPolicy(maxRetries: 3, baseDelayMs: 0, maxDelayMs: 100)
        #expect(zero.delayMs(attempt: 3, using: &generator) == 0)
    }

    @Test func sameSeedSameDelays() {
        let policy = RetryPolicy(maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 30_000)
        var first = SplitMix64(seed: 42), second = SplitMix64(seed: 42)
        let a = (1...5).map { policy.delayMs(attempt: $0, using: &first) }
        let b = (1...5).map { policy.delayMs(attempt: $0, using: &second) }
        #expect(a == b)
    }

    @Test func transientFailuresAreRetriedUpToMaxRetries() async {
        let policy = RetryPolicy(maxRetries: 3, baseDelayMs: 1, maxDelayMs: 4)
        var attempts = 0
        var retries: [(attempt: Int, delay: Int)] = []
        var caught: (any Error)?
        do {
            _ = try await policy.run({ () async throws -> Int in
                attempts += 1
                throw SyncFailure(code: SyncFailure.Code(rawValue: "CONNECTION_RESET"), message: "attempt \(attempts)", isTransient: true)
            }, onRetry: { attempt, delay, _ in retries.append((attempt, delay)) })
        } catch {
            caught = error
        }
        #expect(attempts == 4)
        #expect(retries.map(\.attempt) == [1, 2, 3])
        #expect(zip(retries.map(\.delay), [1, 2, 4]).allSatisfy { delay, ceiling in delay >= ceiling / 2 && delay <= ceiling })
        let failure = caught as? SyncFailure
        #expect(failure?.message == "attempt 4")
    }

    @Test func transientThenSuccessReturnsTheValue() async throws {
        let policy = RetryPolicy(maxRetries: 3, baseDelayMs: 1, maxDelayMs: 4)
        var attempts = 0
        var retries = 0
        let value = try await policy.run({ () async throws -> String in
            attempts += 1
            if attempts < 3 { throw SyncFailure(code: SyncFailure.Code(rawValue: "DEADLOCK"), message: "deadlock", isTransient: true) }
            return "loaded"
        }, onRetry: { _, _, _ in retries += 1 })
        #expect(value == "loaded")
        #expect(attempts == 3)
        #expect(retries == 2)
    }

    @Test func permanentFailureFailsFast() async {
        let policy = RetryPolicy(maxRetries: 5, baseDelayMs: 1, maxDelayMs: 4)
        var attempts = 0
        var retries = 0
        var caught: (any Error)?
        do {
            _ = try await policy.run({ () async throws -> Int in
                attempts += 1
                throw SyncFailure(code: .authFailed, message: "bad password", isTransient: false)
            }, onRetry: { _, _, _ in retries += 1 })
        } catch {
            caught = error
        }
        #expect(attempts == 1)
        #expect(retries == 0)
        #expect((caught as? SyncFailure)?.code == .authFailed)
    }

    @Test func otherErrorsAreNotRetried() async {
        struct DriverBug: Error {}
        let policy = RetryPolicy(maxRetries: 5, baseDelayMs: 1, maxDelayMs: 4)
        var attempts = 0
        var caught: (any Error)?
        do {
            _ = try await policy.run { () async throws -> Int in
                attempts += 1
                throw DriverBug()
            }
        } catch {
            caught = error
        }
        #expect(attempts == 1)
        #expect(caught is DriverBug)
    }

    @Test func zeroRetriesMeansOneAttempt() async {
        let policy = RetryPolicy(maxRetries: 0, baseDelayMs: 1, maxDelayMs: 4)
        var attempts = 0
        do {
            _ = try await policy.run { () async throws -> Int in
                attempts += 1
                throw SyncFailure(code: SyncFailure.Code(rawValue: "TIMEOUT"), message: "timeout", isTransient: true)
            }
        } catch {}
        #expect(attempts == 1)
    }
}
