import Foundation
import Logging
import ServiceLifecycle
public import SyncCore

/// The body of the `dailySummary` webhook event: per source what happened on one local day of
/// `schedule.timezone`.
public struct DailySummary: Sendable, Encodable, Equatable {
    /// One source's day.
    public struct SourceDay: Sendable, Encodable, Equatable {
        public var source: String
        /// Runs started that day, and how many of them ended `FAILED` or `PARTIAL`.
        public var runs: Int
        public var failedRuns: Int
        /// Rows read, inserted, updated and rejected (quarantined) by those runs.
        public var rowsFetched: Int
        public var rowsInserted: Int
        public var rowsUpdated: Int
        public var rowsRejected: Int
        /// Quarantined rows not loaded since (``ReconciliationStore/openQuarantine(source:)``), now.
        public var openQuarantine: Int
        /// Now − the cursor time of the latest checkpoint, in seconds; `nil` for integer cursors or before a run.
        public var cursorLagSeconds: Int64?
    }

    /// `YYYY-MM-DD` in `schedule.timezone`.
    public var day: String
    public var sources: [SourceDay]

    /// How many runs of a source ``build(config:auditLog:now:)`` reads at most.
    static let historyDepth = 1000

    /// Builds the summary of the local day that contains `now`.
    public static func build(config: SyncConfig, auditLog: any AuditDatabase, now: Instant) async throws -> DailySummary {
        let zone = config.schedule.timezone
        let day = String(now.local(in: zone).description.prefix(10))
        var sources: [SourceDay] = []
        for source in config.sources {
            let runs = try await auditLog.history(source: source.name, limit: historyDepth).map(\.result).filter { run in
                Instant(iso8601: run.startTime).map { String($0.local(in: zone).description.prefix(10)) == day } ?? false
            }
            let latest = try await auditLog.history(source: source.name, limit: 20).map(\.result).first { $0.cursorTo != nil }
            let lag = ServerMetrics.cursorTime(latest?.cursorTo, zone: ZoneConverter(zone: source.timezone)).map { now.seconds - $0.seconds }
            sources.append(SourceDay(
                source: source.name, runs: runs.count, failedRuns: runs.filter { $0.status == .failed || $0.status == .partial }.count,
                rowsFetched: runs.reduce(0) { $0 + $1.recordsFetched }, rowsInserted: runs.reduce(0) { $0 + $1.recordsInserted },
                rowsUpdated: runs.reduce(0) { $0 + $1.recordsUpdated }, rowsRejected: runs.reduce(0) { $0 + $1.recordsRejected },
                openQuarantine: try await auditLog.openQuarantine(source: source.name).count, cursorLagSeconds: lag))
        }
        return DailySummary(day: day, sources: sources)
    }
}

/// Sends the `dailySummary` event every day at `notifications.dailySummaryAt` (a wall time of
/// `schedule.timezone`), until graceful shutdown. Does nothing when no webhook subscribes to the event.
struct DailySummaryService: Service {
    let config: SyncConfig
    let auditLog: any AuditDatabase
    let notifier: WebhookNotifier
    let clock: any SchedulerClock
    let logger: Logger

    func run() async throws {
        guard let time = config.notifications.dailySummaryAt,
              config.notifications.webhooks.contains(where: { $0.events.contains(.dailySummary) }) else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let due = Self.next(time, after: clock.now, zone: config.schedule.timezone)
                do { try await clock.sleep(until: due) } catch { return }
                do {
                    notifier.notify(try await DailySummary.build(config: config, auditLog: auditLog, now: clock.now))
                } catch {
                    logger.warning("daily summary skipped: the audit database could not be read", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The first instant after `instant` whose wall time in `zone` is `time` (a wall time skipped by DST fires at
    /// the instant ``ZoneConverter`` gives it).
    static func next(_ time: (hour: Int, minute: Int), after instant: Instant, zone: TimeZone) -> Instant {
        let converter = ZoneConverter(zone: zone)
        let today = instant.local(in: zone)
        for offset in 0...2 {
            let day = LocalDateTime(year: today.year, month: today.month, day: today.day).adding(seconds: Int64(offset) * 86_400)
            let due = converter.instant(LocalDateTime(year: day.year, month: day.month, day: day.day, hour: time.hour, minute: time.minute))
            if due > instant { return due }
        }
        return Instant(seconds: instant.seconds + 86_400)
    }
}
