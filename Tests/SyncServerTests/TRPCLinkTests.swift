import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLiteNIO
import Synchronization
import SyncCore
import SyncServer
import Testing

/// A response read as it arrives, from a real socket (AsyncHTTPClient against the live server), so a test sees
/// what was written before the response ended.
final class StreamedResponse: Sendable {
    let status: Int
    let contentType: String?
    /// What arrived, and whether the body ended.
    private final class Received: Sendable {
        let text = Mutex("")
        let isDone = Mutex(false)
    }
    private let received: Received
    private let reader: Task<Void, Never>

    init(port: Int, _ path: String, method: String = "GET", headers: [(String, String)] = [], body: String? = nil) async throws {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        status = Int(response.status.code)
        contentType = response.headers.first(name: "content-type")
        let received = Received()
        self.received = received
        reader = Task {
            do {
                for try await chunk in response.body { received.text.withLock { $0 += String(buffer: chunk) } }
            } catch {}
            received.isDone.withLock { $0 = true }
        }
    }

    /// What arrived so far.
    var text: String { received.text.withLock { $0 } }

    /// Waits up to `seconds` for what arrived to satisfy `condition`.
    func wait(_ seconds: Double = 20, until condition: (String) -> Bool) async throws -> Bool {
        try await eventually(seconds) { condition(self.text) }
    }

    /// Waits for the end of the body and returns it.
    func complete(within seconds: Double = 30) async throws -> String {
        #expect(try await eventually(seconds) { self.received.isDone.withLock { $0 } }, "the response did not end")
        return text
    }

    /// Disconnects.
    func close() async {
        reader.cancel()
        _ = await reader.value
    }
}

/// The JSON lines of a body; with `superjson`, each line's `json`.
func jsonLines(_ text: String, superjson: Bool = false) throws -> [Any] {
    try text.split(separator: "\n").map { line in
        let value = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
        return superjson ? try object(value)["json"] as Any : value
    }
}

/// Decodes a v11 JSONL batch stream the way `@trpc/server`'s `jsonlStreamConsumer` (`stream/jsonl.ts`) does: the
/// head maps each call to a value with chunk placeholders (`[[value], [key, 0, chunkId]…]`), each later line
/// `[chunkId, 0, <encoded value>]` resolves one chunk. Returns each call's envelope by index, and the order in
/// which the calls' top-level chunks arrived.
func decodeJSONL(_ lines: [Any]) throws -> (envelopes: [Int: Any], order: [Int]) {
    let head = try object(lines.first)
    var chunks: [Int: [Any]] = [:]
    var arrival: [Int] = []
    for line in lines.dropFirst() {
        let chunk = try #require(line as? [Any])
        let id = try #require(chunk[0] as? Int)
        #expect(chunk[1] as? Int == 0)  // PROMISE_STATUS_FULFILLED
        chunks[id] = try #require(chunk[2] as? [Any])
        arrival.append(id)
    }
    func decode(_ encoded: [Any]) throws -> Any {
        var value: Any = try #require(encoded[0] as? [Any]).first ?? NSNull()
        for definition in encoded.dropFirst() {
            let parts = try #require(definition as? [Any])
            let chunk = try #require(parts[2] as? Int)
            let resolved = try decode(try #require(chunks[chunk], "chunk \(chunk) never arrived"))
            if let key = parts[0] as? String {
                var object = try #require(value as? [String: Any])
                object[key] = resolved
                value = object
            } else {
                value = resolved
            }
        }
        return value
    }
    var envelopes: [Int: Any] = [:]
    for (key, encoded) in head {
        envelopes[try #require(Int(key))] = try decode(try #require(encoded as? [Any]))
    }
    return (envelopes, arrival.filter { head[String($0)] != nil })
}

/// The `(id, data)` of each data event of an SSE body (`stream/sse.ts`: `data:` then `id:` lines).
func sseDataEvents(_ text: String) -> [(id: String, data: String)] {
    text.components(separatedBy: "\n\n").compactMap { block in
        let lines = block.split(separator: "\n")
        guard !lines.contains(where: { $0.hasPrefix("event:") }),
              let data = lines.first(where: { $0.hasPrefix("data: ") }), let id = lines.first(where: { $0.hasPrefix("id: ") }) else { return nil }
        return (String(id.dropFirst(4)), String(data.dropFirst(6)))
    }
}

/// Every tRPC client link against the real server, with and without superjson. Each wire rule cites the
/// `@trpc/server` (v11 unless said otherwise) or superjson file it comes from.
@Suite struct TRPCLinkTests {
    static func headers(_ token: String?, _ extra: [(String, String)] = []) -> [(String, String)] {
        [("content-type", "application/json")] + (token.map { [("authorization", "Bearer \($0)")] } ?? []) + extra
    }

    /// A batch of a success, an unknown procedure and bad input over `httpBatchLink`, v11's
    /// `httpBatchStreamLink` and v10's stream mode.
    @Test func aMixedBatchOverEveryBatchLink() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let port = try #require(client.port)
                let path = "/trpc/erp.getSupportedDatabases,erp.nothing,erp.getSyncHistory?batch=1&input=\(encodedInput(#"{"2":{"limit":"ten"}}"#))"
                func check(_ envelopes: [Any]) throws {
                    #expect(try object(object(envelopes[0])["result"])["data"] != nil)
                    let notFound = try object(object(envelopes[1])["error"])
                    #expect(notFound["code"] as? Int == -32004)
                    #expect(try object(notFound["data"])["path"] as? String == "erp.nothing")
                    let bad = try object(object(envelopes[2])["error"])
                    #expect(try object(bad["data"])["code"] as? String == "BAD_REQUEST")
                    #expect(bad["message"] as? String == "input.limit: expected a number")
                    #expect(try object(bad["data"])["path"] as? String == "erp.getSyncHistory")
                }
                // httpBatchLink: an array in request order, 207 as the statuses differ (`http/getHTTPStatusCode.ts`).
                let array = try await StreamedResponse(port: port, path, headers: Self.headers(f.viewerToken))
                #expect(array.status == 207)
                try check(try #require(try JSONSerialization.jsonObject(with: Data(try await array.complete().utf8)) as? [Any]))

                // httpBatchStreamLink: `trpc-accept: application/jsonl`; 200 and `content-type: application/json` with
                // the errors inside the stream (`http/resolveResponse.ts`, "httpBatchStreamLink" branch; lines from
                // `stream/jsonl.ts` `jsonlStreamProducer`).
                let jsonl = try await StreamedResponse(port: port, path, headers: Self.headers(f.viewerToken, [("trpc-accept", "application/jsonl")]))
                #expect(jsonl.status == 200)
                #expect(jsonl.contentType == "application/json")
                let lines = try jsonLines(try await jsonl.complete())
                #expect(String(data: try JSONSerialization.data(withJSONObject: lines[0], options: [.sortedKeys]), encoding: .utf8)
                        == #"{"0":[[0],[null,0,0]],"1":[[0],[null,0,1]],"2":[[0],[null,0,2]]}"#)
                let decoded = try decodeJSONL(lines)
                try check((0..<3).map { decoded.envelopes[$0] as Any })
                // A success nests result and data as promises (chunks), an error resolves its chunk directly.
                #expect(lines.count == 6)  // head, 3 for the success, 1 per error

                // v10 `unstable_httpBatchStreamLink`: `trpc-batch-mode: stream`; `{"i":envelope\n,"j":…\n}` as calls
                // settle (v10 `http/batchStreamFormatter.ts`, `http/resolveHTTPResponse.ts`), status 200.
                let v10 = try await StreamedResponse(port: port, path, headers: Self.headers(f.viewerToken, [("trpc-batch-mode", "stream")]))
                #expect(v10.status == 200)
                let body = try await v10.complete()
                #expect(body.hasPrefix("{\"") && body.hasSuffix("\n}"))
                #expect(body.components(separatedBy: "\n,").count == 3)
                let byIndex = try object(JSONSerialization.jsonObject(with: Data(body.utf8)))
                try check((0..<3).map { byIndex[String($0)] as Any })
            }
        }
    }

    @Test func aBatchOfFiftyIsAnsweredAndOneOverMaxBatchSizeIsRefused() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let port = try #require(client.port)
                let fifty = Array(repeating: "erp.getSupportedDatabases", count: 50).joined(separator: ",")
                let array = try await StreamedResponse(port: port, "/trpc/\(fifty)?batch=1", headers: Self.headers(f.viewerToken))
                #expect(array.status == 200)
                #expect(try (JSONSerialization.jsonObject(with: Data(try await array.complete().utf8)) as? [Any])?.count == 50)
                let jsonl = try await StreamedResponse(port: port, "/trpc/\(fifty)?batch=1",
                                                       headers: Self.headers(f.viewerToken, [("trpc-accept", "application/jsonl")]))
                let decoded = try decodeJSONL(try jsonLines(try await jsonl.complete()))
                #expect(decoded.envelopes.count == 50)
                #expect(try decoded.envelopes.values.allSatisfy { try object($0)["result"] != nil })

                // 101 > api.maxBatchSize (100): one error for the whole request, not an array (the outer `catch`
                // of `http/resolveResponse.ts`).
                let tooMany = Array(repeating: "erp.getStatus", count: 101).joined(separator: ",")
                let refused = try await client.execute(uri: "/trpc/\(tooMany)?batch=1", method: .get, headers: ServerFixture.bearer(f.viewerToken))
                #expect(refused.status == .badRequest)
                let error = try object(object(json(refused.body))["error"])
                #expect(error["code"] as? Int == -32600)
                #expect((error["message"] as? String)?.contains("api.maxBatchSize") == true)
            }
        }
        try await ServerFixture.with(apiYAML: "  maxBatchSize: 2") { f in
            try await f.server.app.test(.live) { client in
                let refused = try await client.execute(uri: "/trpc/erp.getStatus,erp.getStatus,erp.getStatus?batch=1", method: .get,
                                                       headers: ServerFixture.bearer(f.viewerToken))
                #expect(String(buffer: refused.body).contains("at most 2 procedures (api.maxBatchSize), got 3"))
            }
        }
    }

    /// A slow call does not hold back a fast one: `syncNow` of loja-centro is held at a gate (that source's reads
    /// wait) while the `testConnection` of loja-sul batched with it is answered; both stream links write each call as it settles
    /// (`stream/jsonl.ts` races the calls' chunks; v10 `http/resolveHTTPResponse.ts` races the promises).
    @Test func aSlowProcedureDoesNotDelayAFastOneOnEitherStreamLink() async throws {
        for mode in [("trpc-accept", "application/jsonl"), ("trpc-batch-mode", "stream")] {
            let gate = Gate()
            try await ServerFixture.with(makeSource: { config in
                let source = try await ServerFixture.openSQLite(config)
                return config.name == "loja-centro" ? GatedSource(base: source, gate: gate) : source
            }) { f in
                try await f.server.app.test(.live) { client in
                    let port = try #require(client.port)
                    let response = try await StreamedResponse(
                        port: port, "/trpc/erp.syncNow,erp.testConnection?batch=1", method: "POST", headers: Self.headers(f.adminToken, [mode]),
                        body: #"{"0":{"source":"loja-centro"},"1":{"source":"loja-sul"}}"#)
                    #expect(response.status == 200)
                    // testConnection's answer arrives while syncNow is still held.
                    #expect(try await response.wait { $0.contains("\"success\":true") })
                    #expect(try await eventually { await gate.arrivals > 0 })
                    #expect(!response.text.contains("recordsInserted"))
                    await gate.open()
                    let body = try await response.complete()
                    #expect(body.contains("\"recordsInserted\":250"))
                    if mode.0 == "trpc-accept" {
                        let decoded = try decodeJSONL(try jsonLines(body))
                        #expect(decoded.order == [1, 0])  // settling order, not request order
                        #expect(try object(object(object(decoded.envelopes[0])["result"])["data"])["success"] as? Bool == true)
                    } else {
                        #expect(body.hasPrefix("{\"1\":"))
                        let byIndex = try object(JSONSerialization.jsonObject(with: Data(body.utf8)))
                        #expect(try object(object(object(byIndex["0"])["result"])["data"])["success"] as? Bool == true)
                    }
                }
            }
        }
    }

    /// superjson over every link: inputs are `{json, meta?}`, outputs `{json, meta}` with instants annotated
    /// `Date` (`flightcontrolhq/superjson` `src/index.ts` `serialize`, `src/plainer.ts` paths); tRPC passes only
    /// `result.data` and `error` through it (`transformer.ts` `transformTRPCResponse`), and each JSONL line or SSE
    /// data as a whole (`stream/jsonl.ts`, `stream/sse.ts` `serialize`).
    @Test func superjsonOverEveryLink() async throws {
        // Short pings: a closed subscription is noticed at the next write, so the server stops promptly.
        try await ServerFixture.with(apiYAML: "  transformer: superjson", heartbeat: .milliseconds(200)) { f in
            try await f.server.app.test(.live) { client in
                let port = try #require(client.port)
                // httpLink mutation: the input wrapped, the output's instants as Dates.
                let sync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                                    body: ByteBuffer(string: #"{"json":{"source":"loja-centro"}}"#))
                #expect(sync.status == .ok)
                let syncData = try object(object(object(json(sync.body))["result"])["data"])
                let values = try object(object(syncData["meta"])["values"])
                #expect(values["data.startTime"] as? [String] == ["Date"])
                #expect(values["data.endTime"] as? [String] == ["Date"])
                #expect(values["data.timestamp"] as? [String] == ["Date"])
                let run = try object(object(syncData["json"])["data"])
                #expect((run["startTime"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
                #expect(run["recordsInserted"] as? Int == 250)
                #expect(run["success"] as? Bool == true)
                #expect(run["cursorTo"] as? String == "2024-01-15 12:09:00 #250")  // not an instant: no annotation

                // An input that is not {json, meta}: BAD_REQUEST saying why.
                let unwrapped = try await client.execute(uri: "/trpc/erp.getSyncHistory?input=\(encodedInput(#"{"limit":5}"#))", method: .get,
                                                         headers: ServerFixture.bearer(f.viewerToken))
                #expect(unwrapped.status == .badRequest)
                #expect(String(buffer: unwrapped.body).contains("api.transformer is superjson"))
                // Errors are serialized too: {"error":{"json":{message, code, data}}}.
                #expect(try object(object(object(json(unwrapped.body))["error"])["json"])["code"] as? Int == -32600)

                // httpBatchLink: each item's data serialized on its own.
                let input = encodedInput(#"{"0":{"json":{"limit":1}}}"#)
                let batch = try await client.execute(uri: "/trpc/erp.getSyncHistory,erp.getStatus?batch=1&input=\(input)", method: .get,
                                                     headers: ServerFixture.bearer(f.viewerToken))
                let items = try #require(try json(batch.body) as? [Any])
                let history = try object(object(object(items[0])["result"])["data"])
                #expect(try object(object(history["meta"])["values"])["syncs.0.startTime"] as? [String] == ["Date"])
                let status = try object(object(object(items[1])["result"])["data"])
                #expect(try object(object(status["meta"])["values"])["lastSync.timestamp"] as? [String] == ["Date"])

                // httpBatchStreamLink: every line is a superjson result; the data line's Date paths start at the
                // line's root ([chunk, 0, [[data]]] → "2.0.0.").
                let jsonl = try await StreamedResponse(port: port, "/trpc/erp.getSyncHistory?batch=1&input=\(input)",
                                                       headers: Self.headers(f.viewerToken, [("trpc-accept", "application/jsonl")]))
                let body = try await jsonl.complete()
                let raw = try body.split(separator: "\n").map { try object(JSONSerialization.jsonObject(with: Data($0.utf8))) }
                #expect(raw.allSatisfy { $0["json"] != nil })
                #expect(raw.contains { (($0["meta"] as? [String: Any])?["values"] as? [String: Any])?["2.0.0.syncs.0.startTime"] as? [String] == ["Date"] })
                let decoded = try decodeJSONL(try jsonLines(body, superjson: true))
                #expect(try (object(object(object(decoded.envelopes[0])["result"])["data"])["syncs"] as? [Any])?.count == 1)

                // v10 stream mode: envelopes as httpBatchLink's, keyed by index.
                let v10 = try await StreamedResponse(port: port, "/trpc/erp.getSyncHistory?batch=1&input=\(input)",
                                                     headers: Self.headers(f.viewerToken, [("trpc-batch-mode", "stream")]))
                let byIndex = try object(JSONSerialization.jsonObject(with: Data(try await v10.complete().utf8)))
                #expect(try object(object(object(object(byIndex["0"])["result"])["data"])["meta"])["values"] != nil)

                // httpSubscriptionLink: each event's data serialized.
                let ticket = try await Self.ticket(client, f.viewerToken, superjson: true)
                let events = try await StreamedResponse(
                    port: port, "/trpc/erp.onSyncProgress?input=\(encodedInput(#"{"json":{"source":"loja-sul"}}"#))&connectionParams=\(encodedInput(#"{"ticket":"\#(ticket)"}"#))")
                #expect(events.status == 200)
                #expect(try await events.wait { $0.contains("event: connected") })
                _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                             body: ByteBuffer(string: #"{"json":{"source":"loja-sul"}}"#))
                #expect(try await events.wait { $0.contains("\"type\":\"finished\"") })
                let finished = try #require(sseDataEvents(events.text).last)
                let serialized = try object(JSONSerialization.jsonObject(with: Data(finished.data.utf8)))
                #expect(try object(serialized["json"])["type"] as? String == "finished")
                #expect(try object(object(serialized["meta"])["values"])["result.startTime"] as? [String] == ["Date"])
                await events.close()
            }
        }
    }

    /// `erp.subscriptionTicket`'s ticket; with superjson the output is `{json: {ticket, expiresAt}}`.
    static func ticket(_ client: some TestClientProtocol, _ token: String, superjson: Bool = false) async throws -> String {
        let response = try await client.execute(uri: "/trpc/erp.subscriptionTicket", method: .post, headers: ServerFixture.bearer(token))
        #expect(response.status == .ok)
        var data = try object(object(json(response.body))["result"])["data"]
        if superjson {
            #expect(try object(object(object(data)["meta"])["values"])["expiresAt"] as? [String] == ["Date"])
            data = try object(data)["json"]
        }
        return try #require(try object(data)["ticket"] as? String)
    }

    /// `erp.onSyncProgress` in tRPC's SSE format (`stream/sse.ts` `sseStreamProducer`: `event: connected` with the
    /// client options first, data events with `id:` from `tracked()`, `event: ping` heartbeats), opened with a
    /// ticket in `connectionParams` (`http/contentType.ts` reads `connectionParams` from the query), and resumed
    /// after a reconnect from `Last-Event-ID` or the input's `lastEventId` (`contentType.ts` merges both into the
    /// input).
    @Test func aSubscriptionFollowsARealSyncAndResumesAfterAReconnect() async throws {
        try await ServerFixture.with(heartbeat: .milliseconds(200)) { f in
            try await f.server.app.test(.live) { client in
                let port = try #require(client.port)
                let ticket = try await Self.ticket(client, f.viewerToken)
                let params = "connectionParams=\(encodedInput(#"{"ticket":"\#(ticket)"}"#))"
                let path = "/trpc/erp.onSyncProgress?input=\(encodedInput(#"{"source":"loja-centro"}"#))&\(params)"
                let first = try await StreamedResponse(port: port, path)
                #expect(first.status == 200)
                #expect(first.contentType == "text/event-stream")
                #expect(try await first.wait { $0.contains("event: connected\ndata: {\"reconnectAfterInactivityMs\":600}\n\n") })
                #expect(try await first.wait { $0.contains("event: ping\ndata: \n\n") })  // heartbeat while idle

                let sync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                                    body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(sync.status == .ok)
                #expect(try await first.wait { $0.contains("\"type\":\"finished\"") })
                let events = sseDataEvents(first.text)
                let types = try events.map { try object(JSONSerialization.jsonObject(with: Data($0.data.utf8)))["type"] as? String }
                #expect(types == ["started", "progress", "progress", "progress", "finished"])  // 250 rows in batches of 100
                let finished = try object(JSONSerialization.jsonObject(with: Data(events[4].data.utf8)))
                #expect(try object(finished["result"])["recordsInserted"] as? Int == 250)
                let ids = events.map { $0.id }
                #expect(Set(ids).count == 5)
                await first.close()
                #expect(try await eventually { f.server.runner.events.subscriberCount == 0 })

                // Reconnect as an EventSource does: the last id seen in Last-Event-ID; the missed events come first.
                let resumed = try await StreamedResponse(port: port, path, headers: [("last-event-id", ids[0])])
                #expect(try await resumed.wait { $0.contains("\"type\":\"finished\"") })
                #expect(sseDataEvents(resumed.text).map { $0.id } == Array(ids[1...]))
                await resumed.close()
                // … or as httpSubscriptionLink does: lastEventId in the input (a key the strict input check accepts).
                let viaInput = try await StreamedResponse(
                    port: port, "/trpc/erp.onSyncProgress?input=\(encodedInput(#"{"source":"loja-centro","lastEventId":"\#(ids[3])"}"#))&\(params)")
                #expect(try await viaInput.wait { $0.contains("\"type\":\"finished\"") })
                #expect(sseDataEvents(viaInput.text).map { $0.id } == [ids[4]])
                await viaInput.close()
            }
        }
    }

    @Test func aSubscriptionNeedsATicketNeverATokenInTheURL() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let path = "/trpc/erp.onSyncProgress"
                func error(_ response: TestResponse) throws -> String? { try object(object(json(response.body))["error"])["message"] as? String }
                let none = try await client.execute(uri: path, method: .get)
                #expect(none.status == .unauthorized)
                let token = try await client.execute(uri: "\(path)?connectionParams=\(encodedInput(#"{"token":"\#(f.viewerToken)"}"#))", method: .get)
                #expect(token.status == .unauthorized)
                #expect(try error(token)?.contains("erp.subscriptionTicket") == true)
                let forged = try await client.execute(uri: "\(path)?connectionParams=\(encodedInput(#"{"ticket":"\#(f.viewerToken)"}"#))", method: .get)
                #expect(forged.status == .unauthorized)
                #expect(try error(forged)?.contains("an API token never goes in a URL") == true)
                // A ticket opens subscriptions only: it is not an API token.
                let ticket = try await Self.ticket(client, f.viewerToken)
                let misuse = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: ServerFixture.bearer(ticket))
                #expect(misuse.status == .unauthorized)
                // Subscriptions are not batched; their input is checked like any other.
                let batched = try await client.execute(uri: "\(path),erp.getStatus?batch=1", method: .get, headers: ServerFixture.bearer(f.viewerToken))
                #expect(String(buffer: batched.body).contains("subscriptions cannot be batched"))
                let misspelt = try await client.execute(uri: "\(path)?input=\(encodedInput(#"{"sourse":"x"}"#))", method: .get,
                                                        headers: ServerFixture.bearer(f.viewerToken))
                #expect(misspelt.status == .badRequest)
                #expect(try error(misspelt)?.hasPrefix("input.sourse: unknown key; expected source, lastEventId") == true)
            }
        }
    }

    /// CORS preflights from a listed and an unlisted origin, asking for the headers tRPC's links send:
    /// `trpc-accept` (`@trpc/client` `links/httpBatchStreamLink.ts`, `trpcAcceptHeader`), `trpc-batch-mode`
    /// (v10 `links/internals/httpUtils.ts`, `batchModeHeader`), `content-type` and `authorization` (every
    /// link's `fetchHTTPResponse`), `x-trpc-source` (create-t3-app's `headers()`).
    @Test func corsAllowsTRPCHeadersForListedOriginsOnly() async throws {
        try await ServerFixture.with(apiYAML: "  corsOrigins: [\"https://audit.example.com\"]") { f in
            try await f.server.app.test(.live) { client in
                var preflight = HTTPFields()
                preflight[.origin] = "https://audit.example.com"
                preflight[.accessControlRequestMethod] = "GET"
                preflight[.accessControlRequestHeaders] = "trpc-accept, trpc-batch-mode, x-trpc-source, authorization, content-type"
                let allowed = try await client.execute(uri: "/trpc/erp.getStatus,erp.getSyncHistory?batch=1", method: .options, headers: preflight)
                #expect(allowed.status == .noContent || allowed.status == .ok)
                #expect(allowed.headers[.accessControlAllowOrigin] == "https://audit.example.com")
                let granted = Set((allowed.headers[.accessControlAllowHeaders] ?? "").lowercased().split(separator: ",")
                    .map { $0.trimmingCharacters(in: .whitespaces) })
                #expect(granted.isSuperset(of: ["trpc-accept", "trpc-batch-mode", "x-trpc-source", "authorization", "content-type"]))

                preflight[.origin] = "https://evil.example.net"
                let refused = try await client.execute(uri: "/trpc/erp.getStatus", method: .options, headers: preflight)
                #expect(refused.headers[.accessControlAllowOrigin] == nil)
                #expect(refused.headers[.accessControlAllowHeaders] == nil)
            }
        }
    }

    /// Errors of the whole request as v11 answers them (`http/contentType.ts`, `http/resolveResponse.ts`).
    @Test func requestErrorsAsTRPCv11AnswersThem() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                var headers = ServerFixture.bearer(f.adminToken)
                headers[.contentType] = "text/plain"
                let plain = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: headers, body: ByteBuffer(string: "{}"))
                #expect(plain.status == .unsupportedMediaType)
                #expect(try object(object(object(json(plain.body))["error"])["data"])["code"] as? String == "UNSUPPORTED_MEDIA_TYPE")

                var stream = ServerFixture.bearer(f.viewerToken)
                stream[HTTPField.Name("trpc-accept")!] = "application/jsonl"
                let unbatched = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: stream)
                #expect(unbatched.status == .badRequest)
                #expect(String(buffer: unbatched.body).contains("streaming requests must be batched"))

                let notAnObject = try await client.execute(uri: "/trpc/erp.getStatus?batch=1&input=\(encodedInput("[1]"))", method: .get,
                                                           headers: ServerFixture.bearer(f.viewerToken))
                #expect(String(buffer: notAnObject.body).contains("needs to be an object when doing a batch call"))
            }
        }
    }

    @Test func getErrorsPagesTheQuarantineAndGetRunShowsOneRunWithItsErrors() async throws {
        try await ServerFixture.with { f in
            // Five rows with an amount the validator rejects.
            let erp = try await SQLiteConnection.open(storage: .file(path: f.erpPath))
            _ = try await erp.query("UPDATE sale_transactions SET amount = 'abc' WHERE id <= 5")
            try await erp.close()
            try await f.server.app.test(.live) { client in
                let viewer = ServerFixture.bearer(f.viewerToken)
                let sync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                                    body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                let syncId = try #require(try object(object(object(object(json(sync.body))["result"])["data"])["data"])["syncId"] as? String)

                var seen: [Int] = []
                var cursor: Int?
                repeat {
                    let input = cursor.map { #"{"source":"loja-centro","kind":"record","limit":2,"cursor":\#($0)}"# }
                        ?? #"{"source":"loja-centro","kind":"record","limit":2}"#
                    let page = try await client.execute(uri: "/trpc/erp.getErrors?input=\(encodedInput(input))", method: .get, headers: viewer)
                    #expect(page.status == .ok)
                    let data = try object(object(json(page.body))["result"])["data"]
                    let errors = try #require(try object(data)["errors"] as? [[String: Any]])
                    #expect(errors.count <= 2)
                    seen += errors.compactMap { $0["id"] as? Int }
                    #expect(errors.allSatisfy { $0["syncId"] as? String == syncId })
                    cursor = try object(data)["nextCursor"] as? Int
                } while cursor != nil
                #expect(seen.count == 5)
                #expect(seen == seen.sorted(by: >))

                let run = try await client.execute(uri: "/trpc/erp.getRun?input=\(encodedInput(#"{"syncId":"\#(syncId)"}"#))", method: .get, headers: viewer)
                let data = try object(object(object(json(run.body))["result"])["data"])
                #expect(try object(data["run"])["recordsRejected"] as? Int == 5)
                #expect(try object(data["run"])["triggeredBy"] as? String == "api:ops")
                #expect((data["errors"] as? [Any])?.count == 5)

                let missing = try await client.execute(uri: "/trpc/erp.getRun?input=\(encodedInput(#"{"syncId":"nope"}"#))", method: .get, headers: viewer)
                #expect(missing.status == .notFound)
                let noInput = try await client.execute(uri: "/trpc/erp.getRun", method: .get, headers: viewer)
                #expect(noInput.status == .badRequest)
                let badKind = try await client.execute(uri: "/trpc/erp.getErrors?input=\(encodedInput(#"{"kind":"rows"}"#))", method: .get, headers: viewer)
                #expect(badKind.status == .badRequest)
            }
        }
    }

    /// After a restart `/metrics` shows the last success and the cursor lag read from the audit database.
    @Test func metricsStartFromTheAuditDatabase() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                             body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
            }
            let restarted = await buildApplication(ServerDependencies(
                config: f.config, destination: f.destination, makeSource: ServerFixture.openSQLite, availableSources: [.sqlite],
                logger: Logger(label: "erp-sync-test")))
            let text = restarted.metrics.render()
            #expect(text.contains(#"erp_sync_last_success_timestamp_seconds{source="loja-centro"}"#))
            #expect(text.contains(#"erp_sync_cursor_lag_seconds{source="loja-centro"}"#))
            #expect(!text.contains("erp_sync_runs_total"))  // counters count this process's runs only
            await restarted.runner.stop()
        }
    }
}
