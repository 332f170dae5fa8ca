import Foundation
@testable import SyncCore

/// A mapper for the seed's stream (`sale_transactions`) read from SQLite, and rows laid out as its
/// ``StreamQuery/columns``: `cursor, key.0, externalId, pdv, operator, amount, occurredAt, type, reference`.
struct MapperFixture {
    let source: SourceConfig
    let query: StreamQuery
    let mapper: RecordMapper
    /// The instant the rows are mapped at: 2024-03-11T00:00:00Z.
    let now = Instant(seconds: 1_710_115_200)

    init(typeMap: [String: TransactionType] = [:], timezone: TimeZone = TimeZone(identifier: "America/Sao_Paulo")!,
         currency: String = "BRL", validation: ValidationOptions = ValidationOptions()) {
        var stream = StreamConfig.seedDefault
        stream.typeMap = typeMap
        source = SourceConfig(name: "loja-centro", type: .sqlite, path: "/tmp/erp.sqlite", timezone: timezone,
                              currency: currency, stream: stream)
        query = StreamQuery(stream: source.stream, dialect: .sqlite)
        mapper = RecordMapper(source: source, validation: validation)
    }

    /// A valid sale row, with `overrides` by column name.
    func row(_ overrides: [String: SourceValue] = [:]) -> [SourceValue] {
        let base: [String: SourceValue] = [
            "cursor": .text("2024-03-10 14:00:00"), "key.0": .integer(1001), "externalId": .integer(1001),
            "pdv": .text("PDV01"), "operator": .text("op-7"), "amount": .decimal("19.90"),
            "occurredAt": .text("2024-03-10 14:00:00"), "type": .text("venda"), "reference": .text("CUPOM-55"),
        ]
        let values = base.merging(overrides) { $1 }
        return query.columns.map { values[$0] ?? .null }
    }
}
