import Foundation

/// The canonical kind of a point-of-sale transaction.
///
/// ERP-specific states and flags map to these through a stream's `typeMap`; the ERP's own value is
/// kept beside it in ``SaleTransaction/typeRaw``.
public enum TransactionType: String, Sendable, Codable, CaseIterable {
    case sale, cancel, refund, void, discount, other
}

/// The canonical record written to `tb_sales`: one POS transaction of one source.
///
/// Identity is `(sourceId, externalId)`; `contentHash` covers every field that comes from the
/// source, so a re-read with the same content is recognised as unchanged.
public struct SaleTransaction: Sendable, Hashable {
    /// The source's configured name.
    public let sourceId: String
    /// The ERP's primary key, as text (composite keys joined with `|`).
    public let externalId: String
    /// Point of sale (PDV, terminal or store).
    public let pdv: String
    /// Cashier / operator id.
    public let `operator`: String
    /// Exact amount at the currency's scale.
    public let amount: Amount
    /// ISO 4217 code, `BRL` unless mapped.
    public let currency: String
    /// When the transaction happened, as a UTC instant.
    public let occurredAt: Instant
    /// Canonical type.
    public let type: TransactionType
    /// The ERP's own type value (before `typeMap`), trimmed.
    public let typeRaw: String
    /// Optional business reference (coupon, rental, order number).
    public let reference: String?
    /// When the ERP last changed the row, if known (from a timestamp cursor or a mapped field).
    public let sourceUpdatedAt: Instant?
    /// `true` when the source marks the row deleted (the stream's `deleted` expression).
    public let isDeletedAtSource: Bool

    /// Creates a record; ``contentHash`` is computed from the fields.
    public init(sourceId: String, externalId: String, pdv: String, operator: String, amount: Amount,
                currency: String, occurredAt: Instant, type: TransactionType, typeRaw: String,
                reference: String?, sourceUpdatedAt: Instant?, isDeletedAtSource: Bool) {
        self.sourceId = sourceId
        self.externalId = externalId
        self.pdv = pdv
        self.operator = `operator`
        self.amount = amount
        self.currency = currency
        self.occurredAt = occurredAt
        self.type = type
        self.typeRaw = typeRaw
        self.reference = reference
        self.sourceUpdatedAt = sourceUpdatedAt
        self.isDeletedAtSource = isDeletedAtSource
        contentHash = ContentHash.of([
            externalId, pdv, `operator`, amount.description, currency, occurredAt.description,
            type.rawValue, typeRaw, reference, sourceUpdatedAt?.description, isDeletedAtSource ? "1" : "0",
        ])
    }

    /// SHA-256 (hex) of the source-derived fields in a fixed, unambiguous encoding.
    public let contentHash: String
}

extension SaleTransaction {
    /// The record as a JSON object with sorted keys (amount and instants as text), as kept for skipped
    /// duplicates in `tb_sync_duplicates.record_json`.
    public var json: String {
        let object: [String: Any] = [
            "sourceId": sourceId, "externalId": externalId, "pdv": pdv, "operator": `operator`, "amount": amount.description,
            "currency": currency, "occurredAt": occurredAt.description, "type": type.rawValue, "typeRaw": typeRaw,
            "reference": reference ?? NSNull(), "sourceUpdatedAt": sourceUpdatedAt?.description ?? NSNull(),
            "deletedAtSource": isDeletedAtSource,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension Sequence<SaleTransaction> {
    /// The distinct pdvs of the records, in order of first appearance (what `tb_sales_pdvs` is asked about and given).
    var distinctPdvs: [String] {
        var seen = Set<String>()
        return compactMap { seen.insert($0.pdv).inserted ? $0.pdv : nil }
    }
}
