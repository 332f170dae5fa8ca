import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import SyncCore
import SyncServer
import Testing

/// Webhooks: a receiver in the test gets signed payloads after a success and after a failure.
@Suite struct WebhookTests {
    struct Received: Sendable {
        var path: String
        var headers: HTTPFields
        var body: Data
    }

    /// The receiver's check: HMAC-SHA256 of "<timestamp>.<body>" under the shared secret.
    static func isSigned(_ delivery: Received, secret: String) -> Bool {
        guard let timestamp = delivery.headers[HTTPField.Name("X-ErpSync-Timestamp")!],
              let signature = delivery.headers[HTTPField.Name("X-ErpSync-Signature")!] else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data((timestamp + ".").utf8) + delivery.body, using: SymmetricKey(data: Data(secret.utf8)))
        return signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    @Test func successAndFailureArePostedSignedAndAFailedDeliveryIsRetried() async throws {
        let received = Mutex<[Received]>([])
        let flakyCalls = Mutex(0)
        let router = Router()
        router.post("/hook/{name}") { request, context -> HTTPResponse.Status in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let name = context.parameters.get("name") ?? ""
            if name == "flaky" && flakyCalls.withLock({ count in count += 1; return count }) == 1 { return .internalServerError }
            received.withLock { $0.append(Received(path: name, headers: request.headers, body: Data(body.readableBytesView))) }
            return .ok
        }
        let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await receiver.test(.live) { receiverClient in
            // HummingbirdTesting's live server listens on "localhost", which is ::1 first on a Debian install's
            // /etc/hosts: the URL names it the same way (found by scripts/fresh-root.sh).
            let base = "http://localhost:\(receiverClient.port!)/hook"
            let yaml = """
                notifications:
                  webhooks:
                    - { url: "\(base)/engine", events: [syncSucceeded], secret: engine-secret }
                    - { url: "\(base)/alerts", events: [syncFailed], secret: alert-secret }
                    - { url: "\(base)/flaky", secret: flaky-secret, maxAttempts: 3 }
                """
            try await ServerFixture.with(yaml: yaml) { f in
                try await f.server.app.test(.live) { client in
                    let admin = ServerFixture.bearer(f.adminToken)
                    let ok = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                    #expect(ok.status == .ok)
                    let failed = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: #"{"source":"loja-norte"}"#))
                    #expect(failed.status == .ok)  // a failed run is a result, not a transport error
                    #expect(try await eventually { received.withLock { $0.count } == 4 })
                }
            }
        }
        let deliveries = received.withLock { $0 }
        let engine = try #require(deliveries.first { $0.path == "engine" })
        #expect(Self.isSigned(engine, secret: "engine-secret"))
        #expect(!Self.isSigned(engine, secret: "alert-secret"))
        let success = try object(JSONSerialization.jsonObject(with: engine.body))
        #expect(success["event"] as? String == "syncSucceeded")
        #expect(try object(success["result"])["recordsInserted"] as? Int == 250)
        #expect(try object(success["result"])["source"] as? String == "loja-centro")
        #expect(engine.headers[HTTPField.Name("X-ErpSync-Event")!] == "syncSucceeded")

        let alert = try #require(deliveries.first { $0.path == "alerts" })
        #expect(Self.isSigned(alert, secret: "alert-secret"))
        let failure = try object(JSONSerialization.jsonObject(with: alert.body))
        #expect(failure["event"] as? String == "syncFailed")
        #expect(try object(failure["result"])["status"] as? String == "FAILED")
        #expect(!String(decoding: alert.body, as: UTF8.self).contains("password"))

        // Subscribed to both events; its first attempt got a 500 and was retried with the same delivery id.
        let flaky = deliveries.filter { $0.path == "flaky" }
        #expect(flaky.count == 2)
        #expect(flaky.allSatisfy { Self.isSigned($0, secret: "flaky-secret") })
        #expect(flakyCalls.withLock { $0 } == 3)
        #expect(deliveries.count == 4)
    }

    @Test func aWebhookNeedsASecretAndAnHTTPURL() {
        let base = "sources: [{ name: a, type: sqlite, path: x }]\nnotifications:\n  webhooks:\n"
        #expect(throws: ConfigError.self) { try SyncConfig.load(yaml: base + "    - { url: \"https://example.com/h\" }") }
        #expect(throws: ConfigError.self) { try SyncConfig.load(yaml: base + "    - { url: \"ftp://example.com/h\", secret: s }") }
        #expect(throws: ConfigError.self) { try SyncConfig.load(yaml: base + "    - { url: \"https://example.com/h\", secretEnv: NOPE_UNSET }") }
        let config = try? SyncConfig.load(yaml: base + "    - { url: \"https://example.com/h\", secretEnv: HOOK }", environment: ["HOOK": "k"])
        #expect(config?.notifications.webhooks.first?.secret.value == "k")
        #expect(config?.notifications.webhooks.first?.events == [.syncFailed, .syncSucceeded])
    }
}
