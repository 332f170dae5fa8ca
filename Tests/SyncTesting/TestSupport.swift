import Synchronization
public import SyncCore

/// A small deterministic generator (SplitMix64, Steele, Lea & Flood 2014), so a failing seed can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    /// Starts the sequence at `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A wall clock for tests: every reading is one millisecond after the previous one, so "before" and "after"
/// never tie, whatever the machine's speed.
public final class TestClock: Sendable {
    private let current: Mutex<Int64>

    /// Starts at `start`.
    public init(start: Instant = Instant(seconds: 1_735_689_600)) {
        current = Mutex(start.epochMicroseconds)
    }

    /// Moves the clock forward to `instant` (never back).
    public func advance(to instant: Instant) {
        current.withLock { $0 = max($0, instant.epochMicroseconds) }
    }

    /// The next instant.
    @Sendable public func now() -> Instant {
        let micros = current.withLock { value -> Int64 in
            value += 1000
            return value
        }
        return Instant(seconds: micros / 1_000_000, microsecond: Int(micros % 1_000_000))
    }
}

/// Stream and options shared by the integration suites of every server.
public enum IntegrationDefaults {
    /// The seed-shaped table `sale_transactions` with an `updated_at` cursor.
    public static let stream = StreamConfig(
        from: .table("sale_transactions"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
        fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"), .occurredAt: .column("timestamp"),
                 .type: .column("type"), .reference: .column("reference")],
        typeMap: ["venda": .sale, "cancelamento": .cancel])

    /// Options for integration runs: the whole history (`daysBack` 0), no lookback unless given, 10 ms retry delay.
    public static func options(batchSize: Int = 1000, lookback: Lookback = .seconds(0)) -> SyncOptions {
        var options = SyncOptions()
        options.batchSize = batchSize
        options.daysBack = 0
        options.lookback = lookback
        options.retryDelayMs = 10
        return options
    }
}
