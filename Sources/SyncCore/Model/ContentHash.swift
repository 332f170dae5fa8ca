import Crypto

/// SHA-256 fingerprints used for change detection (`tb_sales.content_hash`) and quarantine keys.
public enum ContentHash {
    /// The lowercase hex SHA-256 of the fields, each length-prefixed (`nil` encoded apart from `""`), so
    /// no two different field lists share an encoding.
    public static func of(_ fields: [String?]) -> String {
        var hasher = SHA256()
        for field in fields {
            if let field {
                let bytes = Array(field.utf8)
                hasher.update(data: Array("\(bytes.count):".utf8))
                hasher.update(data: bytes)
            } else {
                hasher.update(data: Array("-:".utf8))
            }
        }
        let hex: [Character] = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(64)
        for byte in hasher.finalize() {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return out
    }
}
