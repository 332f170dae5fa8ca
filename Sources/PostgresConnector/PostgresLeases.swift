import Foundation
import Synchronization
import SyncCore

/// The leases this process holds, by source: the run and the fencing token each was claimed with, which every
/// renewal and batch of that run must present (``PostgresTransaction/renewLock(source:syncId:)``).
final class PostgresLeases: Sendable {
    /// Lease period in seconds (`destination.leasePeriod`).
    let seconds: Int
    /// Whom leases are held for (`serve.instanceId`).
    let instanceId: String
    let host = ProcessInfo.processInfo.hostName
    let pid = Int(ProcessInfo.processInfo.processIdentifier)
    private let held = Mutex<[String: (syncId: String, token: Int)]>([:])

    /// Leases of `options.periodSeconds`, held for `options.instanceId`.
    init(options: LeaseOptions) {
        seconds = options.periodSeconds
        instanceId = options.instanceId
    }

    /// Records a claimed lease.
    func hold(source: String, syncId: String, token: Int) {
        held.withLock { $0[source] = (syncId, token) }
    }

    /// The token run `syncId` holds the lease of `source` with, `nil` when it holds none here.
    func token(source: String, syncId: String) -> Int? {
        held.withLock { $0[source].flatMap { $0.syncId == syncId ? $0.token : nil } }
    }

    /// Forgets the lease of run `syncId` and returns its token, `nil` when it held none.
    func release(source: String, syncId: String) -> Int? {
        held.withLock { held in
            guard let lease = held[source], lease.syncId == syncId else { return nil }
            held[source] = nil
            return lease.token
        }
    }
}
