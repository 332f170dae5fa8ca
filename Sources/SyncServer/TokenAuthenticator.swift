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

/// Checks `Authorization: Bearer <token>` against the configured token hashes (`api.tokens`), and issues and
/// checks subscription tickets.
///
/// Only SHA-256 hashes are configured; a presented token is hashed and compared with every configured hash in
/// constant time (no early exit on the first differing byte or the first matching token), so response timing
/// tells nothing about how close a guess was.
///
/// A browser's `EventSource` cannot send headers, and tRPC's `httpSubscriptionLink` puts its `connectionParams`
/// in the URL, where access logs keep them. So a subscription is opened with a ticket, never the API token: a
/// caller with a token gets one from `erp.subscriptionTicket`; it is signed (HMAC-SHA256 with a key drawn at
/// server start), names its token and role, is good for opening subscriptions only and expires after
/// ``ticketLifetime``.
public struct TokenAuthenticator: Sendable {
    let tokens: [APIToken]
    /// The HMAC key of tickets, 32 random bytes (kept as bytes: `SymmetricKey` is not `Sendable`).
    private let ticketKey: [UInt8]
    /// How long a subscription ticket opens subscriptions (5 minutes): long enough for the client to connect and
    /// reconnect after a dropped connection, short enough that one copied from a log is soon useless.
    public static let ticketLifetime: Int64 = 300
    /// The only purpose a ticket carries.
    static let ticketPurpose = "subscribe"

    /// Creates an authenticator for `tokens`, with a fresh ticket key.
    public init(tokens: [APIToken]) {
        self.tokens = tokens
        ticketKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// The caller a request's `Authorization` header identifies.
    /// - Returns: `nil` when the header is missing, not a bearer token, or matches no configured token.
    public func caller(authorization: String?) -> Caller? {
        try? authenticate(authorization: authorization).get()
    }

    /// The caller a request's `Authorization` header identifies, or the `UNAUTHORIZED` error saying which of
    /// "no token", "not a bearer token" and "unknown token" it is.
    public func authenticate(authorization: String?) -> Result<Caller, TRPCError> {
        guard let authorization, !authorization.isEmpty else {
            return .failure(TRPCError(.unauthorized, "no API token: send Authorization: Bearer <token> (create one with `erp-sync hash-token`)"))
        }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            return .failure(TRPCError(.unauthorized, "the Authorization header is not 'Bearer <token>'"))
        }
        let presented = Array(SHA256.hash(data: Data(authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)))
        var match: APIToken?
        for token in tokens where Self.constantTimeEqual(token.sha256, presented) {
            match = token
        }
        guard let match else {
            return .failure(TRPCError(.unauthorized, "the API token is not valid: it matches no hash in api.tokens (wrong, revoked or mistyped)"))
        }
        return .success(Caller(name: match.name, role: match.role))
    }

    /// A subscription ticket for `caller`, valid until `now + ticketLifetime` seconds:
    /// `<base64url payload>.<base64url HMAC-SHA256>`, the payload `{"exp":<unix s>,"name","purpose":"subscribe","role"}`.
    public func issueTicket(for caller: Caller, now: Instant = .now) -> (ticket: String, expiresAt: Instant) {
        let expiresAt = Instant(seconds: now.seconds + Self.ticketLifetime)
        let payload = TicketPayload(purpose: Self.ticketPurpose, name: caller.name, role: caller.role.rawValue, exp: expiresAt.seconds)
        let body = (try? JSONEncoder().encode(payload)) ?? Data()
        let signature = Data(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: ticketKey)))
        return (Self.base64URL(body) + "." + Self.base64URL(signature), expiresAt)
    }

    /// The caller a subscription ticket was issued to.
    /// - Returns: `UNAUTHORIZED` when it is malformed, not signed by this server, not a subscription ticket, or expired.
    public func redeem(ticket: String, now: Instant = .now) -> Result<Caller, TRPCError> {
        let parts = ticket.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let body = Self.data(base64URL: parts[0]), let signature = Self.data(base64URL: parts[1]),
              HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: body, using: SymmetricKey(data: ticketKey)),
              let payload = try? JSONDecoder().decode(TicketPayload.self, from: body),
              payload.purpose == Self.ticketPurpose, let role = APIToken.Role(rawValue: payload.role) else {
            return .failure(TRPCError(.unauthorized, "connectionParams.ticket is not a subscription ticket of this server "
                + "(get one from erp.subscriptionTicket; an API token never goes in a URL)"))
        }
        guard payload.exp > now.seconds else {
            return .failure(TRPCError(.unauthorized, "the subscription ticket expired; get a new one from erp.subscriptionTicket"))
        }
        return .success(Caller(name: payload.name, role: role))
    }

    private struct TicketPayload: Codable {
        var purpose: String
        var name: String
        var role: String
        var exp: Int64
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
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
