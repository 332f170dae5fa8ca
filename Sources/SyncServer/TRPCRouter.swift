import Foundation
import Logging
import SyncCore

/// Procedures by path (`erp.getStatus`), each a query or a mutation with the role it needs, called with the
/// tRPC HTTP wire rules: a query answers `GET` only and a mutation `POST` only (else `METHOD_NOT_SUPPORTED`),
/// an unknown path is `NOT_FOUND`, no or an unknown token is `UNAUTHORIZED`, a too-weak role `FORBIDDEN`.
struct TRPCRouter: Sendable {
    /// `query` (HTTP GET, input in `?input=`) or `mutation` (HTTP POST, input as the body).
    enum Kind: String, Sendable {
        case query, mutation
    }

    struct Procedure: Sendable {
        var kind: Kind
        var role: APIToken.Role
        /// Decodes the input (raw JSON, `nil` when omitted), runs, returns the encoded `data`.
        var handler: @Sendable (Data?, Caller) async throws -> Data
    }

    private(set) var procedures: [String: Procedure] = [:]
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Adds a procedure whose output is encoded as the `data` of the success envelope.
    mutating func add(_ path: String, _ kind: Kind, role: APIToken.Role,
                      _ handler: @escaping @Sendable (Data?, Caller) async throws -> any Encodable) {
        procedures[path] = Procedure(kind: kind, role: role) { input, caller in
            try TRPCEnvelope.encoder.encode(try await handler(input, caller))
        }
    }

    /// Calls the procedure at `path` for an HTTP request of kind `method` (GET → query, POST → mutation).
    func call(_ path: String, method: Kind, input: Data?, caller: Caller?) async -> TRPCEnvelope.Item {
        do {
            guard let procedure = procedures[path] else {
                throw TRPCError(.notFound, "no procedure on path \"\(path)\" (known: \(procedures.keys.sorted().joined(separator: ", ")))")
            }
            guard procedure.kind == method else {
                let expected = procedure.kind == .query ? "GET" : "POST"
                throw TRPCError(.methodNotSupported, "\(path) is a \(procedure.kind.rawValue): call it with \(expected)")
            }
            guard let caller else {
                throw TRPCError(.unauthorized, "send an API token: Authorization: Bearer <token> (see `erp-sync hash-token`)")
            }
            guard caller.role >= procedure.role else {
                throw TRPCError(.forbidden, "\(path) needs the \(procedure.role.rawValue) role; token '\(caller.name)' is \(caller.role.rawValue)")
            }
            return TRPCEnvelope.success(try await procedure.handler(input, caller))
        } catch let error as TRPCError {
            return TRPCEnvelope.failure(error, path: path)
        } catch {
            logger.error("procedure failed", metadata: ["path": "\(path)", "error": "\(error)"])
            return TRPCEnvelope.failure(TRPCError(.internalServerError, "internal error while running \(path); see the server log"), path: path)
        }
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
