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

    /// Fixed-length character data (SQL `CHAR(n)`: PostgreSQL `character(n)`, ODBC `SQL_CHAR`) delivered as UTF-8, as
    /// ``init(utf8:)``, without the trailing blanks the type pads it with: they are not part of the value (PostgreSQL
    /// documentation, "Character Types"), nor of a key made of it.
    public init(blankPaddedUTF8 bytes: UnsafeRawBufferPointer) {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        self.init(utf8: UnsafeRawBufferPointer(rebasing: bytes[..<end]))
    }

    /// The coding Swift synthesizes for this enum (`{"text":{"_0":"abc"}}`, `{"null":{}}`), which stored checkpoints
    /// and quarantine keys already use, with one addition: text holding U+0000 is `{"textHoldingNUL":{"_0":"<base64 of
    /// its UTF-8>"}}`, since PostgreSQL's `jsonb` refuses `\u0000` — a checkpoint whose key held a NUL failed every
    /// batch that ended on that row (`tb_sync_state.state_json`), and the stream stopped there.
    private enum CodingKeys: String, CodingKey {
        case null, integer, decimal, double, text, bool, localDateTime, instant, bytes, textHoldingNUL
    }

    /// The synthesized coding's key of an associated value.
    private enum ValueKeys: String, CodingKey {
        case value = "_0"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard let key = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a source value needs exactly one case key"))
        }
        let value = try container.nestedContainer(keyedBy: ValueKeys.self, forKey: key)
        switch key {
        case .null: self = .null
        case .integer: self = .integer(try value.decode(Int64.self, forKey: .value))
        case .decimal: self = .decimal(try value.decode(String.self, forKey: .value))
        case .double: self = .double(try value.decode(Double.self, forKey: .value))
        case .text: self = .text(try value.decode(String.self, forKey: .value))
        case .bool: self = .bool(try value.decode(Bool.self, forKey: .value))
        case .localDateTime: self = .localDateTime(try value.decode(LocalDateTime.self, forKey: .value))
        case .instant: self = .instant(try value.decode(Instant.self, forKey: .value))
        case .bytes: self = .bytes(try value.decode(Data.self, forKey: .value))
        case .textHoldingNUL:
            guard let bytes = Data(base64Encoded: try value.decode(String.self, forKey: .value)),
                  let text = String(validating: bytes, as: UTF8.self) else {
                throw DecodingError.dataCorruptedError(forKey: .value, in: value, debugDescription: "not the base64 of UTF-8 text")
            }
            self = .text(text)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .null: _ = container.nestedContainer(keyedBy: ValueKeys.self, forKey: .null)
        case .integer(let v): try encode(v, as: .integer, in: &container)
        case .decimal(let v): try encode(v, as: .decimal, in: &container)
        case .double(let v): try encode(v, as: .double, in: &container)
        case .text(let v) where v.holdsNUL: try encode(Data(v.utf8).base64EncodedString(), as: .textHoldingNUL, in: &container)
        case .text(let v): try encode(v, as: .text, in: &container)
        case .bool(let v): try encode(v, as: .bool, in: &container)
        case .localDateTime(let v): try encode(v, as: .localDateTime, in: &container)
        case .instant(let v): try encode(v, as: .instant, in: &container)
        case .bytes(let v): try encode(v, as: .bytes, in: &container)
        }
    }

    private func encode(_ value: some Encodable, as key: CodingKeys, in container: inout KeyedEncodingContainer<CodingKeys>) throws {
        var nested = container.nestedContainer(keyedBy: ValueKeys.self, forKey: key)
        try nested.encode(value, forKey: .value)
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
    /// Whether the text holds U+0000 (NUL), which PostgreSQL's `text` and `jsonb` cannot store. A native string's
    /// bytes are searched in place (`UTF8View.contains` steps an index per byte: 2 % of our CPU reading MariaDB).
    var holdsNUL: Bool { utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? utf8.contains(0) }
}
