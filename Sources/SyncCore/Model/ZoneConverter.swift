public import Foundation
import Synchronization

/// Converts wall times of one time zone to instants, remembering the offset chosen per wall-clock minute.
///
/// `TimeZone.secondsFromGMT(for:)` goes through ICU and costs microseconds; a sync converts two timestamps per
/// row. The offset rule of ``LocalDateTime/instant(in:)`` depends only on the wall time, and tzdata
/// transitions fall on whole minutes, so every wall time within one minute gets the same offset.
public final class ZoneConverter: Sendable {
    /// The zone.
    public let zone: TimeZone
    private let offsets = Mutex(Offsets())
    private struct Offsets {
        /// The minute asked for last, answered without a dictionary lookup (rows mostly share it).
        var last: (minute: Int64, offset: Int64)?
        var byMinute: [Int64: Int64] = [:]
        func offset(at minute: Int64) -> Int64? {
            if let last, last.minute == minute { return last.offset }
            return byMinute[minute]
        }
    }
    private static let capacity = 4096  // rows come in cursor order, so recent minutes are the ones asked for

    /// Creates a converter for `zone`.
    public init(zone: TimeZone) {
        self.zone = zone
    }

    /// The instant `local` denotes in the zone (same result as ``LocalDateTime/instant(in:)``).
    public func instant(_ local: LocalDateTime) -> Instant {
        let wall = local.secondsAsUTC
        let minute = wall >= 0 ? wall / 60 : (wall - 59) / 60
        let cached = offsets.withLock { cache -> Int64? in
            let offset = cache.offset(at: minute)
            if let offset { cache.last = (minute, offset) }
            return offset
        }
        if let cached { return Instant(seconds: wall - cached, microsecond: local.microsecond) }
        let instant = local.instant(in: zone)
        let offset = wall - instant.seconds
        offsets.withLock { cache in
            if cache.byMinute.count >= Self.capacity { cache.byMinute.removeAll(keepingCapacity: true) }
            cache.byMinute[minute] = offset
            cache.last = (minute, offset)
        }
        return instant
    }
}
