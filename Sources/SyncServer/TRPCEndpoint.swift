import Foundation
import Hummingbird
import NIOCore
import SyncCore

/// `/trpc/{path}`: reads the procedure names, inputs and credentials of an HTTP request and answers in the tRPC
/// wire format every official client link speaks (rules from `@trpc/server` v11 `http/resolveResponse.ts` and
/// `http/contentType.ts`; v10's stream mode from v10's `http/resolveHTTPResponse.ts`):
///
/// - `httpLink`: `GET /trpc/erp.getStatus?input=<url-encoded JSON>`, `POST /trpc/erp.syncNow` with the input as
///   the JSON body; one envelope, the status of its outcome.
/// - `httpBatchLink`: `?batch=1`, names comma-joined in the path (at most `api.maxBatchSize`), inputs in one
///   object keyed `"0"`, `"1"`, …; an array of envelopes in request order, 207 when their statuses differ.
/// - `httpBatchStreamLink` (v11): a batch with `trpc-accept: application/jsonl`; JSON lines, written as each call
///   settles (``TRPCWire/JSONLStream``), status 200 with errors inside the stream.
/// - `unstable_httpBatchStreamLink` (v10): a batch with `trpc-batch-mode: stream`; one JSON object keyed by call
///   index, written as each call settles, status 200.
/// - `httpSubscriptionLink`: `GET` of a subscription; server-sent events (``subscriptionResponse(_:path:caller:input:)``).
///
/// The calls of a batch run concurrently. Errors of the whole request (a `POST` that is not JSON, a batch over
/// the limit, a stream that is not a batch) answer one error envelope with its status, whatever the link.
struct TRPCEndpoint: Sendable {
    let router: TRPCRouter
    let authenticator: TokenAuthenticator
    let wire: TRPCWire
    /// `api.maxBodyBytes`.
    let maxBodyBytes: Int
    /// `api.maxBatchSize`.
    let maxBatchSize: Int
    /// The ping interval of subscriptions.
    let heartbeat: Duration

    /// A header name (`HTTPField.Name`, which Hummingbird does not re-export).
    typealias HeaderName = HTTPFields.Element.Name
    static let trpcAccept = HeaderName("trpc-accept")!
    static let trpcBatchMode = HeaderName("trpc-batch-mode")!
    static let trpcSource = HeaderName("x-trpc-source")!
    static let lastEventID = HeaderName("last-event-id")!
    static let accelBuffering = HeaderName("x-accel-buffering")!

    func respond(_ request: Request, context: BasicRequestContext, method: TRPCRouter.HTTPVerb) async -> Response {
        let rawPath = context.parameters.get("path") ?? ""
        let path = rawPath.removingPercentEncoding ?? rawPath
        let isBatch = request.uri.queryParameters["batch"] == "1"
        let names = isBatch ? path.split(separator: ",", omittingEmptySubsequences: false).map(String.init) : [path]
        let isJSONL = request.headers[Self.trpcAccept] == "application/jsonl"
        let isV10Stream = isBatch && request.headers[Self.trpcBatchMode] == "stream"
        if let failure = requestFailure(request, method: method, isBatch: isBatch, isJSONL: isJSONL, count: names.count) {
            let (body, status) = wire.requestFailure(failure)
            return Self.json(status, body)
        }
        var request = request
        let inputs = await readInputs(&request, method: method, isBatch: isBatch, count: names.count)
        if !isBatch, method == .get, router.kind(of: path) == .subscription {
            return await subscriptionResponse(request, path: path, input: inputs.map { $0[0] })
        }
        let caller = authenticator.authenticate(authorization: request.headers[.authorization])
        let router = self.router
        let call: @Sendable (Int) async -> (Int, TRPCOutcome) = { index in
            (index, await router.call(names[index], method: method, input: inputs.map { $0[index] }, caller: caller, isBatch: isBatch))
        }
        guard isJSONL || isV10Stream else {
            let outcomes = await withTaskGroup(of: (Int, TRPCOutcome).self) { group in
                for index in names.indices { group.addTask { await call(index) } }
                var outcomes = [TRPCOutcome?](repeating: nil, count: names.count)
                for await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes.compactMap { $0 }
            }
            let (body, status) = wire.response(outcomes, isBatch: isBatch)
            return Self.json(status, body)
        }
        let wire = self.wire
        // `resolveResponse.ts` answers a JSONL stream as `content-type: application/json`, status 200; v10's
        // stream mode the same (`initResponse` without a body).
        return Response(status: .ok, headers: Self.jsonHeaders, body: .init { writer in
            var stream = TRPCWire.JSONLStream(wire: wire, count: names.count)
            if isJSONL { try await writer.write(ByteBuffer(bytes: stream.head())) }
            try await withThrowingTaskGroup(of: (Int, TRPCOutcome).self) { group in
                for index in names.indices { group.addTask { await call(index) } }
                var isFirst = true
                for try await (index, outcome) in group {
                    let chunk = isJSONL ? stream.lines(index: index, outcome) : wire.v10StreamEntry(index: index, outcome, isFirst: isFirst)
                    isFirst = false
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
            }
            if !isJSONL { try await writer.write(ByteBuffer(string: "}")) }
            try await writer.finish(nil)
        })
    }

    /// An error of the whole request, checked before any call (`resolveResponse.ts`, `contentType.ts`).
    private func requestFailure(_ request: Request, method: TRPCRouter.HTTPVerb, isBatch: Bool, isJSONL: Bool, count: Int) -> TRPCError? {
        if method == .post {
            let type = request.headers[.contentType]
            guard type?.lowercased().hasPrefix("application/json") == true else {
                return TRPCError(.unsupportedMediaType, type.map { "unsupported content-type \"\($0)\": send the input as application/json" }
                    ?? "missing content-type header: send the input as application/json")
            }
        }
        if isJSONL && !isBatch {
            return TRPCError(.badRequest, "streaming requests must be batched (you can do a batch of 1)")
        }
        if count > maxBatchSize {
            return TRPCError(.badRequest, "a batch may call at most \(maxBatchSize) procedures (api.maxBatchSize), got \(count)")
        }
        return nil
    }

    /// The raw JSON input of each call (`nil` = omitted), unwrapped by the transformer, or why they cannot be read;
    /// in tRPC v11 the latter fails every call of the request with `BAD_REQUEST` (`contentType.ts`, which in v10
    /// was `PARSE_ERROR`).
    func readInputs(_ request: inout Request, method: TRPCRouter.HTTPVerb, isBatch: Bool, count: Int) async -> Result<[Data?], TRPCError> {
        do {
            let raw: Data?
            switch method {
            case .get:
                raw = request.uri.queryParameters["input"].flatMap { $0.isEmpty ? nil : Data($0.utf8) }
            case .post:
                if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
                    throw TRPCError(.payloadTooLarge, "the request body is \(length) bytes; the limit is \(maxBodyBytes) (api.maxBodyBytes)")
                }
                let buffer: ByteBuffer
                do {
                    buffer = try await request.collectBody(upTo: maxBodyBytes)
                } catch {
                    throw TRPCError(.payloadTooLarge, "the request body exceeds \(maxBodyBytes) bytes (api.maxBodyBytes)")
                }
                raw = buffer.readableBytes == 0 ? nil : Data(buffer.readableBytesView)
            }
            guard let raw else { return .success(Array(repeating: nil, count: count)) }
            let parsed: Any
            do {
                parsed = try JSONSerialization.jsonObject(with: raw, options: [.fragmentsAllowed])
            } catch {
                let place = method == .get ? "the input query parameter" : "the request body"
                throw TRPCError(.badRequest, "\(place) is not valid JSON (\(String(decoding: raw.prefix(80), as: UTF8.self)))")
            }
            guard isBatch else {
                return .success([try encode(wire.deserializeInput(parsed, position: nil), raw: wire.transformer == .none ? raw : nil)])
            }
            guard let byIndex = parsed as? [String: Any] else {
                throw TRPCError(.badRequest, "\"input\" needs to be an object when doing a batch call: keyed \"0\", \"1\", … by call position")
            }
            return .success(try (0..<count).map { index in
                guard let value = byIndex[String(index)] else { return nil }
                return try encode(wire.deserializeInput(value, position: index), raw: nil)
            })
        } catch let error as TRPCError {
            return .failure(error)
        } catch {
            return .failure(TRPCError(.badRequest, "could not read the request: \(error)"))
        }
    }

    /// An input as JSON text for the procedure (`nil` for none or `null`); `raw` when it is the text as received.
    private func encode(_ value: Any?, raw: Data?) throws -> Data? {
        guard let value, !(value is NSNull) else { return nil }
        return try raw ?? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
    }

    /// A subscription over server-sent events, as `@trpc/server` v11 `stream/sse.ts` (`sseStreamProducer`) writes it:
    ///
    /// - `event: connected` first, its data the client options (`{"reconnectAfterInactivityMs":…}`, three
    ///   heartbeats: a client hearing nothing for that long reconnects);
    /// - each event as `data: <JSON, through the transformer>` and `id: <event id>` (tRPC's `tracked()`), so a
    ///   reconnecting `EventSource` sends `Last-Event-ID` and `httpSubscriptionLink` `lastEventId`;
    /// - `event: ping` every heartbeat while idle.
    ///
    /// A browser cannot send headers with an `EventSource`: the caller is the ticket in `connectionParams`
    /// (`{"ticket":"…"}` from `erp.subscriptionTicket`), or else an `Authorization` header. A resume point comes
    /// from the `last-event-id` header, the `lastEventId` query parameter or the input's `lastEventId`
    /// (`contentType.ts` merges them into the input in that order). Errors before the stream starts answer a
    /// JSON error envelope with its status (an `EventSource` then stops).
    func subscriptionResponse(_ request: Request, path: String, input: Result<Data?, TRPCError>) async -> Response {
        let caller = subscriber(request)
        let resumeFrom = request.headers[Self.lastEventID] ?? request.uri.queryParameters["lastEventId"].map(String.init)
            ?? request.uri.queryParameters["Last-Event-Id"].map(String.init)
        let merged = input.flatMap { raw -> Result<Data?, TRPCError> in
            guard let resumeFrom else { return .success(raw) }
            var object = raw.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
            object["lastEventId"] = resumeFrom
            return .success(try? JSONSerialization.data(withJSONObject: object))
        }
        let events: TRPCRouter.TrackedStream
        do {
            events = try await router.subscribe(path, input: merged, caller: caller)
        } catch {
            let (body, status) = wire.response([.failure(error, path: path)], isBatch: false)
            return Self.json(status, body)
        }
        let wire = self.wire, heartbeat = self.heartbeat
        var headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache, no-transform"]
        headers[Self.accelBuffering] = "no"
        headers[.vary] = "trpc-accept"
        return Response(status: .ok, headers: headers, body: .init { writer in
            let reconnect = 3 * (heartbeat.components.seconds * 1000 + heartbeat.components.attoseconds / 1_000_000_000_000_000)
            try await writer.write(ByteBuffer(string: "event: connected\ndata: {\"reconnectAfterInactivityMs\":\(reconnect)}\n\n\n"))
            // Pings interleave with events through one stream, so writes never overlap.
            let (chunks, output) = AsyncStream.makeStream(of: Data.self)
            let forward = Task {
                for await event in events {
                    output.yield(Data("data: ".utf8) + wire.serialize(event.data) + Data("\nid: \(event.id)\n\n\n".utf8))
                }
                output.finish()
            }
            let ping = Task {
                while (try? await Task.sleep(for: heartbeat)) != nil { output.yield(Data("event: ping\ndata: \n\n\n".utf8)) }
            }
            defer {
                forward.cancel()
                ping.cancel()
            }
            for await chunk in chunks { try await writer.write(ByteBuffer(bytes: chunk)) }
            try await writer.finish(nil)
        })
    }

    /// Who opens a subscription: the ticket in `connectionParams`, else the `Authorization` header.
    private func subscriber(_ request: Request) -> Result<Caller, TRPCError> {
        guard let text = request.uri.queryParameters["connectionParams"] else {
            return authenticator.authenticate(authorization: request.headers[.authorization])
        }
        guard let params = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let ticket = params["ticket"] as? String else {
            return .failure(TRPCError(.unauthorized, "connectionParams must be {\"ticket\": \"…\"} with a ticket from erp.subscriptionTicket"))
        }
        return authenticator.redeem(ticket: ticket)
    }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json", .vary: "trpc-accept"]

    static func json(_ status: Int, _ body: Data) -> Response {
        Response(status: .init(code: status), headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
