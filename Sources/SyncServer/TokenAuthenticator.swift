import Crypto
import Foundation
public import SyncCore

/// Who called: the configured token that matched.
public struct Caller: Sendable, Equatable {
    /// The token's configured name (`triggeredBy` becomes `api:<name>`).
    public var name: String
    public var role: APIToken.Role

    /// Creates a caller.
    public init(name: String, role: APIToken.Role) {
        self.name = name
        self.role = role
    }
}

/// Checks `Authorization: Bearer <token>` against the configured token hashes (`api.tokens`).
///
/// Only SHA-256 hashes are configured; a presented token is hashed and compared with every configured hash in
/// constant time (no early exit on the first differing byte or the first matching token), so response timing
/// tells nothing about how close a guess was.
public struct TokenAuthenticator: Sendable {
    let tokens: [APIToken]

    /// Creates an authenticator for `tokens`.
    public init(tokens: [APIToken]) {
        self.tokens = tokens
    }

    /// The caller a request's `Authorization` header identifies.
    /// - Returns: `nil` when the header is missing, not a bearer token, or matches no configured token.
    public func caller(authorization: String?) -> Caller? {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
        let presented = Array(SHA256.hash(data: Data(authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)))
        var match: APIToken?
        for token in tokens where Self.constantTimeEqual(token.sha256, presented) {
            match = token
        }
        return match.map { Caller(name: $0.name, role: $0.role) }
    }

    /// Whether two byte strings are equal, looking at every byte whatever the answer.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    /// A new random token (`esk_` + 64 hex digits, 256 bits) and the `sha256:<hex>` form to put in `api.tokens`.
    public static func generateToken() -> (token: String, hash: String) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = "esk_" + hex(bytes)
        return (token, hash(token: token))
    }

    /// `sha256:<64 hex digits>` of a token, the form `api.tokens[].hash` takes.
    public static func hash(token: String) -> String {
        "sha256:" + hex(Array(SHA256.hash(data: Data(token.utf8))))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
        }.joined()
    }
}
