import Foundation

/// A tRPC error: one of tRPC's error codes and a message for the caller (never a stack trace).
///
/// Codes, JSON-RPC numbers and HTTP statuses are tRPC's (`TRPC_ERROR_CODES_BY_KEY` and
/// `getHTTPStatusCodeFromError` in `@trpc/server`, identical in v10 and v11).
public struct TRPCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A tRPC error code with its JSON-RPC number and HTTP status.
    public struct Code: Sendable, Equatable {
        /// `BAD_REQUEST`, `UNAUTHORIZED` …
        public let name: String
        /// The JSON-RPC 2.0 number in `error.code`.
        public let jsonRPC: Int
        /// The HTTP status of a response carrying only this error.
        public let httpStatus: Int

        public static let parseError = Code(name: "PARSE_ERROR", jsonRPC: -32700, httpStatus: 400)
        public static let badRequest = Code(name: "BAD_REQUEST", jsonRPC: -32600, httpStatus: 400)
        public static let internalServerError = Code(name: "INTERNAL_SERVER_ERROR", jsonRPC: -32603, httpStatus: 500)
        public static let unauthorized = Code(name: "UNAUTHORIZED", jsonRPC: -32001, httpStatus: 401)
        public static let forbidden = Code(name: "FORBIDDEN", jsonRPC: -32003, httpStatus: 403)
        public static let notFound = Code(name: "NOT_FOUND", jsonRPC: -32004, httpStatus: 404)
        public static let methodNotSupported = Code(name: "METHOD_NOT_SUPPORTED", jsonRPC: -32005, httpStatus: 405)
        public static let conflict = Code(name: "CONFLICT", jsonRPC: -32009, httpStatus: 409)
        public static let payloadTooLarge = Code(name: "PAYLOAD_TOO_LARGE", jsonRPC: -32013, httpStatus: 413)
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

/// The tRPC HTTP wire format (tRPC v10 and v11 without a transformer): how one procedure's outcome is
/// written, `{"result":{"data":…}}` or `{"error":{"message","code","data":{"code","httpStatus","path"}}}`.
enum TRPCEnvelope {
    /// One item of a response: the encoded `data` JSON or an error, with the HTTP status it stands for.
    struct Item: Sendable {
        var json: Data
        var httpStatus: Int
    }

    private struct ErrorBody: Encodable {
        struct Inner: Encodable {
            struct Details: Encodable {
                var code: String
                var httpStatus: Int
                var path: String
            }
            var message: String
            var code: Int
            var data: Details
        }
        var error: Inner
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }()

    /// `{"result":{"data":<data>}}` around already encoded data.
    static func success(_ data: Data) -> Item {
        Item(json: Data(#"{"result":{"data":"#.utf8) + data + Data("}}".utf8), httpStatus: 200)
    }

    /// The error envelope of `error` raised by the procedure at `path`.
    static func failure(_ error: TRPCError, path: String) -> Item {
        let body = ErrorBody(error: .init(message: error.message, code: error.code.jsonRPC,
                                          data: .init(code: error.code.name, httpStatus: error.code.httpStatus, path: path)))
        // Encoding plain strings and integers cannot fail.
        return Item(json: (try? encoder.encode(body)) ?? Data(), httpStatus: error.code.httpStatus)
    }

    /// The HTTP body and status of a response: one item as is; a batch as a JSON array in request order, with
    /// status 207 (Multi-Status) when the items' statuses differ, as tRPC's batch link expects.
    static func response(_ items: [Item], isBatch: Bool) -> (body: Data, status: Int) {
        guard isBatch else { return (items[0].json, items[0].httpStatus) }
        var body = Data("[".utf8)
        for (index, item) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(item.json)
        }
        body.append(UInt8(ascii: "]"))
        let statuses = Set(items.map(\.httpStatus))
        return (body, statuses.count == 1 ? statuses.first! : 207)
    }
}
