import Foundation
import Metrics
import Synchronization
public import Prometheus
public import SyncCore

/// The Prometheus metrics of `GET /metrics`, recorded through swift-metrics into a registry of this server
/// (no global bootstrap, so several servers can live in one test process).
///
/// - `erp_sync_runs_total{source,status}`: finished runs.
/// - `erp_sync_records_total{source,outcome}`: rows by outcome (`inserted`, `updated`, `unchanged`, `skipped`,
///   `rejected`, `deleted`).
/// - `erp_sync_errors_total{source,code}`: run errors by code.
/// - `erp_sync_run_duration_seconds{source,sync_type}`: run duration histogram.
/// - `erp_sync_last_success_timestamp_seconds{source}`: Unix time of the last `SUCCESS` run's end.
/// - `erp_sync_cursor_lag_seconds{source}`: now − the checkpoint's cursor time of the last run, as of the scrape
///   (timestamp cursors only): it grows while no run moves the checkpoint, which is what an alert on it watches.
public struct ServerMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let zones: [String: ZoneConverter]
    /// The checkpoint's cursor time of each source's last run, for the lag at each scrape.
    private let cursors = CursorTimes()

    /// The cursor times behind ``ServerMetrics``' lag gauge, shared by its copies.
    private final class CursorTimes: Sendable {
        let times = Mutex<[String: Instant]>([:])
    }

    /// Creates the metrics of the configured `sources` (their zones read cursor times).
    public init(sources: [SourceConfig]) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["erp_sync_run_duration_seconds"] =
            [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600].map { Duration.seconds($0) }
        self.factory = factory
        zones = Dictionary(sources.map { ($0.name, ZoneConverter(zone: $0.timezone)) }, uniquingKeysWith: { first, _ in first })
    }

    /// Records a finished run.
    public func record(_ result: ErpSyncResult, now: Instant = .now) {
        let source = ("source", result.source)
        Counter(label: "erp_sync_runs_total", dimensions: [source, ("status", result.status.rawValue)], factory: factory).increment()
        let outcomes = [("inserted", result.recordsInserted), ("updated", result.recordsUpdated), ("unchanged", result.recordsUnchanged),
                        ("skipped", result.recordsSkipped), ("rejected", result.recordsRejected), ("deleted", result.recordsDeleted)]
        for (outcome, count) in outcomes {
            Counter(label: "erp_sync_records_total", dimensions: [source, ("outcome", outcome)], factory: factory).increment(by: count)
        }
        for error in result.errors {
            Counter(label: "erp_sync_errors_total", dimensions: [source, ("code", error.code.rawValue)], factory: factory).increment()
        }
        Metrics.Timer(label: "erp_sync_run_duration_seconds", dimensions: [source, ("sync_type", result.syncType.rawValue)], factory: factory)
            .recordMilliseconds(result.duration)
        if result.success { recordSuccess(result) }
        recordCursor(result, now: now)
    }

    /// Sets the gauges from the audit database, as they were after the last runs before a restart: each
    /// source's last `SUCCESS` run and the cursor of its newest finished run (among its last
    /// ``restoreDepth`` runs).
    /// - Throws: the audit log's error when it cannot be read.
    public func restore(from auditLog: any AuditLog, sources: [String], now: Instant = .now) async throws {
        for source in sources {
            let runs = try await auditLog.history(source: source, limit: Self.restoreDepth).map(\.result).filter { $0.status != .running }
            if let success = runs.first(where: \.success) { recordSuccess(success) }
            if let latest = runs.first(where: { $0.cursorTo != nil }) { recordCursor(latest, now: now) }
        }
    }

    /// How many of a source's newest runs ``restore(from:sources:now:)`` reads.
    public static let restoreDepth = 200

    private func recordSuccess(_ result: ErpSyncResult) {
        guard let end = Instant(iso8601: result.endTime) else { return }
        Gauge(label: "erp_sync_last_success_timestamp_seconds", dimensions: [("source", result.source)], factory: factory).record(Double(end.seconds))
    }

    private func recordCursor(_ result: ErpSyncResult, now: Instant) {
        guard let cursor = Self.cursorTime(result.cursorTo, zone: zones[result.source]) else { return }
        cursors.times.withLock { $0[result.source] = cursor }
        recordLag(source: result.source, cursor: cursor, now: now)
    }

    private func recordLag(source: String, cursor: Instant, now: Instant) {
        Gauge(label: "erp_sync_cursor_lag_seconds", dimensions: [("source", source)], factory: factory).record(Double(now.seconds - cursor.seconds))
    }

    /// The instant of a checkpoint summary (`2006-02-14 15:16:03 #16008`) whose cursor is a wall time of the
    /// source's zone; `nil` for integer cursors.
    static func cursorTime(_ summary: String?, zone: ZoneConverter?) -> Instant? {
        guard let summary, let zone else { return nil }
        let cursor = summary.split(separator: " #", maxSplits: 1).first.map(String.init) ?? summary
        if let instant = Instant(iso8601: cursor) { return instant }
        guard let local = try? LocalDateTime(parsing: cursor) else { return nil }
        return zone.instant(local)
    }

    /// The Prometheus text exposition of every metric, the cursor lags taken at `now`.
    public func render(now: Instant = .now) -> String {
        for (source, cursor) in cursors.times.withLock({ $0 }) { recordLag(source: source, cursor: cursor, now: now) }
        return registry.emitToString()
    }
}
