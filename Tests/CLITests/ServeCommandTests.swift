import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SyncTesting
import Testing

/// A real `erp-sync serve` process: token helper, a sync over HTTP, SIGTERM in the middle of it.
@Suite struct ServeCommandTests {
    /// Reads `handle` on a thread until a line contains `marker`; `nil` at end of file.
    static func line(containing marker: String, in handle: FileHandle) async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var text = ""
                while true {
                    let data = handle.availableData
                    if data.isEmpty { return continuation.resume(returning: nil) }
                    text += String(decoding: data, as: UTF8.self)
                    if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) {
                        return continuation.resume(returning: String(line))
                    }
                }
            }
        }
    }

    static func request(_ url: String, token: String, body: String? = nil) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: url)!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 120
        if let body {
            request.httpMethod = "POST"
            request.httpBody = Data(body.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func object(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// Waits for the process to exit, up to `seconds`.
    static func exitStatus(_ process: Process, within seconds: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    @Test(.enabled(if: TestServers.available("ERP_SYNC_PG_URL"), "needs PostgreSQL: set ERP_SYNC_PG_URL (bash scripts/test.sh does)"))
    func sigtermDuringASyncCommitsTheBatchWritesTheFinalAuditRowAndExitsZero() async throws {
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenRun = try CLITests.run(["hash-token", "--name", "ops", "--json"], in: folder)
        #expect(tokenRun.status == 0)
        let token = try #require((try JSONSerialization.jsonObject(with: Data(tokenRun.stdout.utf8)) as? [String: String]))
        try """
            destination: { type: sqlite, path: ./audit.sqlite }
            defaults: { daysBack: 0, batchSize: 100 }
            api:
              port: 0
              tokens: [{ name: ops, role: admin, hash: "\(token["hash"]!)" }]
            schedule: { enabled: false }
            sources:
            \(CLIPostgresLockTests.slowSakilaSource(name: "slow-sakila", sleep: 0.003))
            """.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)

        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: CLITests.binary)
        serve.arguments = ["serve", "--log-level", "info"]
        serve.currentDirectoryURL = folder
        let out = Pipe()
        serve.standardOutput = out
        let logPath = folder.appendingPathComponent("serve.log")
        _ = FileManager.default.createFile(atPath: logPath.path, contents: nil)
        serve.standardError = try FileHandle(forWritingTo: logPath)
        try serve.run()
        defer { if serve.isRunning { serve.terminate() } }
        let listening = await Self.line(containing: "listening on", in: out.fileHandleForReading)
        let base = try #require(listening?.split(separator: " ").last.map(String.init), "\((try? String(contentsOf: logPath, encoding: .utf8)) ?? "")")

        // The sync runs ~50 s (3 ms a row); SIGTERM once its first batch is committed.
        let sync = Task { try await Self.request("\(base)/trpc/erp.syncNow", token: token["token"]!, body: #"{"source":"slow-sakila"}"#) }
        var batches = 0
        for _ in 0..<600 where batches == 0 {
            try await Task.sleep(for: .milliseconds(50))
            let status = Self.object(try await Self.request("\(base)/trpc/erp.getStatus", token: token["token"]!).1)
            let data = (status["result"] as? [String: Any])?["data"] as? [String: Any]
            let running = (data?["runningSyncs"] as? [[String: Any]])?.first
            batches = ((running?["progress"] as? [String: Any])?["batches"] as? Int) ?? 0
        }
        #expect(batches > 0)
        kill(serve.processIdentifier, SIGTERM)
        let status = await Self.exitStatus(serve, within: 30)
        let log = (try? String(contentsOf: logPath, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")

        // The waiting syncNow got the run's result: stopped after a committed batch.
        let (code, body) = try await sync.value
        let response = Self.object(body)
        #expect(code == 200)
        let run = ((response["result"] as? [String: Any])?["data"] as? [String: Any])?["data"] as? [String: Any]
        #expect(run?["status"] as? String == "PARTIAL")
        #expect((run?["errors"] as? [[String: Any]])?.first?["code"] as? String == "CANCELLED")
        let fetched = try #require(run?["recordsFetched"] as? Int)
        #expect(fetched > 0 && fetched < 16049 && fetched % 100 == 0)

        // The audit row is final (not RUNNING) and the checkpoint is the last committed batch.
        let history = try CLITests.run(["history", "--json"], in: folder)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1)
        let audited = rows.first?["result"] as? [String: Any]
        #expect(audited?["status"] as? String == "PARTIAL")
        #expect(audited?["recordsInserted"] as? Int == fetched)
        #expect((audited?["errors"] as? [[String: Any]])?.first?["code"] as? String == "CANCELLED")
        let state = try CLITests.run(["status", "--json"], in: folder)
        let sources = try #require(try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [[String: Any]])
        #expect(sources.first?["checkpoint"] as? String == run?["cursorTo"] as? String)
        #expect(sources.first?["checkpoint"] != nil)
        #expect((sources.first?["totals"] as? [String: Any])?["rows"] as? Int == fetched)

        // The next run resumes from the checkpoint (cursorFrom = where the stopped run ended).
        let next = try CLITests.run(["sync", "--source", "slow-sakila", "--max-records", "100", "--json"], in: folder)
        let nextResult = try JSONSerialization.jsonObject(with: Data(next.stdout.utf8)) as? [String: Any]
        #expect(nextResult?["cursorFrom"] as? String == run?["cursorTo"] as? String)
    }

    /// `serve --help` offers no `--json` (it does nothing for serve); startup says what is scheduled, and a config
    /// without a `schedule` section schedules nothing (issue 15).
    @Test func serveHelpHasNoJSONFlagAndStartupPrintsTheSchedule() async throws {
        let help = try CLITests.run(["serve", "--help"], in: FileManager.default.temporaryDirectory)
        #expect(help.status == 0)
        #expect(help.stdout.contains("--config") && help.stdout.contains("--log-level"))
        #expect(!help.stdout.contains("--json"))
        let folder = try CLITests.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (schedule, expected) in [("", "nothing is scheduled"),
                                     ("schedule: { interval: 30m, fullSyncAt: \"02:00\", timezone: America/Sao_Paulo }",
                                      "full sync of each source daily at 02:00 America/Sao_Paulo, next at 20")] {
            try """
                destination: { type: sqlite, path: ./audit.sqlite }
                api: { port: 0 }
                \(schedule)
                sources: [{ name: a, type: sqlite, path: ./erp.sqlite }]
                """.write(to: folder.appendingPathComponent("erp-sync.yaml"), atomically: true, encoding: .utf8)
            let serve = Process()
            serve.executableURL = URL(fileURLWithPath: CLITests.binary)
            serve.arguments = ["serve"]
            serve.currentDirectoryURL = folder
            let out = Pipe()
            serve.standardOutput = out
            serve.standardError = FileHandle.nullDevice
            try serve.run()
            let line = await Self.line(containing: expected, in: out.fileHandleForReading)
            serve.terminate()
            _ = await Self.exitStatus(serve, within: 30)
            #expect(line != nil, "no line containing '\(expected)'")
        }
    }
}
