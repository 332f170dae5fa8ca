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
                encoded.append(contentsOf: [UInt8(ascii: "-"), UInt8(ascii: ":")])
                continue
            }
            encoded.append(contentsOf: String(field.utf8.count).utf8)
            encoded.append(UInt8(ascii: ":"))
            encoded.append(contentsOf: field.utf8)
        }
        let digest = SHA256.hash(data: encoded)
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
