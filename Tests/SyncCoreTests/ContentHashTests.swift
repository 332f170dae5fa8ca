@testable import SyncCore
import Testing

/// `tb_sales.content_hash` is compared with the hashes stored by earlier versions: its encoding must never change,
/// or every stored record would read as changed. The digests below were computed apart from the project
/// (Python's `hashlib.sha256` over the documented `<UTF-8 length>:<bytes>` / `-:` encoding).
@Suite struct ContentHashTests {
    @Test func fieldsHashToTheirDocumentedEncoding() {
        #expect(ContentHash.of(["a", nil, ""]) == "5c9cb9f60929ce33a42cbbcfe260172aea4c15dfeae74288ee59e7d3979e44a0")
        // Multi-byte text: the prefix counts UTF-8 bytes (30), not characters (20).
        #expect(ContentHash.of([String(repeating: "ação", count: 5)]) == "48eff5856beb06141bb30506139e280a1f5fa31c509d08cf2b84de0c424dd82d")
    }

    @Test func aRecordsHashCoversItsFieldsInTheirStoredForms() throws {
        let record = SaleTransaction(
            sourceId: "erp", externalId: "17", pdv: "PDV-1", operator: "OP-9", amount: try Amount(parsing: "19.9", scale: 2), currency: "BRL",
            occurredAt: Instant(seconds: 1_780_326_000), type: .cancel, typeRaw: "cancelamento", reference: nil,
            sourceUpdatedAt: Instant(seconds: 1_780_326_001, microsecond: 500_000), isDeletedAtSource: false)
        #expect(record.amount.description == "19.90")
        #expect(record.occurredAt.description == "2026-06-01T15:00:00.000000Z")
        #expect(record.sourceUpdatedAt?.description == "2026-06-01T15:00:01.500000Z")
        #expect(record.contentHash == "d84cf2ef8bb96e756fdfcc32b9510eb6f9c5467ee767568360cae1a927981849")
    }
}
