import Foundation
public import SyncCore
import Synchronization

/// What `GET /events` streams: runs starting, their progress after each batch, and their results.
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
        let encoder = TRPCEnvelope.encoder
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

/// Fans run events out to every `/events` subscriber. A slow subscriber loses old progress events
/// (each keeps the newest 256), never slows a sync.
public final class RunEventBroadcaster: Sendable {
    private let subscribers = Mutex<(open: Bool, streams: [UUID: AsyncStream<RunEvent>.Continuation])>((true, [:]))

    /// Creates a broadcaster with no subscribers.
    public init() {}

    /// A stream of the events published from now on; it ends when ``finish()`` is called or the consumer stops.
    /// - Parameter heartbeat: when given, a ``RunEvent/heartbeat`` is added at this interval.
    public func subscribe(heartbeat: Duration? = nil) -> AsyncStream<RunEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: RunEvent.self, bufferingPolicy: .bufferingNewest(256))
        let id = UUID()
        let accepted = subscribers.withLock { state in
            guard state.open else { return false }
            state.streams[id] = continuation
            return true
        }
        guard accepted else {
            continuation.finish()
            return stream
        }
        let ticker = heartbeat.map { interval in
            Task {
                while (try? await Task.sleep(for: interval)) != nil { continuation.yield(.heartbeat) }
            }
        }
        continuation.onTermination = { [weak self] _ in
            ticker?.cancel()
            self?.subscribers.withLock { _ = $0.streams.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sends `event` to every subscriber.
    public func publish(_ event: RunEvent) {
        for continuation in subscribers.withLock({ Array($0.streams.values) }) { continuation.yield(event) }
    }

    /// Ends every stream (at shutdown, so open `/events` connections let the server stop).
    public func finish() {
        let streams = subscribers.withLock { state in
            state.open = false
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for continuation in streams { continuation.finish() }
    }

    /// How many subscribers are connected.
    public var subscriberCount: Int { subscribers.withLock { $0.streams.count } }
}
