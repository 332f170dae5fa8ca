import Crypto

/// SHA-256 fingerprints used for change detection (`tb_sales.content_hash`) and quarantine keys.
public enum ContentHash {
    /// The lowercase hex SHA-256 of the fields, each length-prefixed (`nil` encoded apart from `""`), so
    /// no two different field lists share an encoding.
    public static func of(_ fields: [String?]) -> String {
        var encoded: [UInt8] = []
        encoded.reserveCapacity(fields.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 8 })
        for field in fields {
            guard let field else {
                encoded.append(UInt8(ascii: "-"))
                encoded.append(UInt8(ascii: ":"))
                continue
            }
            appendDecimal(field.utf8.count, to: &encoded)
            encoded.append(UInt8(ascii: ":"))
            encoded.append(contentsOf: field.utf8)
        }
        let digest = SHA256.hash(data: encoded)
        return hex(digest)
    }

    /// Appends the decimal digits of `value` (≥ 0), as `String(value)` would spell them.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(48 + rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        let hex: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 64) { out in
            var index = 0
            for byte in digest {
                out[index] = hex.utf8Start[Int(byte >> 4)]
                out[index + 1] = hex.utf8Start[Int(byte & 0x0f)]
                index += 2
            }
            return 64
        }
    }
}
