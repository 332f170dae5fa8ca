import Foundation
import Logging
import SyncCore

/// Procedures by path (`erp.getStatus`), each a query, mutation or subscription with the role it needs, called
/// with tRPC v11's rules (`http/resolveResponse.ts`): a query or subscription answers `GET` only and a mutation
/// `POST` only (else `METHOD_NOT_SUPPORTED`), an unknown path is `NOT_FOUND`, a subscription cannot be batched
/// (`BAD_REQUEST`); no or an unknown token is `UNAUTHORIZED`, a too-weak role `FORBIDDEN`.
struct TRPCRouter: Sendable {
    /// `query` (HTTP GET, input in `?input=`), `mutation` (HTTP POST, input as the body) or `subscription`
    /// (HTTP GET answered with server-sent events).
    enum Kind: String, Sendable {
        case query, mutation, subscription
    }

    /// What a subscription streams: data events, each with an id a client resumes from (`tracked()`).
    typealias TrackedStream = AsyncStream<(id: String, data: Data)>

    struct Procedure: Sendable {
        enum Body: Sendable {
            /// Decodes the input (raw JSON, `nil` when omitted), runs, returns the encoded `data`.
            case unary(@Sendable (Data?, Caller) async throws -> Data)
            /// Decodes the input and returns the event stream.
            case subscription(@Sendable (Data?, Caller) async throws -> TrackedStream)
        }
        var kind: Kind
        var role: APIToken.Role
        var body: Body
    }

    private(set) var procedures: [String: Procedure] = [:]
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Adds a query or mutation whose output is encoded as the `data` of the success envelope.
    mutating func add(_ path: String, _ kind: Kind, role: APIToken.Role,
                      _ handler: @escaping @Sendable (Data?, Caller) async throws -> any Encodable) {
        procedures[path] = Procedure(kind: kind, role: role, body: .unary { input, caller in
            try TRPCWire.encoder.encode(try await handler(input, caller))
        })
    }

    /// Adds a subscription.
    mutating func addSubscription(_ path: String, role: APIToken.Role,
                                  _ handler: @escaping @Sendable (Data?, Caller) async throws -> TrackedStream) {
        procedures[path] = Procedure(kind: .subscription, role: role, body: .subscription(handler))
    }

    /// The kind of the procedure at `path`, if there is one.
    func kind(of path: String) -> Kind? { procedures[path]?.kind }

    /// Calls the query or mutation at `path` for an HTTP request with `method` (`GET` or `POST`).
    /// - Parameters:
    ///   - input: the call's raw input, or why the request's inputs could not be read.
    ///   - caller: who called, or why the request's credentials were refused (``TokenAuthenticator``).
    func call(_ path: String, method: HTTPVerb, input: Result<Data?, TRPCError>, caller: Result<Caller, TRPCError>, isBatch: Bool) async -> TRPCOutcome {
        do {
            let (procedure, caller) = try resolve(path, method: method, caller: caller, isBatch: isBatch)
            guard case .unary(let handler) = procedure.body else {
                throw TRPCError(.badRequest, "\(path) is a subscription: open it with GET and Accept: text/event-stream")
            }
            return .success(try await handler(try input.get(), caller))
        } catch {
            return .failure(describe(error, path: path), path: path)
        }
    }

    /// Starts the subscription at `path`.
    /// - Throws: ``TRPCError`` as ``call(_:method:input:caller:isBatch:)`` reports it.
    func subscribe(_ path: String, input: Result<Data?, TRPCError>, caller: Result<Caller, TRPCError>) async throws(TRPCError) -> TrackedStream {
        do {
            let (procedure, caller) = try resolve(path, method: .get, caller: caller, isBatch: false)
            guard case .subscription(let handler) = procedure.body else {
                throw TRPCError(.badRequest, "\(path) is not a subscription")
            }
            return try await handler(try input.get(), caller)
        } catch {
            throw describe(error, path: path)
        }
    }

    /// `GET` or `POST`, the only methods tRPC calls procedures with.
    enum HTTPVerb: Sendable {
        case get, post
    }

    private func resolve(_ path: String, method: HTTPVerb, caller: Result<Caller, TRPCError>,
                         isBatch: Bool) throws(TRPCError) -> (Procedure, Caller) {
        guard let procedure = procedures[path] else {
            throw TRPCError(.notFound, "no procedure on path \"\(path)\" (known: \(procedures.keys.sorted().joined(separator: ", ")))")
        }
        guard (procedure.kind == .mutation) == (method == .post) else {
            throw TRPCError(.methodNotSupported, "\(path) is a \(procedure.kind.rawValue): call it with \(procedure.kind == .mutation ? "POST" : "GET")")
        }
        if procedure.kind == .subscription && isBatch {
            throw TRPCError(.badRequest, "\(path) is a subscription: subscriptions cannot be batched")
        }
        let caller = try caller.get()
        guard caller.role >= procedure.role else {
            throw TRPCError(.forbidden, "\(path) needs the \(procedure.role.rawValue) role; token '\(caller.name)' is \(caller.role.rawValue)")
        }
        return (procedure, caller)
    }

    /// A procedure's failure as the caller sees it: a ``TRPCError`` as is, anything else `INTERNAL_SERVER_ERROR`
    /// with the details in the server log only.
    private func describe(_ error: any Error, path: String) -> TRPCError {
        if let error = error as? TRPCError { return error }
        logger.error("procedure failed", metadata: ["path": "\(path)", "error": "\(error)"])
        return TRPCError(.internalServerError, "internal error while running \(path); see the server log")
    }
}

/// A procedure input whose JSON object may hold only its own keys, so a misspelt option (`fullsync`) is an
/// error rather than silently ignored (the config file follows the same rule).
protocol StrictInput: Decodable {
    /// The keys the input understands.
    static var keys: [String] { get }
}

/// Decoding procedure inputs with errors that say what and where (`input.batchSize: expected a number`).
enum TRPCInput {
    /// Decodes `input`, or returns `empty` when there is none.
    /// - Throws: ``TRPCError`` `BAD_REQUEST` naming the field that is missing, mistyped, or not a key of `T`.
    static func decode<T: StrictInput>(_ type: T.Type, from input: Data?, default empty: T) throws -> T {
        guard let input else { return empty }
        if let object = try? JSONSerialization.jsonObject(with: input) as? [String: Any],
           let unknown = object.keys.filter({ !T.keys.contains($0) }).sorted().first {
            throw TRPCError(.badRequest, "input.\(unknown): unknown key; expected \(T.keys.joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: input)
        } catch let error as DecodingError {
            throw TRPCError(.badRequest, describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.reduce("input") { text, key in
                key.intValue.map { "\(text)[\($0)]" } ?? "\(text).\(key.stringValue)"
            }
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type)), got null"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): is required"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "input: \(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Double.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "an object"
        }
    }

    /// Fails with `BAD_REQUEST` naming the field when `value` is outside `range`.
    static func check(_ value: Int?, _ field: String, in range: ClosedRange<Int>) throws {
        guard let value, !range.contains(value) else { return }
        let upper = range.upperBound == .max ? "" : " and \(range.upperBound)"
        let bounds = range.upperBound == .max ? "at least \(range.lowerBound)" : "between \(range.lowerBound)\(upper)"
        throw TRPCError(.badRequest, "input.\(field): must be \(bounds), got \(value)")
    }
}
