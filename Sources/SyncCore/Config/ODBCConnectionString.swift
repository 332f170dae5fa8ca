/// ODBC connection strings (`KEY=value;KEY={value};…`) after the ODBC reference, "SQLDriverConnect
/// Function", Comments: a value holding `;`, `{`, `}` or `=` is enclosed in braces, and a `}` inside braces is
/// written twice (psqlODBC, MariaDB Connector/ODBC and Microsoft's driver read it so). FreeTDS 1.3 reads
/// a braced value up to the first `};` instead and takes `}}` literally (`odbc_parse_connect_string` in its
/// src/odbc/connectparams.c): see ``BraceStyle``.
public enum ODBCConnectionString {
    /// How a driver reads `}` inside a braced value.
    public enum BraceStyle: Sendable {
        /// `}` written as `}}` (the ODBC reference).
        case doubled
        /// FreeTDS: written as is; the value ends at the first `}` followed by `;` or the end.
        case freeTDS
    }

    /// One attribute: a key and its value (unquoted).
    public struct Attribute: Sendable, Equatable {
        /// The keyword as written (`DRIVER`, `Server`); compare case-insensitively.
        public var key: String
        /// The value with its braces removed and `}}` read as `}`.
        public var value: String

        /// Creates an attribute.
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// `key=value`, or `key={value}` when the value holds `;`, `{`, `}`, `=` or edge spaces (each `}` doubled
    /// in the ``BraceStyle/doubled`` style), so a password holding `;` or `}` cannot end the value early and
    /// add attributes of its own. Plain values stay unbraced: psqlODBC 13 keeps the braces of a braced `UID`
    /// as part of the user name.
    /// - Returns: `nil` when the driver cannot read the value back whole: a value holding `};` in the
    ///   ``BraceStyle/freeTDS`` style.
    public static func attribute(_ key: String, _ value: String, style: BraceStyle = .doubled) -> String? {
        let special = value.contains { ";{}=".contains($0) } || value.first?.isWhitespace == true || value.last?.isWhitespace == true
        guard special else { return "\(key)=\(value)" }
        switch style {
        case .doubled: return "\(key)={\(value.replacingOccurrences(of: "}", with: "}}"))}"
        case .freeTDS: return value.contains("};") ? nil : "\(key)={\(value)}"
        }
    }

    /// The attributes of a connection string, in order, keys trimmed of spaces; segments without `=` (an
    /// empty one, a trailing `;`) are skipped.
    public static func attributes(_ text: String) -> [Attribute] {
        var result: [Attribute] = []
        var rest = Substring(text)
        while let equals = rest.firstIndex(of: "=") {
            let key = String(rest[..<equals]).trimmingSpaces()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "{" {
                rest = rest.dropFirst()
                while let character = rest.popFirst() {
                    if character == "}" {
                        guard rest.first == "}" else { break }
                        rest = rest.dropFirst()
                    }
                    value.append(character)
                }
            } else {
                value = String(rest.prefix { $0 != ";" })
                rest = rest.dropFirst(value.count)
            }
            rest = rest.drop { $0 != ";" }.dropFirst()
            let name = key.split(separator: ";").last.map { String($0).trimmingSpaces() } ?? ""
            if !name.isEmpty { result.append(Attribute(key: name, value: value)) }
        }
        return result
    }
}
