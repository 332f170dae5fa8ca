import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HummingbirdTesting
import NIOCore
import Synchronization
import SyncCore
import SyncServer
import Testing

/// `/health`, `/metrics`, `/events` and the JSON log lines.
@Suite struct ObservabilityTests {
    @Test func healthAndMetricsReflectARun() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let health = try await client.execute(uri: "/health", method: .get)
                #expect(health.status == .ok)
                #expect(try object(json(health.body))["destination"] as? String == "reachable")

                let admin = ServerFixture.bearer(f.adminToken)
                _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                _ = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: #"{"source":"loja-norte"}"#))
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                #expect(metrics.status == .ok)
                let text = String(buffer: metrics.body)
                #expect(text.contains(#"erp_sync_records_total{source="loja-centro",outcome="inserted"} 250"#))
                #expect(text.contains(#"erp_sync_runs_total{source="loja-centro",status="SUCCESS"} 1"#))
                #expect(text.contains(#"erp_sync_runs_total{source="loja-norte",status="FAILED"} 1"#))
                #expect(text.contains(#"erp_sync_errors_total{source="loja-norte",code="SOURCE_UNAVAILABLE"} 1"#))
                #expect(text.contains(#"erp_sync_run_duration_seconds_count{source="loja-centro",sync_type="INCREMENTAL"} 1"#))
                #expect(text.contains(#"erp_sync_last_success_timestamp_seconds{source="loja-centro"}"#))
                // The last sale is 2024-01-15 12:09 in São Paulo: the cursor lags by more than a year now.
                let lag = text.split(separator: "\n").first { $0.hasPrefix(#"erp_sync_cursor_lag_seconds{source="loja-centro"}"#) }
                let seconds = try #require(lag.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) })
                #expect(seconds > 365 * 86_400)
                // The lag is taken at each scrape: it grows while no run moves the checkpoint (it stayed at the last run's).
                try await Task.sleep(for: .milliseconds(1_100))
                let later = String(buffer: try await client.execute(uri: "/metrics", method: .get).body).split(separator: "\n")
                    .first { $0.hasPrefix(#"erp_sync_cursor_lag_seconds{source="loja-centro"}"#) }
                let laterSeconds = try #require(later.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) })
                #expect(laterSeconds >= seconds + 1, "\(seconds) then \(laterSeconds)")
            }
        }
    }

    @Test func eventsStreamLiveProgressOfARunningSync() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.ahc(.http)) { client in
                let noToken = try await client.execute(uri: "/events", method: .get)
                #expect(noToken.status == .unauthorized)
                // The stream ends when the runner stops; collect what it sent by then.
                async let events = client.execute(uri: "/events", method: .get, headers: ServerFixture.bearer(f.viewerToken))
                #expect(try await eventually { f.server.runner.events.subscriberCount == 1 })
                let sync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                                    body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(sync.status == .ok)
                await f.server.runner.stop()
                let response = try await events
                #expect(response.headers[.contentType] == "text/event-stream")
                let text = String(buffer: response.body)
                let names = text.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { $0.dropFirst(7) }
                #expect(names == ["started", "progress", "progress", "progress", "finished"])  // 250 rows in batches of 100
                let progress = text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) }[3]
                let last = try object(JSONSerialization.jsonObject(with: Data(progress.utf8)))
                #expect(last["fetched"] as? Int == 250)
                #expect(last["batches"] as? Int == 3)
                #expect(last["source"] as? String == "loja-centro")
            }
        }
    }

    @Test func jsonLogLinesCarryMetadataAndHideSecretsAndOperators() throws {
        let lines = Mutex<[Data]>([])
        var logger = Logger(label: "erp-sync") { label in
            JSONLogHandler(label: label, level: .info) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "syncId"] = "2f0c"
        logger.info("sync started", metadata: ["password": "hunter2", "operator": "op-123456", "webhookSecret": "abc"])
        logger.debug("not at info")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try object(JSONSerialization.jsonObject(with: written[0]))
        #expect(line["message"] as? String == "sync started")
        #expect(line["level"] as? String == "info")
        #expect(line["syncId"] as? String == "2f0c")
        #expect(line["password"] as? String == "******")
        #expect(line["webhookSecret"] as? String == "******")
        #expect(line["operator"] as? String == "****56")
        #expect(!String(decoding: written[0], as: UTF8.self).contains("hunter2"))
    }

    @Test func anIdleSubscriptionGetsHeartbeatsAndEndsAtFinish() async throws {
        let broadcaster = RunEventBroadcaster()
        let stream = broadcaster.subscribe(heartbeat: .milliseconds(20))
        var iterator = stream.makeAsyncIterator()
        #expect(await iterator.next()?.event == .heartbeat)
        broadcaster.publish(.started(source: "a", syncType: .full, triggeredBy: "scheduler"))
        var sawStarted = false
        while !sawStarted, let delivery = await iterator.next() {
            sawStarted = delivery.event == .started(source: "a", syncType: .full, triggeredBy: "scheduler")
        }
        #expect(sawStarted)
        broadcaster.finish()
        while await iterator.next() != nil {}  // ends instead of ticking forever
        #expect(broadcaster.subscriberCount == 0)
        var late = broadcaster.subscribe().makeAsyncIterator()
        #expect(await late.next() == nil)  // subscribing after shutdown ends at once
    }
}
