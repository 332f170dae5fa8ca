import Foundation
import SyncCore
import SyncServer
import Testing

/// Bearer tokens configured as hashes.
@Suite struct TokenAuthenticatorTests {
    static func config(_ tokens: String) throws -> SyncConfig {
        try SyncConfig.load(yaml: "api:\n  tokens:\n\(tokens)\nsources: [{ name: a, type: sqlite, path: x }]")
    }

    @Test func aGeneratedTokenMatchesItsHashAndRoleOnly() throws {
        let admin = TokenAuthenticator.generateToken(), viewer = TokenAuthenticator.generateToken()
        #expect(admin.token.hasPrefix("esk_") && admin.token.count == 68)
        #expect(admin.hash.hasPrefix("sha256:") && admin.hash.count == 71)
        #expect(TokenAuthenticator.hash(token: admin.token) == admin.hash)
        #expect(admin.token != viewer.token)
        let config = try Self.config("    - { name: ops, role: admin, hash: \"\(admin.hash)\" }\n    - { name: dash, role: viewer, hash: \"\(viewer.hash)\" }")
        let authenticator = TokenAuthenticator(tokens: config.api.tokens)
        #expect(authenticator.caller(authorization: "Bearer \(admin.token)") == Caller(name: "ops", role: .admin))
        #expect(authenticator.caller(authorization: "bearer \(viewer.token)") == Caller(name: "dash", role: .viewer))
        #expect(authenticator.caller(authorization: "Bearer \(admin.hash)") == nil)  // the hash is not a token
        #expect(authenticator.caller(authorization: "Basic \(admin.token)") == nil)
        #expect(authenticator.caller(authorization: nil) == nil)
    }

    @Test func aPlaintextTokenInTheConfigIsRefused() {
        do {
            _ = try Self.config("    - { name: ops, role: admin, hash: \"esk_secret\" }")
            Issue.record("a plaintext token was accepted")
        } catch let error as ConfigError {
            #expect(error.path == "api.tokens[0].hash")
            #expect(error.message.contains("erp-sync hash-token"))
        } catch {
            Issue.record("\(error)")
        }
        #expect(throws: ConfigError.self) { try Self.config("    - { name: ops, role: root, hash: \"sha256:\(String(repeating: "0", count: 64))\" }") }
        #expect(throws: ConfigError.self) { try Self.config("    - { name: ops, role: admin, token: abc }") }
    }

    /// Subscription tickets: signed by the server that issued them, for subscriptions only, short-lived.
    @Test func aTicketIsRedeemedOnlyByItsServerAndOnlyUntilItExpires() throws {
        let authenticator = TokenAuthenticator(tokens: [])
        let now = Instant(seconds: 1_800_000_000)
        let (ticket, expiresAt) = authenticator.issueTicket(for: Caller(name: "dash", role: .viewer), now: now)
        #expect(expiresAt.seconds == now.seconds + TokenAuthenticator.ticketLifetime)
        #expect(try authenticator.redeem(ticket: ticket, now: now).get() == Caller(name: "dash", role: .viewer))
        guard case .failure(let expired) = authenticator.redeem(ticket: ticket, now: Instant(seconds: expiresAt.seconds)) else {
            Issue.record("an expired ticket was accepted")
            return
        }
        #expect(expired.message.contains("expired"))
        // Another server (another key) does not accept it, nor does a ticket with a changed payload.
        #expect(throws: TRPCError.self) { try TokenAuthenticator(tokens: []).redeem(ticket: ticket, now: now).get() }
        let parts = ticket.split(separator: ".")
        let forgedPayload = Data(#"{"exp":9999999999,"name":"dash","purpose":"subscribe","role":"admin"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "")
        #expect(throws: TRPCError.self) { try authenticator.redeem(ticket: forgedPayload + "." + parts[1], now: now).get() }
    }
}
