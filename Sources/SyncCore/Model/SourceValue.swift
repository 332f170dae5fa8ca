public import Foundation

/// One value as a source driver delivered it, before any mapping.
///
/// Drivers keep exactness: DECIMAL/NUMERIC arrive as `.decimal` text, never as `Double`; naive
/// timestamps as `.localDateTime` (or `.text` when the driver returns text, as SQLite does); zoned ones
/// as `.instant`.
public enum SourceValue: Sendable, Hashable, Codable {
    case null
    case integer(Int64)
    /// Exact decimal text, e.g. `"12345678901234567.89"` (DECIMAL, NUMERIC, BIGINT UNSIGNED).
    case decimal(String)
    /// An approximate number (FLOAT, REAL, DOUBLE).
    case double(Double)
    case text(String)
    case bool(Bool)
    /// A timestamp without time zone.
    case localDateTime(LocalDateTime)
    /// A timestamp with time zone, already an instant.
    case instant(Instant)
    /// Bytes the driver could not decode as text (kept base64-encoded in quarantine).
    case bytes(Data)

    /// Character data a driver delivered as UTF-8: `.text` when the bytes are valid UTF-8, else `.bytes` — never
    /// repaired into other characters, so the mapper quarantines them with their raw value. ASCII (the bulk of ERP
    /// data) is recognised in one pass over the bytes; anything else is validated by the standard library.
    public init(utf8 bytes: UnsafeRawBufferPointer) {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            self = .text(String(decoding: bytes, as: UTF8.self))
        } else {
            self = String(validating: bytes, as: UTF8.self).map(SourceValue.text) ?? .bytes(Data(bytes))
        }
    }

    /// `true` for SQL NULL.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The value as text, the way the ERP would print it: integers and decimals in full, timestamps as
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`; `nil` for NULL and for bytes that are not valid UTF-8.
    public var text: String? {
        switch self {
        case .null: nil
        case .integer(let v): String(v)
        case .decimal(let v): v
        case .double(let v): v.description
        case .text(let v): v
        case .bool(let v): v ? "true" : "false"
        case .localDateTime(let v): v.description
        case .instant(let v): v.description
        case .bytes(let v): String(validating: v, as: UTF8.self)
        }
    }

    /// A JSON-friendly rendering for quarantine records: numbers stay exact text, bytes that are not UTF-8 and
    /// text holding U+0000 (which PostgreSQL's `jsonb` refuses) become `base64:<…>` of their bytes, NULL is `nil`.
    public var jsonValue: String? {
        switch self {
        case .bytes(let v):
            guard let text = String(validating: v, as: UTF8.self), !text.holdsNUL else { return "base64:" + v.base64EncodedString() }
            return text
        case .text(let v) where v.holdsNUL: return "base64:" + Data(v.utf8).base64EncodedString()
        default: return text
        }
    }
}

extension String {
    /// Whether the text holds U+0000 (NUL), which PostgreSQL's `text` and `jsonb` cannot store.
    var holdsNUL: Bool { utf8.contains(0) }
}
