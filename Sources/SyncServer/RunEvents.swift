import Foundation
public import SyncCore
import Synchronization

/// What `GET /events` and `erp.onSyncProgress` stream: runs starting, their progress after each batch, and their results.
public enum RunEvent: Sendable, Equatable {
    /// A run was accepted (manual or scheduled) and is about to start.
    case started(source: String, syncType: SyncType, triggeredBy: String)
    /// A batch was committed.
    case progress(SyncProgress)
    /// A run ended.
    case finished(ErpSyncResult)
    /// A keep-alive tick of an idle subscription (written as the SSE comment `: heartbeat`), so proxies do not
    /// close a quiet `/events` connection.
    case heartbeat

    /// The SSE `event:` name.
    var name: String {
        switch self {
        case .started: "started"
        case .progress: "progress"
        case .finished: "finished"
        case .heartbeat: "heartbeat"
        }
    }

    /// The SSE `data:` JSON (one line).
    func json() -> Data {
        let encoder = TRPCWire.encoder
        switch self {
        case .started(let source, let syncType, let triggeredBy):
            return (try? encoder.encode(["source": source, "syncType": syncType.rawValue, "triggeredBy": triggeredBy])) ?? Data()
        case .progress(let progress):
            return (try? encoder.encode(ProgressJSON(progress))) ?? Data()
        case .finished(let result):
            return (try? encoder.encode(result)) ?? Data()
        case .heartbeat:
            return Data()
        }
    }

    /// The source the event is about (`nil` for a heartbeat).
    var source: String? {
        switch self {
        case .started(let source, _, _): source
        case .progress(let progress): progress.source
        case .finished(let result): result.source
        case .heartbeat: nil
        }
    }

    /// The `data` of an `erp.onSyncProgress` event: `{"type":"started","source","syncType","triggeredBy"}`,
    /// `{"type":"progress", <progress fields>}` or `{"type":"finished","result":<ErpSyncResult>}`.
    func subscriptionJSON() -> Data {
        struct Tag: Encodable { var type: String }
        let tag = Tag(type: name)
        let encoder = TRPCWire.encoder
        switch self {
        case .started(let source, let syncType, let triggeredBy):
            return (try? encoder.encode(Merged(tag, ["source": source, "syncType": syncType.rawValue, "triggeredBy": triggeredBy]))) ?? Data()
        case .progress(let progress):
            return (try? encoder.encode(Merged(tag, ProgressJSON(progress)))) ?? Data()
        case .finished(let result):
            return (try? encoder.encode(Merged(tag, ["result": result]))) ?? Data()
        case .heartbeat:
            return Data()
        }
    }

    /// ``SyncProgress`` as JSON: counters, `expected` when known, `elapsed` in seconds.
    struct ProgressJSON: Encodable {
        var syncId: String
        var source: String
        var fetched: Int
        var expected: Int?
        var inserted: Int
        var updated: Int
        var rejected: Int
        var batches: Int
        var elapsed: Double

        init(_ progress: SyncProgress) {
            syncId = progress.syncId
            source = progress.source
            fetched = progress.fetched
            expected = progress.expected
            inserted = progress.inserted
            updated = progress.updated
            rejected = progress.rejected
            batches = progress.batches
            elapsed = progress.elapsed
        }
    }
}

/// Fans run events out to every subscriber (`/events`, `erp.onSyncProgress`). A slow subscriber loses old
/// events (each buffers the newest ``replayCapacity``), never slows a sync.
///
/// Each published event gets a sequence number, and the newest ``replayCapacity`` events are kept, so a
/// subscriber that reconnects with the id of the last event it saw (SSE `Last-Event-ID`, tRPC's `lastEventId`)
/// gets what it missed before the live events. Ids are `<boot>-<sequence>`, `<boot>` the broadcaster's start
/// in Unix milliseconds: an id from before a restart replays everything kept since the restart.
public final class RunEventBroadcaster: Sendable {
    /// One event as delivered to a subscriber.
    public struct Delivery: Sendable, Equatable {
        /// The event's sequence number (from 1); `nil` for a heartbeat.
        public var sequence: Int64?
        public var event: RunEvent
    }

    private struct State {
        var open = true
        var streams: [UUID: AsyncStream<Delivery>.Continuation] = [:]
        var sequence: Int64 = 0
        var kept: [Delivery] = []
    }

    private let state = Mutex(State())
    /// How many of the newest events are kept for reconnecting subscribers.
    public static let replayCapacity = 4096
    /// This broadcaster's start, Unix milliseconds: the first part of every event id.
    public let boot: String

    /// Creates a broadcaster with no subscribers.
    public init() {
        boot = String(Instant.now.epochMicroseconds / 1000)
    }

    /// The id of the event with `sequence`: `<boot>-<sequence>`.
    public func eventID(_ sequence: Int64) -> String { "\(boot)-\(sequence)" }

    /// The sequence after which a subscriber that last saw `eventID` resumes: its sequence when the id is of this
    /// broadcaster, else 0 (everything kept).
    public func sequence(resumingAfter eventID: String) -> Int64 {
        let parts = eventID.split(separator: "-")
        guard parts.count == 2, parts[0] == boot, let sequence = Int64(parts[1]) else { return 0 }
        return sequence
    }

    /// A stream of the events published from now on; it ends when ``finish()`` is called or the consumer stops.
    /// - Parameters:
    ///   - after: when given, the kept events with a higher sequence come first (a resumed subscription).
    ///   - heartbeat: when given, a ``RunEvent/heartbeat`` is added at this interval.
    public func subscribe(after: Int64? = nil, heartbeat: Duration? = nil) -> AsyncStream<Delivery> {
        let (stream, continuation) = AsyncStream.makeStream(of: Delivery.self, bufferingPolicy: .bufferingNewest(Self.replayCapacity))
        let id = UUID()
        let accepted = state.withLock { state in
            guard state.open else { return false }
            if let after {
                for delivery in state.kept where delivery.sequence! > after { continuation.yield(delivery) }
            }
            state.streams[id] = continuation
            return true
        }
        guard accepted else {
            continuation.finish()
            return stream
        }
        let ticker = heartbeat.map { interval in
            Task {
                while (try? await Task.sleep(for: interval)) != nil { continuation.yield(Delivery(sequence: nil, event: .heartbeat)) }
            }
        }
        continuation.onTermination = { [weak self] _ in
            ticker?.cancel()
            self?.state.withLock { _ = $0.streams.removeValue(forKey: id) }
        }
        return stream
    }

    /// Numbers `event`, keeps it for resuming subscribers, and sends it to every subscriber.
    public func publish(_ event: RunEvent) {
        state.withLock { state in
            state.sequence += 1
            let delivery = Delivery(sequence: state.sequence, event: event)
            state.kept.append(delivery)
            if state.kept.count > Self.replayCapacity { state.kept.removeFirst(state.kept.count - Self.replayCapacity) }
            for continuation in state.streams.values { continuation.yield(delivery) }
        }
    }

    /// Ends every stream (at shutdown, so open subscriptions let the server stop).
    public func finish() {
        let streams = state.withLock { state in
            state.open = false
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for continuation in streams { continuation.finish() }
    }

    /// How many subscribers are connected.
    public var subscriberCount: Int { state.withLock { $0.streams.count } }
}
