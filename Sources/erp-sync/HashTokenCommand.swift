import ArgumentParser
import SyncCore
import SyncServer

/// `erp-sync hash-token`: creates an API token and the hash to configure for it.
struct HashTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token",
        abstract: "Create a random API bearer token and print it with the sha256 hash that goes into api.tokens.",
        discussion: "Only the hash is configured; the token is shown once, here. Give it to the API client as "
            + "`Authorization: Bearer <token>`."
    )

    @Option(help: "The token's name (shown in logs and as triggeredBy api:<name>).")
    var name = "dashboard"

    @Option(help: "viewer (queries only) or admin (may also call testConnection and syncNow).")
    var role = "viewer"

    @Flag(help: "Print {\"token\", \"hash\"} as JSON.")
    var json = false

    func validate() throws {
        guard APIToken.Role(rawValue: role) != nil else { throw ValidationError("--role must be admin or viewer") }
        guard !name.isEmpty, !name.contains("\"") else { throw ValidationError("--name must be non-empty text without quotes") }
    }

    func run() async throws {
        let (token, hash) = TokenAuthenticator.generateToken()
        if json { return try printJSON(["name": name, "role": role, "token": token, "hash": hash]) }
        print("""
            token: \(token)
              Give it to the API client (Authorization: Bearer <token>). It is not stored anywhere; keep it secret.
            config (add to api.tokens):
              - { name: \(name), role: \(role), hash: "\(hash)" }
            """)
    }
}
