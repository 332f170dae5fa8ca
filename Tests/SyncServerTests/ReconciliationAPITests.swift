import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SQLiteNIO
import SyncCore
import Synchronization
import SyncServer
import Testing

/// `erp.reconcile` and `erp.getReconciliation`, their webhook events, `rejectThreshold`, and the dashboard's
/// assets with their security headers.
@Suite struct ReconciliationAPITests {
    @Test func anAdminReconcilesAViewerReadsTheReportAndMismatchesAndRejectsAreNotified() async throws {
        let received = Mutex<[Data]>([])
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 22)
            received.withLock { $0.append(Data(body.readableBytesView)) }
            return .ok
        }
        let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await receiver.test(.live) { receiverClient in
            let yaml = """
                notifications:
                  rejectThreshold: 1
                  webhooks:
                    - { url: "http://127.0.0.1:\(receiverClient.port!)/hook", events: [reconciliationMismatch, rejectThreshold], secret: s }
                """
            try await ServerFixture.with(yaml: yaml) { f in
                let erp = try await SQLiteConnection.open(storage: .file(path: f.erpPath))
                _ = try await erp.query("INSERT INTO sale_transactions VALUES (9999, NULL, 'op-1', '1.00', '2024-01-15 09:30:00', 'sale', 'r')")
                try await erp.close()
                try await f.server.app.test(.live) { client in
                    let admin = ServerFixture.bearer(f.adminToken), viewer = ServerFixture.bearer(f.viewerToken)
                    let body = ByteBuffer(string: #"{"source":"loja-centro"}"#)
                    _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: body)
                    let audit = try await SQLiteConnection.open(storage: .file(path: f.folder.appendingPathComponent("audit.sqlite").path))
                    _ = try await audit.query("DELETE FROM tb_sales WHERE external_id = '10'")
                    try await audit.close()

                    let refused = try await client.execute(uri: "/trpc/erp.reconcile", method: .post, headers: viewer, body: body)
                    #expect(refused.status == .forbidden)
                    let answer = try await client.execute(uri: "/trpc/erp.reconcile", method: .post, headers: admin, body: body)
                    #expect(answer.status == .ok)
                    let report = try object(object(json(answer.body))["result"])["data"]
                    let buckets = try #require(try object(report)["buckets"] as? [[String: Any]])
                    #expect(buckets.flatMap { $0["missing"] as? [String] ?? [] } == ["10"])
                    #expect(buckets.flatMap { $0["quarantinedIds"] as? [String] ?? [] } == ["9999"])
                    let id = try #require(try object(report)["id"] as? String)

                    let stored = try await client.execute(uri: "/trpc/erp.getReconciliation?input=%7B%22source%22%3A%22loja-centro%22%7D", method: .get, headers: viewer)
                    let storedReport = try object(object(object(object(json(stored.body))["result"])["data"])["reconciliation"])
                    #expect(storedReport["id"] as? String == id)
                    let none = try await client.execute(uri: "/trpc/erp.getReconciliation?input=%7B%22source%22%3A%22loja-sul%22%7D", method: .get, headers: viewer)
                    let noReport = try object(object(object(json(none.body))["result"])["data"])["reconciliation"]
                    #expect(noReport is NSNull)
                    let me = try await client.execute(uri: "/trpc/erp.whoami", method: .get, headers: viewer)
                    let caller = try object(object(object(json(me.body))["result"])["data"])
                    #expect(caller["role"] as? String == "viewer")

                    #expect(try await eventually { received.withLock { $0.count } == 2 })
                    let events = try received.withLock { $0 }.map { try object(JSONSerialization.jsonObject(with: $0)) }
                    #expect(Set(events.compactMap { $0["event"] as? String }) == ["rejectThreshold", "reconciliationMismatch"])
                    let mismatch = try #require(events.first { $0["event"] as? String == "reconciliationMismatch" })
                    #expect(try object(mismatch["reconciliation"])["id"] as? String == id)
                }
            }
        }
    }

    @Test func theDashboardIsServedWithAStrictContentSecurityPolicy() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.router) { client in
                for (path, type) in [("/", "text/html"), ("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")] {
                    let response = try await client.execute(uri: path, method: .get)
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType]?.hasPrefix(type) == true)
                    let policy = try #require(response.headers[.contentSecurityPolicy])
                    #expect(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe"))
                    #expect(response.headers[.xContentTypeOptions] == "nosniff")
                }
                let page = try await client.execute(uri: "/", method: .get)
                let html = String(buffer: page.body)
                #expect(html.contains(#"<script src="/dashboard.js" defer></script>"#) && !html.contains("style=") && !html.contains("<script>"))
            }
        }
    }

    @Test func theDailySummaryCountsTheDaysRunsAndTheNewKeysParse() async throws {
        let yaml = """
            notifications:
              rejectThreshold: 5
              dailySummaryAt: "06:30"
              webhooks: [{ url: "https://example.com/h", events: [dailySummary, reconciliationMismatch], secret: s }]
            """
        try await ServerFixture.with(schedule: "{ enabled: false, reconcileAfterFullSync: true }", yaml: yaml) { f in
            #expect(f.config.schedule.reconcileAfterFullSync)
            #expect(f.config.notifications.rejectThreshold == 5)
            #expect(f.config.notifications.dailySummaryAt?.hour == 6 && f.config.notifications.dailySummaryAt?.minute == 30)
            #expect(f.config.notifications.webhooks.first?.events == [.dailySummary, .reconciliationMismatch])
            try await f.server.app.test(.live) { client in
                _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                             body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
            }
            let summary = try await DailySummary.build(config: f.config, auditLog: f.destination, now: .now)
            let centro = try #require(summary.sources.first { $0.source == "loja-centro" })
            #expect(centro.runs == 1 && centro.rowsFetched == 250 && centro.rowsInserted == 250 && centro.openQuarantine == 0)
            #expect(centro.cursorLagSeconds != nil)
            #expect(summary.sources.first { $0.source == "loja-sul" }?.runs == 0)
        }
        #expect(throws: ConfigError.self) {
            try SyncConfig.load(yaml: "sources: [{ name: a, type: sqlite, path: x }]\nnotifications: { rejectThreshold: 0 }")
        }
    }
}
