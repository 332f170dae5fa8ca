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
    public var destination: any Destination & AuditLog
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

    /// Creates the dependencies; the clock defaults to the wall clock.
    public init(config: SyncConfig, destination: any Destination & AuditLog, makeSource: @escaping SyncService.SourceFactory,
                availableSources: Set<DatabaseType>, clock: any SchedulerClock = SystemSchedulerClock(), logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }, webhookRetryDelay: Duration = .seconds(1)) {
        self.config = config
        self.destination = destination
        self.makeSource = makeSource
        self.availableSources = availableSources
        self.clock = clock
        self.logger = logger
        self.onListening = onListening
        self.webhookRetryDelay = webhookRetryDelay
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
/// - Returns: the server; call ``ErpSyncServer/run()`` or test ``ErpSyncServer/app`` with HummingbirdTesting.
public func buildApplication(_ dependencies: ServerDependencies) -> ErpSyncServer {
    let config = dependencies.config
    let logger = dependencies.logger
    let metrics = ServerMetrics(sources: config.sources)
    let notifier = WebhookNotifier(webhooks: config.notifications.webhooks, logger: logger, retryBaseDelay: dependencies.webhookRetryDelay)
    let events = RunEventBroadcaster()
    let runner = SyncRunner(config: config, destination: dependencies.destination, makeSource: dependencies.makeSource,
                            maxConcurrentRuns: config.schedule.maxConcurrentRuns, events: events, logger: logger) { result in
        metrics.record(result)
        notifier.notify(result)
    }
    let scheduler = config.schedule.enabled
        ? Scheduler(schedule: config.schedule, sources: config.sources.map(\.name), clock: dependencies.clock, logger: logger) { run in
            Task {
                do {
                    _ = try await runner.run(.init(source: run.source, overrides: SyncOverrides(isFull: run.syncType == .full),
                                                   triggeredBy: "scheduler", isManual: false))
                } catch {
                    logger.notice("scheduled sync skipped", metadata: ["source": "\(run.source)", "reason": "\(error)"])
                }
            }
        }
        : nil
    var trpc = TRPCRouter(logger: logger)
    ErpProcedures(config: config, auditLog: dependencies.destination, runner: runner, scheduler: scheduler, makeSource: dependencies.makeSource,
                  availableSources: dependencies.availableSources).register(in: &trpc)
    let router = buildRouter(trpc: trpc, api: config.api, auditLog: dependencies.destination, metrics: metrics, events: events)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(config.api.host, port: config.api.port), serverName: "erp-sync"),
        services: [notifier],
        onServerRunning: { channel in await dependencies.onListening(channel.localAddress?.port ?? config.api.port) },
        logger: logger)
    return ErpSyncServer(app: app, runner: runner, scheduler: scheduler, metrics: metrics)
}

/// The routes: `/trpc/{procedures}` (GET and POST, tRPC wire format), `/health`, `/metrics`, `/events`.
func buildRouter(trpc: TRPCRouter, api: APIConfig, auditLog: any AuditLog, metrics: ServerMetrics,
                 events: RunEventBroadcaster) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: LogRequestsMiddleware(.info))
    if !api.corsOrigins.isEmpty { router.add(middleware: AllowedOriginsMiddleware(origins: Set(api.corsOrigins))) }
    let endpoint = TRPCEndpoint(router: trpc, authenticator: TokenAuthenticator(tokens: api.tokens), maxBodyBytes: api.maxBodyBytes)
    router.get("/trpc/{path}") { request, context in await endpoint.respond(request, context: context, method: .query) }
    router.post("/trpc/{path}") { request, context in await endpoint.respond(request, context: context, method: .mutation) }
    router.get("/health") { _, _ -> Response in
        do {
            _ = try await auditLog.history(source: nil, limit: 1)
            return jsonResponse(.ok, Data(#"{"status":"ok","destination":"reachable"}"#.utf8))
        } catch {
            let body = (try? TRPCEnvelope.encoder.encode(["status": "unavailable", "destination": "\(error)"])) ?? Data()
            return jsonResponse(.serviceUnavailable, body)
        }
    }
    router.get("/metrics") { _, _ -> Response in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
    }
    router.get("/events") { request, _ -> Response in
        guard endpoint.authenticator.caller(authorization: request.headers[.authorization]) != nil else {
            return jsonResponse(.unauthorized, Data(#"{"error":"send an API token: Authorization: Bearer <token>"}"#.utf8))
        }
        let stream = events.subscribe(heartbeat: .seconds(15))
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: .init { writer in
                            try await writer.write(ByteBuffer(string: ": connected\n\n"))
                            for await event in stream {
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
/// so browsers refuse them.
struct AllowedOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>
    let cors = CORSMiddleware<Context>(allowOrigin: .originBased, allowHeaders: [.accept, .authorization, .contentType, .origin],
                                       allowMethods: [.get, .post, .options], maxAge: .seconds(600))

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else { return try await next(request, context) }
        return try await cors.handle(request, context: context, next: next)
    }
}

func jsonResponse(_ status: HTTPResponse.Status, _ body: Data) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

/// `/trpc/{path}`: reads the procedure names, inputs and token of an HTTP request and writes the tRPC response
/// (tRPC HTTP wire format, v10 and v11 without a transformer).
///
/// - Single call: `GET /trpc/erp.getStatus?input=<url-encoded JSON>`, `POST /trpc/erp.syncNow` with the input as
///   the JSON body; no input → omitted.
/// - Batch (`?batch=1`): names comma-joined in the path (at most 10), inputs in one JSON object keyed `"0"`,
///   `"1"`, … (the `input` parameter for GET, the body for POST); the reply is a JSON array in request order,
///   HTTP 207 when the items' statuses differ.
struct TRPCEndpoint: Sendable {
    let router: TRPCRouter
    let authenticator: TokenAuthenticator
    let maxBodyBytes: Int
    static let maxBatchSize = 10

    func respond(_ request: Request, context: BasicRequestContext, method: TRPCRouter.Kind) async -> Response {
        let path = context.parameters.get("path") ?? ""
        let batchParameter = request.uri.queryParameters["batch"].map(String.init)
        let isBatch = batchParameter == "1" || batchParameter == "true"
        let names = isBatch ? path.split(separator: ",", omittingEmptySubsequences: false).map(String.init) : [path]
        let items: [TRPCEnvelope.Item]
        do {
            guard names.count <= Self.maxBatchSize else {
                throw TRPCError(.badRequest, "a batch may call at most \(Self.maxBatchSize) procedures, got \(names.count)")
            }
            let inputs = try await readInputs(request, method: method, isBatch: isBatch, count: names.count)
            let caller = authenticator.caller(authorization: request.headers[.authorization])
            var results: [TRPCEnvelope.Item] = []
            for (index, name) in names.enumerated() {
                results.append(await router.call(name, method: method, input: inputs[index], caller: caller))
            }
            items = results
        } catch let error as TRPCError {
            items = names.map { TRPCEnvelope.failure(error, path: $0) }
        } catch {
            items = names.map { TRPCEnvelope.failure(TRPCError(.badRequest, "could not read the request: \(error)"), path: $0) }
        }
        let (body, status) = TRPCEnvelope.response(items, isBatch: isBatch)
        return jsonResponse(.init(code: status), body)
    }

    /// The raw JSON input of each call (`nil` = omitted).
    func readInputs(_ request: Request, method: TRPCRouter.Kind, isBatch: Bool, count: Int) async throws -> [Data?] {
        let raw: Data?
        switch method {
        case .query:
            raw = request.uri.queryParameters["input"].map { Data($0.utf8) }
        case .mutation:
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
                throw TRPCError(.payloadTooLarge, "the request body is \(length) bytes; the limit is \(maxBodyBytes) (api.maxBodyBytes)")
            }
            var request = request
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: maxBodyBytes)
            } catch {
                throw TRPCError(.payloadTooLarge, "the request body exceeds \(maxBodyBytes) bytes (api.maxBodyBytes)")
            }
            raw = buffer.readableBytes == 0 ? nil : Data(buffer.readableBytesView)
        }
        guard let raw else { return Array(repeating: nil, count: count) }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: raw, options: [.fragmentsAllowed])
        } catch {
            let place = method == .query ? "the input query parameter" : "the request body"
            throw TRPCError(.parseError, "\(place) is not valid JSON (\(String(decoding: raw.prefix(80), as: UTF8.self)))")
        }
        guard isBatch else { return [raw] }
        guard let byIndex = parsed as? [String: Any] else {
            throw TRPCError(.badRequest, "a batch input must be an object keyed \"0\", \"1\", … by call position")
        }
        return try (0..<count).map { index in
            guard let value = byIndex[String(index)], !(value is NSNull) else { return nil }
            return try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
        }
    }
}
