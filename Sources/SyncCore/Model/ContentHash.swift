import Crypto

/// SHA-256 fingerprints used for change detection (`tb_sales.content_hash`) and quarantine keys.
public enum ContentHash {
    /// The lowercase hex SHA-256 of the fields, each length-prefixed (`<UTF-8 length>:<bytes>`, `-:` for `nil`, so
    /// `nil` differs from `""`), so no two different field lists share an encoding. The encoding is built in one
    /// temporary buffer (on the stack when small) and hashed in one call: this runs for every record loaded.
    public static func of(_ fields: [String?]) -> String {
        var size = 0
        for field in fields { size += (field?.utf8.count ?? 0) + 21 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: size) { buffer in
            // Written through a moving pointer, not a nested function: a captured counter costs a dynamic
            // exclusivity check per byte.
            let start = buffer.baseAddress!
            var end = start
            for field in fields {
                guard var field else {
                    end[0] = UInt8(ascii: "-")
                    end[1] = UInt8(ascii: ":")
                    end += 2
                    continue
                }
                end = field.withUTF8 { bytes in
                    var out = end
                    // The decimal length, as `String(count)` spells it.
                    var divisor = 1
                    while divisor <= bytes.count / 10 { divisor *= 10 }
                    var rest = bytes.count
                    while divisor > 0 {
                        out.pointee = UInt8(48 + rest / divisor)
                        out += 1
                        rest %= divisor
                        divisor /= 10
                    }
                    out.pointee = UInt8(ascii: ":")
                    out += 1
                    if let base = bytes.baseAddress { out.update(from: base, count: bytes.count) }
                    return out + bytes.count
                }
            }
            var hash = SHA256()
            hash.update(bufferPointer: UnsafeRawBufferPointer(start: start, count: end - start))
            return hex(hash.finalize())
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
