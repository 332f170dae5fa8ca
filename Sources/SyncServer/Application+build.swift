import Foundation
public import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle
public import SyncCore

/// What the server needs from the composition root (the CLI): the configuration, the opened destination, how
/// to open sources. The server never imports a driver.
public struct ServerDependencies: Sendable {
    public var config: SyncConfig
    /// Opened and migrated.
    public var destination: any AuditDatabase
    public var makeSource: SyncService.SourceFactory
    /// Source types this build can read (for `getSupportedDatabases`).
    public var availableSources: Set<DatabaseType>
    /// The scheduler's clock (tests pass a manual one).
    public var clock: any SchedulerClock
    public var logger: Logger
    /// Called once the server listens, with the bound port (useful with `api.port: 0`).
    public var onListening: @Sendable (Int) async -> Void
    /// The wait before a webhook's first retry (tests shorten it).
    public var webhookRetryDelay: Duration
    /// The interval of keep-alive pings on idle event streams (`/events`, subscriptions); default 15 s.
    public var heartbeat: Duration

    /// Creates the dependencies; the clock defaults to the wall clock.
    public init(config: SyncConfig, destination: any AuditDatabase, makeSource: @escaping SyncService.SourceFactory,
                availableSources: Set<DatabaseType>, clock: any SchedulerClock = SystemSchedulerClock(), logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }, webhookRetryDelay: Duration = .seconds(1),
                heartbeat: Duration = .seconds(15)) {
        self.config = config
        self.destination = destination
        self.makeSource = makeSource
        self.availableSources = availableSources
        self.clock = clock
        self.logger = logger
        self.onListening = onListening
        self.webhookRetryDelay = webhookRetryDelay
        self.heartbeat = heartbeat
    }
}

/// `erp-sync serve`: the HTTP application, the sync runner and the scheduler, assembled by
/// ``buildApplication(_:)``.
public struct ErpSyncServer: Sendable {
    /// The HTTP application (tRPC API, `/health`, `/metrics`, `/events`); its services include the webhook notifier.
    public let app: Application<RouterResponder<BasicRequestContext>>
    /// Runs every sync of this server.
    public let runner: SyncRunner
    /// `nil` when `schedule.enabled` is false.
    public let scheduler: Scheduler?
    /// The metrics `/metrics` shows.
    public let metrics: ServerMetrics

    /// Runs the server until SIGTERM or SIGINT, then stops gracefully: running syncs finish their current batch
    /// and commit their checkpoint, the final audit rows are written, queued webhooks are sent, and the HTTP
    /// server stops last (so a waiting `erp.syncNow` still gets its result).
    public func run() async throws {
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: app), .init(service: SchedulerService(runner: runner, scheduler: scheduler))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: app.logger))
        try await group.run()
    }
}

/// The scheduler and the runner as one `Service`: fires scheduled runs until graceful shutdown, then stops the
/// runner (running syncs end after their current batch).
struct SchedulerService: Service {
    let runner: SyncRunner
    let scheduler: Scheduler?

    func run() async throws {
        if let scheduler {
            await cancelWhenGracefulShutdown { await scheduler.run() }
        } else {
            try? await gracefulShutdown()
        }
        await runner.stop()
    }
}

/// Builds the `erp-sync serve` application; tests build exactly this one.
///
/// The metrics start from the audit database (each source's last successful run and checkpoint), so `/metrics`
/// is not empty after a restart.
/// - Returns: the server; call ``ErpSyncServer/run()`` or test ``ErpSyncServer/app`` with HummingbirdTesting.
public func buildApplication(_ dependencies: ServerDependencies) async -> ErpSyncServer {
    let config = dependencies.config
    let logger = dependencies.logger
    let metrics = ServerMetrics(sources: config.sources)
    do {
        try await metrics.restore(from: dependencies.destination, sources: config.sources.map(\.name))
    } catch {
        logger.warning("metrics start empty: the audit database could not be read", metadata: ["error": "\(error)"])
    }
    let notifier = WebhookNotifier(webhooks: config.notifications.webhooks, rejectThreshold: config.notifications.rejectThreshold, logger: logger,
                                   retryBaseDelay: dependencies.webhookRetryDelay)
    let events = RunEventBroadcaster()
    let runner = SyncRunner(config: config, destination: dependencies.destination, makeSource: dependencies.makeSource,
                            maxConcurrentRuns: config.schedule.maxConcurrentRuns, events: events, logger: logger) { result in
        metrics.record(result)
        notifier.notify(result)
        if config.schedule.reconcileAfterFullSync && result.syncType == .full && result.success {
            Task {
                do {
                    notifier.notify(try await Reconciler.reconcile(source: result.source, config: config, store: dependencies.destination,
                                                                   makeSource: dependencies.makeSource))
                } catch {
                    logger.warning("reconciliation after the full sync failed", metadata: ["source": "\(result.source)", "error": "\(error)"])
                }
            }
        }
    }
    let scheduler = config.schedule.enabled
        ? Scheduler(schedule: config.schedule, sources: config.sources.map(\.name), clock: dependencies.clock, logger: logger) { run in
            // A slot stays claimable until the next one; a busy source is retried three times per lease period.
            let deadline = Instant(seconds: run.dueAt.seconds + config.schedule.intervalSeconds, microsecond: 0)
            Task { await runner.runSlot(run, until: deadline, retrySeconds: max(1, config.lease.periodSeconds / 3)) }
        }
        : nil
    var trpc = TRPCRouter(logger: logger)
    let authenticator = TokenAuthenticator(tokens: config.api.tokens)
    ErpProcedures(config: config, auditLog: dependencies.destination, runner: runner, notifier: notifier, scheduler: scheduler,
                  makeSource: dependencies.makeSource,
                  availableSources: dependencies.availableSources, authenticator: authenticator).register(in: &trpc)
    let endpoint = TRPCEndpoint(router: trpc, authenticator: authenticator, wire: TRPCWire(transformer: config.api.transformer),
                                maxBodyBytes: config.api.maxBodyBytes, maxBatchSize: config.api.maxBatchSize, heartbeat: dependencies.heartbeat)
    let router = buildRouter(endpoint: endpoint, api: config.api, auditLog: dependencies.destination, metrics: metrics, events: events)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(config.api.host, port: config.api.port), serverName: "erp-sync"),
        services: [notifier, DailySummaryService(config: config, auditLog: dependencies.destination, notifier: notifier,
                                                 clock: dependencies.clock, logger: logger)],
        onServerRunning: { channel in await dependencies.onListening(channel.localAddress?.port ?? config.api.port) },
        logger: logger)
    return ErpSyncServer(app: app, runner: runner, scheduler: scheduler, metrics: metrics)
}

/// The routes: `/trpc/{procedures}` (GET and POST, tRPC wire format), `/health`, `/metrics`, `/events`, and the
/// dashboard at `/` (``Dashboard``).
func buildRouter(endpoint: TRPCEndpoint, api: APIConfig, auditLog: any AuditLog, metrics: ServerMetrics,
                 events: RunEventBroadcaster) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: LogRequestsMiddleware(.info))
    if !api.corsOrigins.isEmpty { router.add(middleware: AllowedOriginsMiddleware(origins: Set(api.corsOrigins))) }
    Dashboard.register(in: router)
    router.get("/trpc/{path}") { request, context in await endpoint.respond(request, context: context, method: .get) }
    router.post("/trpc/{path}") { request, context in await endpoint.respond(request, context: context, method: .post) }
    router.get("/health") { _, _ -> Response in
        do {
            _ = try await auditLog.history(source: nil, limit: 1)
            return jsonResponse(.ok, Data(#"{"status":"ok","destination":"reachable"}"#.utf8))
        } catch {
            let body = (try? TRPCWire.encoder.encode(["status": "unavailable", "destination": "\(error)"])) ?? Data()
            return jsonResponse(.serviceUnavailable, body)
        }
    }
    router.get("/metrics") { _, _ -> Response in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
    }
    router.get("/events") { request, _ -> Response in
        if case .failure(let error) = endpoint.authenticator.authenticate(authorization: request.headers[.authorization]) {
            return jsonResponse(.unauthorized, (try? TRPCWire.encoder.encode(["error": error.message])) ?? Data())
        }
        let stream = events.subscribe(heartbeat: endpoint.heartbeat)
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: .init { writer in
                            try await writer.write(ByteBuffer(string: ": connected\n\n"))
                            for await delivery in stream {
                                let event = delivery.event
                                if event == .heartbeat {
                                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                                    continue
                                }
                                var chunk = ByteBuffer(string: "event: \(event.name)\ndata: ")
                                chunk.writeBytes(event.json())
                                chunk.writeString("\n\n")
                                try await writer.write(chunk)
                            }
                            try await writer.finish(nil)
                        })
    }
    return router
}

/// CORS for the configured browser origins only (`api.corsOrigins`): Hummingbird's `CORSMiddleware` answers
/// preflights and adds the headers when the request's `Origin` is listed; other origins get no CORS headers,
/// so browsers refuse them. Allowed request headers are those tRPC's links send: `content-type`,
/// `authorization`, `trpc-accept` (`httpBatchStreamLink`), `trpc-batch-mode` (v10's stream link),
/// `x-trpc-source` (create-t3-app's client), plus `accept`, `origin` and `last-event-id`.
struct AllowedOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>
    let cors = CORSMiddleware<Context>(
        allowOrigin: .originBased,
        allowHeaders: [.accept, .authorization, .contentType, .origin, TRPCEndpoint.trpcAccept, TRPCEndpoint.trpcBatchMode,
                       TRPCEndpoint.trpcSource, TRPCEndpoint.lastEventID],
        allowMethods: [.get, .post, .options], maxAge: .seconds(600))

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else { return try await next(request, context) }
        return try await cors.handle(request, context: context, next: next)
    }
}

func jsonResponse(_ status: HTTPResponse.Status, _ body: Data) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
