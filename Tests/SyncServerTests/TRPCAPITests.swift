import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SyncCore
import SyncServer
import Testing

/// The five procedures over the tRPC HTTP wire format, on a live server (real port) built by `buildApplication`.
@Suite struct TRPCAPITests {
    @Test func eachProcedureAnswersInTheTRPCSuccessEnvelope() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let admin = ServerFixture.bearer(f.adminToken), viewer = ServerFixture.bearer(f.viewerToken)

                let databases = try await client.execute(uri: "/trpc/erp.getSupportedDatabases", method: .get, headers: viewer)
                #expect(databases.status == .ok)
                let list = try #require(try object(object(object(json(databases.body))["result"])["data"])["databases"] as? [[String: Any]])
                #expect(list.map { $0["type"] as? String } == ["postgresql", "mysql", "sqlserver", "oracle", "sqlite", "odbc"])
                #expect(list.first { $0["type"] as? String == "sqlite" }?["needsInstall"] as? Bool == false)
                #expect(list.first { $0["type"] as? String == "postgresql" }?["needsInstall"] as? Bool == true)  // not in this test build

                let test = try await client.execute(uri: "/trpc/erp.testConnection", method: .post, headers: admin,
                                                    body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(test.status == .ok)
                let testData = try object(object(json(test.body))["result"])["data"]
                #expect(try object(testData)["success"] as? Bool == true)

                let unreachable = try await client.execute(uri: "/trpc/erp.testConnection", method: .post, headers: admin,
                                                           body: ByteBuffer(string: #"{"source":"loja-norte"}"#))
                let failed = try object(object(object(json(unreachable.body))["result"])["data"])
                #expect(failed["success"] as? Bool == false)
                #expect((failed["message"] as? String)?.contains("SOURCE_UNAVAILABLE") == true)

                let sync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                    body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(sync.status == .ok)
                let syncOutput = try object(object(json(sync.body))["result"])["data"]
                let outcome = try object(syncOutput)
                #expect(outcome["success"] as? Bool == true)
                let data = try object(outcome["data"])
                #expect(data["recordsInserted"] as? Int == 250)
                #expect(data["recordsFetched"] as? Int == 250)
                #expect(data["status"] as? String == "SUCCESS")
                #expect(data["databaseType"] as? String == "sqlite")
                #expect(data["errorCount"] as? Int == 0)
                #expect((data["timestamp"] as? String).flatMap(Instant.init(iso8601:)) != nil)
                let syncId = try #require(data["syncId"] as? String)

                let status = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: viewer)
                let statusData = try object(object(json(status.body))["result"])["data"]
                let statusObject = try object(statusData)
                #expect(statusObject["running"] as? Bool == false)
                let lastSync = try object(statusObject["lastSync"])
                #expect(lastSync["recordsInserted"] as? Int == 250)
                #expect(lastSync["isManual"] as? Bool == true)
                #expect(lastSync["syncId"] as? String == syncId)
                #expect(statusObject["nextScheduledSync"] is NSNull)  // the scheduler is off in this fixture
                #expect(statusObject["supportedDatabases"] as? [String] == ["sqlite"])

                let input = encodedInput(#"{"limit":5}"#)
                let history = try await client.execute(uri: "/trpc/erp.getSyncHistory?input=\(input)", method: .get, headers: viewer)
                #expect(history.status == .ok)
                let syncs = try #require(try object(object(object(json(history.body))["result"])["data"])["syncs"] as? [[String: Any]])
                #expect(syncs.count == 1)
                #expect(syncs[0]["syncId"] as? String == syncId)
                #expect(syncs[0]["triggeredBy"] as? String == "api:ops")
                #expect(syncs[0]["isManual"] as? Bool == true)
                #expect(syncs[0]["recordsProcessed"] as? Int == 250)
                #expect(syncs[0]["status"] as? String == "SUCCESS")
                #expect(syncs[0]["timestamp"] as? String == syncs[0]["startTime"] as? String)

                // erp.reprocess: admin only; a REPROCESS run (nothing quarantined here) that never moves the checkpoint.
                let viewerReprocess = try await client.execute(uri: "/trpc/erp.reprocess", method: .post, headers: viewer,
                                                               body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(viewerReprocess.status == .forbidden)
                let reprocess = try await client.execute(uri: "/trpc/erp.reprocess", method: .post, headers: admin,
                                                         body: ByteBuffer(string: #"{"source":"loja-centro","reason":"ZERO_DATE"}"#))
                let reprocessData = try object(object(object(object(json(reprocess.body))["result"])["data"])["data"])
                #expect(reprocessData["syncType"] as? String == "REPROCESS" && reprocessData["status"] as? String == "SUCCESS")
                #expect(reprocessData["cursorTo"] as? String == data["cursorTo"] as? String)
                let unknownKey = try await client.execute(uri: "/trpc/erp.reprocess", method: .post, headers: admin,
                                                          body: ByteBuffer(string: #"{"source":"loja-centro","key":"1"}"#))
                #expect(unknownKey.status == .badRequest)
                // No input names the missing field, as the other procedures do (it was a 404 for a source named '').
                let noInput = try await client.execute(uri: "/trpc/erp.reprocess", method: .post, headers: admin)
                #expect(noInput.status == .badRequest && String(buffer: noInput.body).contains("input.source: is required"))
                let inverted = try await client.execute(uri: "/trpc/erp.reconcile", method: .post, headers: admin,
                                                        body: ByteBuffer(string: #"{"source":"loja-centro","from":"2024-03-10","to":"2024-03-01"}"#))
                #expect(inverted.status == .badRequest && String(buffer: inverted.body).contains("input.to"))
            }
        }
    }

    /// The seed's "Testing Scenarios" curl examples, with an admin token added.
    @Test func theSeedCurlExamplesGetAnEnvelopeAndAdHocConfigsAreForbidden() async throws {
        let seedConnection = #"{"type":"mysql","host":"localhost","port":3306,"database":"test_erp","username":"test","password":"test"}"#
        let seedSync = #"{"type":"mysql","host":"localhost","port":3306,"database":"test_erp","username":"test","password":"test","fullSync":false,"daysBack":1,"batchSize":1000}"#
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let admin = ServerFixture.bearer(f.adminToken)
                for (path, body) in [("erp.testConnection", seedConnection), ("erp.syncNow", seedSync)] {
                    let response = try await client.execute(uri: "/trpc/\(path)", method: .post, headers: admin, body: ByteBuffer(string: body))
                    #expect(response.status == .forbidden)
                    let error = try object(object(json(response.body))["error"])
                    #expect(error["code"] as? Int == -32003)
                    #expect((error["message"] as? String)?.contains("api.allowAdHocSources") == true)
                    #expect(try object(error["data"])["code"] as? String == "FORBIDDEN")
                    #expect(try object(error["data"])["path"] as? String == path)
                    #expect(!String(buffer: response.body).contains("test_erp\",\"password"))
                }
                let status = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: admin)
                #expect(status.status == .ok)
                #expect(try object(json(status.body))["result"] != nil)
            }
        }
        // Allowed, but only to the listed hosts.
        try await ServerFixture.with(apiYAML: "  allowAdHocSources: true\n  allowedHosts: [localhost]") { f in
            try await f.server.app.test(.live) { client in
                let admin = ServerFixture.bearer(f.adminToken)
                let allowed = try await client.execute(uri: "/trpc/erp.testConnection", method: .post, headers: admin,
                                                       body: ByteBuffer(string: seedConnection))
                #expect(allowed.status == .ok)
                let outcome = try object(object(object(json(allowed.body))["result"])["data"])
                #expect(outcome["success"] as? Bool == false)  // no mysql connector in this test build
                #expect((outcome["message"] as? String)?.contains("mysql") == true)
                let adHocSync = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: seedSync))
                #expect(adHocSync.status == .ok)
                let run = try object(object(object(json(adHocSync.body))["result"])["data"])
                #expect(run["success"] as? Bool == false)
                #expect(try object(run["data"])["source"] as? String == "adhoc-localhost-test_erp")
                #expect(try object(run["data"])["databaseType"] as? String == "mysql")
                let elsewhere = seedConnection.replacingOccurrences(of: "localhost", with: "169.254.169.254")
                let refused = try await client.execute(uri: "/trpc/erp.testConnection", method: .post, headers: admin, body: ByteBuffer(string: elsewhere))
                #expect(refused.status == .forbidden)
                #expect(String(buffer: refused.body).contains("api.allowedHosts"))
            }
        }
    }

    @Test func wrongMethodUnknownProcedureAndBadInputGetTheirErrorEnvelopes() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let admin = ServerFixture.bearer(f.adminToken)
                func error(_ response: TestResponse) throws -> (Int?, String?, Int?, String?) {
                    let error = try object(object(json(response.body))["error"])
                    let data = try object(error["data"])
                    return (error["code"] as? Int, data["code"] as? String, data["httpStatus"] as? Int, error["message"] as? String)
                }
                let getMutation = try await client.execute(uri: "/trpc/erp.syncNow", method: .get, headers: admin)
                #expect(getMutation.status == .methodNotAllowed)
                #expect(try error(getMutation).0 == -32005)
                #expect(try error(getMutation).1 == "METHOD_NOT_SUPPORTED")

                let postQuery = try await client.execute(uri: "/trpc/erp.getStatus", method: .post, headers: admin, body: ByteBuffer(string: "{}"))
                #expect(postQuery.status == .methodNotAllowed)

                let unknown = try await client.execute(uri: "/trpc/erp.dropTables", method: .get, headers: admin)
                #expect(unknown.status == .notFound)
                #expect(try error(unknown).0 == -32004)

                // tRPC v11 answers BAD_REQUEST where v10 answered PARSE_ERROR (`http/contentType.ts`: a failed
                // JSON.parse of the input becomes BAD_REQUEST in `memo`).
                let malformed = try await client.execute(uri: "/trpc/erp.getSyncHistory?input=\(encodedInput("{limit:"))", method: .get, headers: admin)
                #expect(malformed.status == .badRequest)
                #expect(try error(malformed).0 == -32600)
                #expect(try error(malformed).1 == "BAD_REQUEST")
                #expect(try error(malformed).2 == 400)

                let wrongType = try await client.execute(uri: "/trpc/erp.getSyncHistory?input=\(encodedInput(#"{"limit":"ten"}"#))", method: .get, headers: admin)
                #expect(wrongType.status == .badRequest)
                #expect(try error(wrongType).1 == "BAD_REQUEST")
                #expect(try error(wrongType).3 == "input.limit: expected a number")

                let outOfRange = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                          body: ByteBuffer(string: #"{"source":"loja-centro","batchSize":5}"#))
                #expect(try error(outOfRange).3 == "input.batchSize: must be between 100 and 10000, got 5")

                let misspelt = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                        body: ByteBuffer(string: #"{"source":"loja-centro","fullsync":true}"#))
                #expect(misspelt.status == .badRequest)
                #expect(try error(misspelt).3?.hasPrefix("input.fullsync: unknown key; expected source, type,") == true)

                let noSource = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: ByteBuffer(string: "{}"))
                #expect(try error(noSource).3 == "input.source: is required (one of: loja-centro, loja-norte, loja-sul)")

                let both = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                    body: ByteBuffer(string: #"{"source":"loja-centro","host":"10.0.0.5"}"#))
                #expect(both.status == .badRequest)
                #expect(try error(both).3?.hasPrefix("input: give either source") == true)

                let unknownSource = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin,
                                                             body: ByteBuffer(string: #"{"source":"loja-oeste"}"#))
                #expect(unknownSource.status == .notFound)

                let huge = ByteBuffer(string: #"{"source":"loja-centro","pad":""# + String(repeating: "x", count: 70_000) + #""}"#)
                let tooLarge = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: huge)
                #expect(tooLarge.status == .contentTooLarge)
                #expect(try error(tooLarge).1 == "PAYLOAD_TOO_LARGE")
                #expect(!String(buffer: tooLarge.body).contains("stack"))
            }
        }
    }

    @Test func aBatchOfTwoQueriesAnswersAnArrayInOrderAnd207WhenStatusesDiffer() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let viewer = ServerFixture.bearer(f.viewerToken)
                let input = encodedInput(#"{"1":{"limit":3}}"#)
                let batch = try await client.execute(uri: "/trpc/erp.getStatus,erp.getSyncHistory?batch=1&input=\(input)", method: .get, headers: viewer)
                #expect(batch.status == .ok)
                let items = try #require(try json(batch.body) as? [[String: Any]])
                #expect(items.count == 2)
                #expect(try object(object(items[0]["result"])["data"])["running"] as? Bool == false)
                #expect(try object(object(items[1]["result"])["data"])["syncs"] as? [Any] != nil)

                let mixed = try await client.execute(uri: "/trpc/erp.getSupportedDatabases,erp.nothing?batch=1", method: .get, headers: viewer)
                #expect(mixed.status.code == 207)
                let mixedItems = try #require(try json(mixed.body) as? [[String: Any]])
                #expect(mixedItems[0]["result"] != nil)
                #expect(try object(object(mixedItems[1]["error"])["data"])["httpStatus"] as? Int == 404)
                #expect(try object(object(mixedItems[1]["error"])["data"])["path"] as? String == "erp.nothing")

                // A mutation batch: the body holds the inputs by position.
                let admin = ServerFixture.bearer(f.adminToken)
                let mutations = try await client.execute(uri: "/trpc/erp.testConnection,erp.testConnection?batch=1", method: .post, headers: admin,
                                                         body: ByteBuffer(string: #"{"0":{"source":"loja-centro"},"1":{"source":"nope"}}"#))
                #expect(mutations.status.code == 207)
                let results = try #require(try json(mutations.body) as? [[String: Any]])
                #expect(try object(object(results[0]["result"])["data"])["success"] as? Bool == true)
                #expect(try object(results[1]["error"])["code"] as? Int == -32004)
            }
        }
    }

    @Test func noOrUnknownTokenIsUnauthorizedAndAViewerCannotMutate() async throws {
        try await ServerFixture.with { f in
            try await f.server.app.test(.live) { client in
                let none = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: ServerFixture.bearer(nil))
                #expect(none.status == .unauthorized)
                #expect(try object(object(json(none.body))["error"])["code"] as? Int == -32001)
                #expect(try (object(object(json(none.body))["error"])["message"] as? String)?.hasPrefix("no API token") == true)

                // A wrong token and a missing one get different messages (issue 15).
                let forged = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: ServerFixture.bearer(f.adminToken + "x"))
                #expect(forged.status == .unauthorized)
                #expect(try (object(object(json(forged.body))["error"])["message"] as? String)?.hasPrefix("the API token is not valid") == true)

                let viewer = ServerFixture.bearer(f.viewerToken)
                for path in ["erp.syncNow", "erp.testConnection"] {
                    let response = try await client.execute(uri: "/trpc/\(path)", method: .post, headers: viewer,
                                                            body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                    #expect(response.status == .forbidden)
                    let error = try object(object(json(response.body))["error"])
                    #expect(error["code"] as? Int == -32003)
                    #expect(try object(error["data"])["code"] as? String == "FORBIDDEN")
                }
                let allowed = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: viewer)
                #expect(allowed.status == .ok)
                // Nothing ran.
                #expect(try await f.destination.history(source: nil, limit: 10).isEmpty)
            }
        }
    }

    @Test func aSecondSyncNowWhileOneRunsIsAConflict() async throws {
        let gate = Gate()
        try await ServerFixture.with(makeSource: { config in
            GatedSource(base: try await ServerFixture.openSQLite(config), gate: gate)
        }) { f in
            try await f.server.app.test(.ahc(.http)) { client in
                let admin = ServerFixture.bearer(f.adminToken)
                let body = ByteBuffer(string: #"{"source":"loja-centro"}"#)
                async let first = client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: body)
                #expect(try await eventually { await gate.arrivals > 0 })  // the first run is reading
                let second = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: admin, body: body)
                #expect(second.status == .conflict)
                let error = try object(object(json(second.body))["error"])
                #expect(error["code"] as? Int == -32009)
                #expect((error["message"] as? String)?.contains("already syncing (started by api:ops)") == true)

                let status = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: admin)
                let data = try object(object(json(status.body))["result"])["data"]
                #expect(try object(data)["running"] as? Bool == true)

                await gate.open()
                let firstResponse = try await first
                #expect(firstResponse.status == .ok)
                #expect(try object(object(object(json(firstResponse.body))["result"])["data"])["success"] as? Bool == true)
            }
        }
    }

    @Test func aSourceLockedByAnotherProcessIsAConflictAndNoFailureIsReported() async throws {
        try await ServerFixture.with { f in
            // What another process (a CLI sync, another serve on the same destination) holds.
            #expect(try await f.destination.acquireLock(source: "loja-centro", syncId: "other-process-run", slot: nil) == nil)
            try await f.server.app.test(.live) { client in
                let response = try await client.execute(uri: "/trpc/erp.syncNow", method: .post, headers: ServerFixture.bearer(f.adminToken),
                                                        body: ByteBuffer(string: #"{"source":"loja-centro"}"#))
                #expect(response.status == .conflict)
                #expect(String(buffer: response.body).contains("other-process-run"))
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                #expect(!String(buffer: metrics.body).contains("erp_sync_runs_total"))
            }
            try await f.destination.releaseLock(source: "loja-centro", syncId: "other-process-run")
        }
    }

    @Test func onlyTheConfiguredBrowserOriginGetsCORSHeaders() async throws {
        try await ServerFixture.with(apiYAML: "  corsOrigins: [\"https://audit.example.com\"]") { f in
            try await f.server.app.test(.live) { client in
                var preflight = HTTPFields()
                preflight[.origin] = "https://audit.example.com"
                preflight[.accessControlRequestMethod] = "POST"
                let allowed = try await client.execute(uri: "/trpc/erp.syncNow", method: .options, headers: preflight)
                #expect(allowed.status == .noContent || allowed.status == .ok)
                #expect(allowed.headers[.accessControlAllowOrigin] == "https://audit.example.com")
                #expect(allowed.headers[.accessControlAllowHeaders]?.lowercased().contains("authorization") == true)

                var headers = ServerFixture.bearer(f.viewerToken)
                headers[.origin] = "https://audit.example.com"
                let query = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: headers)
                #expect(query.status == .ok)
                #expect(query.headers[.accessControlAllowOrigin] == "https://audit.example.com")

                headers[.origin] = "https://evil.example.net"
                let other = try await client.execute(uri: "/trpc/erp.getStatus", method: .get, headers: headers)
                #expect(other.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }
}
