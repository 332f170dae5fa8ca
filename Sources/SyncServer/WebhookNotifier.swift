public import AsyncHTTPClient
import Crypto
public import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import SyncCore

/// Sends `notifications.webhooks` after runs: an HTTP POST of a JSON summary, signed with HMAC-SHA256.
///
/// Deliveries go through a queue served by ``run()``, so a slow or dead receiver never blocks or fails a
/// sync. Each attempt has the webhook's `timeoutSeconds`; a failed attempt (error or non-2xx status) is
/// retried up to `maxAttempts` times, waiting `retryBaseDelay × 2^(n−1)` between attempts.
///
/// Request: `Content-Type: application/json`, body `{"event","deliveryId","sentAt"}` plus `result` (the run's
/// ``ErpSyncResult``: `syncSucceeded`, `syncFailed`, `rejectThreshold`), `reconciliation` (the
/// ``ReconciliationReport``: `reconciliationMismatch`) or `summary` (``DailySummary``: `dailySummary`), and the
/// headers
/// - `X-ErpSync-Event`: the event (``WebhookConfig/Event``);
/// - `X-ErpSync-Delivery`: the delivery's UUID (the same on every retry);
/// - `X-ErpSync-Timestamp`: Unix seconds when the attempt was signed;
/// - `X-ErpSync-Signature`: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Signing the timestamp with
///   the body lets a receiver reject replays of old deliveries.
public final class WebhookNotifier: Service, Sendable {
    /// One POST to make.
    struct Delivery: Sendable {
        var webhook: WebhookConfig
        var event: WebhookConfig.Event
        var id: String
        var body: Data
    }

    /// The JSON body of a delivery.
    struct Payload: Encodable {
        var event: String
        var deliveryId: String
        var sentAt: String
        var result: ErpSyncResult?
        var reconciliation: ReconciliationReport?
        var summary: DailySummary?
    }

    let webhooks: [WebhookConfig]
    /// `notifications.rejectThreshold`.
    let rejectThreshold: Int?
    let client: HTTPClient
    let logger: Logger
    let retryBaseDelay: Duration
    private let queue: AsyncStream<Delivery>
    private let continuation: AsyncStream<Delivery>.Continuation

    /// Creates a notifier.
    /// - Parameter retryBaseDelay: the wait before the first retry (default 1 s), doubled for each further one.
    ///   `rejectThreshold`: see ``NotificationsConfig/rejectThreshold``.
    public init(webhooks: [WebhookConfig], rejectThreshold: Int? = nil, client: HTTPClient = .shared, logger: Logger,
                retryBaseDelay: Duration = .seconds(1)) {
        self.webhooks = webhooks
        self.rejectThreshold = rejectThreshold
        self.client = client
        self.logger = logger
        self.retryBaseDelay = retryBaseDelay
        (queue, continuation) = AsyncStream.makeStream(of: Delivery.self, bufferingPolicy: .bufferingNewest(1000))
    }

    /// Queues the notifications of a finished run: `syncSucceeded` for `SUCCESS`, `syncFailed` for `FAILED` and
    /// `PARTIAL`, and `rejectThreshold` when it rejected at least `rejectThreshold` rows, to each webhook
    /// subscribed to that event. Returns at once.
    public func notify(_ result: ErpSyncResult) {
        enqueue(result.success ? .syncSucceeded : .syncFailed) { $0.result = result }
        if let rejectThreshold, result.recordsRejected >= rejectThreshold {
            enqueue(.rejectThreshold) { $0.result = result }
        }
    }

    /// Queues `reconciliationMismatch` when `report` has buckets that differ; nothing for a match.
    public func notify(_ report: ReconciliationReport) {
        guard !report.isMatch else { return }
        enqueue(.reconciliationMismatch) { $0.reconciliation = report }
    }

    /// Queues `dailySummary`.
    public func notify(_ summary: DailySummary) {
        enqueue(.dailySummary) { $0.summary = summary }
    }

    private func enqueue(_ event: WebhookConfig.Event, _ fill: (inout Payload) -> Void) {
        for webhook in webhooks where webhook.events.contains(event) {
            let id = UUID().uuidString.lowercased()
            var payload = Payload(event: event.rawValue, deliveryId: id, sentAt: Instant.now.isoMillis)
            fill(&payload)
            guard let body = try? TRPCWire.encoder.encode(payload) else { continue }
            continuation.yield(Delivery(webhook: webhook, event: event, id: id, body: body))
        }
    }

    /// Delivers queued notifications until graceful shutdown, then finishes those already queued.
    public func run() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await delivery in queue {
                    group.addTask { await self.deliver(delivery) }
                }
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// `sha256=<hex>` of `"<timestamp>.<body>"` under `secret`.
    public static func signature(secret: String, timestamp: String, body: Data) -> String {
        var message = Data(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + TokenAuthenticator.hex(mac)
    }

    private func deliver(_ delivery: Delivery) async {
        var logger = logger
        logger[metadataKey: "deliveryId"] = .string(delivery.id)
        logger[metadataKey: "event"] = .string(delivery.event.rawValue)
        for attempt in 1...delivery.webhook.maxAttempts {
            if attempt > 1 {
                try? await Task.sleep(for: retryBaseDelay * (1 << (attempt - 2)))
            }
            let timestamp = String(Instant.now.seconds)
            var request = HTTPClientRequest(url: delivery.webhook.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "erp-sync")
            request.headers.add(name: "X-ErpSync-Event", value: delivery.event.rawValue)
            request.headers.add(name: "X-ErpSync-Delivery", value: delivery.id)
            request.headers.add(name: "X-ErpSync-Timestamp", value: timestamp)
            request.headers.add(name: "X-ErpSync-Signature",
                                value: Self.signature(secret: delivery.webhook.secret.value, timestamp: timestamp, body: delivery.body))
            request.body = .bytes(ByteBuffer(data: delivery.body))
            do {
                let response = try await client.execute(request, timeout: .seconds(Int64(delivery.webhook.timeoutSeconds)))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) {
                    logger.info("webhook delivered", metadata: ["url": "\(delivery.webhook.url)", "attempt": "\(attempt)"])
                    return
                }
                logger.warning("webhook refused", metadata: ["url": "\(delivery.webhook.url)", "status": "\(response.status.code)", "attempt": "\(attempt)"])
            } catch {
                logger.warning("webhook failed", metadata: ["url": "\(delivery.webhook.url)", "error": "\(error)", "attempt": "\(attempt)"])
            }
        }
        logger.error("webhook dropped after its attempts", metadata: ["url": "\(delivery.webhook.url)"])
    }
}
