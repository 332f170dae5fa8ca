import Foundation
import Logging
@testable import SyncCore
import SyncTesting
import Testing

/// Named scenarios of the engine on the in-memory source and destination.
@Suite struct EngineScenarioTests {
    static let stream = StreamConfig(
        from: .table("sales"), primaryKey: ["id"], cursor: .init(column: "updated_at", kind: .timestamp),
        fields: [.pdv: .column("pdv"), .operator: .column("operator"), .amount: .column("amount"),
                 .occurredAt: .column("occurred_at"), .type: .column("type")])

    /// An ERP, an audit database and a clock shared by both.
    struct World {
        let source = MemorySource(primaryKey: ["id"])
        let clock: TestClock
        let destination: MemoryDestination
        let config: SourceConfig

        init(zone: String = "America/Sao_Paulo", start: Instant = Instant(seconds: 1_780_000_000)) {
            clock = TestClock(start: start)
            destination = MemoryDestination(now: clock.now)
            config = SourceConfig(name: "erp", type: .sqlite, timezone: TimeZone(identifier: zone)!, stream: EngineScenarioTests.stream)
        }

        func add(_ id: Int, at cursor: LocalDateTime, amount: String = "10.00") {
            source.upsert(["id": .integer(Int64(id)), "updated_at": .localDateTime(cursor), "pdv": .text("P1"), "operator": .text("op1"),
                           "amount": .decimal(amount), "occurred_at": .localDateTime(cursor), "type": .text("sale")])
        }

        func sync(_ type: SyncType = .incremental) async -> ErpSyncResult {
            var options = SyncOptions()
            options.batchSize = 3
            options.daysBack = 0
            options.retryDelayMs = 0
            var logger = Logger(label: "scenario")
            logger.logLevel = .critical
            let engine = SyncEngine(destination: destination, logger: logger, now: clock.now)
            return await engine.run(SyncRequest(source: config, syncType: type, options: options), openSource: { [source] in source })
        }
    }

    /// Clocks go back at 02:00 EDT on 2026-11-01 in New York: after a sync at 01:55 EDT, a row written at 01:10
    /// EST (its wall time 45 minutes behind the checkpoint, beyond the 5-minute lookback) is read by the next run.
    @Test func rowsWrittenInTheRepeatedHourAfterAFallBackAreRead() async {
        let zone = TimeZone(identifier: "America/New_York")!
        let firstRun = LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 55).instant(in: zone)
        let world = World(zone: "America/New_York", start: firstRun)
        world.add(1, at: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 55))
        #expect(await world.sync().recordsInserted == 1)
        world.clock.advance(to: Instant(seconds: firstRun.seconds + 3600 + 20 * 60))  // 01:15 EST
        world.add(2, at: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 10))
        let result = await world.sync()
        #expect(result.recordsInserted == 1)
        #expect(world.destination.snapshot.sales["erp|2"] != nil)
    }
}
