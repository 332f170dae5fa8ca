import Foundation
import SQLiteNIO
import SyncCore
import SyncTesting
import Testing

@Suite struct RandomizedSyncTests {
    /// Random inserts (some committed late, some sharing a timestamp), updates that move the cursor and
    /// deletes at the source, with syncs interrupted after a random batch. Afterwards the live rows of
    /// `tb_sales` equal the source, row for row, and nothing was doubled.
    @Test(arguments: [UInt64(7), 42, 2024])
    func randomChangesWithInterruptionsConvergeToTheSource(seed: UInt64) async throws {
        try await Fixture.with { f in
            var rng = SplitMix64(seed: seed)
            var clock = LocalDateTime(year: 2024, month: 3, day: 1, hour: 9)
            var live: Set<Int> = []
            var nextId = 1
            var options = Fixture.options(batchSize: 7, lookback: .seconds(600))
            options.maxRecords = 40
            let types = ["venda", "venda", "venda", "cancelamento", "devolucao"]
            for _ in 0..<25 {
                for _ in 0..<Int.random(in: 0...15, using: &rng) {
                    clock = clock.adding(seconds: Int64.random(in: 0...2, using: &rng))  // 0 s: shared timestamps
                    let late = Int.random(in: 0..<5, using: &rng) == 0
                    let stamp = late ? clock.adding(seconds: -Int64.random(in: 1...300, using: &rng)) : clock
                    let amount = "\(Int.random(in: 1...500, using: &rng)).\(Int.random(in: 10...99, using: &rng))"
                    try await f.upsert([(nextId, "P\(Int.random(in: 1...4, using: &rng))", "op\(Int.random(in: 1...6, using: &rng))",
                                         amount, stamp.description, types.randomElement(using: &rng)!, stamp.description)])
                    live.insert(nextId)
                    nextId += 1
                }
                for _ in 0..<Int.random(in: 0...4, using: &rng) {
                    guard let id = live.randomElement(using: &rng) else { break }
                    clock = clock.adding(seconds: 1)
                    try await f.execute("UPDATE sale_transactions SET type = 'cancelamento', amount = amount + 1, updated_at = ? WHERE id = ?",
                                        [.text(clock.description), .integer(id)])
                }
                if Int.random(in: 0..<3, using: &rng) == 0, let id = live.randomElement(using: &rng) {
                    try await f.execute("DELETE FROM sale_transactions WHERE id = ?", [.integer(id)])
                    live.remove(id)
                }
                let stopAfter = Int.random(in: 0...4, using: &rng)
                let full = Int.random(in: 0..<6, using: &rng) == 0
                let result = await f.sync(options, full: full, afterCommit: { batch in
                    if stopAfter > 0 && batch == stopAfter { throw SimulatedCrash() }
                })
                #expect(result.status != .failed || result.errors.first?.code == .interrupted)
            }
            // Drain: incremental runs until caught up, then two full passes: the first may be the continuation of
            // a pass begun before the last changes; a pass only judges rows written before it began.
            for full in [false, true, true] {
                var rounds = 0
                while rounds < 100 {
                    rounds += 1
                    if !(await f.sync(options, full: full)).hasMore { break }
                }
                #expect(rounds < 100)
            }
            let sales = try await f.sales()
            let source = try await f.auditRowsOfERP()
            let alive = sales.filter { $0.value["deleted_at_source"] == "NULL" }
            #expect(Set(alive.keys) == Set(source.keys), "seed \(seed)")
            #expect(Set(sales.keys).subtracting(alive.keys) == Set(sales.keys).subtracting(source.keys), "only vanished rows are marked deleted")
            for (id, row) in source {
                let stored = alive[id]
                #expect(stored?["amount"] == row.amount, "seed \(seed) id \(id)")
                #expect(stored?["type_raw"] == row.type, "seed \(seed) id \(id)")
                #expect(stored?["source_updated_at"] == row.updatedAt, "seed \(seed) id \(id)")
            }
        }
    }
}

extension Fixture {
    /// The ERP's rows as the audit database should hold them: amount at scale 2, `updated_at` as UTC.
    func auditRowsOfERP() async throws -> [String: (amount: String, type: String, updatedAt: String)] {
        let zone = TimeZone(identifier: "America/Sao_Paulo")!
        var out: [String: (String, String, String)] = [:]
        for row in try await erp.query("SELECT id, amount, type, updated_at FROM sale_transactions") {
            let amount = try Amount(parsing: SourceValue(sqlite: row.column("amount")!).text!, scale: 2, rounding: .halfEven)
            let updated = try LocalDateTime(parsing: row.column("updated_at")!.string!).instant(in: zone)
            out[String(row.column("id")!.integer!)] = (amount.description, row.column("type")!.string!, updated.description)
        }
        return out
    }
}

extension SourceValue {
    init(sqlite data: SQLiteData) {
        switch data {
        case .integer(let v): self = .integer(Int64(v))
        case .float(let v): self = .double(v)
        case .text(let v): self = .text(v)
        default: self = .null
        }
    }
}
