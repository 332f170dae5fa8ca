import Foundation
import SyncCore

/// A tRPC error: one of tRPC's error codes and a message for the caller (never a stack trace).
///
/// Codes and JSON-RPC numbers are tRPC's `TRPC_ERROR_CODES_BY_KEY` (`rpc/codes.ts`), HTTP statuses its
/// `JSONRPC2_TO_HTTP_CODE` (`http/getHTTPStatusCode.ts`), identical in v10 and v11.
public struct TRPCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A tRPC error code with its JSON-RPC number and HTTP status.
    public struct Code: Sendable, Equatable {
        /// `BAD_REQUEST`, `UNAUTHORIZED` …
        public let name: String
        /// The JSON-RPC 2.0 number in `error.code`.
        public let jsonRPC: Int
        /// The HTTP status of a response carrying only this error.
        public let httpStatus: Int

        public static let badRequest = Code(name: "BAD_REQUEST", jsonRPC: -32600, httpStatus: 400)
        public static let internalServerError = Code(name: "INTERNAL_SERVER_ERROR", jsonRPC: -32603, httpStatus: 500)
        public static let unauthorized = Code(name: "UNAUTHORIZED", jsonRPC: -32001, httpStatus: 401)
        public static let forbidden = Code(name: "FORBIDDEN", jsonRPC: -32003, httpStatus: 403)
        public static let notFound = Code(name: "NOT_FOUND", jsonRPC: -32004, httpStatus: 404)
        public static let methodNotSupported = Code(name: "METHOD_NOT_SUPPORTED", jsonRPC: -32005, httpStatus: 405)
        public static let conflict = Code(name: "CONFLICT", jsonRPC: -32009, httpStatus: 409)
        public static let payloadTooLarge = Code(name: "PAYLOAD_TOO_LARGE", jsonRPC: -32013, httpStatus: 413)
        public static let unsupportedMediaType = Code(name: "UNSUPPORTED_MEDIA_TYPE", jsonRPC: -32015, httpStatus: 415)
        /// A database the call needs failed (tRPC's `SERVICE_UNAVAILABLE`, which shares JSON-RPC's server error number).
        public static let serviceUnavailable = Code(name: "SERVICE_UNAVAILABLE", jsonRPC: -32603, httpStatus: 503)
    }

    public var code: Code
    /// What went wrong and, for bad input, where (`input.batchSize: …`).
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `CODE: message`.
    public var description: String { "\(code.name): \(message)" }
}

/// How one procedure call ended: its output encoded as JSON, or an error raised at `path` (`nil` for an error
/// of the whole request, such as a batch over `api.maxBatchSize`).
enum TRPCOutcome: Sendable {
    case success(Data)
    case failure(TRPCError, path: String?)

    /// 200, or the error's status.
    var httpStatus: Int {
        switch self {
        case .success: 200
        case .failure(let error, _): error.code.httpStatus
        }
    }
}

/// The tRPC HTTP wire format of this server's transformer (`api.transformer`): one call's envelope, the four
/// response shapes (single, batch array, v11 JSONL stream, v10 stream) and SSE data.
///
/// The rules come from `@trpc/server`: envelopes from `transformer.ts` (`transformTRPCResponse`: only
/// `result.data` and `error` go through the transformer), the error shape from `error/formatter.ts`
/// (`getDefaultErrorShape`: `{message, code, data: {code, httpStatus, path?}}`), batch statuses from
/// `http/getHTTPStatusCode.ts` (207 when the items' statuses differ).
struct TRPCWire: Sendable {
    let transformer: APITransformer

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }()

    private struct ErrorShape: Encodable {
        struct Details: Encodable {
            var code: String
            var httpStatus: Int
            var path: String?
        }
        var message: String
        var code: Int
        var data: Details
    }

    /// The error shape of `error` at `path`, before the transformer.
    static func errorShape(_ error: TRPCError, path: String?) -> Data {
        let shape = ErrorShape(message: error.message, code: error.code.jsonRPC,
                               data: .init(code: error.code.name, httpStatus: error.code.httpStatus, path: path))
        // Encoding plain strings and integers cannot fail.
        return (try? encoder.encode(shape)) ?? Data()
    }

    /// A value as the transformer sends it: as is (`none`), or superjson's `{json, meta}`.
    func serialize(_ json: Data) -> Data {
        transformer == .superjson ? SuperJSON.serialize(json) : json
    }

    /// One call's envelope: `{"result":{"data":…}}` or `{"error":…}`, transformer applied inside.
    func envelope(_ outcome: TRPCOutcome) -> Data {
        switch outcome {
        case .success(let data): Data(#"{"result":{"data":"#.utf8) + serialize(data) + Data("}}".utf8)
        case .failure(let error, let path): Data(#"{"error":"#.utf8) + serialize(Self.errorShape(error, path: path)) + Data("}".utf8)
        }
    }

    /// The body and status of a non-streamed response: one envelope as is; a batch as an array in request order,
    /// status 207 when the items' statuses differ (`getHTTPStatusCode.ts`).
    func response(_ outcomes: [TRPCOutcome], isBatch: Bool) -> (body: Data, status: Int) {
        guard isBatch else { return (envelope(outcomes[0]), outcomes[0].httpStatus) }
        var body = Data("[".utf8)
        for (index, outcome) in outcomes.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(envelope(outcome))
        }
        body.append(UInt8(ascii: "]"))
        let statuses = Set(outcomes.map(\.httpStatus))
        return (body, statuses.count == 1 ? statuses.first! : 207)
    }

    /// A request-level error (bad content type, a batch over the limit …): one error envelope, not an array,
    /// whatever the request (`resolveResponse.ts`, its outer `catch`).
    func requestFailure(_ error: TRPCError) -> (body: Data, status: Int) {
        (envelope(.failure(error, path: nil)), error.code.httpStatus)
    }

    /// v10's `trpc-batch-mode: stream` (`unstable_httpBatchStreamLink`): one JSON object written as calls settle,
    /// `{"<index>":<envelope>\n` then `,"<index>":<envelope>\n` … and `}` (`http/batchStreamFormatter.ts`).
    func v10StreamEntry(index: Int, _ outcome: TRPCOutcome, isFirst: Bool) -> Data {
        Data("\(isFirst ? "{" : ",")\"\(index)\":".utf8) + envelope(outcome) + Data("\n".utf8)
    }

    /// v11's JSONL batch stream (`httpBatchStreamLink`, `stream/jsonl.ts` `jsonlStreamProducer`), one line per
    /// item, each passed through the transformer as a whole:
    ///
    /// - the head: `{"0":[[0],[null,0,0]],"1":[[0],[null,0,1]]…}`, call *i* a placeholder for promise chunk *i*;
    /// - per settled call, in settling order: an error resolves its chunk at once,
    ///   `[i,0,[[{"error":<shape>}]]]`; a success nests as `resolveResponse.ts` builds it (`result` and `data`
    ///   each a promise): `[i,0,[[{"result":0}],["result",0,r]]]`, `[r,0,[[{"data":0}],["data",0,d]]]`,
    ///   `[d,0,[[<data>]]]`, where chunk ids `r`, `d` count on from the number of calls.
    ///
    /// An error's `data.path` is the failing call's path (`resolveResponse.ts` writes the first call's path there
    /// for every call, which its client never reads).
    struct JSONLStream {
        let wire: TRPCWire
        private var nextChunk: Int

        /// A stream for a batch of `count` calls.
        init(wire: TRPCWire, count: Int) {
            self.wire = wire
            nextChunk = count
        }

        /// The head line.
        func head() -> Data {
            let entries = (0..<nextChunk).map { #""\#($0)":[[0],[null,0,\#($0)]]"# }.joined(separator: ",")
            return line(Data("{\(entries)}".utf8))
        }

        /// The lines of call `index`'s outcome.
        mutating func lines(index: Int, _ outcome: TRPCOutcome) -> Data {
            switch outcome {
            case .failure(let error, let path):
                return line(Data(#"[\#(index),0,[[{"error":"#.utf8) + TRPCWire.errorShape(error, path: path) + Data("}]]]".utf8))
            case .success(let data):
                let result = nextChunk, value = nextChunk + 1
                nextChunk += 2
                return line(Data(#"[\#(index),0,[[{"result":0}],["result",0,\#(result)]]]"#.utf8))
                    + line(Data(#"[\#(result),0,[[{"data":0}],["data",0,\#(value)]]]"#.utf8))
                    + line(Data("[\(value),0,[[".utf8) + data + Data("]]]".utf8))
            }
        }

        private func line(_ chunk: Data) -> Data { wire.serialize(chunk) + Data("\n".utf8) }
    }

    /// Reads a raw procedure input as the transformer sent it: as is, or the `json` of superjson's `{json, meta}`
    /// (`meta` only marks values that JSON cannot carry; the inputs here take instants as ISO 8601 text, which
    /// is how superjson writes a `Date` in `json`).
    /// - Throws: ``TRPCError`` `BAD_REQUEST` when superjson is configured and the input is not `{json, …}`.
    func deserializeInput(_ value: Any, position: Int?) throws -> Any? {
        guard transformer == .superjson else { return value }
        guard let wrapped = value as? [String: Any], wrapped.keys.allSatisfy({ $0 == "json" || $0 == "meta" }) else {
            let place = position.map { "input[\"\($0)\"]" } ?? "input"
            throw TRPCError(.badRequest, "\(place): api.transformer is superjson, so an input is {\"json\": …, \"meta\"?: …} "
                + "(configure the client with transformer: superjson, or set api.transformer: none)")
        }
        return wrapped["json"]
    }
}

/// superjson's `serialize` for the values this API sends (`flightcontrolhq/superjson` `src/index.ts` and
/// `src/plainer.ts`): `{"json": value, "meta": {"values": {"<path>": ["Date"]}, "v": 1}}`, `meta` only when
/// something is annotated. Paths join object keys and array indices with `.` (`src/pathstringifier.ts`).
///
/// Instants are the only values JSON cannot carry as superjson expects: a string under an instant key
/// (``dateKeys``) that parses as ISO 8601 UTC is written in JavaScript's `toISOString()` form and annotated
/// `Date`. Amounts stay strings; nothing else is annotated.
enum SuperJSON {
    /// Keys whose ISO 8601 values are instants in this API's outputs (`startTime`, `endTime`, the seed's
    /// `timestamp`, `nextScheduledSync.time`, …).
    static let dateKeys: Set<String> = ["startTime", "endTime", "timestamp", "time", "startedAt", "firstSeenAt", "lastSeenAt", "expiresAt"]

    /// `json` (UTF-8 JSON text) as a superjson result.
    static func serialize(_ json: Data) -> Data {
        guard let value = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) else {
            return Data(#"{"json":"#.utf8) + json + Data("}".utf8)
        }
        var values: [String: [String]] = [:]
        let rewritten = annotate(value, path: [], key: nil, into: &values)
        var result: [String: Any] = ["json": rewritten]
        if !values.isEmpty { result["meta"] = ["values": values, "v": 1] as [String: Any] }
        return (try? JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]))
            ?? Data(#"{"json":"#.utf8) + json + Data("}".utf8)
    }

    private static func annotate(_ value: Any, path: [String], key: String?, into values: inout [String: [String]]) -> Any {
        switch value {
        case let object as [String: Any]:
            var copy: [String: Any] = [:]
            for (name, child) in object { copy[name] = annotate(child, path: path + [escape(name)], key: name, into: &values) }
            return copy
        case let array as [Any]:
            return array.enumerated().map { annotate($1, path: path + [String($0)], key: nil, into: &values) }
        case let text as String:
            guard let key, dateKeys.contains(key), let instant = Instant(iso8601: text) else { return text }
            values[path.joined(separator: ".")] = ["Date"]
            return instant.isoMillis
        default:
            return value
        }
    }

    /// A key as one path segment: `\` doubled, `.` escaped, a leading `$` escaped (`escapeKey`).
    private static func escape(_ key: String) -> String {
        var escaped = key.replacingOccurrences(of: "\\", with: "\\\\")
        if escaped.hasPrefix("$") { escaped = "\\" + escaped }
        return escaped.replacingOccurrences(of: ".", with: "\\.")
    }
}
