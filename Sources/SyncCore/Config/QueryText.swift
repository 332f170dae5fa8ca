/// Checks on the text of a stream's `query`, which the engine wraps in its own pages (`SELECT … FROM (query) src
/// WHERE … ORDER BY cursor, key LIMIT n`).
enum QueryText {
    /// What makes `query` unusable as a stream, or `nil`: a `;` (a second statement), or an `ORDER BY`, `LIMIT`,
    /// `OFFSET` or `FETCH` of its own outside parentheses. A query cut to its first rows (`… LIMIT 100`) read as the
    /// whole stream: a full pass then marked every other row deleted at the source. Quoted text (`'…'`, `"…"`,
    /// `` `…` ``, `[…]`) and comments (`--`, `/* */`) are skipped, so `';'` or a column named `"limit"` pass.
    static func problem(_ query: String) -> String? {
        let bytes = Array(query.utf8)
        var index = 0, depth = 0
        var words: [String] = []  // the words outside parentheses, uppercased, in order
        var word: [UInt8] = []
        func endWord() {
            if !word.isEmpty { words.append(String(decoding: word, as: UTF8.self).uppercased()) }
            word.removeAll()
        }
        func skip(to closing: UInt8, from start: Int) -> Int {
            var at = start + 1
            while at < bytes.count {
                if bytes[at] == closing {
                    // A doubled quote inside a quoted text stands for itself (`'it''s'`).
                    if closing != UInt8(ascii: "]"), at + 1 < bytes.count, bytes[at + 1] == closing { at += 2; continue }
                    return at + 1
                }
                at += 1
            }
            return at
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"):
                endWord()
                index = skip(to: byte, from: index)
                continue
            case UInt8(ascii: "["):
                endWord()
                index = skip(to: UInt8(ascii: "]"), from: index)
                continue
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                endWord()
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                endWord()
                index += 2
                while index + 1 < bytes.count && !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) { index += 1 }
                index += 2
                continue
            case UInt8(ascii: ";"):
                return "must be one statement, without ';'"
            case UInt8(ascii: "("):
                endWord()
                depth += 1
            case UInt8(ascii: ")"):
                endWord()
                depth = max(0, depth - 1)
            default:
                let isWordByte = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte >= 0x80
                if isWordByte && depth == 0 { word.append(byte) } else { endWord() }
            }
            index += 1
        }
        endWord()
        for (position, word) in words.enumerated() {
            let clause = switch word {
            case "ORDER" where position + 1 < words.count && words[position + 1] == "BY": "ORDER BY"
            case "LIMIT", "OFFSET", "FETCH": word
            default: ""
            }
            if !clause.isEmpty {
                return "must not have its own \(clause) (the sync orders and pages the query's rows itself; cut to its first rows, "
                    + "a full pass would mark the others deleted): move it into a subquery, or drop it"
            }
        }
        return nil
    }
}
